"""Reduce a mask to one point: its deepest interior point, measured in mm.

The Euclidean distance to the background is computed with the voxel spacing (a 0.7x0.7x2.5 mm
grid is not treated as cubic, unlike the reference implementation's chessboard distance). Ties
(plateaus) go to the voxel nearest the mask's centroid, so the answer is stable.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..geometry import index_zyx_to_physical
from ..propagation.result import MaskCrop


def deepest_index_zyx(mask_zyx: np.ndarray | MaskCrop, spacing_xyz) -> np.ndarray | None:
    """(z, y, x) index of the deepest voxel, or None for an empty mask (full grid or crop)."""
    if isinstance(mask_zyx, MaskCrop):
        tight = MaskCrop.from_full(mask_zyx.array)
        offset = np.add(mask_zyx.offset_zyx, tight.offset_zyx)
    else:
        tight = MaskCrop.from_full(mask_zyx)  # tight box by projections, not a full-grid nonzero
        offset = np.array(tight.offset_zyx)
    if tight.empty:
        return None
    crop = np.pad(tight.array, 1)
    dist = ndimage.distance_transform_edt(crop, sampling=tuple(spacing_xyz)[::-1])
    best = np.argwhere(dist >= dist.max() - 1e-6)
    if len(best) > 1:
        centroid = np.argwhere(crop).mean(axis=0)
        scale = np.asarray(spacing_xyz)[::-1]
        best = best[np.argmin((((best - centroid) * scale) ** 2).sum(axis=1))][None]
    return best[0] - 1 + offset


def mask_centre_lps(mask_zyx: np.ndarray | MaskCrop, image) -> np.ndarray | None:
    """Deepest interior point of the mask in LPS mm, shape (3,); None for an empty mask."""
    idx = deepest_index_zyx(mask_zyx, image.GetSpacing())
    return None if idx is None else index_zyx_to_physical(image, idx[None])[0]
