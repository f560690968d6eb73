"""Reduce a mask to one point: its deepest interior point, measured in mm.

The Euclidean distance to the background is computed with the voxel spacing (a 0.7x0.7x2.5 mm
grid is not treated as cubic, unlike the reference implementation's chessboard distance). Ties
(plateaus) go to the voxel nearest the mask's centroid, so the answer is stable.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..geometry import index_zyx_to_physical


def deepest_index_zyx(mask_zyx: np.ndarray, spacing_xyz) -> np.ndarray | None:
    """(z, y, x) index of the deepest voxel, or None for an empty mask."""
    mask = np.asarray(mask_zyx, dtype=bool)
    if not mask.any():
        return None
    nz = np.nonzero(mask)
    lo = np.array([a.min() for a in nz])
    hi = np.array([a.max() for a in nz]) + 1
    crop = np.pad(mask[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]], 1)
    dist = ndimage.distance_transform_edt(crop, sampling=tuple(spacing_xyz)[::-1])
    best = np.argwhere(dist >= dist.max() - 1e-6)
    if len(best) > 1:
        centroid = np.argwhere(crop).mean(axis=0)
        scale = np.asarray(spacing_xyz)[::-1]
        best = best[np.argmin((((best - centroid) * scale) ** 2).sum(axis=1))][None]
    return best[0] - 1 + lo


def mask_centre_lps(mask_zyx: np.ndarray, image) -> np.ndarray | None:
    """Deepest interior point of the mask in LPS mm, shape (3,); None for an empty mask."""
    idx = deepest_index_zyx(mask_zyx, image.GetSpacing())
    return None if idx is None else index_zyx_to_physical(image, idx[None])[0]
