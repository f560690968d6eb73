"""Where one tissue ends and the next begins: the partial-volume rule every edge is read by.

A voxel that is half one tissue and half another reads half-way between their levels, so the
outline of a lesion against its surroundings is the iso-level half-way between the two. The
segmenter draws its outline there (``segmentation.levels``); the quality checks, which judge any
segmenter's outline, read "as dense as the lesion" and "as aerated as the lung" against the same
level (``quality.image_checks``, ``quality.absence``). Declared once here, below both.
"""

from __future__ import annotations


def edge_threshold(levels: tuple[float, float]) -> float:
    """The level half-way from the surroundings' to the lesion's: where a voxel is half lesion.
    ``levels``: (lesion, surroundings)."""
    level, background = levels
    return 0.5 * (level + background)
