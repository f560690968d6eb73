"""The reference LinGuinE record format: click convention, source choice, conversion, batch."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk
from test_batch import TRACK_ARGS, write_cube_study

from LinGuinELib.batch.reference_format import (
    clicks_to_lps,
    lps_to_clicks,
    records_to_manifests,
    validate_records,
)
from LinGuinELib.cli.main import main
from LinGuinELib.errors import InputError
from LinGuinELib.evaluation.evaluate import read_table

# Directions: LPS identity (axial DICOM-like), a flipped/permuted one, and an oblique one.
_C, _S = np.cos(0.3), np.sin(0.3)
DIRECTIONS = [
    (1, 0, 0, 0, 1, 0, 0, 0, 1),
    (0, 0, -1, -1, 0, 0, 0, 1, 0),
    (_C, -_S, 0, _S, _C, 0, 0, 0, -1),
]


def _ramp_image(direction) -> sitk.Image:
    arr = np.arange(7 * 6 * 5, dtype=np.int16).reshape(7, 6, 5)  # (z, y, x), every voxel unique
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((0.8, 1.1, 2.0))
    img.SetOrigin((10.0, -20.0, 30.0))
    img.SetDirection(direction)
    return img


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_clicks_follow_nibabel_closest_canonical(tmp_path, direction):
    """A click indexes the RAS-canonical array the reference gets from MONAI (nibabel's rule)."""
    nib = pytest.importorskip("nibabel")
    img = _ramp_image(direction)
    path = tmp_path / "img.nii.gz"
    sitk.WriteImage(img, str(path))
    canonical = np.asarray(nib.as_closest_canonical(nib.load(str(path))).dataobj)
    for click in ([0, 0, 0], [4, 1, 3], [2, 5, 6], [1, 3, 2]):
        click = [min(c, n - 1) for c, n in zip(click, canonical.shape)]
        lps = clicks_to_lps(img, [click])
        idx = img.TransformPhysicalPointToIndex(lps[0].tolist())
        assert img[idx] == canonical[tuple(click)]
        assert lps_to_clicks(img, lps) == [click]


def _records(folder):
    write_cube_study(folder, "P1")
    study = json.loads((folder / "STUDY.json").read_text())
    recs = []
    for s in study["scans"]:
        recs.append({"patient_id": "P1", "file_id": s["id"], "image": s["image"],
                     "label": s["label"], "timepoint": s["timepoint"]})
    return recs


def test_records_become_a_manifest_with_one_lesion_per_label_value(tmp_path):
    recs = _records(tmp_path / "data")
    recs = recs[::-1]  # file order must not matter: timepoints order the scans
    recs.append({"patient_id": "lonely", "file_id": "x", "image": "T0.mha"})
    path = tmp_path / "data" / "records.json"
    path.write_text(json.dumps(recs))
    manifests, failures = records_to_manifests(path, tmp_path / "work")
    assert failures == {} and len(manifests) == 1  # the one-scan patient is skipped
    m = json.loads(manifests[0].read_text())
    assert [s["id"] for s in m["scans"]] == ["T0", "T1", "T2", "T3"]
    assert [(les["id"], les["scan"], les["truth_label"]) for les in m["lesions"]] == [
        ("lesion_1", "T0", 1), ("lesion_2", "T0", 2)]
    mask = sitk.GetArrayFromImage(sitk.ReadImage(m["lesions"][0]["mask"]))
    truth = sitk.GetArrayFromImage(sitk.ReadImage(m["scans"][0]["label"]))
    assert np.array_equal(mask > 0, truth == 1)


def test_use_as_source_and_clicks(tmp_path):
    recs = _records(tmp_path / "data")
    img = sitk.ReadImage(str(tmp_path / "data" / "T2.mha"))
    truth = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "data" / "T2_truth.nii.gz")))
    z, y, x = np.argwhere(truth == 2).mean(axis=0).round().astype(int)
    centre_lps = img.TransformIndexToPhysicalPoint((int(x), int(y), int(z)))
    recs[2]["use_as_source"] = True
    recs[2]["clicks"] = lps_to_clicks(img, np.array([centre_lps]))
    path = tmp_path / "data" / "records.json"
    path.write_text(json.dumps(recs))
    manifests, _ = records_to_manifests(path, tmp_path / "work")
    (lesion,) = json.loads(manifests[0].read_text())["lesions"]
    assert lesion["scan"] == "T2" and lesion["truth_label"] == 2
    np.testing.assert_allclose(lesion["point_lps"][0], centre_lps, atol=1e-6)


def test_source_without_guidance_is_reported_per_patient(tmp_path):
    recs = _records(tmp_path / "data")
    recs[1]["use_as_source"] = True
    del recs[1]["label"]
    path = tmp_path / "data" / "records.json"
    path.write_text(json.dumps(recs))
    manifests, failures = records_to_manifests(path, tmp_path / "work")
    assert manifests == [] and "source scan 'T1'" in failures["P1"]
    assert not failures["P1"].startswith("InputError")  # the batch adds the type once (failures.csv)


@pytest.mark.parametrize("mutate, message", [
    (lambda r: r[1].update(file_id="T0"), "appears twice"),
    (lambda r: [x.update(use_as_source=True) for x in r[:2]], "use_as_source on both"),
    (lambda r: r[0].update(clicks=[[1, 2]]), "3 integer voxel indices"),
    (lambda r: r[0].update(clicks=[[1.5, 2, 3]]), "3 integer voxel indices"),
    (lambda r: r[0].pop("image"), "has no 'image'"),
])
def test_bad_records_rejected_with_named_field(tmp_path, mutate, message):
    recs = _records(tmp_path / "data")
    mutate(recs)
    with pytest.raises(InputError, match=message):
        validate_records(recs, "records.json")


def test_batch_accepts_records_file(tmp_path):
    recs = _records(tmp_path / "data")
    path = tmp_path / "data" / "records.json"
    path.write_text(json.dumps(recs))
    out = tmp_path / "out"
    assert main(["-q", "batch", str(path), "--out", str(out), *TRACK_ARGS]) == 0
    assert main(["-q", "evaluate", str(out)]) == 0
    rows = read_table(out / "evaluation.csv")
    assert len(rows) == 8
    row = [r for r in rows if r["lesion"] == "lesion_1" and r["scan"] == "T2"][0]
    assert row["dice"] == pytest.approx(5 / 6)
    gone = [r for r in rows if r["lesion"] == "lesion_2" and r["scan"] == "T3"][0]
    assert gone["outcome"] == "correct_absent"
