"""A click a few mm inside a large lesion's surface: the lesion is sized by the chords through the
click, not only by how near the lung is, and read whole."""

from __future__ import annotations

import numpy as np
import pytest
from kind_scoring import score

from LinGuinELib.segmentation.lung_envelope import air_distances, lesion_scale
from LinGuinELib.segmentation.roi import DIRECTIONS
from LinGuinELib.synthetic import LesionKind, render_case


def _exits(point: np.ndarray, radius: float) -> np.ndarray:
    """mm along each ray from ``point`` (inside a ball of ``radius`` at the origin) to its surface."""
    along = DIRECTIONS @ point
    return -along + np.sqrt(along**2 - point @ point + radius**2)


@pytest.mark.parametrize("depth", [2.0, 5.0, 10.0])
def test_scale_of_a_ball_clicked_near_its_surface(depth):
    """A 30 mm radius ball in lung: at its centre the scale is the radius; clicked ``depth`` mm
    under its surface, the rays' low percentile alone reads 2.5x the depth (a nodule's scale),
    the chords keep it above a quarter of the radius."""
    across = np.ones(len(DIRECTIONS), bool)
    assert lesion_scale(_exits(np.zeros(3), 30.0), across) == pytest.approx(30.0, abs=0.5)
    dist = _exits(np.array([30.0 - depth, 0.0, 0.0]), 30.0)
    assert np.percentile(dist, 30) < 3.0 * depth
    assert lesion_scale(dist, across) > 0.25 * 30.0
    assert lesion_scale(dist, ~across) == pytest.approx(np.percentile(dist, 30))  # rays alone


def test_chords_across_a_wall_do_not_count():
    """A 6 mm nodule on a wall: the rays across the wall meet air beyond it (outside the body, or
    lung past fat and bone), and the chords through them would size it as the chest; the scale
    stays the nodule's."""
    dist = _exits(np.zeros(3), 3.0)
    wall = DIRECTIONS[:, 2] < -0.2  # the wall's side
    dist[wall] = 40.0 / -DIRECTIONS[wall, 2]
    assert lesion_scale(dist, ~wall) == pytest.approx(3.0, abs=0.5)
    assert lesion_scale(dist, np.ones_like(wall)) > 10.0  # what counting them gave


@pytest.mark.parametrize("beyond_hu", [-1000.0, -850.0])
def test_rays_across_a_wall_end_no_chord(beyond_hu):
    """A 20 mm ball (40 HU) on a wall of muscle with a fat layer, in lung (1 mm voxels): the rays
    that leave the ball into the lung cross the lesion only; those into the wall cross fat and
    meet the air outside the body or lung beyond (``beyond_hu``): they end no chord."""
    arr = np.full((70, 60, 60), -850.0, np.float32)
    arr[:15] = beyond_hu
    arr[15:36] = 40.0
    arr[25:29] = -95.0
    zz, yy, xx = np.indices(arr.shape)
    arr[(zz - 45) ** 2 + (yy - 30) ** 2 + (xx - 30) ** 2 <= 100] = 40.0
    dist, _, across = air_distances(arr, np.ones(3), np.array([45.0, 30.0, 30.0]))
    up, down = DIRECTIONS[:, 0] > 0.3, DIRECTIONS[:, 0] < -0.9
    assert across[up & np.isfinite(dist)].all() and np.isfinite(dist[up]).all()
    assert not across[down].any()


@pytest.mark.parametrize("kind,seed,index", [
    # a 60 mm tumour on a vessel clicked 2 mm inside its surface: sized as a nodule, 0.0x
    (LesionKind(59.8, "vessel", "solid", 1.25), 8124, (109, 153, 77)),
    # a 67 mm mediastinal tumour on 3 mm slices clicked near its lung side: 0.05x
    (LesionKind(66.6, "mediastinum", "solid", 3.0), 8184, (118, 129, 38)),
])
def test_a_large_lesion_clicked_near_its_edge_is_read_whole(seg, kind, seed, index):
    case = render_case(kind, seed=seed)
    point = np.array(case.image.TransformIndexToPhysicalPoint(index))
    assert case.truth[index[::-1]]
    dice, ratio = score(case, seg.segment(case.image, point[None]))
    assert dice > 0.85 and 0.75 < ratio < 1.3, (dice, ratio)
