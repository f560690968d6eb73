"""filled_hull (the dome corner's pleura) against Qhull's triangulation: the same pixels."""

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial import ConvexHull, Delaunay

from LinGuinELib.filtering.hull import filled_hull


def _qhull_fill(mask: np.ndarray) -> np.ndarray:
    """Reference: pixels that Qhull's Delaunay triangulation of the hull's corners holds."""
    pts = np.argwhere(mask)
    if len(pts) < 3 or np.linalg.matrix_rank(pts - pts[0]) < 2:
        return mask.copy()
    lo, hi = pts.min(axis=0), pts.max(axis=0) + 1
    grid = np.argwhere(np.ones(hi - lo, bool)) + lo
    out = np.zeros(mask.shape, bool)
    out[tuple(grid[Delaunay(pts[ConvexHull(pts).vertices]).find_simplex(grid) >= 0].T)] = True
    return out


@pytest.mark.parametrize("seed", range(4))
def test_same_pixels_as_qhull(seed):
    rng = np.random.default_rng(seed)
    for i in range(60):
        h, w = rng.integers(2, 90, 2)
        if i % 3 == 0:
            mask = rng.random((h, w)) < rng.uniform(0.002, 0.05)
        elif i % 3 == 1:
            mask = ndimage.gaussian_filter(rng.random((h, w)), 3) > rng.uniform(0.48, 0.53)
        else:
            yy, xx = np.indices((h, w))
            c, r = rng.uniform(0, [h, w]), rng.uniform(1, 40)
            mask = ((yy - c[0]) ** 2 + (xx - c[1]) ** 2 <= r * r) | (rng.random((h, w)) < 0.003)
        assert np.array_equal(filled_hull(mask), _qhull_fill(mask)), (seed, i)


def test_hull_fills_between_pixels_and_keeps_lines():
    mask = np.zeros((7, 7), bool)
    mask[1, 1] = mask[1, 5] = mask[5, 3] = True
    out = filled_hull(mask)
    assert out[2, 3] and out[4, 3] and out[1, 3] and not out[4, 1] and not out[5, 2]
    line = np.zeros((5, 5), bool)
    line[0, 0] = line[2, 2] = line[4, 4] = True
    assert np.array_equal(filled_hull(line), line)
    assert not filled_hull(np.zeros((3, 3), bool)).any()
