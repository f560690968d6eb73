"""DICOM in and out: a study from a folder of CT series, SEG + TID 1500 SR per timepoint.

The CT series are written from a synthetic phantom study (one scan with rows and slices stored
in reverse order, a thicker decoy series and a localizer in the same studies), tracked with the
real classical backends, and the DICOM outputs read back: SEG masks against ``labels/``, SR
values against ``trajectory.csv``, tracking UIDs across timepoints and lesions, dciodvfy.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

pytest.importorskip("highdicom")

from LinGuinELib.cli.main import main  # noqa: E402
from LinGuinELib.errors import InputError  # noqa: E402
from LinGuinELib.geometry import index_zyx_to_physical  # noqa: E402
from LinGuinELib.outputs.dicom_seg import read_headers, read_seg_masks, slice_indices, tracking_uid  # noqa: E402
from LinGuinELib.outputs.dicom_sr import read_measurement_report  # noqa: E402
from LinGuinELib.outputs.writer import _csv_value  # noqa: E402
from LinGuinELib.study.images import dicom_series_files, read_image  # noqa: E402
from LinGuinELib.synthetic import make_study  # noqa: E402
from LinGuinELib.synthetic.dicom_ct import CTSeriesHeader, write_ct_series  # noqa: E402


def _reversed_grid(image: sitk.Image) -> sitk.Image:
    """The same voxels in physical space, stored with rows and slices in reverse order."""
    arr = sitk.GetArrayFromImage(image)[::-1, ::-1, :]
    size = image.GetSize()
    out = sitk.GetImageFromArray(np.ascontiguousarray(arr))
    out.SetSpacing(image.GetSpacing())
    direction = np.array(image.GetDirection()).reshape(3, 3) * [1, -1, -1]
    out.SetDirection(tuple(direction.ravel()))
    out.SetOrigin(tuple(index_zyx_to_physical(image, [[size[2] - 1, size[1] - 1, 0]])[0]))
    return out


@pytest.fixture(scope="module")
def pacs(tmp_path_factory):
    """A folder like a PACS export: per study the CT to track, a thick decoy, (once) a localizer."""
    root = tmp_path_factory.mktemp("dicom")
    manifest = make_study(root / "nifti", n_scans=3, n_lesions=2, seed=1, shape_zyx=(40, 80, 80))
    data = json.loads(manifest.read_text())
    folder = root / "pacs"
    chosen = []
    for k, scan in enumerate(data["scans"]):
        image = read_image(manifest.parent / scan["image"])
        if k == 1:
            image = _reversed_grid(image)
        date = dt.date.fromisoformat(scan["date"])
        ct = CTSeriesHeader("P7", date, study_uid=f"1.2.826.0.1.3680043.10.1{k}", series_number=2)
        files = write_ct_series(image, folder / f"exam{k}" / "ct", ct)
        chosen.append(str(read_headers([str(files[0])])[0].SeriesInstanceUID))
        thick = CTSeriesHeader("P7", date, study_uid=ct.study_uid, series_number=3, series_description="thick")
        write_ct_series(image[:, :, ::2], folder / f"exam{k}" / "thick", thick)
        if k == 0:
            scout = CTSeriesHeader("P7", date, study_uid=ct.study_uid, series_number=1,
                                   image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"))
            write_ct_series(image[:, :, :3], folder / f"exam{k}" / "scout", scout)
    return {"root": root, "folder": folder, "nifti": manifest, "data": data, "chosen": chosen}


def _study_cli(pacs, out: Path, *extra: str) -> int:
    points = [f"--point-ras={','.join(map(str, les['point_ras']))}" for les in pacs["data"]["lesions"]]
    return main(["-q", "study", str(pacs["folder"]), "--out", str(out), *points,
                 "--source", pacs["data"]["scans"][0]["date"], *extra])


def test_study_chooses_one_series_per_study_in_time_order(pacs, tmp_path):
    out = tmp_path / "study.json"
    assert _study_cli(pacs, out) == 0
    m = json.loads(out.read_text())
    assert m["patient_id"] == "P7"
    assert [s["id"] for s in m["scans"]] == [s["date"] for s in pacs["data"]["scans"]]
    assert [s["series_uid"] for s in m["scans"]] == pacs["chosen"]  # not the thick one, not the scout
    assert [les["scan"] for les in m["lesions"]] == [m["scans"][0]["id"]] * 2
    assert (tmp_path / m["scans"][0]["image"]).resolve() == (pacs["folder"] / "exam0" / "ct").resolve()
    assert _study_cli(pacs, out) == 2  # an existing manifest is kept


def test_series_override(pacs, tmp_path):
    thick = str(read_headers(dicom_series_files(pacs["folder"] / "exam1" / "thick"))[0].SeriesInstanceUID)
    out = tmp_path / "study.json"
    assert _study_cli(pacs, out, "--series", thick) == 0
    uids = [s["series_uid"] for s in json.loads(out.read_text())["scans"]]
    assert uids == [pacs["chosen"][0], thick, pacs["chosen"][2]]
    assert main(["-q", "study", str(pacs["folder"]), "--out", str(tmp_path / "x.json"),
                 "--series", "1.2.3.4"]) == 2


def test_several_patients_refused_unless_one_is_named(tmp_path, capsys):
    image = sitk.GetImageFromArray(np.zeros((4, 8, 8), np.int16))
    for pid in ("A1", "B2"):
        write_ct_series(image, tmp_path / "in" / pid, CTSeriesHeader(pid, dt.date(2024, 1, 2)))
    out = tmp_path / "study.json"
    assert main(["study", str(tmp_path / "in"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "2 patients" in err[0] and "--patient" in err[0]
    assert not out.exists()
    assert main(["-q", "study", str(tmp_path / "in"), "--out", str(out), "--patient", "B2"]) == 0
    assert json.loads(out.read_text())["patient_id"] == "B2"


def test_seg_frames_must_lie_on_the_grid(pacs):
    files = dicom_series_files(pacs["folder"] / "exam1" / "ct")
    image = read_image(pacs["folder"] / "exam1" / "ct")
    headers = read_headers(files)
    ks = slice_indices(image, headers, "T1")
    assert ks == list(range(image.GetSize()[2]))  # files in SimpleITK's order
    assert slice_indices(image, headers[::-1], "T1") == ks[::-1]  # each instance by its own position
    ipp = [float(v) for v in headers[0].ImagePositionPatient]
    headers[0].ImagePositionPatient = [ipp[0], ipp[1], ipp[2] + 0.5 * image.GetSpacing()[2]]
    with pytest.raises(InputError, match="does not lie on a slice"):
        slice_indices(image, headers, "T1")


def _dciodvfy_errors(path: Path) -> list[str]:
    res = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in (res.stdout + res.stderr).splitlines() if line.startswith("Error")]


@pytest.fixture(scope="module")
def tracked(pacs):
    manifest = pacs["root"] / "study.json"
    assert _study_cli(pacs, manifest) == 0
    out = pacs["root"] / "out"
    assert main(["-q", "track", str(manifest), "--out", str(out), "--dicom"]) == 0
    return {"manifest": manifest, "out": out, "scans": json.loads(manifest.read_text())["scans"]}


@pytest.mark.slow
def test_seg_round_trip_equals_labels(tracked):
    for scan in tracked["scans"]:
        files = dicom_series_files(tracked["manifest"].parent / scan["image"], scan["series_uid"])
        masks = read_seg_masks(tracked["out"] / "dicom" / f"{scan['id']}.seg.dcm", files)
        labels = sitk.GetArrayFromImage(sitk.ReadImage(str(tracked["out"] / "labels" / f"{scan['id']}.nii.gz")))
        assert sorted(masks) == [1, 2]
        for number, mask in masks.items():
            assert np.array_equal(mask, labels == number), (scan["id"], number)
        assert labels.any()


@pytest.mark.slow
def test_sr_round_trip_equals_trajectory(tracked):
    with open(tracked["out"] / "trajectory.csv") as f:
        table = {(r["lesion"], r["scan"]): r for r in csv.DictReader(f)}
    uids: dict[str, set[str]] = {"L1": set(), "L2": set()}
    for scan in tracked["scans"]:
        seg = read_headers([str(tracked["out"] / "dicom" / f"{scan['id']}.seg.dcm")])[0]
        groups = read_measurement_report(tracked["out"] / "dicom" / f"{scan['id']}.sr.dcm")
        assert len(groups) == 2
        for g in groups:
            lesion = g["tracking_identifier"].split("/")[-1]
            row = table[(lesion, scan["id"])]
            for key in ("volume_ml", "longest_axial_diameter_mm", "short_axis_mm"):
                assert str(_csv_value(g[key])) == row[key], (lesion, scan["id"], key)
            assert g["response"] == row["response"]
            assert g["seg_sop_instance_uid"] == seg.SOPInstanceUID
            seg_item = seg.SegmentSequence[g["segment_number"] - 1]
            assert seg_item.SegmentLabel == lesion and seg_item.TrackingUID == g["tracking_uid"]
            uids[lesion].add(g["tracking_uid"])
    assert all(len(v) == 1 for v in uids.values())  # one UID per lesion on every timepoint
    assert uids["L1"] != uids["L2"]
    run = json.loads((tracked["out"] / "run.json").read_text())
    assert {k: {v} for k, v in run["dicom"]["tracking_uids"].items()} == uids
    assert tracking_uid("P7", "L1", "x") == tracking_uid("P7", "L1", "x") != tracking_uid("P7", "L2", "x")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("dciodvfy") is None,
                    reason="dciodvfy not installed (Debian package dicom3tools: apt-get install dicom3tools)")
def test_dciodvfy_finds_no_errors(tracked, pacs):
    files = sorted((tracked["out"] / "dicom").glob("*.dcm"))
    assert len(files) == 6
    for path in [*files, dicom_series_files(pacs["folder"] / "exam0" / "ct")[0]]:
        assert _dciodvfy_errors(Path(path)) == [], path


@pytest.mark.slow
def test_track_takes_the_dicom_folder_directly(pacs, tmp_path):
    les = pacs["data"]["lesions"][0]
    out = tmp_path / "out"
    assert main(["-q", "track", str(pacs["folder"]), f"--point-ras={','.join(map(str, les['point_ras']))}",
                 "--source", "1.2.826.0.1.3680043.10.10", "--out", str(out), "--dicom"]) == 0
    ids = [s["id"] for s in json.loads((out / "run.json").read_text())["scans"]]
    assert ids == [s["date"] for s in pacs["data"]["scans"]]
    assert sorted(p.name for p in (out / "dicom").iterdir()) == sorted(
        f"{i}.{kind}.dcm" for i in ids for kind in ("seg", "sr"))


@pytest.mark.slow
def test_dicom_flag_without_dicom_scans_says_so(pacs, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["-q", "track", str(pacs["nifti"]), "--out", str(out), "--dicom"]) == 0
    assert "no scan was read from DICOM" in capsys.readouterr().err
    assert (out / "trajectory.csv").is_file() and not (out / "dicom").exists()


def _hand_result(folder: Path, files: list[str], masks: list[np.ndarray]):
    """A TrackingResult on one scan read from ``folder``, with the given masks as found lesions."""
    from LinGuinELib.config import TrackingConfig
    from LinGuinELib.geometry import ImageGeometry
    from LinGuinELib.propagation.result import LesionScanResult, MaskCrop, TrackingResult
    from LinGuinELib.study.model import Lesion, Scan, Study

    image = read_image(folder)
    ids = [f"L{k}" for k in range(1, len(masks) + 1)]
    study = Study("P7", [Scan("T1", folder, dicom_files=files)], [Lesion(i, "T1") for i in ids])
    results = {(i, "T1"): LesionScanResult(i, "T1", "found", MaskCrop.from_full(m)) for i, m in zip(ids, masks)}
    return TrackingResult(study, TrackingConfig(), results, {"T1": ImageGeometry.of(image)})


def _three_masks(shape) -> list[np.ndarray]:
    masks = [np.zeros(shape, bool) for _ in range(3)]
    masks[0][3:9, 10:20, 30:40] = True
    masks[1][6:12, 15:25, 35:45] = True  # overlaps the first; the third is empty (not found)
    return masks


def test_overlapping_lesions_keep_their_whole_masks(pacs, tmp_path):
    from LinGuinELib.outputs.dicom_seg import build_seg

    folder = pacs["folder"] / "exam1" / "ct"  # the series stored in reverse row and slice order
    files = dicom_series_files(folder)
    masks = _three_masks(read_image(folder).GetSize()[::-1])
    result = _hand_result(folder, files, masks)
    uids = {f"L{k}": tracking_uid("P7", f"L{k}", "T1") for k in (1, 2, 3)}
    build_seg(result, "T1", read_headers(files), uids).save_as(tmp_path / "seg.dcm")
    back = read_seg_masks(tmp_path / "seg.dcm", files)
    assert sorted(back) == [1, 2, 3]
    for k, m in enumerate(masks, start=1):
        assert np.array_equal(back[k], m), k


def test_ct_off_the_tracked_grid_gets_no_seg(pacs, tmp_path):
    from LinGuinELib.measures.trajectory import trajectory_rows
    from LinGuinELib.outputs.dicom_sr import write_dicom

    folder = pacs["folder"] / "exam1" / "ct"
    result = _hand_result(folder, dicom_series_files(pacs["folder"] / "exam1" / "thick"),
                          _three_masks(read_image(folder).GetSize()[::-1]))
    info = write_dicom(result, trajectory_rows(result), tmp_path / "dicom")
    assert info["written"] == [] and "T1" in info["skipped"]
    assert not (tmp_path / "dicom").exists()


@pytest.mark.slow
def test_batch_writes_dicom_per_study(tracked, tmp_path):
    out = tmp_path / "batch"
    assert main(["-q", "batch", str(tracked["manifest"]), "--out", str(out), "--dicom"]) == 0
    written = sorted(p.name for p in (out / "P7" / "dicom").iterdir())
    assert written == sorted(f"{s['id']}.{kind}.dcm" for s in tracked["scans"] for kind in ("seg", "sr"))


def test_flat_folder_of_several_series(pacs, tmp_path):
    """Every file of every study in one folder (a common export layout): series kept apart by UID."""
    from LinGuinELib.study.manifest import load_manifest

    flat = tmp_path / "flat"
    flat.mkdir()
    for path in sorted(pacs["folder"].rglob("*.dcm")):
        shutil.copy(path, flat / "_".join(path.relative_to(pacs["folder"]).parts))
    out = tmp_path / "study.json"
    assert main(["-q", "study", str(flat), "--out", str(out), "--point-ras=0,0,-150", "--source",
                 pacs["data"]["scans"][0]["date"]]) == 0
    m = json.loads(out.read_text())
    assert [s["series_uid"] for s in m["scans"]] == pacs["chosen"]
    assert {s["image"] for s in m["scans"]} == {"flat"}
    study = load_manifest(out)
    for scan, k in zip(study.scans, range(3)):
        expected = read_image(pacs["folder"] / f"exam{k}" / "ct")
        assert scan.image.GetSize() == expected.GetSize() and len(scan.dicom_files) == expected.GetSize()[2]
        assert np.array_equal(sitk.GetArrayFromImage(scan.image), sitk.GetArrayFromImage(expected))


def test_an_empty_prompt_is_reported_unmeasured_not_as_zero(pacs, tmp_path):
    """A click that gave nothing (the study's other lesions tracked): its report group has no
    measurement and response 'not evaluated'; before, writing it raised on the missing volume."""
    from LinGuinELib.measures.trajectory import trajectory_rows
    from LinGuinELib.outputs.dicom_sr import write_dicom
    from LinGuinELib.propagation.result import MaskCrop

    folder = pacs["folder"] / "exam1" / "ct"
    files = dicom_series_files(folder)
    result = _hand_result(folder, files, _three_masks(read_image(folder).GetSize()[::-1])[:2])
    result.results[("L2", "T1")].status = "prompt"
    result.results[("L2", "T1")].mask = MaskCrop(result.results[("L2", "T1")].mask.shape_zyx)
    rows = trajectory_rows(result)
    assert rows[1]["volume_ml"] is None and rows[1]["response"] == "NE"
    info = write_dicom(result, rows, tmp_path / "dicom")
    assert info["written"] == ["T1"]
    groups = {g["tracking_identifier"].split("/")[-1]: g for g in
              read_measurement_report(tmp_path / "dicom" / "T1.sr.dcm")}
    assert groups["L2"]["volume_ml"] is None and groups["L2"]["response"] == "NE"
    assert groups["L1"]["volume_ml"] == pytest.approx(rows[0]["volume_ml"])
