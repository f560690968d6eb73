"""The one registry of review reasons: a short code for machines, a sentence for people.

A result is flagged for review (``review = True``) when at least one reason applies. Codes are
stable (they appear in ``trajectory.csv``, the Slicer table and reports); add new ones here only.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Reason(str, Enum):
    """Why a (lesion, scan) result needs a look. The value is the code written to tables."""

    EMPTY_PROMPT = "empty_prompt"
    TINY_SEGMENT = "tiny_segment"
    GROWTH_TOO_FAST = "growth_too_fast"
    SHRINKAGE_TOO_FAST = "shrinkage_too_fast"
    LARGER_THAN_PROMPT = "larger_than_prompt"
    MISSING_BETWEEN = "missing_between"
    OUTSIDE_LUNG = "outside_lung"
    OPEN_BOUNDARY = "open_boundary"
    WEAK_EDGE = "weak_edge"
    THIN_PART = "thin_part"
    NOT_COMPACT = "not_compact"
    SHAPE_CHANGED = "shape_changed"
    REGION_BORDER = "region_border"
    ATTACHED_AS_THICK = "attached_as_thick"
    IMAGE_EDGE = "image_edge"
    POINT_FAR = "point_far"
    CANDIDATE_REJECTED = "candidate_rejected"
    SMALL_REMNANT = "small_remnant"
    POINT_OUTSIDE_IMAGE = "point_outside_image"
    LOW_REGISTRATION_CONFIDENCE = "low_registration_confidence"
    REGISTRATION_DOUBTFUL = "registration_doubtful"
    ABSENCE_UNCONFIRMED = "absence_unconfirmed"
    RESPONSE_UNCERTAIN = "response_uncertain"
    BASELINE_DOUBTFUL = "baseline_doubtful"
    NO_BASELINE = "no_baseline"
    SHALLOW = "shallow"
    GROWN_BEYOND = "grown_beyond"
    FEW_SLICES = "few_slices"
    RUNS_ON = "runs_on"
    ELONGATED = "elongated"
    HAZE_BEYOND = "haze_beyond"
    FAINT_RIM = "faint_rim"


REASON_TEXT: dict[Reason, str] = {
    Reason.EMPTY_PROMPT: "nothing was segmented at the prompt: the baseline is missing",
    Reason.TINY_SEGMENT: "segment smaller than a 3 mm nodule or a handful of voxels: not measurable",
    Reason.GROWTH_TOO_FAST: "volume grew faster than a fast-growing lung cancer can between these scans",
    Reason.SHRINKAGE_TOO_FAST: "volume fell faster than a responding tumour shrinks between these scans",
    Reason.LARGER_THAN_PROMPT: "much larger than the lesion on the prompt scan, beyond plausible growth",
    Reason.MISSING_BETWEEN: "not found here, but found on scans before and after",
    Reason.OUTSIDE_LUNG: "most of the segment lies outside the lung envelope (chest wall, mediastinum?)",
    Reason.OPEN_BOUNDARY: "much of the outline runs through tissue as dense as the lesion (a cut, not an edge)",
    Reason.WEAK_EDGE: "little intensity difference between the segment and its surroundings",
    Reason.THIN_PART: "a thin part (a vessel, a sheet along the pleura) makes up much of the segment",
    Reason.NOT_COMPACT: "the segment is not lesion-shaped: thin or branching throughout (vessels, diaphragm, wall)",
    Reason.SHAPE_CHANGED: "much flatter or longer than the same lesion on the prompt scan: cut to fewer slices, "
                          "or grown along a vessel or the pleura",
    Reason.REGION_BORDER: "the segment reaches the border of the segmenter's region (possibly cut or leaking)",
    Reason.ATTACHED_AS_THICK: "the segmenter cut a structure about as thick as what it kept (a vessel): the "
                              "shape cannot tell which is the lesion (where a nodule has gone, a piece of its vessel)",
    Reason.IMAGE_EDGE: "the segment touches the edge of the scan: the lesion may extend beyond it",
    Reason.POINT_FAR: "the propagated point is far from the segment (it may be another structure)",
    Reason.CANDIDATE_REJECTED: "a structure at the propagated point was not taken as the lesion (it lies "
                               "where the lesion cannot be): check that the lesion has gone",
    Reason.SMALL_REMNANT: "what was found covers little of the lesion's place on the prompt scan: what is left of "
                          "it, or a neighbouring structure (a vessel) where it has gone",
    Reason.POINT_OUTSIDE_IMAGE: "the registration put the lesion outside this scan: the scan does not cover it, "
                                "or the registration failed here (nothing was measured)",
    Reason.LOW_REGISTRATION_CONFIDENCE: "the registration cannot vouch for where it put the lesion here",
    Reason.REGISTRATION_DOUBTFUL: "the registration of this scan could not vouch for most of the other lesions "
                                  "carried with it (it may have failed): check this one's place too",
    Reason.ABSENCE_UNCONFIRMED: "reported gone, but its surroundings do not match the prompt scan's or its place "
                                "is not empty: check that the lesion has really gone",
    Reason.RESPONSE_UNCERTAIN: "the response category rests on a volume change within the measurement's own "
                               "uncertainty of a threshold: the neighbouring category is as likely",
    Reason.BASELINE_DOUBTFUL: "the prompt scan's own segment, the baseline this volume and response are read "
                              "against, does not look like a lesion: the same segmenter may have erred here too",
    Reason.NO_BASELINE: "the click on the prompt scan gave nothing: this result was found at the click's mapped "
                        "point and could not be checked against the lesion (there is no outline to check it "
                        "against, nor a volume to read a response from)",
    Reason.SHALLOW: "the segment is less than half as deep across the slices as it is wide: a slice holding the "
                    "lesion beside a wall that crosses the slices (the dome) was left out, or the lesion is flat; "
                    "its volume is not vouched for within a factor of 2",
    Reason.GROWN_BEYOND: "part of the segment lies beyond where the lesion on the prompt scan could have grown "
                         "(its outline widened by as much as its thickest part grew): the next stretch of a vessel "
                         "or another structure beside it taken in; its volume is not vouched for within a factor of 2",
    Reason.FEW_SLICES: "the lesion (this segment, or the prompt scan's if smaller) is less than two slices across: "
                       "its volume is mostly the slices' partial volume with the lung and is not known within a "
                       "factor of 2; measure small nodules on thin slices (1.5 mm or less)",
    Reason.ELONGATED: "drawn out along one axis (2.5 times its spread across it or more) where a lesion is "
                      "rounder: a stretch of vessel or a sheet of pleura taken in, or a lesion cut along one",
    Reason.HAZE_BEYOND: "hazy tissue lies all round just outside the outline, denser than the lung: a ground-glass "
                        "part of the lesion (the halo of a part-solid nodule) may have been left out, and the "
                        "volume be too small",
    Reason.FAINT_RIM: "much of the segment is an outer layer fainter (lower in HU) than half-way from the lung to "
                      "its inside: the outline is not at the lesion's edge (a small nodule's partial volume taken "
                      "in, or a cut through the ground glass of a part-solid one); its volume is not vouched for "
                      "within a factor of 2",
    Reason.RUNS_ON: "where the outline lies in the lung, much of it runs on into tissue as dense as the segment: a "
                    "vessel about as thick as the lesion taken in (the shape cannot tell which is the lesion), or "
                    "a lesion cut from part of itself (a part-solid lesion's ground glass left out)",
}


@dataclass(frozen=True)
class Finding:
    """One reason with the numbers behind it (``detail``: a short human-readable phrase)."""

    reason: Reason
    detail: str = ""

    @property
    def text(self) -> str:
        base = REASON_TEXT[self.reason]
        return f"{base} ({self.detail})" if self.detail else base


def codes(findings: list[Finding]) -> str:
    """The codes of ``findings`` as written to tables: unique, in registry order, ';'-joined."""
    present = {f.reason for f in findings}
    return ";".join(r.value for r in Reason if r in present)


def details(findings: list[Finding]) -> str:
    """Human text of ``findings``, one phrase per finding, '; '-joined."""
    return "; ".join(f.text for f in findings)
