"""Data safety through the real CLI: a bad OUT or bad input is one clean line, and no input is touched.

Every case runs ``linguine`` (``main(argv)``) in a temporary folder and checks that the inputs
are byte-identical afterwards and that nothing appeared outside OUT (``snapshot``).
"""

from __future__ import annotations

import json
import os
import stat

import engine_fixtures as fx
import numpy as np
import pytest
import SimpleITK as sitk
from safety_fixtures import CENTRE, SPACING, TRACK, assert_refused, run, scan_image, snapshot, write_study


@pytest.fixture
def study(tmp_path):
    return write_study(tmp_path / "S")


# ----------------------------------------------------------------------------- OUT policy


@pytest.mark.parametrize("where", ["study_folder", "study_parent", "scans_folder"])
def test_out_holding_inputs_is_refused_and_nothing_is_touched(tmp_path, study, capsys, where):
    out = {"study_folder": study.parent, "study_parent": tmp_path,
           "scans_folder": study.parent / "scans"}[where]
    assert_refused(capsys, tmp_path, "track", study, "--out", out, *TRACK, words=("input",))


def test_out_that_is_a_file_or_a_foreign_folder_is_refused(tmp_path, study, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.docx").write_bytes(b"precious")
    for out in (tmp_path / "notes.txt", tmp_path / "mine"):
        assert_refused(capsys, tmp_path, "track", study, "--out", out, *TRACK, words=(str(out),))


def test_previous_output_is_replaced_and_user_files_in_it_protect_it(tmp_path, study, capsys):
    out = tmp_path / "out"
    assert run(capsys, "track", study, "--out", out, *TRACK)[0] == 0
    assert run(capsys, "track", study, "--out", out, *TRACK)[0] == 0  # a LinGuinE output: replaced
    for mine in (out / "my_notes.txt", out / "labels" / "my_edit.nii.gz"):
        mine.write_text("added by the user")
        assert_refused(capsys, tmp_path, "track", study, "--out", out, *TRACK, words=(mine.name,))
        mine.unlink()


def test_batch_out_on_the_dataset_is_refused(tmp_path, capsys):
    ds = tmp_path / "ds"
    write_study(ds / "P_A", "P_A")
    write_study(ds / "P_B", "P_B")
    for out in (ds, ds / "P_A", tmp_path):
        assert_refused(capsys, tmp_path, "batch", ds, "--out", out, *TRACK)


def test_out_is_created_with_normal_permissions(tmp_path, study, capsys):
    old = os.umask(0o022)
    try:
        assert run(capsys, "track", study, "--out", tmp_path / "out", *TRACK)[0] == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o755


def test_leftovers_of_killed_runs_are_cleaned_by_the_next_run(tmp_path, study, capsys):
    out = tmp_path / "out"
    assert run(capsys, "track", study, "--out", out, *TRACK)[0] == 0
    marker = next(p.name for p in out.iterdir() if p.name.startswith(".linguine"))
    for name in (".out.partial-killed1", ".out.old-killed2"):
        (tmp_path / name / "labels").mkdir(parents=True)
        (tmp_path / name / marker).write_text('{"kind": "track"}')
    (tmp_path / ".out.partial-notours").mkdir()
    (tmp_path / ".out.partial-notours" / "x.txt").write_text("not LinGuinE's")
    assert run(capsys, "track", study, "--out", out, *TRACK)[0] == 0
    left = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out."))
    assert left == [".out.partial-notours"]  # only what LinGuinE wrote is removed


# ----------------------------------------------------------------------------- ids as file names


def test_scan_ids_cannot_escape_out_or_overwrite_inputs(tmp_path, capsys):
    ids = ("../../S/scans/s0", "t1", "T1")  # traversal, and a case-only collision
    manifest = write_study(tmp_path / "S", scan_ids=ids)
    out = tmp_path / "out"
    before = snapshot(tmp_path)
    code, err = run(capsys, "track", manifest, "--out", out, *TRACK)
    assert code == 0, err
    assert snapshot(tmp_path, exclude=out) == before
    labels = sorted(p.name for p in (out / "labels").iterdir())
    assert len(labels) == 3 and len({n.lower() for n in labels}) == 3
    run_json = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert [s["id"] for s in run_json["scans"]] == list(ids)


def test_unicode_ids_and_long_ids(tmp_path, capsys):
    long_id = "T" * 300
    manifest = write_study(tmp_path / "S", patient_id="Müller, Jürgen", scan_ids=("Basis", "Woche_6", long_id),
                           lesion={"id": "Läsion", "scan": "Basis", "point_lps": list(CENTRE)})
    out = tmp_path / "Ergebnisse für Müller"
    code, err = run(capsys, "track", manifest, "--out", out, *TRACK)
    assert code == 0, err
    rows = (out / "trajectory.csv").read_text(encoding="utf-8")
    assert "Läsion" in rows and long_id in rows
    header = (out / "segmentations" / "Basis.seg.nrrd").read_bytes().split(b"\n\n")[0]
    assert "Segment0_Name:=Läsion".encode() in header
    assert "Müller, Jürgen/Läsion".encode() in header
    assert all(len(p.name.encode()) < 255 for p in (out / "labels").iterdir())


@pytest.mark.parametrize("bad_id", ["T\x001", "T\n1"])
def test_control_characters_in_ids_are_refused(tmp_path, capsys, bad_id):
    manifest = write_study(tmp_path / "S", scan_ids=("T0", bad_id, "T2"))
    assert_refused(capsys, tmp_path, "track", manifest, "--out", tmp_path / "out", *TRACK,
                   words=("control character",))
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- images


def test_truncated_nifti_is_an_error_naming_it(tmp_path, capsys):
    manifest = write_study(tmp_path / "S")
    doc = json.loads(manifest.read_text())
    sitk.WriteImage(scan_image(1, "T1"), str(tmp_path / "S" / "scans" / "s1.nii.gz"), True)
    data = (tmp_path / "S" / "scans" / "s1.nii.gz").read_bytes()
    (tmp_path / "S" / "scans" / "s1.nii.gz").write_bytes(data[: len(data) * 3 // 10])
    doc["scans"][1]["image"] = "scans/s1.nii.gz"
    manifest.write_text(json.dumps(doc))
    assert_refused(capsys, tmp_path, "track", manifest, "--out", tmp_path / "out", *TRACK,
                   words=("s1.nii.gz", "truncated"))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind", ["all_zero", "tiny", "sheared"])
def test_unusable_scans_are_refused(tmp_path, capsys, kind):
    img = scan_image(1, "T1")
    if kind == "all_zero":
        img = sitk.Image(img.GetSize(), sitk.sitkInt16)
        img.SetSpacing(SPACING)
        img.SetOrigin((-20.0, -20.0, -20.0))
    elif kind == "tiny":
        img = sitk.Image((2, 2, 2), sitk.sitkInt16) + 1
    else:
        img.SetDirection((1, 0.3, 0, 0, 1, 0, 0, 0, 1))
    img.SetMetaData(fx.SHIFT_KEY, "[0, 0, 0]")
    img.SetMetaData("id", "T1")
    manifest = write_study(tmp_path / "S", images={1: img})
    assert_refused(capsys, tmp_path, "track", manifest, "--out", tmp_path / "out", *TRACK, words=("s1.mha",))


# ----------------------------------------------------------------------------- prompts


def test_multi_label_mask_is_refused_unless_a_label_is_picked(tmp_path, capsys):
    manifest = write_study(tmp_path / "S")
    ref = scan_image(0, "T0")
    arr = np.zeros(sitk.GetArrayViewFromImage(ref).shape, np.uint8)
    idx = np.round(ref.TransformPhysicalPointToContinuousIndex(CENTRE)).astype(int)[::-1]
    arr[idx[0], idx[1] - 1:idx[1] + 2, idx[2] - 1:idx[2] + 2] = 3
    arr[2, 2:4, 2:4] = 6
    mask = sitk.GetImageFromArray(arr)
    mask.CopyInformation(ref)
    sitk.WriteImage(mask, str(tmp_path / "S" / "mask.nii.gz"))
    doc = json.loads(manifest.read_text())
    doc["lesions"] = [{"id": "L1", "scan": "T0", "mask": "mask.nii.gz"}]
    manifest.write_text(json.dumps(doc))
    assert_refused(capsys, tmp_path, "track", manifest, "--out", tmp_path / "out", *TRACK,
                   words=("mask.nii.gz", "labels"))
    doc["lesions"][0]["mask_label"] = 3
    manifest.write_text(json.dumps(doc))
    assert run(capsys, "track", manifest, "--out", tmp_path / "out", *TRACK)[0] == 0


@pytest.mark.parametrize("case", ["far_points", "air", "air_hu", "nan", "truth_true"])
def test_bad_prompts_are_errors_not_silent_numbers(tmp_path, capsys, case):
    images = {}
    lesion = {"id": "L1", "scan": "T0", "point_lps": list(CENTRE)}
    if case == "far_points":
        lesion["point_lps"] = [[-10.0, -10.0, -10.0], [70.0, 70.0, 30.0]]  # 120 mm apart
    elif case == "air":  # nothing segmented at the click
        lesion["point_lps"] = [-10.0, -10.0, -10.0]
    elif case == "air_hu":  # a click at -1000 HU
        img = scan_image(0, "T0")
        air = sitk.GetImageFromArray(np.where(sitk.GetArrayFromImage(img) < 0, -1000, 50).astype(np.int16))
        air.CopyInformation(img)
        for key in img.GetMetaDataKeys():
            air.SetMetaData(key, img.GetMetaData(key))
        images[0] = air
        lesion["point_lps"] = [-10.0, -10.0, -10.0]
    elif case == "nan":
        img = sitk.Cast(scan_image(0, "T0"), sitk.sitkFloat32)
        arr = sitk.GetArrayFromImage(img)
        z, y, x = np.round(img.TransformPhysicalPointToContinuousIndex(CENTRE)).astype(int)[::-1]
        arr[z - 1:z + 2, y - 2:y + 3, x - 2:x + 3] = np.nan  # the lesion's core is NaN
        nan_img = sitk.GetImageFromArray(arr)
        nan_img.CopyInformation(img)
        for key in img.GetMetaDataKeys():
            nan_img.SetMetaData(key, img.GetMetaData(key))
        images[0] = nan_img
    else:
        lesion["truth_label"] = True
    manifest = write_study(tmp_path / "S", lesion=lesion, images=images)
    assert_refused(capsys, tmp_path, "track", manifest, "--out", tmp_path / "out", *TRACK,
                   words=("L1" if case != "truth_true" else "truth_label",))
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- OUT and options


def test_bad_out_and_unknown_options_fail_before_any_work(tmp_path, study, capsys):
    fx.ShiftRegistration.calls.clear()
    cases = [(["--out", "/proc/linguine_out"], 1, "/proc"),
             (["--out", tmp_path / "o", "--registration-option", "typo=1"], 2, "typo"),
             (["--out", tmp_path / "o", "--segmentation-option", "nope=2"], 2, "nope")]
    before = snapshot(tmp_path)
    with pytest.raises(SystemExit):  # an empty --out: argparse exits, main returns no code
        run(capsys, "track", study, "--out", "", *TRACK)
    for extra, want, word in cases:
        assert_refused(capsys, tmp_path, "track", study, *extra, *TRACK, words=(word,), code=want)
    assert fx.ShiftRegistration.calls == []
    assert snapshot(tmp_path) == before


# ----------------------------------------------------------------------------- batch, evaluate, report


def test_batch_refusals_write_nothing(tmp_path, capsys):
    ds = tmp_path / "ds"
    write_study(ds / "P_A", "P_A")
    (tmp_path / "empty").mkdir()
    cases = [(["batch", tmp_path / "empty", "--out", tmp_path / "o1"], 2),
             (["batch", ds, "--out", tmp_path / "o2", "--scheduler", "garbage"], 2),
             (["batch", ds, "--out", tmp_path / "o3", "--scheduler", "tcp://127.0.0.1:9"], 1)]
    for argv, want in cases:
        assert_refused(capsys, tmp_path, *argv, *TRACK, code=want)


def test_batch_settings_refusal_writes_nothing(tmp_path, capsys):
    ds = tmp_path / "ds"
    write_study(ds / "P_A", "P_A", truth=True)
    out = tmp_path / "out"
    assert run(capsys, "batch", ds, "--out", out, *TRACK)[0] == 0
    for extra in (["--boost"], ["--source", "latest"]):
        assert_refused(capsys, tmp_path, "batch", ds, "--out", out, *TRACK, *extra, words=("another configuration",))


def test_evaluate_and_report_on_bad_folders_are_clean_errors(tmp_path, study, capsys):
    track_out = tmp_path / "track_out"
    assert run(capsys, "track", study, "--out", track_out, *TRACK)[0] == 0
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "batch.json").write_text("{not json")
    (garbage / "failures.csv").write_bytes(b"\xff\xfe\x00garbage")
    for argv in (["report", track_out], ["report", garbage], ["evaluate", track_out], ["evaluate", garbage]):
        assert_refused(capsys, tmp_path, *argv)


def test_report_replaces_only_its_own_file(tmp_path, capsys):
    ds = tmp_path / "ds"
    write_study(ds / "P_A", "P_A")
    out = tmp_path / "out"
    assert run(capsys, "batch", ds, "--out", out, *TRACK)[0] == 0
    (tmp_path / "mine.html").write_text("<html>my page</html>")
    assert_refused(capsys, tmp_path, "report", out, "--html", tmp_path / "mine.html", words=("not a LinGuinE report",))
    assert run(capsys, "report", out)[0] == 0
    assert run(capsys, "report", out)[0] == 0  # its own report: replaced


def test_unicode_batch_with_a_failing_study(tmp_path, capsys):
    ds = tmp_path / "ds"
    write_study(ds / "a", "Müller, Jürgen")
    write_study(ds / "b", "Şahin/İ", lesion={"id": "L1", "scan": "T0", "point_lps": [-10.0, -10.0, -10.0]})
    out = tmp_path / "out"
    before = snapshot(tmp_path)
    code, err = run(capsys, "batch", ds, "--out", out, *TRACK)
    assert code == 1, err
    assert snapshot(tmp_path, exclude=out) == before
    failures = (out / "failures.csv").read_text(encoding="utf-8")
    assert "Şahin/İ" in failures and "nothing could be segmented" in failures
    assert (out / "Müller, Jürgen" / "run.json").is_file()
    assert run(capsys, "evaluate", out)[0] in (0, 2)  # no truth labels: nothing to score, no traceback
