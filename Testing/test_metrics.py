"""Hand-checked metric cases: exact Dice, centre distance, HD95 / ASSD on simple shapes."""

import math

import numpy as np
import pytest

from LinGuinELib.evaluation.metrics import (
    centre_distance_mm,
    dice,
    directed_surface_distances,
    pair_metrics,
    surface,
    surface_metrics,
)


def _cube(shape, lo, side):
    m = np.zeros(shape, bool)
    z, y, x = lo
    m[z : z + side, y : y + side, x : x + side] = True
    return m


def test_shifted_cubes_exact_dice_and_centre_distance():
    truth = _cube((20, 20, 20), (5, 5, 5), 10)
    pred = _cube((20, 20, 20), (5, 5, 7), 10)  # shifted 2 voxels along x
    # overlap 10*10*8 = 800 voxels of 1000 each: Dice = 1600 / 2000
    assert dice(pred, truth) == pytest.approx(0.8, abs=1e-12)
    spacing = (2.5, 0.7, 0.8)  # (z, y, x) mm
    assert centre_distance_mm(pred, truth, spacing) == pytest.approx(2 * 0.8, abs=1e-9)
    m = pair_metrics(pred, truth, spacing)
    assert m.outcome == "hit" and m.success and m.truth_present and m.pred_present


def test_parallel_plates_exact_surface_distances():
    # Two one-voxel-thick plates 3 slices apart: every surface voxel is 3 * 2.5 mm from the other.
    a = np.zeros((10, 6, 7), bool)
    b = np.zeros((10, 6, 7), bool)
    a[2] = True
    b[5] = True
    hd95, assd, nsd = surface_metrics(a, b, (2.5, 1.0, 1.0))
    assert hd95 == pytest.approx(7.5)
    assert assd == pytest.approx(7.5)
    assert nsd == 0.0
    assert centre_distance_mm(a, b, (2.5, 1.0, 1.0)) == pytest.approx(7.5)


def test_single_voxels_3_4_5_triangle():
    a = np.zeros((3, 8, 8), bool)
    b = np.zeros((3, 8, 8), bool)
    a[1, 0, 0] = True
    b[1, 4, 3] = True  # 4 voxels in y, 3 in x
    hd95, assd, _ = surface_metrics(a, b, (1.0, 1.0, 1.0))
    assert hd95 == pytest.approx(5.0) and assd == pytest.approx(5.0)
    hd95, _, _ = surface_metrics(a, b, (1.0, 2.0, 0.5))  # 8 mm and 1.5 mm
    assert hd95 == pytest.approx(math.hypot(8.0, 1.5))


def test_identical_masks_zero_distances():
    m = _cube((12, 12, 12), (2, 3, 4), 5)
    hd95, assd, nsd = surface_metrics(m, m, (1.0, 1.0, 1.0))
    assert (hd95, assd, nsd) == (0.0, 0.0, 1.0)
    assert dice(m, m) == 1.0


def test_distance_transform_matches_brute_force():
    rng = np.random.default_rng(3)
    a = np.zeros((9, 10, 11), bool)
    b = np.zeros((9, 10, 11), bool)
    a[2:6, 3:8, 1:5] = True
    b[3:8, 2:6, 4:9] = True
    a[rng.random(a.shape) < 0.05] = True
    spacing = (2.0, 0.7, 1.3)
    d_ab, d_ba = directed_surface_distances(a, b, spacing)
    pa = np.argwhere(surface(a)) * spacing
    pb = np.argwhere(surface(b)) * spacing
    pair = np.linalg.norm(pa[:, None] - pb[None], axis=2)
    np.testing.assert_allclose(np.sort(d_ab), np.sort(pair.min(axis=1)), atol=1e-9)
    np.testing.assert_allclose(np.sort(d_ba), np.sort(pair.min(axis=0)), atol=1e-9)
    hd95, assd, _ = surface_metrics(a, b, spacing)
    expect_hd = max(np.percentile(pair.min(axis=1), 95), np.percentile(pair.min(axis=0), 95))
    assert hd95 == pytest.approx(expect_hd)
    pooled = np.concatenate([pair.min(axis=1), pair.min(axis=0)])
    assert assd == pytest.approx(pooled.mean())


def test_surface_is_hollow_shell():
    m = _cube((10, 10, 10), (1, 1, 1), 5)
    s = surface(m)
    assert s.sum() == 5**3 - 3**3
    # a mask touching the image border has that border as surface
    full = np.ones((4, 4, 4), bool)
    assert surface(full).sum() == 4**3 - 2**3


def test_empty_prediction_on_present_lesion_is_a_miss():
    truth = _cube((10, 10, 10), (2, 2, 2), 4)
    m = pair_metrics(np.zeros_like(truth), truth, (1.0, 1.0, 1.0))
    assert m.dice == 0.0
    assert math.isnan(m.centre_distance_mm) and math.isnan(m.hd95_mm) and math.isnan(m.assd_mm)
    assert m.outcome == "miss" and not m.success


def test_disappeared_lesion_cases():
    empty = np.zeros((6, 6, 6), bool)
    m = pair_metrics(empty, empty, (1.0, 1.0, 1.0))
    assert m.outcome == "correct_absent" and m.success and math.isnan(m.dice)
    fp = empty.copy()
    fp[2, 2, 2] = True
    m = pair_metrics(fp, empty, (1.0, 1.0, 1.0))
    assert m.outcome == "false_positive" and not m.success


def test_prediction_in_wrong_place():
    truth = _cube((20, 20, 20), (1, 1, 1), 4)
    pred = _cube((20, 20, 20), (12, 12, 12), 4)
    m = pair_metrics(pred, truth, (1.0, 1.0, 1.0))
    assert m.dice == 0.0 and m.outcome == "wrong_place" and not m.success
    assert m.centre_distance_mm == pytest.approx(math.sqrt(3) * 11)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError):
        pair_metrics(np.zeros((2, 2, 2), bool), np.zeros((2, 2, 3), bool), (1, 1, 1))


def test_leak_touching_the_lesion_is_low_overlap_not_hit():
    truth = _cube((30, 30, 30), (1, 1, 1), 3)  # 27 voxels
    leak = np.zeros_like(truth)
    leak[2:, 2:, 2:] = True  # touches one corner of the lesion, 21952 voxels
    m = pair_metrics(leak, truth, (1.0, 1.0, 1.0))
    assert 0 < m.dice < 0.1 and m.outcome == "low_overlap" and not m.success
    m = pair_metrics(leak, truth, (1.0, 1.0, 1.0), hit_min_dice=0.0)
    assert m.outcome == "hit"
