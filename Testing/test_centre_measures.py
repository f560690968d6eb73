import numpy as np
import SimpleITK as sitk

from LinGuinELib.measures.response import trajectory_changes
from LinGuinELib.measures.shape import lesion_measures
from LinGuinELib.prompt.centre import mask_centre_lps
from LinGuinELib.propagation.plan import plan_steps


def _grid(size=(60, 60, 30), spacing=(0.5, 0.5, 2.0)):
    img = sitk.Image(size, sitk.sitkUInt8)
    img.SetSpacing(spacing)
    img.SetOrigin((10.0, -5.0, 3.0))
    img.SetDirection((0, 1, 0, -1, 0, 0, 0, 0, 1))  # rotated in-plane
    return img


def test_centre_is_deepest_point_in_mm_not_voxels():
    img = _grid()
    mask = np.zeros((30, 60, 60), bool)
    mask[5:25, 10:50, 10:50] = True  # 20 mm x 20 mm x 40 mm box
    mask[5:25, 10:50, 40:58] = True  # a thinner appendix along x
    centre = mask_centre_lps(mask, img)
    idx = np.array(img.TransformPhysicalPointToContinuousIndex(tuple(centre)))[::-1]
    assert 9.5 <= idx[0] <= 19.5 and abs(idx[1] - 29.5) <= 1 and abs(idx[2] - 29.5) <= 10


def test_volume_diameters_centroid_of_a_cylinder():
    img = _grid()
    zz, yy, xx = np.indices((30, 60, 60))
    # Cylinder radius 10 mm (20 px) along z over 10 slices (20 mm).
    mask = (((xx - 29.5) * 0.5) ** 2 + ((yy - 29.5) * 0.5) ** 2 <= 100) & (zz >= 10) & (zz < 20)
    m = lesion_measures(mask, img)
    assert abs(m["volume_ml"] - np.pi * 100 * 20 / 1000) < 0.05
    assert 19.5 < m["longest_axial_diameter_mm"] < 21.0
    assert 19.5 < m["short_axis_mm"] < 21.0
    expected = img.TransformContinuousIndexToPhysicalPoint((29.5, 29.5, 14.5))
    np.testing.assert_allclose(m["centroid_lps"], expected, atol=1e-6)


def test_empty_mask_measures_zero():
    m = lesion_measures(np.zeros((30, 60, 60), bool), _grid())
    assert m["volume_ml"] == 0 and m["centroid_lps"] is None


def test_response_thresholds():
    rows = trajectory_changes([10.0, 15.0, 3.0, 9.0, 0.0, 0.2, None])
    assert [r["response"] for r in rows] == ["baseline", "SD", "PR", "PD", "CR", "PD", "NE"]
    assert rows[1]["change_from_baseline_pct"] == 50.0
    assert abs(rows[3]["change_from_nadir_pct"] - 200.0) < 1e-9


def test_progression_needs_five_mm_more_as_recist_does():
    # doubling from the nadir: a 26 mm lesion gains 7 mm of diameter (PD), an 8 mm nodule 2 mm (SD)
    assert [r["response"] for r in trajectory_changes([9.0, 18.0])] == ["baseline", "PD"]
    assert [r["response"] for r in trajectory_changes([0.3, 0.6])] == ["baseline", "SD"]
    # the small nodule is PD once its diameter is 5 mm more: 8.3 -> 13.3 mm is x4.1 in volume
    assert [r["response"] for r in trajectory_changes([0.3, 1.25])] == ["baseline", "PD"]


def test_plans():
    ids = ["a", "b", "c", "d"]
    direct = plan_steps(ids, "b", "L", "direct")
    assert [(s.from_scan, s.to_scan) for s in direct] == [("b", "a"), ("b", "c"), ("b", "d")]
    chain = plan_steps(ids, "b", "L", "chain")
    assert [(s.from_scan, s.to_scan, s.depth) for s in chain] == [
        ("b", "c", 1), ("c", "d", 2), ("b", "a", 1)]


def test_response_near_a_threshold_within_the_measurement_uncertainty_is_marked():
    from LinGuinELib.measures.response import response_uncertainty

    # the benchmark's schedule on a 7 mL nodule (volumes known to x1.3): +90% is PD by 17 points,
    # well inside the uncertainty; +10% and -30% are SD whatever the error; CR is not a ratio
    notes = response_uncertainty([7.0, 7.7, 13.3, 4.9, 0.0], [1.3] * 5)
    assert notes[0] is None and notes[1] is None and notes[3] is None and notes[4] is None
    assert notes[2] and "PD" in notes[2]
    # -68% from baseline: PR by 2 points; and the same change measured exactly (tolerance 1.0) is sure
    assert "PR" in response_uncertainty([7.0, 2.24], [1.3, 1.3])[1]
    assert response_uncertainty([7.0, 2.24], [1.0, 1.0])[1] is None
    # a small nodule on thick slices: even x2.5 on its +40% cannot make its diameter 5 mm more: SD for sure;
    # the same nodule's x4 is PD by 4.9 mm against 5: within its uncertainty
    assert response_uncertainty([0.3, 0.42], [1.3, 2.5])[1] is None
    assert "PD" in response_uncertainty([0.3, 1.2], [1.3, 1.3])[1]
    # no baseline, or not measured: nothing to say
    assert response_uncertainty([None, 1.0, None], [1.3] * 3) == [None, None, None]
