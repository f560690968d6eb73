"""Synthetic lesion kinds: exact truth across slice thickness, kind descriptors, invasion,
ground-glass density, slab averaging, and a study in which a lesion vanishes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from LinGuinELib.errors import InputError
from LinGuinELib.synthetic import LesionKind, make_kind_study, render_case, slice_average


def test_kind_descriptor_and_validation():
    k = LesionKind(6.0, "chest_wall", "solid", 5.0)
    assert k.label == "4-10mm/chest_wall/solid" and k.slice_class == "thick"
    assert LesionKind(80.0, "mediastinum").size_class == "60-100mm"
    assert k.detail()["attachment"] == "chest_wall"
    with pytest.raises(InputError, match="attachment"):
        LesionKind(10.0, "liver")


def test_truth_volume_is_the_same_on_thin_and_thick_slices():
    # same seed -> same chest and lesion; only the sampling differs (sub-slices averaged)
    thin = render_case(LesionKind(12.0, "isolated", "solid", 1.0), seed=4, half_mm=30)
    thick = render_case(LesionKind(12.0, "isolated", "solid", 5.0), seed=4, half_mm=30)
    assert thin.volume_ml == pytest.approx(thick.volume_ml, rel=0.03)
    sphere = np.pi / 6 * 12.0**3 / 1000
    assert 0.6 * sphere < thin.volume_ml < 1.5 * sphere
    # thick slices show the lesion by partial volume: fewer, intermediate voxels at its poles
    arr = sitk.GetArrayFromImage(thick.image)
    assert thick.truth.any() and arr.shape[0] == thick.truth.shape[0]


def test_ground_glass_density_and_centre_inside():
    case = render_case(LesionKind(18.0, "isolated", "ground_glass", 1.0), seed=2, half_mm=30)
    arr = sitk.GetArrayFromImage(case.image)
    inner = np.median(arr[case.truth])
    assert -720 < inner < -330, inner
    idx = np.rint(case.image.TransformPhysicalPointToContinuousIndex(case.centre_lps.tolist())).astype(int)
    assert case.truth[tuple(idx[::-1])]


def test_invasive_pleural_tumour_truth_reaches_into_the_wall():
    case = render_case(LesionKind(60.0, "chest_wall", "solid", 2.5, invade_mm=6.0), seed=1, pixel_mm=1.0)
    arr = sitk.GetArrayFromImage(case.image)
    assert 0.5 * (np.pi / 6 * 60**3 / 1000) < case.volume_ml < 1.2 * (np.pi / 6 * 60**3 / 1000)
    # the tumour lies against soft tissue (the wall): part of its border is not lung
    ring = ndimage.binary_dilation(case.truth, iterations=2) & ~case.truth
    assert np.mean(arr[ring] > -300) > 0.2


def test_slice_average_is_a_box_profile():
    arr = np.zeros((20, 4, 4), np.float32)
    arr[10] = 100.0
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((1.0, 1.0, 0.5))
    out = sitk.GetArrayFromImage(slice_average(img, 2.5))  # 5 voxels: 100/5 on each
    assert out[8:13, 0, 0] == pytest.approx([20.0] * 5)
    assert out[7, 0, 0] == 0 and out.sum() == pytest.approx(arr.sum())


def test_kind_study_records_kinds_and_a_vanished_lesion(tmp_path):
    manifest = make_kind_study(tmp_path / "k", [LesionKind(14.0, "chest_wall", "solid", 5.0)],
                               n_scans=3, seed=1, growth=[1.0, 1.3, 0.0], pixel_mm=1.6)
    truth = json.loads((manifest.parent / "truth.json").read_text())
    lesion = truth["lesions"][0]
    assert lesion["kind"] == "10-30mm/chest_wall/solid"
    assert lesion["kind_detail"]["slice_mm"] == 5.0
    assert lesion["present"] == [True, True, False]
    assert lesion["truth_volume_ml"][2] == 0.0 and lesion["truth_volume_ml"][0] > 0.5
    assert all(s["slice_spacing_mm"] == 5.0 for s in truth["scans"])
    last = sitk.GetArrayFromImage(sitk.ReadImage(str(manifest.parent / "truth" / "T2.nii.gz")))
    assert not last.any()


def test_the_smallest_nodules_sit_on_the_thinnest_vessels(monkeypatch):
    """A 4.5 mm nodule on a vessel needs one of at most half its radius: the tree's thinnest
    branches (1 mm, stored as 0.999) were left out by float rounding, and such nodules could not be
    made at all (numpy's "high <= 0"). A chest with no vessel thin enough says so."""
    for seed in range(2020, 2030):
        case = render_case(LesionKind(4.5, "vessel", "solid", 1.25), seed=seed, half_mm=30.0)
        assert case.truth.any()
    monkeypatch.setattr("LinGuinELib.synthetic.kinds.MIN_VESSEL_MM", 5.0)
    with pytest.raises(InputError, match="no vessel thin enough"):
        render_case(LesionKind(4.5, "vessel", "solid", 1.25), seed=2027, half_mm=30.0)
