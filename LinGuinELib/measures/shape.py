"""Size of one lesion on one scan: volume, RECIST-style axial diameters, centroid.

Diameters are measured in the array's axial slices (constant z index), in mm, on the extent of
the voxelised mask: each in-plane pixel contributes its four corners, so a 10 mm disc reads
10 mm, not 10 mm minus a pixel. The long axis is the largest distance between two corners of
the slice's convex hull; the short axis is the mask's width perpendicular to that long axis in
the same slice (RECIST 1.1 measures both in the slice where the long axis is largest).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.spatial import ConvexHull, QhullError

from ..geometry import index_zyx_to_physical, voxel_volume_ml
from ..propagation.result import MaskCrop


def _pixel_corners_mm(slice_yx: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """Distinct corners (x, y in mm, sorted by x then y) of the slice's pixels.

    Marks the corner lattice instead of listing four corners per pixel and sorting them
    (np.unique): the same array, a hundred times faster on a large lesion.
    """
    h, w = slice_yx.shape
    lattice = np.zeros((h + 1, w + 1), dtype=bool)
    for dy in (0, 1):
        for dx in (0, 1):
            lattice[dy:dy + h, dx:dx + w] |= slice_yx
    return (np.argwhere(lattice.T) - 0.5) * [sx, sy]


def _slice_axes(points_mm: np.ndarray) -> tuple[float, float]:
    """Long axis and perpendicular width of a 2D point set (mm)."""
    try:
        hull = points_mm[ConvexHull(points_mm).vertices]
    except (QhullError, ValueError):
        hull = points_mm
    diff = hull[:, None, :] - hull[None, :, :]
    d2 = (diff**2).sum(-1)
    i, j = np.unravel_index(np.argmax(d2), d2.shape)
    long_axis = float(np.sqrt(d2[i, j]))
    if long_axis == 0:
        return 0.0, 0.0
    u = (hull[j] - hull[i]) / long_axis
    perp = hull @ np.array([-u[1], u[0]])
    return long_axis, float(perp.max() - perp.min())


def axial_diameters(mask_zyx: np.ndarray, spacing_xyz) -> tuple[float, float]:
    """(longest axial diameter, perpendicular short axis) in mm; (0, 0) for an empty mask."""
    sx, sy = float(spacing_xyz[0]), float(spacing_xyz[1])
    best = (0.0, 0.0)
    for z in np.flatnonzero(mask_zyx.any(axis=(1, 2))):
        axes = _slice_axes(_pixel_corners_mm(mask_zyx[z], sx, sy))
        if axes[0] > best[0]:
            best = axes
    return best


def lesion_measures(mask: np.ndarray | MaskCrop, image) -> dict[str, Any]:
    """Volume (mL), axial diameters (mm) and centroid (LPS mm) of a mask on ``image``'s grid.

    ``mask`` is a full (z, y, x) array or a ``MaskCrop``; a crop is measured where it is, without
    rebuilding the scan's grid (the same numbers: indices are made absolute before averaging).
    """
    crop = mask if isinstance(mask, MaskCrop) else MaskCrop.from_full(mask)
    nz = np.nonzero(crop.array)
    count = int(nz[0].size)
    if count == 0:
        return {"volume_ml": 0.0, "longest_axial_diameter_mm": 0.0, "short_axis_mm": 0.0,
                "centroid_lps": None}
    lo = [a.min() for a in nz]
    hi = [a.max() + 1 for a in nz]
    tight = crop.array[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    long_axis, short_axis = axial_diameters(tight, image.GetSpacing())
    centroid_zyx = np.array([(a + o).mean() for a, o in zip(nz, crop.offset_zyx)])
    return {
        "volume_ml": count * voxel_volume_ml(image),
        "longest_axial_diameter_mm": long_axis,
        "short_axis_mm": short_axis,
        "centroid_lps": index_zyx_to_physical(image, centroid_zyx[None])[0],
    }
