"""Where one tissue ends and the next begins: the partial-volume rule every edge is read by.

A voxel that is half one tissue and half another reads half-way between their levels, so the
outline of a lesion against its surroundings is the iso-level half-way between the two. The
segmenter draws its outline there (``segmentation.levels``); the quality checks, which judge any
segmenter's outline, read "as dense as the lesion" and "as aerated as the lung" against the same
level (``quality.image_checks``, ``quality.absence``). Declared once here, below both, with the
one tissue level both sort lesions by: ground glass against solid.
"""

from __future__ import annotations

import numpy as np

BELOW_FAT_HU = -150.0  # fat (about -100 HU) and every wall tissue is denser: lighter is ground glass


def edge_threshold(levels: tuple[float, float]) -> float:
    """The level half-way from the surroundings' to the lesion's: where a voxel is half lesion.
    ``levels``: (lesion, surroundings)."""
    level, background = levels
    return 0.5 * (level + background)


def not_beyond(values: np.ndarray, level: float, background: float) -> np.ndarray:
    """Voxels no denser than a lesion at ``level`` by half its contrast to its surroundings: a
    denser structure it leans on (the wall under ground glass) stands out from it as the lesion
    does from the lung, and is not the lesion running on."""
    return values <= level + 0.5 * (level - background)
