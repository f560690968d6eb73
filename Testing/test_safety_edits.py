"""Files the user wrote or edited inside LinGuinE's outputs are never replaced, and hand edits are errors.

The real CLI in temporary folders (test backends, milliseconds per study): ``evaluate`` keeps a
table it did not write, a re-run of ``track`` keeps a file edited since the last run, and
``evaluate`` names the line a user appended to a trajectory. Each case failed before the fix.
"""

from __future__ import annotations

import json

import pytest
from safety_fixtures import TRACK, assert_refused, run, write_study

from LinGuinELib.outputs.safety import MARKER


def _batch(tmp_path, capsys):
    ds = tmp_path / "ds"
    write_study(ds / "P_A", "P_A", truth=True)
    out = tmp_path / "out"
    code, err = run(capsys, "batch", ds, "--out", out, *TRACK)
    assert code == 0, err
    return out


def test_evaluate_refuses_to_replace_tables_it_did_not_write(tmp_path, capsys):
    out = _batch(tmp_path, capsys)
    for name in ("evaluation.csv", "evaluation_summary.csv"):
        mine = out / name
        mine.write_text("patient,note\nP1,x\n", encoding="utf-8")
        assert_refused(capsys, tmp_path, "evaluate", out, words=(name, "not a LinGuinE evaluation table"))
        mine.unlink()
    assert run(capsys, "evaluate", out)[0] == 0
    assert run(capsys, "evaluate", out)[0] == 0  # its own tables: replaced
    assert (out / "evaluation_summary.csv").read_text(encoding="utf-8").startswith("dataset,configuration,pairs")


def test_evaluate_and_report_keep_their_own_files_once_edited(tmp_path, capsys):
    """A table or report LinGuinE wrote, then annotated by the user (header kept), is not replaced."""
    out = _batch(tmp_path, capsys)
    assert run(capsys, "evaluate", out)[0] == 0
    assert run(capsys, "report", out)[0] == 0
    for argv, name in ((["evaluate", out], "evaluation.csv"), (["report", out], "report.html"),
                       (["report", out], "report_analyses.json")):
        mine = out / name
        kept = mine.read_bytes()
        mine.write_bytes(kept + b"\n")
        assert_refused(capsys, tmp_path, *argv, words=(name, "changed after LinGuinE wrote it"))
        mine.write_bytes(kept)
        assert run(capsys, *argv)[0] == 0  # as LinGuinE wrote it: replaced


def test_track_rerun_keeps_files_edited_since_the_last_run(tmp_path, capsys):
    study = write_study(tmp_path / "S")
    out = tmp_path / "out"
    assert run(capsys, "track", study, "--out", out, *TRACK)[0] == 0
    marker = json.loads((out / MARKER).read_text(encoding="utf-8"))
    assert set(marker["digests"]) == set(marker["files"]) - {"labels", "segmentations"}
    assert run(capsys, "track", study, "--out", out, *TRACK)[0] == 0  # unchanged: replaced
    edits = {"trajectory.csv": lambda p: p.write_text(p.read_text(encoding="utf-8") + "# reviewed\n",
                                                        encoding="utf-8"),
             "segmentations/T1.seg.nrrd": lambda p: p.write_bytes(p.read_bytes()[:-1] + b"\x01")}  # same size
    for name, edit in edits.items():
        edit(out / name)
        assert_refused(capsys, tmp_path, "track", study, "--out", out, *TRACK, words=(name, "changed", "another --out"))
        (out / name).rename(tmp_path / "kept")  # moved away: the next run may proceed
        assert run(capsys, "track", study, "--out", out, *TRACK)[0] == 0
        (tmp_path / "kept").unlink()


def test_markers_without_digests_keep_the_previous_behaviour(tmp_path, capsys):
    """Outputs of LinGuinE before digests were recorded list names only: replaced as before."""
    study = write_study(tmp_path / "S")
    out = tmp_path / "out"
    assert run(capsys, "track", study, "--out", out, *TRACK)[0] == 0
    marker = json.loads((out / MARKER).read_text(encoding="utf-8"))
    del marker["digests"]
    (out / MARKER).write_text(json.dumps(marker), encoding="utf-8")
    (out / "trajectory.csv").write_text("edited", encoding="utf-8")
    assert run(capsys, "track", study, "--out", out, *TRACK)[0] == 0
    assert (out / "trajectory.csv").read_text(encoding="utf-8").startswith("lesion,")


@pytest.mark.parametrize("command", ["evaluate", "report"])
def test_evaluate_and_report_name_a_hand_edited_trajectory_line(tmp_path, capsys, command):
    """report used to warn, leave the study out and exit 0: a report that could not be made is not a success."""
    out = _batch(tmp_path, capsys)
    table = out / "P_A" / "trajectory.csv"
    lines = table.read_text(encoding="utf-8").count("\n")
    with table.open("a", encoding="utf-8") as fh:
        fh.write("# reviewed by Dr X\n")
    assert_refused(capsys, tmp_path, command, out, words=("trajectory.csv", f"line {lines + 1}"))


def test_report_on_a_trajectory_edited_after_evaluate_fails_too(tmp_path, capsys):
    """evaluation.csv already there: the per-study tables are still read, and a bad line still fails."""
    out = _batch(tmp_path, capsys)
    assert run(capsys, "evaluate", out)[0] == 0
    table = out / "P_A" / "trajectory.csv"
    table.write_text(table.read_text(encoding="utf-8") + "L1,T9\n", encoding="utf-8")
    assert_refused(capsys, tmp_path, "report", out, words=("trajectory.csv", "line"))


def test_report_recognises_its_analyses_file_by_a_key_not_by_its_layout(tmp_path, capsys):
    out = _batch(tmp_path, capsys)
    html = tmp_path / "rep" / "r.html"  # outside any marked folder: recognised by its content alone
    assert run(capsys, "report", out, "--html", html)[0] == 0
    analyses = html.with_name("r_analyses.json")
    data = json.loads(analyses.read_text(encoding="utf-8"))
    assert next(iter(data)) == "format"
    analyses.write_text(json.dumps(data), encoding="utf-8")  # another layout (one line)
    assert run(capsys, "report", out, "--html", html)[0] == 0
    analyses.write_text('{\n  "summary": []\n}', encoding="utf-8")  # the previous release's file
    assert run(capsys, "report", out, "--html", html)[0] == 0
    analyses.write_text('{"summary": "my notes"}', encoding="utf-8")  # a file of the user's
    assert_refused(capsys, tmp_path, "report", out, "--html", html,
                   words=("r_analyses.json", "not LinGuinE's analyses file"))


def test_report_records_what_it_wrote_once(tmp_path, capsys, monkeypatch):
    """The marker is read and rewritten once per folder, not once per file (evaluation, page, analyses)."""
    import LinGuinELib.evaluation.report as report

    out = _batch(tmp_path, capsys)
    calls = []
    real = report.record_written
    monkeypatch.setattr(report, "record_written",
                        lambda folder, names: calls.append(list(names)) or real(folder, names))
    assert run(capsys, "report", out)[0] == 0
    assert sorted(map(sorted, calls)) == [["evaluation.csv", "report.html", "report_analyses.json"]]
    digests = json.loads((out / MARKER).read_text(encoding="utf-8"))["digests"]
    assert {"evaluation.csv", "report.html", "report_analyses.json"} <= set(digests)


def test_report_refuses_one_folder_given_twice(tmp_path, capsys):
    """Given twice (or once more through a symlink) its rows were counted twice or compared with themselves."""
    out = _batch(tmp_path, capsys)
    (tmp_path / "again").symlink_to(out, target_is_directory=True)
    for second in (out, tmp_path / "again"):
        assert_refused(capsys, tmp_path, "report", out, second, "--html", tmp_path / "r.html",
                       words=(str(second), "given twice"))


def test_a_hand_edited_batch_record_is_one_line_not_an_internal_error(tmp_path, capsys):
    """A study entry without its folder gave 'internal error: KeyError' (exit 1) in evaluate and report."""
    out = _batch(tmp_path, capsys)
    info = json.loads((out / "batch.json").read_text(encoding="utf-8"))
    del info["studies"]["P_A"]["folder"]
    (out / "batch.json").write_text(json.dumps(info), encoding="utf-8")
    for command in ("evaluate", "report"):
        assert_refused(capsys, tmp_path, command, out, words=("batch.json", "P_A", "folder"))
