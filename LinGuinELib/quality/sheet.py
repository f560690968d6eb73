"""Ground glass lying flat along a sheet as dense as itself: a lesion on a fissure.

A fissure reads -500 to -700 HU on CT, a ground-glass lesion's own level: where the lesion ends
along it cannot be told from intensity, and a segment drawn out along it (a 4-8 mm nodule on
2-5 mm slices taken with a disc of fissure: 2-3x its volume) looks like a flat lesion. What a
flat lesion does not have is the sheet crossing its outline: the ring round the segment holds a
band as dense as the segment, in one plane, across the segment's own shortest axis. A segment
that is flattened along such a sheet cannot vouch for its extent.
"""

from __future__ import annotations

import math

import numpy as np

from ..partial_volume import BELOW_FAT_HU, edge_threshold, not_beyond

MIN_BAND_VOXELS = 10  # fewer ring voxels as dense as the segment show no sheet
MAX_BAND_FLATNESS = 0.5  # a sheet: the band's spread across under this share of its middle spread
MIN_BAND_ROUNDNESS = 0.5  # ... and that at least this share of its widest: it circles the outline
MIN_ALIGNMENT = 0.8  # |cos| between the band's normal and the segment's shortest axis


def principal_axes(mask: np.ndarray, spacing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(variances ascending, axes as columns) of a mask's voxels in mm, each voxel counted as a
    uniform box (a one-slice segment is not infinitely flat)."""
    idx = np.argwhere(mask) * spacing
    cov = np.cov(idx.T) + np.diag(spacing**2 / 12.0)
    return np.linalg.eigh(cov)


def along_sheet(hu: np.ndarray, mask: np.ndarray, ring: np.ndarray, envelope: np.ndarray | None,
                levels: tuple[float, float], spacing: np.ndarray, elongation: float) -> float:
    """The segment's ``elongation`` when it is ground glass flattened along a sheet at its own
    level that crosses its outline in the lung (``ring``: voxels just outside it; ``levels``: its
    own and the lung's), else NaN.

    The band is the ring's part as dense as the segment's edge (and not a denser wall). It is a
    sheet when it lies in one plane and spreads round the outline in it (a fissure crossing a
    nodule meets its outline on a closed curve); a vessel crossing in one thick slice is flat too,
    but spreads along one line."""
    level, lung = levels
    if envelope is None or not lung < level < BELOW_FAT_HU or not np.isfinite(elongation):
        return math.nan
    band = ring & envelope & (hu > edge_threshold(levels)) & not_beyond(hu, level, lung)
    if band.sum() < MIN_BAND_VOXELS:
        return math.nan
    spread, band_axes = principal_axes(band, spacing)
    spread = np.sqrt(np.maximum(spread, 0.0))
    if spread[0] > MAX_BAND_FLATNESS * spread[1] or spread[1] < MIN_BAND_ROUNDNESS * spread[2]:
        return math.nan
    _, axes = principal_axes(mask, spacing)
    if abs(float(band_axes[:, 0] @ axes[:, 0])) < MIN_ALIGNMENT:
        return math.nan
    return elongation
