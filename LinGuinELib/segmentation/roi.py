"""The classical segmenter's region of interest (ROI) and the ray and component helpers on it.

Everything is in physical mm, so anisotropic voxels behave alike. Large ROIs are block-averaged:
big lesions need no sub-mm voxels, and time stays bounded.
"""

from __future__ import annotations

from dataclasses import dataclass

import cc3d
import numpy as np
from scipy import ndimage

SMOOTH_MM = 1.0  # Gaussian sigma that tames noise and ground-glass texture, keeps mm edges
MAX_ROI_VOXELS = 1e6  # larger ROIs are block-averaged
N_RAYS = 162


@dataclass
class Roi:
    """A box of the image, with its smoothed intensities and per-voxel distance to the seed."""

    lo: np.ndarray  # (z, y, x) start in the image
    raw: np.ndarray
    smooth: np.ndarray
    spacing: np.ndarray  # (z, y, x) mm
    seed: np.ndarray  # continuous (z, y, x) inside the ROI
    dist: np.ndarray  # mm from the seed
    clipped: np.ndarray  # (3, 2) bool: does the box side coincide with the image border?
    step: np.ndarray  # (z, y, x) image voxels per ROI voxel
    allowed: np.ndarray | None = None  # where the lesion may be (the lung envelope), else anywhere

    def to_roi(self, index_zyx: np.ndarray) -> np.ndarray:
        """Continuous image index (z, y, x) -> continuous ROI index."""
        return (np.asarray(index_zyx, dtype=float) - self.lo - (self.step - 1) / 2) / self.step

    def to_image(self, index_roi: np.ndarray) -> np.ndarray:
        """ROI index -> continuous image index (z, y, x): the centre of the block it averages."""
        return self.lo + np.asarray(index_roi, dtype=float) * self.step + (self.step - 1) / 2

    def move_seed(self, seed: np.ndarray) -> None:
        self.seed = np.asarray(seed, dtype=float)
        self.dist = distance_map(self.smooth.shape, self.seed, self.spacing)

    def paste(self, mask: np.ndarray, out: np.ndarray) -> None:
        """OR a ROI mask into the full image grid (undoing the block averaging)."""
        for axis, k in enumerate(self.step):
            mask = np.repeat(mask, k, axis=axis)
        hi = np.minimum(self.lo + np.array(mask.shape), out.shape)
        out[tuple(slice(a, b) for a, b in zip(self.lo, hi))] |= mask[
            tuple(slice(0, b - a) for a, b in zip(self.lo, hi))
        ]


def fibonacci_directions(n: int) -> np.ndarray:
    """Nearly uniform unit vectors on the sphere (mm space, (z, y, x) order)."""
    i = np.arange(n) + 0.5
    polar = np.arccos(1 - 2 * i / n)
    azimuth = np.pi * (1 + 5**0.5) * i
    return np.stack(
        [np.cos(polar), np.sin(polar) * np.sin(azimuth), np.sin(polar) * np.cos(azimuth)], axis=1
    )


DIRECTIONS = fibonacci_directions(N_RAYS)
OPPOSITE = np.argmax(DIRECTIONS @ -DIRECTIONS.T, axis=1)  # each ray's opposite (the nearest on the grid)


def distance_map(shape: tuple[int, ...], point: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """mm from a continuous (z, y, x) index to every voxel centre of an array."""
    grid = np.ogrid[tuple(slice(0, n) for n in shape)]
    d2 = sum(((g - c) * s) ** 2 for g, c, s in zip(grid, point, spacing))
    return np.sqrt(d2).astype(np.float32)


def sigma_voxels(spacing: np.ndarray) -> np.ndarray:
    sigma = SMOOTH_MM / spacing
    return np.where(sigma < 0.3, 0.0, sigma)


def kernel_l2(spacing: np.ndarray) -> float:
    """L2 norm of the smoothing kernel: the factor by which it scales white noise."""
    sigma = sigma_voxels(spacing)
    impulse = np.zeros([2 * int(np.ceil(3 * s)) + 1 for s in sigma], np.float32)
    impulse[tuple(n // 2 for n in impulse.shape)] = 1.0
    return float(np.sqrt((ndimage.gaussian_filter(impulse, sigma, truncate=3.0) ** 2).sum()))


def make_roi(array: np.ndarray, spacing: np.ndarray, seed: np.ndarray, half_mm: float) -> Roi:
    """Box of half_mm around the seed; block-averaged when it would exceed MAX_ROI_VOXELS."""
    half = np.ceil(half_mm / spacing).astype(int)
    centre = np.round(seed).astype(int)
    shape = np.array(array.shape)
    lo = np.maximum(centre - half, 0)
    hi = np.minimum(centre + half + 1, shape)
    target = (np.prod((hi - lo) * spacing) / MAX_ROI_VOXELS) ** (1 / 3)
    step = np.maximum(1, np.round(target / spacing)).astype(int)
    hi = lo + (hi - lo) // step * step
    raw = np.asarray(array[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]], dtype=np.float32)
    if np.any(step > 1):
        n = (hi - lo) // step
        raw = raw.reshape(n[0], step[0], n[1], step[1], n[2], step[2]).mean(axis=(1, 3, 5))
        spacing = spacing * step
    smooth = ndimage.gaussian_filter(raw, sigma_voxels(spacing), mode="nearest", truncate=3.0)
    local = (seed - lo - (step - 1) / 2) / step
    dist = distance_map(raw.shape, local, spacing)
    clipped = np.stack([lo == 0, hi == shape], axis=1)
    return Roi(lo, raw, smooth, spacing, local, dist, clipped, step)


def open_face_cover(mask: np.ndarray, roi: Roi) -> float:
    """Largest fraction of a ROI face (one that is not the image border) that the mask covers."""
    cover = 0.0
    for axis in range(3):
        for end, at_image_border in zip((0, -1), roi.clipped[axis]):
            if not at_image_border:
                cover = max(cover, float(np.take(mask, end, axis=axis).mean()))
    return cover


def component_near(mask: np.ndarray, dist: np.ndarray, reach_mm: float) -> np.ndarray | None:
    """The 26-connected component nearest the seed (``dist``: mm from it) within reach, or None."""
    if not mask.any():
        return None
    labels = cc3d.connected_components(mask, connectivity=26)
    near = (dist <= reach_mm) & (labels > 0)
    if not near.any():
        return None
    idx = np.flatnonzero(near)
    best = idx[np.argmin(dist.ravel()[idx])]
    return labels == labels.ravel()[best]


def ray_profiles(volume: np.ndarray, start: np.ndarray, spacing: np.ndarray, length_mm: float,
                 order: int, step_mm: float = 0.5) -> np.ndarray:
    """Samples of ``volume`` every step_mm along rays from ``start`` (continuous zyx index):
    (n_rays, n)."""
    radii = np.arange(0.0, length_mm + 1e-6, step_mm)
    pts = start + DIRECTIONS[:, None, :] * radii[None, :, None] / spacing
    values = ndimage.map_coordinates(volume, pts.reshape(-1, 3).T, order=order, mode="nearest")
    return values.reshape(len(DIRECTIONS), len(radii))


def blur_mm(spacing: np.ndarray) -> float:
    """How far a dense structure's partial volume reaches into the lung: the smoothing on both
    sides of its edge and half a voxel of the given (zyx, mm) spacing along its coarsest axis."""
    return 2.0 * SMOOTH_MM + 0.5 * float(np.max(spacing))
