"""Files the user wrote or edited inside LinGuinE's outputs are never replaced, and hand edits are errors.

The real CLI in temporary folders (test backends, milliseconds per study): ``evaluate`` keeps a
table it did not write, a re-run of ``track`` keeps a file edited since the last run, and
``evaluate`` names the line a user appended to a trajectory. Each case failed before the fix.
"""

from __future__ import annotations

import json

from safety_fixtures import TRACK, snapshot, write_study
from test_safety_cli import assert_one_line, run

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
        before = snapshot(tmp_path)
        code, err = run(capsys, "evaluate", out)
        assert code == 2, err
        assert_one_line(err, name, "not a LinGuinE evaluation table")
        assert snapshot(tmp_path) == before
        mine.unlink()
    assert run(capsys, "evaluate", out)[0] == 0
    assert run(capsys, "evaluate", out)[0] == 0  # its own tables: replaced
    assert (out / "evaluation_summary.csv").read_text(encoding="utf-8").startswith("dataset,configuration,pairs")


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
        before = snapshot(tmp_path)
        code, err = run(capsys, "track", study, "--out", out, *TRACK)
        assert code == 2, err
        assert_one_line(err, name, "changed", "another --out")
        assert snapshot(tmp_path) == before
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


def test_evaluate_names_a_hand_edited_trajectory_line(tmp_path, capsys):
    out = _batch(tmp_path, capsys)
    table = out / "P_A" / "trajectory.csv"
    lines = table.read_text(encoding="utf-8").count("\n")
    with table.open("a", encoding="utf-8") as fh:
        fh.write("# reviewed by Dr X\n")
    before = snapshot(tmp_path)
    code, err = run(capsys, "evaluate", out)
    assert code == 2, err
    assert_one_line(err, "trajectory.csv", f"line {lines + 1}")
    assert snapshot(tmp_path) == before
