"""The filled convex hull of a 2D mask, in exact integer arithmetic.

Pixel centres are integer points, so whether a pixel lies inside (or on) the hull of others is
a sign of integer cross products: no tolerance, no triangulation. The hull's corners are among
each row's first and last pixels, which keeps the corner search short on large masks. (It
replaced a Qhull triangulation's point location, 0.1 s per slice; the pixels are the same.)
"""

from __future__ import annotations

import numpy as np


def _cross(o: np.ndarray, a: np.ndarray, b: np.ndarray) -> int:
    return int((a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]))


def _corners(pts: np.ndarray) -> np.ndarray:
    """Counter-clockwise corners (collinear points dropped) of integer 2D points sorted
    lexicographically (Andrew's monotone chain)."""
    lower: list[np.ndarray] = []
    for p in pts:
        while len(lower) >= 2 and _cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    upper: list[np.ndarray] = []
    for p in pts[::-1]:
        while len(upper) >= 2 and _cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return np.array(lower[:-1] + upper[:-1], dtype=np.int64)


def filled_hull(mask: np.ndarray) -> np.ndarray:
    """The pixels inside or on the convex hull of a 2D mask's pixels (the mask itself when its
    pixels are fewer than three or on one line)."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return mask.copy()
    cols = np.flatnonzero(mask.any(axis=0))
    lo, hi = np.array([rows[0], cols[0]]), np.array([rows[-1], cols[-1]]) + 1
    box = mask[lo[0]:hi[0], lo[1]:hi[1]]
    filled = np.flatnonzero(box.any(axis=1))
    first = box[filled].argmax(axis=1)
    last = box.shape[1] - 1 - box[filled, ::-1].argmax(axis=1)
    ends = np.concatenate([np.column_stack([filled, first]), np.column_stack([filled, last])])
    ends = np.unique(ends, axis=0).astype(np.int64)  # lexicographic order
    if int(mask.sum()) < 3 or len(ends) < 3:
        return mask.copy()
    corners = _corners(ends)
    if len(corners) < 3:  # all on one line
        return mask.copy()
    yy = np.arange(box.shape[0], dtype=np.int64)[:, None]
    xx = np.arange(box.shape[1], dtype=np.int64)[None, :]
    inside = np.ones(box.shape, dtype=bool)
    for a, b in zip(corners, np.roll(corners, -1, axis=0)):
        inside &= (b[0] - a[0]) * (xx - a[1]) - (b[1] - a[1]) * (yy - a[0]) >= 0
    out = np.zeros(mask.shape, dtype=bool)
    out[lo[0]:hi[0], lo[1]:hi[1]] = inside
    return out
