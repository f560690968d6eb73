"""The panel's study worker, a real long-lived child process (slicer-core; this interpreter stands
in for PythonSlicer): opened when the study is set, it registers the pairs before any lesion; one
more lesion reuses them; results equal an in-process run; other settings go to the same worker
(a segmentation-only change keeps its registrations); other volumes replace it; a worker that
dies mid-run falls back to a one-shot child; cleanup leaves no process."""

from __future__ import annotations

import os
import signal
import sys
import time

import pytest

if not hasattr(sys.modules.get("slicer"), "vtkMRMLScene"):  # conftest imported it if it could
    pytest.skip("slicer-core is not installed (bash scripts/install_slicer_core.sh)", allow_module_level=True)

from test_child_process import PLUGINS, _alive, _environment, _wait, _wait_for_grandchild  # noqa: E402

from LinGuinELib.config import TrackingConfig  # noqa: E402

FAST = {"registration": "slicer-test-known-shift", "segmentation": "slicer-test-bright"}


def _wait_warm(worker, timeout=60):
    deadline = time.time() + timeout
    while not worker.warm and time.time() < deadline:
        assert worker.alive, worker.log_tail()
        worker.poll()
        time.sleep(0.05)
    assert worker.warm, ("the study worker did not finish its background registrations", worker.log_tail())


def _one_point_list(study, label):
    points = study.scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "user points")
    _add_point(study, points, label)
    return points


def _add_point(study, points, label):
    index = points.AddControlPoint(*study.centres_ras[(label, "baseline")], label)
    points.SetNthControlPointAssociatedNodeID(index, study.volumes[0].GetID())


def test_worker_warms_then_each_lesion_reuses_the_pairs(ball_study, tmp_path):
    from LinGuinELogic import LinGuinELogic
    from LinGuinELogic.tables import table_rows

    logic = LinGuinELogic(ball_study.scene)
    config = TrackingConfig(**FAST)
    environment = _environment(tmp_path)
    worker = logic.warmStudy(ball_study.volumes, config, environment, PLUGINS)
    try:
        assert logic.warmStudy(ball_study.volumes, config, environment, PLUGINS) is worker  # same inputs: kept
        _wait_warm(worker)
        assert worker.register_calls == 2  # baseline -> week_8, baseline -> week_16, before any lesion
        points = _one_point_list(ball_study, "Nodule A")
        job = logic.startTracking(logic.prepare(ball_study.volumes, points), config, environment, PLUGINS,
                                  keepStudyOpen=True)
        events = _wait(job)
        assert job.error is None, job.error
        assert job.process is worker.process and job.reply["register_calls"] == 2
        assert events[-1].stage == "done"
        logic.finishTracking(job)
        # One more point: the panel sends both lesions; the first is reused, the pairs are not redone.
        _add_point(ball_study, points, "Nodule B")
        job = logic.startTracking(logic.prepare(ball_study.volumes, points), config, environment, PLUGINS,
                                  keepStudyOpen=True)
        _wait(job)
        assert job.error is None, job.error
        assert job.process is worker.process, "a new worker was started for the same study"
        assert job.reply["register_calls"] == 2 and job.reply["reused"] == ["Nodule_A"]
        there = logic.finishTracking(job)
        assert worker.alive, "the worker stays for the next lesion"
        here = logic.track(volumeNodes=ball_study.volumes, promptNode=points, **FAST)
        assert table_rows(there.tableNode) == table_rows(here.tableNode)
        # Other segmentation settings: the same worker, the same two registrations, a fresh run's table.
        boosted = TrackingConfig(**FAST, boost=True, search_radius_mm=6.0)
        assert logic.warmStudy(ball_study.volumes, boosted, environment, PLUGINS) is worker
        job = logic.startTracking(logic.prepare(ball_study.volumes, points), boosted, environment, PLUGINS,
                                  keepStudyOpen=True)
        _wait(job)
        assert job.error is None, job.error
        assert job.process is worker.process and job.reply["register_calls"] == 2 and job.reply["reused"] == []
        there = logic.finishTracking(job)
        here = logic.track(volumeNodes=ball_study.volumes, promptNode=points, config=boosted)
        assert table_rows(there.tableNode) == table_rows(here.tableNode)
        # Other registration settings: the same worker registers again (its answer says so).
        other = TrackingConfig(**FAST, device="cuda")  # the test backends take it and ignore it
        assert logic.warmStudy(ball_study.volumes, other, environment, PLUGINS) is worker and not worker.warm
        _wait_warm(worker)
        assert worker.register_calls == 2 and worker.config == other
        # Other voxels are other inputs: the worker is replaced, the old process stops.
        import slicer.util

        slicer.util.arrayFromVolumeModified(ball_study.volumes[1])
        replaced = logic.warmStudy(ball_study.volumes, config, environment, PLUGINS)
        assert replaced is not worker and not worker.alive and not worker.folder.exists()
        logic.closeStudyWorker()
        assert not replaced.alive and not replaced.folder.exists()
    finally:
        logic.closeStudyWorker()


def test_a_worker_that_dies_mid_run_falls_back_to_a_one_shot_child(ball_study, tmp_path):
    from LinGuinELogic import LinGuinELogic
    from LinGuinELogic.tables import table_rows

    logic = LinGuinELogic(ball_study.scene)
    config = TrackingConfig(**FAST)
    environment = _environment(tmp_path)
    try:
        worker = logic.warmStudy(ball_study.volumes, config, environment, PLUGINS)
        job = logic.startTracking(logic.prepare(ball_study.volumes, ball_study.points), config, environment,
                                  PLUGINS, keepStudyOpen=True)
        os.killpg(worker.process.pid, signal.SIGKILL)  # a crash in a backend, the OOM killer
        _wait(job)
        assert job.fallback is not None and job.process is not worker.process
        assert job.error is None, job.error
        output = logic.finishTracking(job)
        here = logic.track(volumeNodes=ball_study.volumes, promptNode=ball_study.points, **FAST)
        assert table_rows(output.tableNode) == table_rows(here.tableNode)
        # The next run starts a new worker.
        job = logic.startTracking(logic.prepare(ball_study.volumes, ball_study.points), config, environment,
                                  PLUGINS, keepStudyOpen=True)
        _wait(job)
        assert job.error is None and logic.studyWorker is not worker and logic.studyWorker.alive
        logic.finishTracking(job)
    finally:
        logic.closeStudyWorker()


def test_a_dead_worker_whose_replacement_cannot_start_ends_the_run_with_one_line(ball_study, tmp_path, monkeypatch):
    """The fallback is started from the panel's QTimer (job.poll / job.finished): if it cannot start
    (here the disk is full when the study is written again), the run ends with that reason as its
    error's first line, once, instead of the exception escaping the timer slot every 200 ms with the
    panel left running."""
    from LinGuinELogic import LinGuinELogic
    from LinGuinELogic import worker as worker_module

    logic = LinGuinELogic(ball_study.scene)
    config = TrackingConfig(**FAST)
    environment = _environment(tmp_path)
    tries = []

    def disk_full(*args, **kwargs):
        tries.append(1)
        raise OSError(28, "No space left on device")

    before = ball_study.scene.GetNumberOfNodes()
    try:
        worker = logic.warmStudy(ball_study.volumes, config, environment, PLUGINS)
        job = logic.startTracking(logic.prepare(ball_study.volumes, ball_study.points), config, environment,
                                  PLUGINS, keepStudyOpen=True)
        monkeypatch.setattr(worker_module.ChildTracking, "start", disk_full)
        os.killpg(worker.process.pid, signal.SIGKILL)
        worker.process.wait(10)
        assert job.poll() == [] and job.finished and job.fallback is None
        assert job.error.splitlines()[0] == ("the study worker stopped and no one-shot process could "
                                             "replace it: [Errno 28] No space left on device")
        assert job.poll() == [] and job.finished and len(tries) == 1  # said once, not retried per poll
        with pytest.raises(Exception, match="No space left on device"):
            logic.finishTracking(job)
        assert ball_study.scene.GetNumberOfNodes() == before
    finally:
        logic.closeStudyWorker()


def test_cancel_kills_the_worker_and_nothing_reaches_the_scene(ball_study, tmp_path):
    from child_backends import SLEEPER_PID_ENV
    from LinGuinELogic import LinGuinELogic

    from LinGuinELib.errors import Cancelled

    logic = LinGuinELogic(ball_study.scene)
    pid_file = tmp_path / "sleeper.pid"
    config = TrackingConfig(registration="slicer-test-never-ends", segmentation="slicer-test-bright")
    environment = _environment(tmp_path, **{SLEEPER_PID_ENV: str(pid_file)})
    before = ball_study.scene.GetNumberOfNodes()
    try:
        job = logic.startTracking(logic.prepare(ball_study.volumes, ball_study.points), config, environment,
                                  PLUGINS, keepStudyOpen=True)
        grandchild = _wait_for_grandchild(job, pid_file)
        job.cancel()
        assert job.finished and job.cancelled and job.error is None
        deadline = time.time() + 2.0
        while _alive(grandchild) and time.time() < deadline:
            time.sleep(0.02)
        assert not _alive(grandchild) and not logic.studyWorker.alive
        with pytest.raises(Cancelled):
            logic.finishTracking(job)
        assert ball_study.scene.GetNumberOfNodes() == before
    finally:
        logic.closeStudyWorker()
