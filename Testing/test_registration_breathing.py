"""Classical registration: bit-identical results, per-point confidence, sliding lungs, padding.

Uses the chest-like phantom of test_registration_classical (body, two textured lungs).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage
from test_registration_classical import _invert, _known_target, _phantom, _points_inside

from LinGuinELib.registration.classical import ClassicalRegistration
from LinGuinELib.synthetic.breathing import carry, lung_regions, make_breathing_case


@pytest.fixture(scope="module")
def phantom() -> sitk.Image:
    return _phantom()


@pytest.fixture(scope="module")
def moved(phantom: sitk.Image) -> tuple[sitk.Image, sitk.Transform]:
    return _known_target(phantom, (0.05, -0.06, 0.1), np.array([10.0, -12.0, 8.0]), 5.0,
                         (1.6, 1.6, 2.2), crop_z_mm=10.0, seed=5)


def _lung_points(phantom: sitk.Image) -> np.ndarray:
    """Points well inside the phantom's lungs (x = +-40 mm, y = 0, several z)."""
    out = []
    for x, z in ((-40.0, 0.0), (40.0, 10.0), (-40.0, 30.0), (40.0, -15.0)):
        out.append(np.array(phantom.TransformContinuousIndexToPhysicalPoint(
            (x / 2.0 + 47.5, 47.5, z / 3.0 + 23.5))))
    return np.array(out)


def test_two_runs_are_bit_identical_whatever_the_global_thread_count(phantom: sitk.Image, moved) -> None:
    """Same inputs, same ``threads``: same bits, also when the process-wide default differs.

    (ITK's metric splits its sums by that global count; the backend holds it at ``threads``.)"""
    target, _ = moved
    points = _points_inside(phantom)
    saved = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    runs = []
    try:
        for global_threads in (1, 2):
            sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(global_threads)
            runs.append(ClassicalRegistration().register(phantom, target))
        mapped = [m.map_points(points) for m in runs]
        assert sitk.ProcessObject.GetGlobalDefaultNumberOfThreads() == 2  # restored
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(saved)
    np.testing.assert_array_equal(mapped[0], mapped[1])
    np.testing.assert_array_equal(runs[0].confidence(points), runs[1].confidence(points))
    other = ClassicalRegistration(threads=2).register(phantom, target).map_points(points)
    np.testing.assert_allclose(other, mapped[0], atol=0.01)  # another count: ~1e-3 mm


def test_pairs_registered_in_parallel_threads_match_sequential(phantom: sitk.Image, moved) -> None:
    target, _ = moved
    points = _points_inside(phantom)[:2]
    pairs = [(phantom, target), (target, phantom)]
    sequential = [ClassicalRegistration().register(s, t).map_points(points) for s, t in pairs]
    with ThreadPoolExecutor(2) as pool:
        parallel = list(pool.map(lambda st: ClassicalRegistration().register(*st).map_points(points), pairs))
    for a, b in zip(sequential, parallel):
        np.testing.assert_array_equal(a, b)


def test_confidence_in_unit_range_high_when_right(phantom: sitk.Image, moved) -> None:
    target, g = moved
    points = _points_inside(phantom)
    mapper = ClassicalRegistration().register(phantom, target)
    conf = mapper.confidence(points)
    errors = np.linalg.norm(mapper.map_points(points) - np.array([_invert(g, p) for p in points]), axis=1)
    assert conf.shape == (len(points),)
    assert np.all((conf >= 0) & (conf <= 1))
    assert np.all(conf[errors < 2.0] > 0.5), (conf, errors)
    assert mapper.confidence(np.array([[900.0, -900.0, 900.0]]))[0] == 0.0  # no local support
    unrefined = ClassicalRegistration(refine=False).register(phantom, target)
    assert np.all(np.isnan(unrefined.confidence(points)))


def _sliding_target(phantom: sitk.Image, shift_mm: float) -> sitk.Image:
    """The lungs (content and base) moved ``shift_mm`` cranio-caudally; the chest wall stays.

    Like the diaphragm pushing the lung base down: the lungs slide along the lateral walls."""
    arr = sitk.GetArrayFromImage(phantom).astype(np.float32)
    body = np.stack([ndimage.binary_fill_holes(s) for s in arr > -500])
    lungs = ndimage.binary_erosion(body, iterations=2) & ndimage.binary_closing(arr < -400, iterations=3)
    lungs = np.stack([ndimage.binary_fill_holes(s) for s in lungs])
    assert lungs.sum() > 10000
    shift_vox = shift_mm / phantom.GetSpacing()[2]
    moved = ndimage.shift(arr, (shift_vox, 0, 0), order=1, mode="nearest")
    moved_lungs = ndimage.shift(lungs.astype(float), (shift_vox, 0, 0), order=0, mode="nearest") > 0.5
    out = np.where(moved_lungs, moved, arr)
    img = sitk.GetImageFromArray(out)
    img.CopyInformation(phantom)
    return sitk.Cast(img, sitk.sitkInt16)


def test_lung_point_follows_the_sliding_lung(phantom: sitk.Image) -> None:
    shift = 9.0  # along array z, i.e. along the phantom's third axis
    target = _sliding_target(phantom, shift)
    points = _lung_points(phantom)
    axis_z = np.array(phantom.GetDirection()).reshape(3, 3)[:, 2]
    truth = points + shift * axis_z
    errors = np.linalg.norm(ClassicalRegistration().register(phantom, target).map_points(points) - truth, axis=1)
    # Following the chest wall would leave each point 9 mm off.
    assert errors.mean() < 2.5 and errors.max() < 4.5, errors


def test_padded_half_field_of_view_warns_and_maps(phantom: sitk.Image, moved,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    target, g = moved
    arr = sitk.GetArrayFromImage(target)
    yy, xx = np.mgrid[:arr.shape[1], :arr.shape[2]]
    outside = (xx - 0.3 * arr.shape[2]) ** 2 + (yy - 0.5 * arr.shape[1]) ** 2 > (0.45 * arr.shape[2]) ** 2
    arr[:, outside] = -2048
    padded = sitk.GetImageFromArray(arr)
    padded.CopyInformation(target)
    points = _points_inside(phantom)
    truth = np.array([_invert(g, p) for p in points])
    idx = np.array([padded.TransformPhysicalPointToIndex(tuple(t)) for t in truth])
    keep = ~outside[np.clip(idx[:, 1], 0, arr.shape[1] - 1), np.clip(idx[:, 0], 0, arr.shape[2] - 1)]
    with caplog.at_level(logging.WARNING):
        mapper = ClassicalRegistration().register(phantom, padded)
    assert "padding (-2048)" in caplog.text
    assert keep.sum() >= 2
    errors = np.linalg.norm(mapper.map_points(points[keep]) - truth[keep], axis=1)
    assert errors.max() < 2.5, errors


def test_breathing_case_truth_is_consistent(phantom: sitk.Image) -> None:
    """The benchmark generator: carried points map back onto themselves through g_in."""
    rng = np.random.default_rng(0)
    regions = lung_regions(phantom)
    case = make_breathing_case(phantom, rng, diaphragm_mm=(20.0, 20.0), regions=regions)
    points = _lung_points(phantom)
    truth = carry(case, points, margin_mm=2.0)
    ok = np.isfinite(truth[:, 0])
    assert ok.sum() >= 2
    back = np.array([case.g_in.TransformPoint(tuple(q)) for q in truth[ok]])
    np.testing.assert_allclose(back, points[ok], atol=1e-3)
    assert np.linalg.norm(truth[ok] - points[ok], axis=1).max() > 5.0  # the lungs moved


def test_changed_neighbourhood_keeps_the_larger_box_and_lowers_confidence(phantom: sitk.Image, moved) -> None:
    """Around one point the target's content is replaced (a new opacity, say): the fine box there
    matches nothing, so it must not move the point; the larger boxes still see the anatomy around
    it. Its confidence falls below the quality flag's threshold, the untouched points' does not."""
    from LinGuinELib.quality.image_checks import MIN_CONFIDENCE

    target, g = moved
    points = _lung_points(phantom)
    truth = np.array([_invert(g, p) for p in points])
    arr = sitk.GetArrayFromImage(target).astype(np.float32)
    zyx = np.stack(np.meshgrid(*[np.arange(n) for n in arr.shape], indexing="ij"), axis=-1)
    centre = np.array(target.TransformPhysicalPointToContinuousIndex(tuple(truth[0])))[::-1]
    inside = np.sum(((zyx - centre) * np.array(target.GetSpacing())[::-1]) ** 2, axis=-1) < 17.0**2
    rng = np.random.default_rng(1)
    arr[inside] = ndimage.gaussian_filter(rng.normal(-300.0, 250.0, arr.shape), 1.0)[inside]
    changed = sitk.GetImageFromArray(arr)
    changed.CopyInformation(target)
    mapper = ClassicalRegistration().register(phantom, sitk.Cast(changed, sitk.sitkInt16))
    errors = np.linalg.norm(mapper.map_points(points) - truth, axis=1)
    conf = mapper.confidence(points)
    assert errors[0] < 3.0, errors
    assert conf[0] < MIN_CONFIDENCE <= conf[1:].min(), conf
