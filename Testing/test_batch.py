"""Batch runs end to end on tiny cube studies with known truth: metrics, resume, failures, Dask."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import engine_fixtures as fx  # registers the deterministic test backends
import numpy as np
import pytest
import SimpleITK as sitk

from LinGuinELib.batch.dataset import load_dataset
from LinGuinELib.batch.runner import read_failures, run_batch
from LinGuinELib.cli.main import main
from LinGuinELib.config import TrackingConfig
from LinGuinELib.evaluation.evaluate import read_table
from LinGuinELib.outputs.safety import MARKER

REPO = Path(__file__).resolve().parents[1]
SIZE_XYZ = (32, 32, 16)
SPACING = (1.0, 1.0, 2.0)
ORIGIN = (-16.0, -16.0, -16.0)
# Two cubes (z, y, x index of the low corner on scan T0, side in voxels); lesion 2 vanishes on T3.
CUBES = [((5, 8, 8), 6), ((8, 20, 20), 4)]
SHIFTS_VOX = [(0, 0, 0), (1, 2, -1), (0, -2, 2), (-1, 1, 1)]  # per scan (z, y, x) voxels
TRACK_ARGS = ["--registration", "test-shift", "--segmentation", "test-threshold"]


def _cube_mask(lo, side, shift):
    m = np.zeros(SIZE_XYZ[::-1], bool)
    z, y, x = (a + b for a, b in zip(lo, shift))
    m[z : z + side, y : y + side, x : x + side] = True
    return m


def _image(arr, dtype, shift_vox=None, scan_id=None) -> sitk.Image:
    img = sitk.GetImageFromArray(arr.astype(dtype))
    img.SetSpacing(SPACING)
    img.SetOrigin(ORIGIN)
    if shift_vox is not None:
        shift_lps = [shift_vox[2] * SPACING[0], shift_vox[1] * SPACING[1], shift_vox[0] * SPACING[2]]
        img.SetMetaData(fx.SHIFT_KEY, json.dumps(shift_lps))
        img.SetMetaData("id", scan_id)
    return img


def write_cube_study(folder: Path, patient_id: str = "P1", truth_offset_x: int = 1,
                     broken: bool = False) -> Path:
    """Four scans, two bright cubes moving by whole voxels, truth labelmaps per scan.

    The truth of lesion 1 on T2 is the cube moved ``truth_offset_x`` voxels along x, so the
    exact metrics there are known; elsewhere the truth is the bright cube itself.
    """
    folder.mkdir(parents=True, exist_ok=True)
    scans = []
    for k, shift in enumerate(SHIFTS_VOX):
        sid = f"T{k}"
        arr = np.full(SIZE_XYZ[::-1], -800, np.int16)
        truth = np.zeros(SIZE_XYZ[::-1], np.uint8)
        for j, (lo, side) in enumerate(CUBES, start=1):
            if j == 2 and k == 3:
                continue  # disappeared
            arr[_cube_mask(lo, side, shift)] = 50
            t_shift = (shift[0], shift[1], shift[2] + (truth_offset_x if (j == 1 and k == 2) else 0))
            truth[_cube_mask(lo, side, t_shift)] = j
        sitk.WriteImage(_image(arr, np.int16, shift, sid), str(folder / f"{sid}.mha"))
        sitk.WriteImage(_image(truth, np.uint8), str(folder / f"{sid}_truth.nii.gz"))
        scans.append({"id": sid, "image": f"{sid}.mha" if not (broken and k == 2) else "nope.mha",
                      "timepoint": f"week_{6 * k}", "label": f"{sid}_truth.nii.gz"})
    ref = _image(np.zeros(SIZE_XYZ[::-1]), np.uint8)
    lesions = []
    for j, (lo, side) in enumerate(CUBES, start=1):
        centre_zyx = np.array(lo, float) + (side - 1) / 2.0
        centre_lps = ref.TransformContinuousIndexToPhysicalPoint(centre_zyx[::-1].tolist())
        lesions.append({"id": f"L{j}", "scan": "T0", "point_lps": list(centre_lps),
                        "truth_label": j})
    path = folder / "STUDY.json"
    path.write_text(json.dumps({"patient_id": patient_id, "scans": scans, "lesions": lesions}))
    return path


@pytest.fixture
def dataset(tmp_path):
    ds = tmp_path / "ds"
    write_cube_study(ds / "p1", "P1")
    write_cube_study(ds / "p2", "P2", truth_offset_x=0)
    write_cube_study(ds / "p3", "P3", broken=True)
    return ds


def _row(rows, pid, lesion, scan):
    (r,) = [r for r in rows if (r["patient_id"], r["lesion"], r["scan"]) == (pid, lesion, scan)]
    return r


def test_batch_then_evaluate_gives_expected_metrics(dataset, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["-q", "batch", str(dataset), "--out", str(out), *TRACK_ARGS])
    assert code == 1  # P3 failed, the others ran
    failures = read_failures(out)
    assert list(failures) == ["P3"] and "nope.mha" in failures["P3"]["message"]
    assert (out / "P1" / "run.json").is_file() and (out / "P2" / "run.json").is_file()
    assert main(["-q", "evaluate", str(out)]) == 0
    rows = read_table(out / "evaluation.csv")
    assert len(rows) == 2 * 2 * 4  # every (lesion, scan) of P1 and P2, source rows included
    r = _row(rows, "P1", "L1", "T2")
    assert r["dice"] == pytest.approx(5 / 6)  # 6x6x6 cube against itself moved 1 voxel
    assert r["centre_distance_mm"] == pytest.approx(1.0)
    assert r["hd95_mm"] == pytest.approx(1.0)
    assert r["assd_mm"] == pytest.approx(13 / 38)  # 2 x 52 of 2 x 152 surface voxels at 1 mm
    assert r["outcome"] == "hit" and r["point_in_truth"] is True
    assert r["weeks_from_source"] == pytest.approx(12.0)
    gone = _row(rows, "P1", "L2", "T3")
    assert gone["outcome"] == "correct_absent" and gone["success"] is True
    assert math.isnan(gone["dice"])
    for pid, lesion, scan in [("P1", "L1", "T1"), ("P2", "L1", "T2"), ("P2", "L2", "T2")]:
        assert _row(rows, pid, lesion, scan)["dice"] == pytest.approx(1.0)
    summary = read_table(out / "evaluation_summary.csv")
    assert len(summary) == 1 and summary[0]["configuration"] == "test-shift+test-threshold/direct"
    assert float(summary[0]["tracking_success_rate"]) == 1.0
    assert int(summary[0]["pairs"]) == 12


def test_interrupted_batch_resumes_without_loss_or_duplicates(dataset, tmp_path):
    out = tmp_path / "out"
    jobs = [j for j in load_dataset(dataset, out / "_manifests") if j.patient_id != "P3"]
    config = TrackingConfig(registration="test-shift", segmentation="test-threshold")

    def interrupt(outcome):
        raise KeyboardInterrupt  # Ctrl-C right after the first study finished

    with pytest.raises(KeyboardInterrupt):
        run_batch(jobs, out, config, show_progress=False, on_outcome=interrupt)
    done = [p.name for p in out.iterdir() if (p / "run.json").is_file()]
    assert done == ["P1"]
    first_mtime = (out / "P1" / "run.json").stat().st_mtime_ns
    # what an attempt killed mid-write leaves: its private folder (LinGuinE's marker inside)
    debris = out / ".P2.partial-abc123"
    (debris / "labels").mkdir(parents=True)
    (debris / MARKER).write_text('{"kind": "track"}')
    report = run_batch(jobs, out, config, show_progress=False)
    assert [(o.patient_id, o.status) for o in report.outcomes] == [("P1", "skipped"), ("P2", "done")]
    assert (out / "P1" / "run.json").stat().st_mtime_ns == first_mtime
    assert sorted(p.name for p in out.iterdir() if p.is_dir() and p.name != "_manifests") == [
        "P1", "P2"]
    assert len(list((out / "P2" / "labels").iterdir())) == 4
    assert not debris.exists()


def _finished(out: Path) -> set[str]:
    """Patients whose output is in place (a hidden ``.<id>.partial-*`` folder is still being written)."""
    if not out.exists():
        return set()
    return {p.name for p in out.iterdir() if not p.name.startswith(".") and (p / "run.json").is_file()}


@pytest.mark.slow
def test_killed_batch_process_resumes(tmp_path):
    ds = tmp_path / "ds"
    for k in range(6):
        write_cube_study(ds / f"p{k}", f"P{k}")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "Testing")])}
    cmd = [sys.executable, "-m", "LinGuinELib.cli.main", "-q", "batch", str(ds), "--out", str(out),
           "--plugin", "engine_fixtures", *TRACK_ARGS]
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path)
    deadline = time.time() + 60
    while not _finished(out) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    before = _finished(out)
    assert before, "the batch finished no study before the kill"
    mtimes = {p: (out / p / "run.json").stat().st_mtime_ns for p in before}
    assert subprocess.run(cmd, env=env, cwd=tmp_path).returncode == 0
    assert _finished(out) == {f"P{k}" for k in range(6)}
    assert all((out / p / "run.json").stat().st_mtime_ns == t for p, t in mtimes.items())
    assert not [p for p in out.iterdir() if p.name.startswith(".") and p.name != MARKER]  # no partial folders


def _metric_rows(out: Path) -> list[tuple]:
    assert main(["-q", "evaluate", str(out), "--name", "x"]) == 0
    keys = ("patient_id", "lesion", "scan", "dice", "centre_distance_mm", "hd95_mm", "outcome")
    return sorted(tuple(str(r[k]) for k in keys) for r in read_table(out / "evaluation.csv"))


def _labels(out: Path, pid: str) -> list[np.ndarray]:
    return [sitk.GetArrayFromImage(sitk.ReadImage(str(out / pid / "labels" / f"T{k}.nii.gz")))
            for k in range(4)]


def test_dask_and_process_pool_match_serial(tmp_path):
    distributed = pytest.importorskip("distributed")
    ds = tmp_path / "ds"
    for k in range(3):
        write_cube_study(ds / f"p{k}", f"P{k}", truth_offset_x=k)
    serial, dask_out, pool_out = tmp_path / "serial", tmp_path / "dask", tmp_path / "pool"
    assert main(["-q", "batch", str(ds), "--out", str(serial), *TRACK_ARGS]) == 0
    with distributed.LocalCluster(processes=False, n_workers=2, threads_per_worker=1,
                                  dashboard_address=None) as cluster:
        assert main(["-q", "batch", str(ds), "--out", str(dask_out), "--scheduler",
                     cluster.scheduler_address, *TRACK_ARGS]) == 0
    assert main(["-q", "batch", str(ds), "--out", str(pool_out), "--workers", "2",
                 "--plugin", "engine_fixtures", *TRACK_ARGS]) == 0
    expected = _metric_rows(serial)
    assert _metric_rows(dask_out) == expected
    assert _metric_rows(pool_out) == expected
    for pid in ("P0", "P1", "P2"):
        for a, b, c in zip(_labels(serial, pid), _labels(dask_out, pid), _labels(pool_out, pid)):
            assert np.array_equal(a, b) and np.array_equal(a, c)


def test_batch_refuses_other_configuration_in_same_out(dataset, tmp_path, capsys):
    out = tmp_path / "out"
    main(["-q", "batch", str(dataset / "p1"), "--out", str(out), *TRACK_ARGS])
    code = main(["-q", "batch", str(dataset / "p1"), "--out", str(out), *TRACK_ARGS, "--boost"])
    assert code == 2 and "another configuration" in capsys.readouterr().err


def test_source_choice_reprompts_from_truth(dataset, tmp_path):
    out = tmp_path / "latest"
    assert main(["-q", "batch", str(dataset / "p1"), "--out", str(out), "--source", "latest",
                 *TRACK_ARGS]) == 0
    run = json.loads((out / "P1" / "run.json").read_text())
    assert [les["scan"] for les in run["lesions"]] == ["T3"]  # lesion 2 is gone on T3
    assert main(["-q", "evaluate", str(out)]) == 0
    rows = read_table(out / "evaluation.csv")
    assert {r["configuration"] for r in rows} == {"test-shift+test-threshold/direct@latest"}
    r = _row(rows, "P1", "L1", "T0")
    assert r["weeks_from_source"] == pytest.approx(-18.0) and r["dice"] == pytest.approx(1.0)


def test_dataset_folder_ignores_other_json_and_isolates_broken_manifests(dataset, tmp_path):
    (dataset / "p1" / "truth.json").write_text(json.dumps({"scans": [{"id": "T0", "date": "x"}]}))
    (dataset / "notes.json").write_text("[1, 2, 3]")
    (dataset / "p4").mkdir()
    (dataset / "p4" / "STUDY.json").write_text("{not json")
    jobs = load_dataset(dataset, tmp_path / "work")
    assert [(j.patient_id, j.error is None) for j in jobs] == [
        ("P1", True), ("P2", True), ("P3", True), ("p4", False)]
    report = run_batch(jobs, tmp_path / "out", TrackingConfig(registration="test-shift",
                       segmentation="test-threshold"), show_progress=False)
    assert {o.patient_id for o in report.failed} == {"P3", "p4"}
    assert report.count("done") == 2


def test_in_memory_result_scores_like_written_outputs(tmp_path):
    from LinGuinELib.evaluation.evaluate import evaluate_result, evaluate_study_output
    from LinGuinELib.pipeline import run_study
    from LinGuinELib.study.manifest import load_manifest

    manifest = write_cube_study(tmp_path / "p1", "P1", truth_offset_x=2)
    config = TrackingConfig(registration="test-shift", segmentation="test-threshold")
    result = run_study(manifest, tmp_path / "out", config)
    memory = evaluate_result(result, "d", "c")
    files = evaluate_study_output(load_manifest(manifest), tmp_path / "out", "d", "c")
    keys = ("lesion", "scan", "status", "outcome", "dice", "hd95_mm", "point_in_truth")
    assert [tuple(str(r[k]) for k in keys) for r in memory] == [
        tuple(str(r[k]) for k in keys) for r in files]
    r = _row(memory, "P1", "L1", "T2")
    assert r["dice"] == pytest.approx(4 / 6) and r["centre_distance_mm"] == pytest.approx(2.0)
