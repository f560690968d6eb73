"""Tracking in a real child process, as the module's panel runs it (slicer-core; this interpreter
stands in for PythonSlicer): results arrive in the scene, Cancel kills the process tree, a crash
leaves the scene as it was and says why."""

from __future__ import annotations

import os
import sys
import time

import pytest

if not hasattr(sys.modules.get("slicer"), "vtkMRMLScene"):  # conftest imported it if it could
    pytest.skip("slicer-core is not installed (bash scripts/install_slicer_core.sh)", allow_module_level=True)

import numpy as np  # noqa: E402
from child_backends import SHIFTS_ENV, SLEEPER_PID_ENV, write_shifts  # noqa: E402
from slicer_fixtures import segment_array  # noqa: E402

from LinGuinELib.config import TrackingConfig  # noqa: E402
from LinGuinELib.errors import Cancelled  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PLUGINS = ["child_backends"]


def _environment(tmp_path, **extra) -> dict:
    write_shifts(tmp_path / "shifts.json")
    return {"PYTHONPATH": HERE, SHIFTS_ENV: str(tmp_path / "shifts.json"), **extra}


def _scene_counts(scene) -> dict:
    classes = ("vtkMRMLSegmentationNode", "vtkMRMLTableNode", "vtkMRMLPlotChartNode", "vtkMRMLPlotSeriesNode",
               "vtkMRMLSegmentationDisplayNode", "vtkMRMLColorTableNode")
    return {c: scene.GetNumberOfNodesByClass(c) for c in classes} | {"all": scene.GetNumberOfNodes()}


def _wait(job, timeout=120):
    """What the widget's QTimer does: poll until the child has finished."""
    events, deadline = [], time.time() + timeout
    while not job.finished and time.time() < deadline:
        events += job.poll()
        time.sleep(0.05)
    events += job.poll()
    assert job.finished, "the child did not finish"
    return events


def _wait_for_grandchild(job, pid_file, timeout=60) -> int:
    """Poll ``job`` until the never-ending test backend has written its process id; return it."""
    deadline = time.time() + timeout
    while not pid_file.is_file() or not pid_file.read_text():
        assert time.time() < deadline and not job.finished, job.log_tail()
        job.poll()
        time.sleep(0.05)
    return int(pid_file.read_text())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by its parent) counts as gone
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def test_child_tracks_and_results_arrive_in_the_scene(ball_study, tmp_path):
    from LinGuinELogic import LinGuinELogic

    logic = LinGuinELogic(ball_study.scene)
    config = TrackingConfig(registration="slicer-test-known-shift", segmentation="slicer-test-bright")
    prepared = logic.prepare(ball_study.volumes, ball_study.points)
    job = logic.startTracking(prepared, config, _environment(tmp_path), PLUGINS)
    assert job.process.pid != os.getpid()
    events = _wait(job)
    assert job.error is None, job.error
    # Machine-readable progress: stages, lesions and scans, a fraction that ends at 1.
    assert {e.stage for e in events} >= {"load", "register", "segment", "done"}
    assert {e.lesion for e in events if e.stage == "segment"} == {"Nodule_A", "Nodule_B"}
    assert {e.scan for e in events if e.stage == "register"} == {"week_8", "week_16"}
    assert events[-1].stage == "done" and events[-1].fraction == pytest.approx(1.0)
    folder = job.folder
    output = logic.finishTracking(job)
    assert not folder.exists(), "the run's temporary folder is removed"
    # The masks that came back from the child are the balls, voxel for voxel.
    names = [v.GetName() for v in ball_study.volumes]
    for seg, volume in zip(output.segmentationNodes, ball_study.volumes):
        for label, segment_id in (("Nodule A", "Nodule_A"), ("Nodule B", "Nodule_B")):
            mask = segment_array(ball_study.scene, seg, segment_id, volume)
            assert np.array_equal(mask, ball_study.truth[(label, volume.GetName())]), (label, volume.GetName())
    assert output.tableNode.GetTable().GetNumberOfRows() == 2 * len(names)
    assert output.trackingResult.study is prepared.study


def test_batch_track_in_a_child_matches_in_process(ball_study, tmp_path, monkeypatch):
    """``track(childProcess=True)`` waits for the same child; the rows equal the in-process run."""
    from LinGuinELogic import LinGuinELogic
    from LinGuinELogic.tables import table_rows

    for key, value in _environment(tmp_path).items():
        monkeypatch.setenv(key, value)
    logic = LinGuinELogic(ball_study.scene)
    fast = {"registration": "slicer-test-known-shift", "segmentation": "slicer-test-bright"}
    here = logic.track(volumeNodes=ball_study.volumes, promptNode=ball_study.points, **fast)
    seen = []
    there = logic.track(volumeNodes=ball_study.volumes, promptNode=ball_study.points, childProcess=True,
                        plugins=PLUGINS, progress=seen.append, **fast)
    assert seen and seen[-1].stage == "done"
    assert table_rows(there.tableNode) == table_rows(here.tableNode)


def test_cancel_kills_the_process_tree_within_two_seconds(ball_study, tmp_path):
    from LinGuinELogic import LinGuinELogic

    logic = LinGuinELogic(ball_study.scene)
    before = _scene_counts(ball_study.scene)
    prepared = logic.prepare(ball_study.volumes, ball_study.points)
    pid_file = tmp_path / "sleeper.pid"
    config = TrackingConfig(registration="slicer-test-never-ends", segmentation="slicer-test-bright")
    job = logic.startTracking(prepared, config, _environment(tmp_path, **{SLEEPER_PID_ENV: str(pid_file)}),
                              PLUGINS)
    grandchild = _wait_for_grandchild(job, pid_file)
    assert _alive(grandchild) and not job.finished
    started = time.perf_counter()
    job.cancel()
    assert time.perf_counter() - started < 2.0
    assert job.finished and job.cancelled and job.error is None
    deadline = time.time() + 2.0
    while _alive(grandchild) and time.time() < deadline:
        time.sleep(0.02)
    assert not _alive(grandchild), "the backend's own child process outlived Cancel"
    with pytest.raises(Cancelled):
        logic.finishTracking(job)
    assert _scene_counts(ball_study.scene) == before
    assert not job.folder.exists()


def test_a_crashing_child_leaves_the_scene_unchanged_and_says_why(ball_study, tmp_path):
    from LinGuinELogic import LinGuinELogic, TrackingFailed

    logic = LinGuinELogic(ball_study.scene)
    before = _scene_counts(ball_study.scene)
    prepared = logic.prepare(ball_study.volumes, ball_study.points)
    config = TrackingConfig(registration="slicer-test-crash", segmentation="slicer-test-bright")
    job = logic.startTracking(prepared, config, _environment(tmp_path), PLUGINS)
    _wait(job)
    assert job.process.returncode != 0
    assert "illegal memory access" in job.error
    assert "Fatal Python error" in job.error and "File " in job.error  # where it crashed (faulthandler)
    with pytest.raises(TrackingFailed, match="illegal memory access"):
        logic.finishTracking(job)
    assert _scene_counts(ball_study.scene) == before


def test_bad_input_in_the_child_is_one_line(ball_study, tmp_path):
    from LinGuinELogic import LinGuinELogic, TrackingFailed

    logic = LinGuinELogic(ball_study.scene)
    prepared = logic.prepare(ball_study.volumes, ball_study.points)
    job = logic.startTracking(prepared, TrackingConfig(registration="no-such-backend"), _environment(tmp_path))
    _wait(job)
    assert job.process.returncode == 2
    assert job.error.startswith("registration backend 'no-such-backend' is unknown") and "\n" not in job.error
    with pytest.raises(TrackingFailed, match="registration backend 'no-such-backend' is unknown"):
        logic.finishTracking(job)


def test_api_key_reaches_the_child_only_through_its_environment(ball_study, tmp_path):
    """The key is in neither argv, the study files, the result nor the scene."""
    from LinGuinELogic import LinGuinELogic

    secret = "sk-test-5f2b9c"
    logic = LinGuinELogic(ball_study.scene)
    prepared = logic.prepare(ball_study.volumes, ball_study.points)
    config = TrackingConfig(registration="slicer-test-known-shift", segmentation="slicer-test-bright",
                            segmentation_options={"api_key": secret})
    job = logic.startTracking(prepared, config, _environment(tmp_path, LINGUINE_API_KEY=secret), PLUGINS)
    assert secret not in " ".join(job.process.args)
    _wait(job)
    assert job.error is None, job.error
    for path in job.folder.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path.name
    output = logic.finishTracking(job)
    assert secret not in (output.tableNode.GetAttribute("LinGuinE.Run") or "")


def test_results_that_fail_half_way_leave_no_nodes(ball_study, monkeypatch):
    """An error while adding results removes what was already added (no half-made nodes)."""
    from LinGuinELogic import LinGuinELogic

    logic = LinGuinELogic(ball_study.scene)
    before = _scene_counts(ball_study.scene)

    def broken(*args, **kwargs):
        raise RuntimeError("disk full while filling the table")

    monkeypatch.setattr("LinGuinELogic.logic.fill_plot", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        logic.track(volumeNodes=ball_study.volumes, promptNode=ball_study.points,
                    registration="slicer-test-known-shift", segmentation="slicer-test-bright")
    assert _scene_counts(ball_study.scene) == before


def test_segments_as_prompts_travel_to_the_child_as_masks(ball_study, tmp_path, monkeypatch):
    """A segmentation prompt reaches the child as mask files; the trajectory equals the in-process one."""
    from LinGuinELogic import LinGuinELogic
    from LinGuinELogic.tables import table_rows

    for key, value in _environment(tmp_path).items():
        monkeypatch.setenv(key, value)
    logic = LinGuinELogic(ball_study.scene)
    fast = {"registration": "slicer-test-known-shift", "segmentation": "slicer-test-bright"}
    first = logic.track(volumeNodes=ball_study.volumes, promptNode=ball_study.points, **fast)
    prompt = first.segmentationNodes[0]  # the baseline segments
    here = logic.track(volumeNodes=ball_study.volumes, promptNode=prompt, name="here", **fast)
    there = logic.track(volumeNodes=ball_study.volumes, promptNode=prompt, name="there", childProcess=True,
                        plugins=PLUGINS, **fast)
    rows_here, rows_there = table_rows(here.tableNode), table_rows(there.tableNode)
    assert [r["status"] for r in rows_there] == ["prompt", "found", "found"] * 2
    assert rows_there == rows_here


@pytest.mark.parametrize("case", ["mr_values", "same_voxels"])
def test_a_volume_that_is_no_ct_or_given_twice_is_refused_in_the_child(ball_study, tmp_path, case):
    """The panel's child checks each scan as the CLI does (it tracked an MR or a duplicate as CT before)."""
    from LinGuinELogic import LinGuinELogic, TrackingFailed
    from vtk.util import numpy_support

    scalars = [numpy_support.vtk_to_numpy(v.GetImageData().GetPointData().GetScalars()) for v in ball_study.volumes]
    scalars[2][:] = scalars[2] * 2 + 2000 if case == "mr_values" else scalars[1]
    ball_study.volumes[2].GetImageData().Modified()
    before = _scene_counts(ball_study.scene)
    logic = LinGuinELogic(ball_study.scene)
    config = TrackingConfig(registration="slicer-test-known-shift", segmentation="slicer-test-bright")
    prepared = logic.prepare(ball_study.volumes, ball_study.points)
    job = logic.startTracking(prepared, config, _environment(tmp_path), PLUGINS)
    _wait(job)
    assert job.process.returncode == 2, job.log_tail()
    why = "not a CT in Hounsfield units" if case == "mr_values" else "identical voxels"
    with pytest.raises(TrackingFailed, match=why):
        logic.finishTracking(job)
    assert _scene_counts(ball_study.scene) == before
