"""Did a follow-up segment grow where the lesion could not? (a structure taken in beside it)

A lesion that grows thickens all round: its outline moves out about as far as its thickest part
(the widest ball inside it) grew. A segment that also took in the next stretch of a vessel the
lesion sits on, or another structure beside it, reaches out beyond that: the part it took in lies
outside the prompt lesion's outline widened by the core's growth. Nothing else tells it: the
piece is as dense as the lesion, as thick as a vessel can be next to it, its cut faces as open as
the vessels the lesion touched on the prompt scan; only the volume doubles.

``beyond_share`` is the share of the follow-up segment lying more than that growth, plus a margin
for the grids (half a voxel for each of the two outlines and half for the widest ball, in the
larger of the two scans' largest spacings), outside the prompt lesion's outline, carried by the
registration's shift of its centre, at the shift within the registration's allowance that leaves
the least outside (the registration is given the benefit of the doubt).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from .reasons import Finding, Reason

if TYPE_CHECKING:
    from .match import LesionReference

MARGIN_VOXELS = 1.5  # both outlines and the widest ball: half a voxel each
SHIFT_STEP_MM = 1.0  # registration shifts tried, on a grid this fine within the allowance
MAX_POINTS = 1000  # segment voxels sampled (strided beyond): the share to about a percent
# Share beyond from which the segment took in something beside the lesion: twice the largest share
# read on a development segment that took in nothing (see ``grown_beyond``).
MAX_BEYOND = 0.15


def beyond_share(reference: LesionReference, points_lps: np.ndarray, inscribed_mm: float, spacing_zyx: np.ndarray,
                 allowance_mm: float) -> float:
    """Share of a follow-up segment (``points_lps``: its voxels, carried to the prompt scan by the
    registration's shift; ``inscribed_mm``: its widest ball's radius, ``image_checks.widest_ball``;
    ``spacing_zyx``: its grid) outside the prompt lesion's outline widened by the growth of its
    widest inscribed ball and the grids' margin, at the shift within ``allowance_mm`` that leaves
    the least outside. NaN when there is nothing to compare."""
    if not len(points_lps):
        return math.nan
    growth = max(0.0, inscribed_mm - reference.inscribed_mm)
    grid = max(float(spacing_zyx.max()), float(max(reference.geometry.GetSpacing())))
    reach = growth + MARGIN_VOXELS * grid
    sample = points_lps[:: max(1, len(points_lps) // MAX_POINTS)]
    steps = np.arange(-allowance_mm, allowance_mm + 1e-6, SHIFT_STEP_MM)
    shifts = np.stack(np.meshgrid(steps, steps, steps, indexing="ij"), -1).reshape(-1, 3)
    shifts = shifts[(shifts**2).sum(axis=1) <= allowance_mm**2 + 1e-6]
    moved = (sample[None] + shifts[:, None]).reshape(-1, 3)
    outside = (reference.distance_at(moved) > reach).reshape(len(shifts), len(sample))
    return float(outside.mean(axis=1).min())


def grown_beyond(share: float) -> Finding | None:
    """``grown_beyond`` when at least ``MAX_BEYOND`` of a kept segment lies beyond where the lesion
    could have grown (``beyond_share``).

    Replayed on the saved development results (2026-12-01; 410 kept follow-ups: synthetic seeds 0-4
    and 22-31, ten LIDC-derived and five mass-derived studies): segments that took in nothing read
    at most 0.074 (a 45 mm mediastinal tumour on 5 mm slices, its outline a slice longer); LIDC and
    mass at most 0.003. The 9 mm vessel nodules whose segment took in the vessel's next stretch read
    0.18-0.28 (1.6-2.1x the truth, Dice 0.61-0.73), and one that grew into a junction of vessels
    0.10 (2.0x: out of reach).
    """
    if np.isfinite(share) and share >= MAX_BEYOND:
        return Finding(Reason.GROWN_BEYOND, f"{100 * share:.0f}% of it beyond the lesion's outline widened "
                                            "by its thickest part's growth")
    return None
