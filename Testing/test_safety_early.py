"""Refused before the work, not after it: a click where the segmenter finds nothing (before any
registration), and an OUT that cannot be written (before any image is read). One line, exit 2,
nothing written. Each case failed before the fix.
"""

from __future__ import annotations

import csv
import ctypes
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import engine_fixtures as fx
import numpy as np
import pytest
import SimpleITK as sitk
from safety_fixtures import CENTRE, TRACK, assert_one_line, assert_refused, run, scan_image, snapshot, write_study
from test_safety_inputs import CODE

from LinGuinELib.cli.main import main
from LinGuinELib.config import TrackingConfig
from LinGuinELib.errors import Cancelled, InputError
from LinGuinELib.measures.trajectory import trajectory_rows
from LinGuinELib.propagation.engine import track
from LinGuinELib.session import StudySession
from LinGuinELib.study.manifest import load_manifest

WALL_CLICK_LPS = [-10.0, 20.0, 10.0]  # inside the wall below, 22 mm from the ball's edge
REAL_SEGMENTER = ["--registration", "test-shift", "--segmentation", "classical"]


def wall_scan(k: int, scan_id: str) -> sitk.Image:
    """``scan_image`` with a chest wall: uniform soft tissue (40 HU) at x < 0 mm LPS, air outside
    it. The classical segmenter finds nothing at a click inside it; the click is not in air."""
    image = scan_image(k, scan_id)
    arr = sitk.GetArrayFromImage(image)
    arr[:, :, 2:10] = 40
    arr[:, :, :2] = -1000
    out = sitk.GetImageFromArray(arr)
    out.CopyInformation(image)
    for key in image.GetMetaDataKeys():
        out.SetMetaData(key, image.GetMetaData(key))
    return out


def wall_study(folder):
    lesion = {"id": "L_wall", "scan": "T1", "point_lps": WALL_CLICK_LPS}
    return write_study(folder, images={k: wall_scan(k, sid) for k, sid in enumerate(("T0", "T1", "T2"))},
                       lesion=lesion)


@pytest.mark.parametrize("workers", [0, None], ids=["serial", "threads"])
def test_an_empty_prompt_segment_is_refused_before_the_registrations(tmp_path, workers):
    """Before: every pair's registration was submitted first and the prompt segmented after (the
    serial run registered both pairs, then refused). With threads the first pair registers on the
    core the prompt's segmentation leaves idle; the others are never started."""
    study = load_manifest(wall_study(tmp_path / "S"))
    fx.ShiftRegistration.calls.clear()
    with pytest.raises(InputError) as caught:
        track(study, TrackingConfig(registration="test-shift", segmentation="classical"), workers=workers)
    assert len(fx.ShiftRegistration.calls) <= (0 if workers == 0 else 1)
    message = str(caught.value)
    assert message.startswith("lesion 'L_wall': nothing could be segmented at its prompt")
    assert "on scan 'T1'; click inside the lesion" in message and "\n" not in message


def two_lesion_study(folder, wall_too: bool = True) -> Path:
    """``wall_study`` plus a lesion clicked on the ball (found), or a second click on the wall."""
    manifest = wall_study(folder)
    doc = json.loads(manifest.read_text(encoding="utf-8"))
    second = {"id": "L_ball", "scan": "T0", "point_lps": list(CENTRE)}
    doc["lesions"].append(second if wall_too else {**doc["lesions"][0], "id": "L_wall2"})
    manifest.write_text(json.dumps(doc), encoding="utf-8")
    return manifest


def test_a_study_whose_every_click_gives_nothing_is_refused_naming_the_first(tmp_path):
    study = load_manifest(two_lesion_study(tmp_path / "S", wall_too=False))
    with pytest.raises(InputError) as caught:
        track(study, TrackingConfig(registration="test-shift", segmentation="classical"), workers=0)
    message = str(caught.value)
    assert message.startswith("lesion 'L_wall': nothing could be segmented at its prompt")
    assert message.endswith("(and at the prompts of 1 other lesion(s))") and "\n" not in message


def test_one_empty_click_does_not_cost_the_other_lesions(tmp_path, capsys):
    """Before: the whole study was refused (exit 2) for one lesion's empty click. Now the ball is
    tracked; the wall lesion's prompt is not measured (no 0 mL baseline reading CR then PD) and
    every one of its rows is flagged."""
    out = tmp_path / "out"
    code, err = run(capsys, "track", two_lesion_study(tmp_path / "S"), "--out", out, *REAL_SEGMENTER)
    assert code == 0, err
    rows = list(csv.DictReader((out / "trajectory.csv").open(encoding="utf-8")))
    ball = [r for r in rows if r["lesion"] == "L_ball"]
    assert [r["status"] for r in ball] == ["prompt", "found", "found"] and all(float(r["volume_ml"]) > 0 for r in ball)
    wall = {r["scan"]: r for r in rows if r["lesion"] == "L_wall"}
    assert wall["T1"]["status"] == "prompt" and wall["T1"]["volume_ml"] == "" and wall["T1"]["response"] == "NE"
    assert wall["T1"]["review_reasons"] == "empty_prompt"
    for scan in ("T0", "T2"):
        assert wall[scan]["review"] == "true" and "no_baseline" in wall[scan]["review_reasons"], wall[scan]
        assert "could not be checked against the lesion" in wall[scan]["review_details"]
    # no row is vouched for, so none is a baseline: before, a follow-up not found there read as a
    # 0 mL baseline and whatever was found later as PD
    assert all(r["response"] == "NE" and r["change_from_baseline_pct"] == "" for r in wall.values()), wall


def _session_lesions(tmp_path):
    study = load_manifest(two_lesion_study(tmp_path / "S"))
    wall, ball = study.lesions
    return study, wall, ball


def test_a_refused_reclick_leaves_the_session_as_it_was(tmp_path):
    """A tracked lesion whose click is moved onto nothing: that call is refused, and the session
    still answers with the lesion as it was (before, the refused call had already replaced its
    prompt, then dropped it: every later answer raised KeyError, and the Slicer study worker died)."""
    study, _, ball = _session_lesions(tmp_path)
    moved = dataclasses.replace(ball, points_lps=np.array([WALL_CLICK_LPS], float))
    with StudySession(study, TrackingConfig(registration="test-shift", segmentation="classical"), workers=0) as s:
        before = trajectory_rows(s.add_lesion(ball))
        with pytest.raises(InputError, match="nothing could be segmented"):
            s.add_lesion(moved)
        assert trajectory_rows(s.result()) == before
        assert trajectory_rows(s.track_lesions([ball])) == before and s.last_reused == ["L_ball"]


def test_an_empty_click_beside_a_reused_one_is_tracked_as_in_a_fresh_run(tmp_path):
    """The panel sends every lesion each time; a lesion tracked before is reused. Whether an empty
    click is refused must not depend on that history (before: refused after [ball], tracked fresh)."""
    study, wall, ball = _session_lesions(tmp_path)
    config = TrackingConfig(registration="test-shift", segmentation="classical")
    with StudySession(study, config, workers=0) as s:
        fresh = trajectory_rows(s.track_lesions([ball, wall]))
    with StudySession(study, config, workers=0) as s:
        s.track_lesions([ball])
        assert trajectory_rows(s.track_lesions([ball, wall])) == fresh and s.last_reused == ["L_ball"]
        # ... and a request of the empty click alone is refused, reused or not (the review found it
        # accepted once the ball was deleted from the list), as add_lesion refuses it
        with pytest.raises(InputError, match="lesion 'L_wall': nothing could be segmented"):
            s.track_lesions([wall])
        with pytest.raises(InputError, match="lesion 'L_other': nothing could be segmented"):
            s.add_lesion(dataclasses.replace(wall, id="L_other"))
        assert trajectory_rows(s.result()) == fresh


@pytest.mark.parametrize("mode", ["direct", "chain"])
def test_an_empty_clicks_lesion_is_flagged_on_every_row_in_both_modes(tmp_path, mode):
    """Also when the table is rebuilt without the engine's findings (the Slicer module's
    re-measure of edited segments keeps no finding): the rows decide it themselves."""
    study = load_manifest(two_lesion_study(tmp_path / "S"))
    result = track(study, TrackingConfig(registration="test-shift", segmentation="classical", mode=mode), workers=0)
    for res in result.results.values():
        res.findings = []
    wall = {r["scan"]: r for r in trajectory_rows(result) if r["lesion"] == "L_wall"}
    assert wall["T1"]["review_reasons"] == "empty_prompt" and wall["T1"]["volume_ml"] is None
    assert all(r["review_reasons"] == "no_baseline" and r["response"] == "NE" for s, r in wall.items() if s != "T1")


def test_a_call_cancelled_half_way_leaves_no_lesion_half_tracked(tmp_path):
    """Before, the prompts were stored and the session still listed the lesion as it had been:
    asked again with the old click, it was "reused" with a mixed trajectory."""
    study, _, ball = _session_lesions(tmp_path)
    config = TrackingConfig(registration="test-shift", segmentation="classical")
    moved = dataclasses.replace(ball, points_lps=ball.points_lps + 1.0)
    with StudySession(study, config, workers=0) as s:
        before = trajectory_rows(s.add_lesion(ball))
        steps = []
        with pytest.raises(Cancelled):
            s.track_lesions([moved], cancel=lambda: len(steps) > 0,
                            progress=lambda e: steps.append(e) if e.stage == "segment" else None)
        assert s.lesions == [] and ("L_ball", "T1") not in s._run.results
        assert trajectory_rows(s.track_lesions([ball])) == before and s.last_reused == []


def test_a_closed_session_started_again_tracks_its_lesions_anew(tmp_path):
    """Before, the lesions outlived their results: asked again, one was "reused" and raised KeyError."""
    study, _, ball = _session_lesions(tmp_path)
    session = StudySession(study, TrackingConfig(registration="test-shift", segmentation="classical"), workers=0)
    with session:
        before = trajectory_rows(session.add_lesion(ball))
    with session:
        assert trajectory_rows(session.track_lesions([ball])) == before and session.last_reused == []


def test_the_cli_says_so_in_one_line_and_writes_nothing(tmp_path, capsys):
    manifest = wall_study(tmp_path / "S")
    assert_refused(capsys, tmp_path, "track", manifest, "--out", tmp_path / "out", *REAL_SEGMENTER,
                   words=("L_wall", "nothing could be segmented", "T1"))


def test_a_batch_says_how_many_results_need_a_look(tmp_path, capsys):
    """A study whose one click gave nothing now succeeds: the batch's last lines say so, and how many
    results are flagged, so "0 failed" is not read as "all vouched for"."""
    two_lesion_study(tmp_path / "ds" / "S")
    out = tmp_path / "out"
    assert main(["batch", str(tmp_path / "ds"), "--out", str(out), *REAL_SEGMENTER]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-2:]
    rows = csv.DictReader((out / "P_A" / "trajectory.csv").open(encoding="utf-8"))
    flagged = sum(r["review"] == "true" for r in rows)
    assert last[0].startswith(f"  {flagged} (lesion, scan) result(s) flagged for review in 1 study(ies)"), last
    assert last[1].startswith("  1 lesion(s) whose click gave nothing"), last


def test_a_batch_fails_only_that_study(tmp_path, capsys):
    """One lesion on nothing fails its study (listed in failures.csv, exit 1), the others run."""
    ds = tmp_path / "ds"
    wall_study(ds / "bad")
    write_study(ds / "good", "P_good", images={k: wall_scan(k, sid) for k, sid in enumerate(("T0", "T1", "T2"))})
    out = tmp_path / "out"
    code, err = run(capsys, "batch", ds, "--out", out, *REAL_SEGMENTER)
    assert code == 1, err
    failures = (out / "failures.csv").read_text(encoding="utf-8")
    assert "L_wall" in failures and "nothing could be segmented" in failures
    assert (out / "P_good" / "run.json").is_file() and not (out / "P_A").exists()


# ----------------------------------------------------------------------------- OUT not writable

CHILD = """
import contextlib, io, json, os, sys
import engine_fixtures  # the test backends
from LinGuinELib.cli.main import main
if os.access(sys.argv[1], os.W_OK):
    print(json.dumps("permissions not enforced"))
    sys.exit()
said = []
for argv in json.loads(sys.argv[2]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["-q", *argv])
    said.append([code, err.getvalue()])
print(json.dumps(said))
"""


def _without_root_override() -> None:
    """A root test process writes anywhere: its child drops the capabilities that bypass file
    permissions (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH) from its bounding set, lost at exec."""
    if os.geteuid() == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        for cap in (1, 2):
            libc.prctl(24, cap, 0, 0, 0)  # PR_CAPBSET_DROP; a failure shows as writable: skipped


def run_unprivileged(read_only: Path, cases: list[list]) -> list[tuple[int, str]]:
    """``linguine`` on each argv in one child process where ``read_only`` cannot be written."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(CODE), str(Path(__file__).parent)])}
    argv = [sys.executable, "-c", CHILD, str(read_only), json.dumps([[str(a) for a in c] for c in cases])]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, preexec_fn=_without_root_override,
                          timeout=600)
    said = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.stdout.strip() else proc.stderr
    if isinstance(said, str):
        pytest.skip(said)
    return [tuple(s) for s in said]


def test_an_out_that_cannot_be_written_is_one_line_exit_2_before_any_work(tmp_path, capsys):
    """Before: a read-only OUT (or parent) was exit 1; a writable OUT in a read-only folder was
    tracked in full, then failed with 'Permission denied: .../.out.partial-*' (exit 1); `study` searched
    the DICOM folder first; `evaluate` scored every study, then failed the same way, and so did `report`
    on a read-only batch OUT, which it only reads (now it reports, leaving the folder as it was)."""
    study = write_study(tmp_path / "S")
    assert run(capsys, "batch", tmp_path / "S", "--out", tmp_path / "batch", *TRACK)[0] == 0
    locked, locked_out = tmp_path / "locked", tmp_path / "locked_out"
    (locked / "mine").mkdir(parents=True)  # writable itself, but its parent is not: a track OUT is swapped in there
    locked_out.mkdir()
    for folder in (locked, locked_out, tmp_path / "batch"):
        folder.chmod(0o555)
    cases = {("track", "new"): (["track", study, "--out", locked / "new", *TRACK], locked),
             ("track", "read-only"): (["track", study, "--out", locked_out, *TRACK], locked_out),
             ("track", "parent"): (["track", study, "--out", locked / "mine", *TRACK], locked),
             ("batch", "read-only"): (["batch", tmp_path / "S", "--out", locked_out, *TRACK], locked_out),
             ("demo", "new"): (["demo", "--out", locked / "demo"], locked),
             ("study", "new"): (["study", tmp_path / "S", "--out", locked / "study.json"], locked),
             ("evaluate", "read-only"): (["evaluate", tmp_path / "batch"], tmp_path / "batch"),
             ("report", "new"): (["report", tmp_path / "batch", "--html", locked / "r.html"], locked)}
    report = tmp_path / "report" / "r.html"
    before = snapshot(tmp_path)
    try:
        said = run_unprivileged(locked, [argv for argv, _ in cases.values()] + [["report", tmp_path / "batch",
                                                                               "--html", report]])
    finally:
        for folder in (locked, locked_out, tmp_path / "batch"):
            folder.chmod(0o755)
    for (case, (_, folder)), (code, err) in zip(cases.items(), said):
        assert code == 2, (case, err)
        assert_one_line(err, f"'{folder}' is not writable")
    assert said[-1][0] == 0, said[-1][1]
    assert snapshot(tmp_path, exclude=report.parent) == before and report.is_file()
