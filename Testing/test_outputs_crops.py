"""Outputs and measures built from cropped masks equal those built from full grids."""

import engine_fixtures as fx
import numpy as np
import slicerio
from scipy import ndimage

from LinGuinELib.config import TrackingConfig
from LinGuinELib.measures.shape import lesion_measures
from LinGuinELib.outputs.colors import lesion_color
from LinGuinELib.outputs.writer import TRACKING_TAG, segmentation_dict, tracking_id, write_segmentation
from LinGuinELib.propagation.engine import track
from LinGuinELib.propagation.result import MaskCrop
from LinGuinELib.study.manifest import load_manifest


def _result(tmp_path):
    shifts = [(0, 0, 0), (3, -2, 4)]
    centres = [(-6.0, -6.0, -6.0), (7.0, 6.0, 2.0), (-6.0, 8.0, 4.0)]
    m = fx.write_ball_study(tmp_path / "s", [(5, 4, 3), (6, 4, 0)], shifts, centres)
    config = TrackingConfig(registration="test-shift", segmentation="test-threshold")
    result = track(load_manifest(m), config)
    # Make L2 overlap L1 on T0 so that Slicer's layering is exercised (a second layer).
    l1, l2 = result.get("L1", "T0").mask, result.get("L2", "T0").mask
    result.get("L2", "T0").mask = MaskCrop.from_full(ndimage.binary_dilation(l1.to_full(), iterations=2)
                                                     | l2.to_full())
    return result


def _reference(result, scan_id):
    """The straightforward construction: each mask expanded to the grid, slicerio's add_segment."""
    ref = result.references[scan_id]
    seg = slicerio.create_segmentation(tuple(ref.GetSize()), ref.ijk_to_lps())
    for k, lesion in enumerate(result.study.lesions):
        slicerio.add_segment(seg, result.get(lesion.id, scan_id).mask.to_full().transpose(2, 1, 0), {
            "id": lesion.id, "name": lesion.id, "color": list(lesion_color(k)),
            "tags": {TRACKING_TAG: tracking_id(result.study.patient_id, lesion.id)}})
    return seg


def test_segmentation_from_crops_equals_slicerio_construction(tmp_path):
    result = _result(tmp_path)
    assert result.get("L3", "T1").mask.empty  # an empty segment on T1
    for scan_id in ("T0", "T1"):
        ours, ref = segmentation_dict(result, scan_id), _reference(result, scan_id)
        assert ours["segments"] == ref["segments"]
        np.testing.assert_array_equal(ours["voxels"], ref["voxels"])
        write_segmentation(result, scan_id, tmp_path / f"{scan_id}.seg.nrrd")
        back = slicerio.read_segmentation(str(tmp_path / f"{scan_id}.seg.nrrd"))
        np.testing.assert_array_equal(back["voxels"], ref["voxels"])
        assert [s["extent"] for s in back["segments"]] == [s["extent"] for s in ref["segments"]]
    assert segmentation_dict(result, "T0")["voxels"].ndim == 4  # overlap -> two layers


def test_measures_of_a_crop_equal_measures_of_the_full_mask(tmp_path):
    result = _result(tmp_path)
    for (_, scan_id), res in result.results.items():
        ref = result.references[scan_id]
        a, b = lesion_measures(res.mask, ref), lesion_measures(res.mask.to_full(), ref)
        # A loose crop (margin around the mask) measures the same too.
        full = res.mask.to_full()
        loose = MaskCrop(full.shape, (0, 0, 0), full)
        c = lesion_measures(loose, ref)
        for m in (b, c):
            assert a["volume_ml"] == m["volume_ml"]
            assert a["longest_axial_diameter_mm"] == m["longest_axial_diameter_mm"]
            assert a["short_axis_mm"] == m["short_axis_mm"]
            if a["centroid_lps"] is None:
                assert m["centroid_lps"] is None
            else:
                np.testing.assert_array_equal(a["centroid_lps"], m["centroid_lps"])


def test_crop_from_full_is_the_tight_box():
    mask = np.zeros((9, 10, 11), bool)
    mask[2, 3, 4] = mask[5, 7, 6] = True
    crop = MaskCrop.from_full(mask)
    assert crop.offset_zyx == (2, 3, 4) and crop.array.shape == (4, 5, 3)
    np.testing.assert_array_equal(crop.to_full(), mask)
    assert MaskCrop.from_full(np.zeros((3, 4, 5), bool)).empty


def test_pixel_corners_equal_the_sorted_corner_list():
    """The corner lattice gives exactly the array np.unique of the four corners per pixel gave."""
    from LinGuinELib.measures.shape import _pixel_corners_mm

    offsets = np.array([[-0.5, -0.5], [-0.5, 0.5], [0.5, -0.5], [0.5, 0.5]])
    rng = np.random.default_rng(0)
    for _ in range(100):
        m = rng.random((rng.integers(1, 30), rng.integers(1, 30))) < rng.random()
        if not m.any():
            continue
        sx, sy = rng.uniform(0.3, 2.5, 2)
        yx = np.argwhere(m)
        expected = np.unique((yx[:, None, ::-1] + offsets[None]).reshape(-1, 2) * [sx, sy], axis=0)
        np.testing.assert_array_equal(_pixel_corners_mm(m, sx, sy), expected)
