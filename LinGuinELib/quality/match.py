"""Can a segment found on a follow-up be the lesion seen on the prompt scan?

A lesion that has gone leaves the mapped point in lung next to whatever was beside it (a vessel,
the pleura, the mediastinum, a fissure) or in its own faded place; a point-prompted segmenter then
returns that structure or a fragment. The prompt scan says where the lesion was, how big and what
it looked like: its mask, carried to the follow-up by the registration's shift of its centre, is
the *expected region*, and the same mask widened by the radius it could have gained since
(fastest plausible growth, see ``growth``) plus a registration allowance is where the lesion can be.

Three pieces of evidence, each of which a real lesion can show on its own, count against a
candidate:
- *away*: much of it lies where the lesion cannot be (a structure passing by, or a leak); or, for
  one that covers little of the lesion's place, it lies *off* that place: a lesion that shrank is
  still inside its old outline, so a copy of the lesion shrunk about its centre to the candidate's
  volume, put at the candidate's centroid, fits there. ``candidate_misfit_mm`` is how far it
  would reach out (the old outline's signed distance at the centroid plus the shrunk copy's depth
  at its centre); beyond the grid's largest voxel size (what a small segment's centroid is known
  to) it is *off*. A piece of the vessel that ran along the lesion's side sits at its old rim
  (1.8 mm out on 1.25 mm slices); 35 lesions still there at 0.05-0.17 of their volume, covering
  little of their place, read -6.3 to -0.3 mm (deep-response studies, registration error
  included). Pieces of a vessel or fissure running *through* the place read -6.6 to +1.0 mm: no
  position tells them from a remnant. The margin is within a registration's error, so a rejection
  for lying off stays flagged (``absence``);
- *little*: it covers little of the expected region (the lesion has gone, or shrank a lot);
- *unlike*: it does not look like the lesion did on the prompt scan: an image finding (not
  compact, a thin part, a weak edge, an open outline, outside the lung) the prompt's segment did
  not have, a compactness clearly below the prompt's (beyond the grid's half-voxel
  quantisation of both); ``shape_changed`` among those findings is a segment drawn out along
  one axis (a piece of vessel) or flattened along one (a piece of pleura or fissure) where the
  prompt's lesion was round; an outline open to the tissue of the lung around it over twice the
  share the prompt's was, and a tenth more (``continues``), is a piece cut out of a vessel or a
  fissure that goes on beyond it, where the lesion stood free of them.
Two of them reject it (the result becomes ``not_found``, flagged ``candidate_rejected``), unless
it fills most of the lesion's place: then the lesion is there, perhaps leaking into a neighbour
(kept; the flag looks at it). A lesion that shrank stays inside and keeps its look (kept, however
small); a lesion that shrank a lot *and* changed its look is rejected, and the flag asks the user
to confirm it has gone. Two things reject a candidate on their own, wherever it lies: it is *faint*, even its densest
tenth within a quarter of the way from the lung's density to the lesion's on the prompt scan
(aerated lung segmented along a wall is not tissue, let alone the lesion); or it is *edgeless*,
standing out from the ring around it by less than a tenth of the prompt lesion's edge contrast (a
slab of pleura or wall cut out of the wall it belongs to is no denser than its surroundings; a
lesion is, by definition: on the development studies every present lesion kept at least 0.34 of
its prompt's contrast, the slabs kept where a wall nodule or a dome nodule had gone 0.02 or less).

A candidate kept on *little* alone is still flagged ``small_remnant``: a lesion that has gone
leaves a piece of the vessel or fissure that ran through its place, compact and as dense,
covering a few hundredths to tenths of it; a lesion that shrank to under a quarter of its volume
covers as little, and one attached to a vessel shrinks to a bulge no thicker than the vessel. Where
the piece lies inside the old outline the image cannot tell the two apart, so the user does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from ..geometry import index_zyx_to_physical, physical_to_continuous_index_zyx, voxel_volume_ml
from ..propagation.result import MaskCrop
from .beyond import beyond_share, grown_beyond
from .growth import equivalent_radius_mm, max_growth
from .image_checks import MIN_COMPACTNESS
from .reasons import Finding, Reason

REGISTRATION_ALLOWANCE_MM = 4.0  # a propagated centre lands within a few mm (README: ~1-3 mm)
MAX_RADIUS_GAIN = 1.0  # widened region: at most one more lesion radius (8x the volume)
MIN_INSIDE = 0.8  # candidate share inside the widened region, below which it is suspect
MIN_COVERAGE = 0.25  # share of the expected region covered, below which it is suspect
OCCUPIED = 0.5  # share of the expected region covered from which the lesion is there (most of its place)
MAX_SAMPLES = 300_000  # voxels sampled to measure the coverage (strided beyond)
# Image findings that describe what a segment looks like (not where it is or how it was found).
FAINT = "faint"  # a way of looking unlike that is not a review reason of its own
FAINT_FRACTION = 0.25
EDGELESS = "edgeless"  # the other way of looking unlike that rejects on its own
EDGELESS_FRACTION = 0.1
SAME_LEVEL_FRACTION = 0.25  # a level this close (share of the prompt's contrast to the lung) is the lesion's
ALONE = (FAINT, EDGELESS)  # either rejects a candidate by itself
CONTINUES = "continues"  # a way of looking unlike: its outline runs on into tissue where the lesion's did not
OPEN_FACTOR = 2.0  # open share of the outline, times the prompt's,
OPEN_GAIN = 0.1  # and this much more of it, from which a segment continues into what it was cut from
LOOK_REASONS = (Reason.NOT_COMPACT, Reason.THIN_PART, Reason.WEAK_EDGE, Reason.OPEN_BOUNDARY, Reason.OUTSIDE_LUNG,
                Reason.SHAPE_CHANGED)


def unlike_prompt(findings: list[Finding], signals: dict[str, float], prompt_findings: list[Finding],
                  prompt_signals: dict[str, float], spacing_mm: float, prompt_spacing_mm: float) -> list[str]:
    """Ways a candidate looks less like a lesion than the prompt's segment did (reason codes).

    A look finding the prompt did not have counts; so does a compactness below the prompt's by
    more than the quantisation of the widest inscribed ball (``image_checks.widest_ball``: half a
    voxel, the largest spacing, over each segment's radius) when both are below
    ``MIN_COMPACTNESS``; so does a faint interior (see ``is_faint``), an edge that is hardly one
    (see ``is_edgeless``) and an outline that runs on into tissue where the lesion's did not (see
    ``continues``).
    """
    had = {f.reason for f in prompt_findings}
    out = [f.reason.value for f in findings if f.reason in LOOK_REASONS and f.reason not in had]
    c, cp = signals.get("compactness", math.nan), prompt_signals.get("compactness", math.nan)
    r, rp = signals.get("radius_mm", math.nan), prompt_signals.get("radius_mm", math.nan)
    if Reason.NOT_COMPACT.value not in out and c < MIN_COMPACTNESS and r > 0 and rp > 0:
        slack = 0.5 * spacing_mm / r + 0.5 * prompt_spacing_mm / rp
        if c < cp - slack:
            out.append(Reason.NOT_COMPACT.value)
    if is_faint(signals, prompt_signals):
        out.append(FAINT)
    if is_edgeless(signals, prompt_signals):
        out.append(EDGELESS)
    if Reason.OPEN_BOUNDARY.value not in out and continues(signals, prompt_signals):
        out.append(CONTINUES)
    return out


def continues(signals: dict[str, float], prompt_signals: dict[str, float]) -> bool:
    """Whether a segment's outline runs on into tissue in the lung (``open_in_lung``: the share of
    the ring round it, where that lies in the lung, denser than half-way from lung to it) over at
    least ``OPEN_FACTOR`` times the share the prompt lesion's did and ``OPEN_GAIN`` more: a piece
    the segmenter cut out of a vessel or a fissure, which goes on beyond its cut faces, where the
    lesion stood free of them. The ring's part in the wall or mediastinum is left out: a lesion
    leaning on them is open there on every scan, and a piece of vessel left where a large wall
    tumour had gone lies in lung.

    A lesion that shrinks keeps what it touched. On the development studies (synthetic seeds 0-21,
    the deep-response studies and two LIDC-derived ones, measured 2026-12-01), of 60 present
    lesions covering under a quarter of their place, the 57 segmented right (Dice >= 0.5) were
    open in the lung at most 0.07 more than on the prompt scan where that was 0.00-0.10, and less
    than twice as much where a large wall tumour's ring lay all in the closed lung (0.25-0.30);
    17 of 24 pieces of a vessel, a fissure or lung tissue left where a lesion had gone read
    0.14-0.36 against 0.02-0.09 (the rest gained 0.03-0.10 or lay beside a wall tumour's 0.25).
    """
    now, was = signals.get("open_in_lung", math.nan), prompt_signals.get("open_in_lung", math.nan)
    return bool(now >= OPEN_FACTOR * was and now >= was + OPEN_GAIN)


def is_edgeless(signals: dict[str, float], prompt_signals: dict[str, float]) -> bool:
    """Whether a segment stands out from the ring round it (``ring_contrast_hu``, ``image_checks``) by
    less than ``EDGELESS_FRACTION`` of the prompt lesion's edge contrast: a piece of the tissue it
    was cut from, not an object standing out of it.

    A segment that stands out once a denser wall it leans on is left out of its ring
    (``edge_contrast_hu``) and is compact or as dense as the prompt's lesion is not a piece of that
    wall: ground glass grown into the costophrenic angle, its ring mostly wall, read -24 and -9 HU
    (a 40 mm lesion on 5 mm slices, compactness 0.67-0.75), an 80 mm part-solid tumour on the
    diaphragm -466 HU (compactness 0.44, 5 HU from its prompt's level). The hazy mix of a wall and
    the lung along thick slices also stands out of the lung beside it, but is flat and fainter
    than the lesion was (a dome's, where a solid nodule had gone: compactness 0.43, 700 HU fainter)."""
    was = prompt_signals.get("edge_contrast_hu", math.nan)
    if not was > 0:
        return False
    stands_out = signals.get("edge_contrast_hu", math.nan) >= EDGELESS_FRACTION * was
    if stands_out and (signals.get("compactness", math.nan) >= MIN_COMPACTNESS or _as_dense(signals, prompt_signals)):
        return False
    return bool(signals.get("ring_contrast_hu", math.nan) < EDGELESS_FRACTION * was)


def _as_dense(signals: dict[str, float], prompt_signals: dict[str, float]) -> bool:
    """Whether a segment's level is within ``SAME_LEVEL_FRACTION`` of the prompt lesion's contrast to
    the lung from the prompt lesion's level."""
    level, was = signals.get("level_hu", math.nan), prompt_signals.get("level_hu", math.nan)
    lung = prompt_signals.get("lung_level_hu", math.nan)
    return bool(abs(level - was) <= SAME_LEVEL_FRACTION * (was - lung))


def is_faint(signals: dict[str, float], prompt_signals: dict[str, float]) -> bool:
    """Whether even the densest tenth of a segment lies within the first ``FAINT_FRACTION`` of the
    way from the lung's level to the prompt lesion's (HU; the densest tenth, not the median, so that
    a small lesion blurred by thick slices still counts as tissue; a quarter, not half, so that a
    ground-glass remnant of a solid lesion is kept for the user to judge)."""
    level, lesion = signals.get("densest_tenth_hu", math.nan), prompt_signals.get("level_hu", math.nan)
    lung = prompt_signals.get("lung_level_hu", math.nan)
    return bool(lesion > lung and level < lung + FAINT_FRACTION * (lesion - lung))


@dataclass
class LesionReference:
    """The lesion on the prompt scan: signed distance to its outline (mm, negative inside) in a box."""

    sdf: np.ndarray
    box_lo: np.ndarray  # (z, y, x) of the box in the prompt image
    geometry: sitk.Image  # the prompt scan (for its geometry)
    centre_lps: np.ndarray
    radius_mm: float  # of the sphere of the lesion's volume
    extent_mm: float  # farthest lesion voxel from the centre
    depth_mm: float  # of its centre below its outline
    inscribed_mm: float  # radius of the widest ball inside it (``image_checks.widest_ball``)

    @classmethod
    def from_prompt(cls, image: sitk.Image, mask: MaskCrop, centre_lps: np.ndarray, inscribed_mm: float,
                    max_margin_mm: float = 60.0) -> LesionReference | None:
        """The reference of the prompt segment ``mask`` (``inscribed_mm``: its signal from
        ``scan_checks``, passed on rather than measured again); None for an empty one."""
        if mask.empty:
            return None
        spacing = np.array(image.GetSpacing()[::-1], float)
        radius = equivalent_radius_mm(mask.voxel_count * voxel_volume_ml(image))
        margin = min(max_margin_mm, radius * (1 + MAX_RADIUS_GAIN) + REGISTRATION_ALLOWANCE_MM + 2.0)
        pad = np.ceil(margin / spacing).astype(int) + 1
        lo = np.array(mask.offset_zyx) - pad
        sub = np.pad(mask.array, [(p, p) for p in pad])
        sdf = ndimage.distance_transform_edt(~sub, sampling=spacing) - \
            ndimage.distance_transform_edt(sub, sampling=spacing)
        centre_lps = np.asarray(centre_lps, float)
        far = np.sqrt(((index_zyx_to_physical(image, mask.nonzero_zyx()) - centre_lps) ** 2).sum(1)).max()
        ref = cls(sdf.astype(np.float32), lo, image, centre_lps, radius, float(far), 0.0, inscribed_mm)
        ref.depth_mm = max(0.0, -float(ref.distance_at(centre_lps[None])[0]))
        return ref

    def distance_at(self, points_lps: np.ndarray) -> np.ndarray:
        """Signed distance (mm) to the prompt lesion's outline at points of the prompt scan."""
        idx = physical_to_continuous_index_zyx(self.geometry, points_lps) - self.box_lo
        return ndimage.map_coordinates(self.sdf, idx.T, order=1, mode="constant", cval=1e6)

    def place_grid(self, image: sitk.Image, mapped_lps: np.ndarray, margin_mm: float) -> tuple[np.ndarray, np.ndarray]:
        """Voxel indices (z, y, x) of a box on ``image`` around the lesion's place at ``mapped_lps``
        (its extent plus ``margin_mm``; strided to at most ``MAX_SAMPLES`` voxels), and their points
        carried back to the prompt scan by the shift of its centre (for ``distance_at``)."""
        mapped = np.asarray(mapped_lps, float)
        spacing = np.array(image.GetSpacing()[::-1], float)
        centre = np.floor(physical_to_continuous_index_zyx(image, mapped[None])[0]).astype(int)
        half = np.ceil((self.extent_mm + margin_mm) / spacing).astype(int)
        lo = np.maximum(centre - half, 0)
        hi = np.minimum(centre + half + 1, np.array(image.GetSize()[::-1]))
        stride = max(1, int(np.ceil((np.prod(np.maximum(hi - lo, 1)) / MAX_SAMPLES) ** (1 / 3))))
        axes = [np.arange(a, b, stride) for a, b in zip(lo, hi)]
        grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
        return grid, index_zyx_to_physical(image, grid) + (self.centre_lps - mapped)


def candidate_match(reference: LesionReference, image: sitk.Image, mask: MaskCrop, inscribed_mm: float,
                    mapped_lps: np.ndarray, days: float | None, unlike: list[str] = ()) -> dict[str, float]:
    """``candidate_inside`` (share of the candidate where the lesion can be), ``candidate_coverage``
    (share of the expected region it covers), ``candidate_unlike`` (how many ways it looks unlike
    the prompt's lesion: ``unlike``, from ``unlike_prompt``), ``beyond_share`` (share of it beyond
    where the lesion could have grown, see ``beyond``) and ``plausible`` (1.0 / 0.0: fewer than two
    pieces of evidence against it) for a candidate mask on ``image`` (``inscribed_mm``: its widest
    ball's radius, from ``scan_checks``' signals)."""
    gain = min(max_growth(days) ** (1 / 3) - 1, MAX_RADIUS_GAIN)
    reach = reference.radius_mm * gain + REGISTRATION_ALLOWANCE_MM
    shift = reference.centre_lps - np.asarray(mapped_lps, float)
    points = index_zyx_to_physical(image, mask.nonzero_zyx()) + shift  # carried to the prompt scan
    inside = float(np.mean(reference.distance_at(points) <= reach))
    # the expected region on this scan's grid: voxels of a box around it with distance <= 0
    grid, back = reference.place_grid(image, mapped_lps, 2 * max(image.GetSpacing()))
    expected = reference.distance_at(back) <= 0
    if expected.any():
        inner = grid[expected] - np.array(mask.offset_zyx)
        ok = np.all((inner >= 0) & (inner < mask.array.shape), axis=1)
        hits = np.zeros(len(inner), bool)
        hits[ok] = mask.array[tuple(inner[ok].T)]
        coverage = float(hits.mean())
    else:
        coverage = 1.0  # a lesion smaller than a voxel here: nothing to compare
    misfit = misfit_mm(reference, points, mask.voxel_count * voxel_volume_ml(image))
    off = coverage < MIN_COVERAGE and misfit > max(image.GetSpacing())
    alone = any(a in unlike for a in ALONE)
    rejected = rejects(inside, coverage, len(unlike), alone, off)
    beyond = beyond_share(reference, points, inscribed_mm, np.array(image.GetSpacing()[::-1], float),
                          REGISTRATION_ALLOWANCE_MM)
    return {"candidate_inside": inside, "candidate_coverage": coverage, "candidate_unlike": float(len(unlike)),
            "candidate_misfit_mm": misfit, "plausible": float(not rejected), "beyond_share": beyond,
            # rejected only for lying off the place: a remnant carried a few mm by a registration error would too
            "candidate_off": float(rejected and not rejects(inside, coverage, len(unlike), alone))}


def misfit_mm(reference: LesionReference, points_lps: np.ndarray, volume_ml: float) -> float:
    """How far (mm) a copy of the prompt's lesion shrunk about its centre to ``volume_ml`` (never
    grown), centred at the candidate's centroid (``points_lps``, carried to the prompt scan), would
    reach out of the lesion's old outline: <= 0 where what is left of a lesion can be."""
    scale = min(1.0, equivalent_radius_mm(volume_ml) / reference.radius_mm) if reference.radius_mm > 0 else 1.0
    return float(reference.distance_at(points_lps.mean(axis=0)[None])[0]) + scale * reference.depth_mm


def remnant(match: dict[str, float]) -> Finding | None:
    """``small_remnant`` for a kept candidate (``candidate_match``'s signals) that covers less
    than ``MIN_COVERAGE`` of the lesion's place (see the module docstring)."""
    coverage = match.get("candidate_coverage", math.nan)
    if match.get("plausible", 1.0) and coverage < MIN_COVERAGE:
        return Finding(Reason.SMALL_REMNANT, f"{100 * coverage:.0f}% of the lesion's place covered, "
                                             f"from {100 * MIN_COVERAGE:.0f}%")
    return None


def match_findings(match: dict[str, float]) -> list[Finding]:
    """Findings on a kept candidate from ``candidate_match``'s signals: ``remnant``'s, and
    ``grown_beyond`` when much of it lies beyond where the lesion could have grown (``beyond``)."""
    if not match.get("plausible", 1.0):
        return []
    found = (remnant(match), grown_beyond(match.get("beyond_share", math.nan)))
    return [f for f in found if f is not None]


def rejects(inside: float, coverage: float, unlike: int, alone: bool = False, off: bool = False) -> bool:
    """The decision of ``candidate_match`` from its evidence (see the module docstring); ``alone``:
    the candidate looks unlike the lesion in a way that rejects it by itself (``ALONE``); ``off``:
    a candidate covering little of the lesion's place lies off where what is left of it can be."""
    if alone:
        return True
    if coverage >= OCCUPIED:
        return False
    return int(inside < MIN_INSIDE or off) + int(coverage < MIN_COVERAGE) + int(unlike > 0) >= 2
