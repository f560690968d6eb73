import json

import numpy as np
import pytest
import SimpleITK as sitk

from LinGuinELib.errors import InputError
from LinGuinELib.study.manifest import load_folder, load_manifest


def _image(path, size=(10, 10, 6), spacing=(1.0, 1.0, 2.0), origin=(0.0, 0.0, 0.0)):
    img = sitk.Image(size, sitk.sitkInt16)
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    sitk.WriteImage(img, str(path))


@pytest.fixture
def study_dir(tmp_path):
    for name in ("a", "b"):
        _image(tmp_path / f"{name}.nii.gz")
    mask = sitk.Image((10, 10, 6), sitk.sitkUInt8)
    mask.SetSpacing((1.0, 1.0, 2.0))
    mask[5, 5, 3] = 1
    sitk.WriteImage(mask, str(tmp_path / "m.nii.gz"))
    return tmp_path


def _write(folder, scans, lesions, **extra):
    path = folder / "study.json"
    path.write_text(json.dumps({"patient_id": "P", "scans": scans, "lesions": lesions, **extra}))
    return path


SCANS = [{"id": "T1", "image": "b.nii.gz", "timepoint": "week_12"},
         {"id": "T0", "image": "a.nii.gz", "timepoint": "baseline"}]


def test_valid_manifest_sorted_and_ras_converted(study_dir):
    path = _write(study_dir, SCANS, [{"id": "L1", "scan": "T1", "point_ras": [-5, -5, 6]},
                                     {"id": "L2", "scan": "T0", "mask": "m.nii.gz"}], extra_key=1)
    study = load_manifest(path)
    assert [s.id for s in study.scans] == ["T0", "T1"]
    np.testing.assert_allclose(study.lesions[0].points_lps, [[5, 5, 6]])
    assert study.lesions[1].mask is not None


@pytest.mark.parametrize("lesions, scans, message", [
    ([{"id": "L1", "scan": "TX", "point_lps": [5, 5, 6]}], SCANS, "unknown scan 'TX'"),
    ([{"id": "L1", "scan": "T0", "point_lps": [500, 5, 6]}], SCANS, "outside scan 'T0'"),
    ([{"id": "L1", "scan": "T0", "point_lps": [5, 5]}], SCANS, "point_lps"),
    ([{"id": "L1", "scan": "T0"}], SCANS, "needs point_ras"),
    ([{"id": "L1", "scan": "T0", "point_lps": [5, 5, 6]}] * 2, SCANS, "duplicate lesion id 'L1'"),
    ([{"id": "L1", "scan": "T0", "point_lps": [5, 5, 6]}], SCANS[:1], "at least two scans"),
    ([{"id": "L1", "scan": "T0", "point_lps": [5, 5, 6]}], [SCANS[0], dict(SCANS[1], id="T1")],
     "duplicate scan id 'T1'"),
    ([{"id": "L1", "scan": "T0", "point_lps": [5, 5, 6]}],
     [SCANS[0], dict(SCANS[1], image="missing.nii.gz")], "missing.nii.gz: file not found"),
    ([{"id": "L1", "scan": "T0", "point_lps": [5, 5, 6]}], [SCANS[0], dict(SCANS[1], date="May 1")],
     "not an ISO date"),
    ([{"id": "L1", "scan": "T0", "point_lps": [5, 5, 6]}],
     [SCANS[0], dict(SCANS[1], timepoint="later")], "'later' cannot be ordered"),
])
def test_bad_manifests_name_the_problem(study_dir, lesions, scans, message):
    with pytest.raises(InputError, match=message):
        load_manifest(_write(study_dir, scans, lesions))


def test_empty_and_misaligned_masks(study_dir):
    empty = sitk.Image((10, 10, 6), sitk.sitkUInt8)
    empty.SetSpacing((1.0, 1.0, 2.0))
    sitk.WriteImage(empty, str(study_dir / "empty.nii.gz"))
    with pytest.raises(InputError, match="empty.nii.gz: mask is empty"):
        load_manifest(_write(study_dir, SCANS, [{"id": "L", "scan": "T0", "mask": "empty.nii.gz"}]))
    _image(study_dir / "other.nii.gz", size=(12, 10, 6))
    with pytest.raises(InputError, match="does not match its scan"):
        load_manifest(_write(study_dir, SCANS, [{"id": "L", "scan": "T0", "mask": "other.nii.gz"}]))


def test_unparseable_and_non_3d(study_dir):
    bad = study_dir / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="bad.json: not a readable JSON"):
        load_manifest(bad)
    sitk.WriteImage(sitk.Image((10, 10), sitk.sitkInt16), str(study_dir / "flat.nii.gz"))
    with pytest.raises(InputError, match="flat.nii.gz: expected a 3D"):
        load_manifest(_write(study_dir, [SCANS[0], dict(SCANS[1], image="flat.nii.gz")],
                             [{"id": "L1", "scan": "T1", "point_lps": [5, 5, 6]}]))


def test_folder_input(study_dir):
    with pytest.raises(InputError, match="cannot be ordered"):  # names a, b, m carry no time order
        load_folder(study_dir, (-5.0, -5.0, 6.0), "a")
    for k, name in enumerate(("week_10", "week_2")):
        (study_dir / f"{'ab'[k]}.nii.gz").rename(study_dir / f"{name}.nii.gz")
    (study_dir / "m.nii.gz").unlink()
    study = load_folder(study_dir, (-5.0, -5.0, 6.0), "week_2")
    assert [s.id for s in study.scans] == ["week_2", "week_10"]
    with pytest.raises(InputError, match="--source"):
        load_folder(study_dir, (-5.0, -5.0, 6.0), "zzz")
