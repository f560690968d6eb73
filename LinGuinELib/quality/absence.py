"""Is a lesion reported ``not_found`` confidently gone, or does the user need to look?

A radiologist reading a complete response needs to know whether to trust it. Two things can make
``not_found`` wrong: the product looked in the wrong place (registration), or the lesion is still
there in a form the segmenter or the candidate check did not accept. On a lesion that has really
gone, the registration's own confidence at its centre falls by construction (its local match
compares the lesion on one scan with lung on the other), so it cannot vouch for the absence.
Two measurements that do not depend on the lesion being there can:

- *context*: the neighbourhood of the lesion's place (a shell from ``CONTEXT_GAP_MM`` to
  ``CONTEXT_MM`` outside the prompt lesion's outline: vessels, fissures, the wall), compared
  between the prompt scan and this one through the registration's shift; a high correlation
  means the product looked where the lesion was;
- *empty*: the share of the lesion's own place (the prompt mask carried by that shift) that is
  aerated, below half-way from the lung's level to the lesion's: nothing like the lesion is left.

Both high: a confident disappearance, the row is not flagged (a rejected candidate and a low but
non-zero registration confidence stay in the result's signals and the log, not among its review
reasons; a confidence of 0, nothing vouching for the point, stays a reason; so does a candidate
rejected only for lying off the lesion's place, ``candidate_off`` in ``quality.match``: a remnant
carried a millimetre or two by the registration would lie there too, and leave the place as empty).
Either low (or not measurable): a doubtful one, flagged ``absence_unconfirmed`` with the numbers
beside the other reasons, and the user confirms by eye.
"""

from __future__ import annotations

import math

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from ..geometry import physical_to_continuous_index_zyx
from ..partial_volume import edge_threshold
from ..voxels import voxels
from .image_checks import LUNG_HU
from .match import LesionReference
from .reasons import Finding, Reason

CONTEXT_GAP_MM = 3.0  # the rim next to the lesion (partial volume, a faded remnant) is left out
CONTEXT_MM = 12.0
MIN_CONTEXT_NCC = 0.5
MIN_EMPTY = 0.8


def absence_signals(reference: LesionReference, prompt_image: sitk.Image, image: sitk.Image,
                    mapped_lps: np.ndarray, lesion_hu: float, lung_hu: float) -> dict[str, float]:
    """``absence_context_ncc`` and ``absence_empty`` (see the module docstring) for the lesion's
    place on ``image``; ``lesion_hu`` / ``lung_hu``: the prompt segment's levels."""
    grid, back = reference.place_grid(image, mapped_lps, CONTEXT_MM + max(image.GetSpacing()))
    dist = reference.distance_at(back)
    hu = voxels(image)[tuple(grid.T)].astype(float)
    place = dist <= 0
    measured = np.isfinite(lesion_hu) and np.isfinite(lung_hu) and lesion_hu > lung_hu
    cut = edge_threshold((lesion_hu, lung_hu)) if measured else LUNG_HU
    empty = float(np.mean(hu[place] < cut)) if place.any() else math.nan
    shell = (dist > CONTEXT_GAP_MM) & (dist <= CONTEXT_MM)
    ncc = math.nan
    if shell.sum() >= 50:
        idx = physical_to_continuous_index_zyx(prompt_image, back[shell])
        # only the box the points reach (with the interpolation's neighbour), not a copy of the scan
        size = np.array(prompt_image.GetSize()[::-1])
        lo = np.clip(np.floor(idx.min(0)).astype(int), 0, size - 1)
        hi = np.clip(np.floor(idx.max(0)).astype(int) + 2, lo + 1, size)
        box = voxels(prompt_image)[tuple(slice(a, b) for a, b in zip(lo, hi))]
        before = ndimage.map_coordinates(box.astype(np.float32), (idx - lo).T, order=1, mode="nearest")
        after = hu[shell]
        sd = before.std() * after.std()
        ncc = float(np.mean((before - before.mean()) * (after - after.mean())) / sd) if sd > 0 else math.nan
    return {"absence_context_ncc": ncc, "absence_empty": empty}


def confident_absence(signals: dict[str, float]) -> bool:
    """Whether both measurements vouch for the disappearance."""
    return bool(signals.get("absence_context_ncc", math.nan) >= MIN_CONTEXT_NCC
                and signals.get("absence_empty", math.nan) >= MIN_EMPTY)


def settle_absence(findings: list[Finding], signals: dict[str, float]) -> list[Finding]:
    """The findings of a ``not_found`` result: without the doubts a disappearance causes when it is
    confident, else with ``absence_unconfirmed`` and the measurements added."""
    if confident_absence(signals):
        vouched = signals.get("registration_confidence", math.nan) > 0  # 0: nothing vouches, still a doubt
        off = signals.get("candidate_off", 0.0) > 0  # rejected for where it lies only: still a doubt
        return [f for f in findings if (f.reason is not Reason.CANDIDATE_REJECTED or off)
                and (f.reason is not Reason.LOW_REGISTRATION_CONFIDENCE or not vouched)]
    note = (f"surroundings correlate {signals.get('absence_context_ncc', math.nan):.2f} with the prompt scan's "
            f"(from {MIN_CONTEXT_NCC}), its place {100 * signals.get('absence_empty', math.nan):.0f}% aerated "
            f"(from {100 * MIN_EMPTY:.0f}%)")
    return [*findings, Finding(Reason.ABSENCE_UNCONFIRMED, note)]
