"""Segmentation metrics for one (lesion, scan) pair: overlap, centre distance, surface distances.

Conventions (also in the README):

- Masks are boolean (z, y, x) arrays on the same grid; ``spacing_zyx`` is the voxel size in mm in
  that axis order. Distances are in mm; direction cosines do not change them.
- Dice is defined when the truth is present. Truth present and prediction empty: Dice 0, centre
  distance / HD95 / ASSD undefined (NaN), and the pair counts as a miss. Truth absent (the lesion
  disappeared): Dice NaN, and the pair is correct when the prediction is empty too.
- Centre distance: between the two masks' centroids (mean voxel position, in mm). NaN if either
  mask is empty.
- Surface voxels: mask voxels with a 6-connected background neighbour (voxels on the image border
  count as surface). Distances from each surface voxel of one mask to the nearest surface voxel of
  the other come from a Euclidean distance transform with the voxel spacing, not pairwise loops.
- HD95: the larger of the two directed 95th percentiles (the symmetric convention of MONAI and
  medpy; the reference LinGuinE takes the 95th percentile of both directions pooled, which is
  never larger). ASSD: the mean over both directions pooled (each surface voxel counts once).
- NSD (normalised surface distance / surface Dice): share of both surfaces, pooled, within a
  tolerance (2 mm by default).
- Outcome of a present lesion: ``hit`` when Dice >= ``hit_min_dice`` (0.1 by default: a leak
  that merely touches the lesion is not a detection), ``low_overlap`` when 0 < Dice < that,
  ``wrong_place`` when the prediction misses the truth entirely, ``miss`` when it is empty.
  Of a disappeared lesion: ``correct_absent`` (empty prediction) or ``false_positive``.
  ``success`` (tracking success) = ``hit`` or ``correct_absent``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

_FACE_STRUCTURE = ndimage.generate_binary_structure(3, 1)

# What happened for one (lesion, scan) pair, from truth and prediction presence and overlap.
OUTCOMES = ("hit", "low_overlap", "wrong_place", "miss", "correct_absent", "false_positive")
HIT_MIN_DICE = 0.1


@dataclass
class PairMetrics:
    """Metrics of one predicted mask against its truth mask; NaN where undefined."""

    truth_present: bool
    pred_present: bool
    dice: float
    centre_distance_mm: float
    hd95_mm: float
    assd_mm: float
    nsd: float
    truth_voxels: int
    pred_voxels: int
    outcome: str  # one of OUTCOMES
    success: bool  # hit, or correctly empty on a disappeared lesion

    def as_dict(self) -> dict:
        return asdict(self)


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice overlap; NaN when the truth is empty (undefined, see the module conventions)."""
    p = np.asarray(pred, dtype=bool)
    t = np.asarray(truth, dtype=bool)
    n_t = int(t.sum())
    if n_t == 0:
        return math.nan
    return 2.0 * int(np.logical_and(p, t).sum()) / (int(p.sum()) + n_t)


def centroid_mm(mask: np.ndarray, spacing_zyx: tuple[float, float, float]) -> np.ndarray | None:
    """Mean voxel position in mm along (z, y, x) from the grid origin; None if empty."""
    idx = np.argwhere(np.asarray(mask, dtype=bool))
    if idx.size == 0:
        return None
    return idx.mean(axis=0) * np.asarray(spacing_zyx, dtype=float)


def centre_distance_mm(
    pred: np.ndarray, truth: np.ndarray, spacing_zyx: tuple[float, float, float]
) -> float:
    """Centroid-to-centroid distance in mm; NaN if either mask is empty."""
    a = centroid_mm(pred, spacing_zyx)
    b = centroid_mm(truth, spacing_zyx)
    if a is None or b is None:
        return math.nan
    return float(np.linalg.norm(a - b))


def _crop_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both masks cropped to their joint bounding box plus one background voxel on each side.

    Exact for surface distances: every surface voxel of both masks lies inside the box, and the
    zero padding makes erosion treat the image border as background, as on the full grid.
    """
    union = a | b
    nz = np.nonzero(union)
    lo = [int(x.min()) for x in nz]
    hi = [int(x.max()) + 1 for x in nz]
    box = tuple(slice(lo_, hi_) for lo_, hi_ in zip(lo, hi))
    return np.pad(a[box], 1), np.pad(b[box], 1)


def _union_box(a: np.ndarray, b: np.ndarray) -> tuple[slice, ...] | None:
    """Bounding box of a | b from axis projections (cheap on full CT grids); None if empty."""
    union = a | b
    box = []
    for axis in range(union.ndim):
        other = tuple(i for i in range(union.ndim) if i != axis)
        hits = np.flatnonzero(union.any(axis=other))
        if hits.size == 0:
            return None
        box.append(slice(int(hits[0]), int(hits[-1]) + 1))
    return tuple(box)


def surface(mask: np.ndarray) -> np.ndarray:
    """Boolean map of the mask's surface voxels (a 6-connected neighbour is background)."""
    m = np.asarray(mask, dtype=bool)
    return m & ~ndimage.binary_erosion(m, structure=_FACE_STRUCTURE, border_value=0)


def directed_surface_distances(
    pred: np.ndarray, truth: np.ndarray, spacing_zyx: tuple[float, float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """(pred surface -> truth surface, truth surface -> pred surface) distances in mm.

    Each is a 1-D array with one entry per surface voxel; both empty when either mask is empty.
    """
    p = np.asarray(pred, dtype=bool)
    t = np.asarray(truth, dtype=bool)
    if not p.any() or not t.any():
        return np.zeros(0), np.zeros(0)
    p, t = _crop_pair(p, t)
    sp, st = surface(p), surface(t)
    sampling = [float(s) for s in spacing_zyx]
    # distance_transform_edt measures to the nearest zero, so invert each surface map.
    to_truth = ndimage.distance_transform_edt(~st, sampling=sampling)
    to_pred = ndimage.distance_transform_edt(~sp, sampling=sampling)
    return to_truth[sp], to_pred[st]


def surface_metrics(
    pred: np.ndarray,
    truth: np.ndarray,
    spacing_zyx: tuple[float, float, float],
    nsd_tolerance_mm: float = 2.0,
) -> tuple[float, float, float]:
    """(HD95, ASSD, NSD) in mm (NSD a fraction); NaN for all three if either mask is empty."""
    d_pt, d_tp = directed_surface_distances(pred, truth, spacing_zyx)
    if d_pt.size == 0 or d_tp.size == 0:
        return math.nan, math.nan, math.nan
    hd95 = max(float(np.percentile(d_pt, 95)), float(np.percentile(d_tp, 95)))
    pooled = np.concatenate([d_pt, d_tp])
    assd = float(pooled.mean())
    nsd = float((pooled <= nsd_tolerance_mm).mean())
    return hd95, assd, nsd


def pair_metrics(
    pred: np.ndarray,
    truth: np.ndarray,
    spacing_zyx: tuple[float, float, float],
    nsd_tolerance_mm: float = 2.0,
    hit_min_dice: float = HIT_MIN_DICE,
) -> PairMetrics:
    """All metrics for one prediction against its truth (module conventions apply)."""
    p = np.asarray(pred, dtype=bool)
    t = np.asarray(truth, dtype=bool)
    if p.shape != t.shape:
        raise ValueError(f"prediction shape {p.shape} differs from truth shape {t.shape}")
    box = _union_box(p, t)
    if box is not None:  # every metric is translation invariant: work on the small box
        p, t = p[box], t[box]
    n_p, n_t = int(p.sum()), int(t.sum())
    overlap = int(np.logical_and(p, t).sum())
    if n_t:
        d = 2.0 * overlap / (n_p + n_t)
        if not n_p:
            outcome = "miss"
        elif not overlap:
            outcome = "wrong_place"
        else:
            outcome = "hit" if d >= hit_min_dice else "low_overlap"
    else:
        d = math.nan
        outcome = "false_positive" if n_p else "correct_absent"
    hd95, assd, nsd = surface_metrics(p, t, spacing_zyx, nsd_tolerance_mm)
    return PairMetrics(
        truth_present=n_t > 0,
        pred_present=n_p > 0,
        dice=d,
        centre_distance_mm=centre_distance_mm(p, t, spacing_zyx),
        hd95_mm=hd95,
        assd_mm=assd,
        nsd=nsd,
        truth_voxels=n_t,
        pred_voxels=n_p,
        outcome=outcome,
        success=outcome in ("hit", "correct_absent"),
    )
