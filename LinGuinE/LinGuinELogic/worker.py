"""The study kept open in a long-lived child process, so that one more lesion costs seconds.

``StudyWorker.start`` writes the study's volumes once (as ``ChildTracking`` does) and starts
``python -m LinGuinELib.worker``, which reads them and registers the pairs in the background
while the user places points. ``submit`` sends the lesions of a run and returns a
``WorkerJob`` with the same face as ``ChildTracking`` (poll, cancel, error, result, close), so
the widget's QTimer drives both alike. Other settings go to the same worker (``configure``, and
with each run), which redoes only what they feed: a segmentation-only change keeps the scans and
the registered pairs. Commands go to the worker's stdin (a pipe); its answers
go to a file read by ``poll``, so nothing blocks when no one reads. A worker that dies in the
middle of a run is replaced, for that run, by a one-shot ``ChildTracking``: the user gets the
result, only slower. Cancel kills the worker; the next run starts a new one. No Qt here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from LinGuinELib.config import TrackingConfig, first_changed_stage
from LinGuinELib.propagation.progress import ProgressEvent
from LinGuinELib.study.model import Study

from .failure import Failure
from .process import (
    _RUNNING,
    ChildTracking,
    kill_tree,
    lesion_records,
    library_root,
    popen_options,
    python_executable,
    write_child_study,
)
from .volumes import world_ijk_to_ras

log = logging.getLogger(__name__)

CLOSE_WAIT_S = 2.0


def study_key(volumes: list[Any], environment: dict[str, str] | None, plugins: list[str] | None) -> str:
    """What the worker process depends on: the volumes (node, voxels' modification time, grid,
    timepoint), the child's environment (model folder, API key) and plugins; not the settings,
    which the worker takes as they change. Kept as a digest (no secrets)."""
    parts: list[Any] = [sorted((environment or {}).items()), list(plugins or [])]
    for volume in volumes:
        node = volume.node
        image = node.GetImageData()
        parts.append([volume.scan_id, node.GetID(), image.GetMTime() if image is not None else 0,
                      world_ijk_to_ras(node).round(6).tolist(), volume.timepoint.text])
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


class StudyWorker:
    """One open study in a child process; ``key`` says which inputs it was started for, ``config``
    the settings it was last sent."""

    def __init__(self, key: str, config: TrackingConfig, folder: Path, process: subprocess.Popen,
                 relaunch: dict) -> None:
        self.key = key
        self.config = config
        self.folder = folder
        self.process = process
        self.relaunch = relaunch  # how to start a one-shot child if this worker dies mid-run
        self.opened = False
        self.warm = False
        self.register_calls = 0
        self.warm_request = 1  # the command whose "warm" answer counts (open, or a registration change)
        self.job: WorkerJob | None = None
        self._offset = 0
        self._next_id = 1
        _RUNNING.add(self)

    @classmethod
    def start(cls, study: Any, volumes: list, config: TrackingConfig, key: str,
              environment: dict[str, str] | None = None, plugins: list[str] | None = None,
              python: str | None = None, warm_from: list[str] | None = None) -> StudyWorker:
        """Write the volumes (the study's scans, same order), start the worker and open the study
        (returns once the files are written)."""
        folder = Path(tempfile.mkdtemp(prefix="LinGuinE-study-"))
        try:
            write_child_study(Study(study.patient_id, study.scans, []), volumes, config, folder, plugins or [])
            env = dict(os.environ)
            env.update(environment or {})
            env["PYTHONPATH"] = os.pathsep.join(p for p in (library_root(), env.get("PYTHONPATH", "")) if p)
            env["PYTHONUNBUFFERED"] = "1"
            command = [python or python_executable(), "-m", "LinGuinELib.worker"]
            with open(folder / "answers.jsonl", "wb") as out, open(folder / "worker.log", "wb") as err:
                process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=out, stderr=err, env=env,
                                           cwd=str(folder), **popen_options())
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        log.info("study worker in process %d", process.pid)
        relaunch = {"environment": environment, "plugins": plugins, "python": python}
        worker = cls(key, config, folder, process, relaunch)
        known = [s.id for s in study.scans]
        worker.send({"cmd": "open", "workdir": str(folder),
                     "warm_from": [s for s in (warm_from or []) if s in known]})
        return worker

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    @property
    def busy(self) -> bool:
        return self.job is not None and not self.job.finished

    def send(self, command: dict) -> int | None:
        """Write one command; its id, or None when the worker has gone."""
        ident = self._next_id
        self._next_id += 1
        try:
            self.process.stdin.write((json.dumps({**command, "id": ident}) + "\n").encode())
            self.process.stdin.flush()
        except (OSError, ValueError):  # a broken pipe: the worker died
            return None
        return ident

    def poll(self) -> None:
        """Read the answers that arrived; hand the current run's to its job."""
        path = self.folder / "answers.jsonl"
        try:
            with open(path, "rb") as f:
                f.seek(self._offset)
                data = f.read()
        except OSError:
            return
        end = data.rfind(b"\n") + 1
        self._offset += end
        for line in data[:end].splitlines():
            try:
                answer = json.loads(line)
            except ValueError:
                continue
            stage = answer.get("stage")
            if stage == "opened":
                self.opened = True
            elif stage == "warm":
                if answer.get("id") == self.warm_request:
                    self.warm, self.register_calls = True, int(answer.get("register_calls", 0))
            elif stage == "configured":
                self.register_calls = int(answer.get("register_calls", 0))
            elif self.job is not None and answer.get("id") == self.job.request:
                self.job.answer(answer)
            elif stage == "error":  # settings sent ahead of a run: that run sends them again and fails
                log.warning("the study worker refused a command: %s", answer.get("message"))

    def _settings_sent(self, config: TrackingConfig, request: int) -> None:
        """Note the settings of a command sent; a registration change makes the study cold again."""
        if first_changed_stage(self.config, config) == "registration":
            self.warm, self.warm_request = False, request
        self.config = config

    def configure(self, config: TrackingConfig) -> None:
        """Other settings for the open study (nothing is sent when they are the same): the worker
        redoes only what they feed, and registers again in the background if that is needed."""
        if first_changed_stage(self.config, config) is None:
            return
        request = self.send({"cmd": "configure", "config": config.to_dict()})
        if request is not None:
            self._settings_sent(config, request)

    def submit(self, prepared: Any, config: TrackingConfig) -> WorkerJob:
        """Track the prepared run's lesions here with ``config`` (its scans must be this worker's)."""
        job = WorkerJob(self, prepared, config)
        self.job = job
        request = self._next_id
        records = lesion_records(prepared.study.lesions, self.folder, f"request{request:03d}-")
        if self.send({"cmd": "track", "lesions": records, "config": config.to_dict()}) is None:
            job.fall_back()
        else:
            job.request = request
            self._settings_sent(config, request)
        return job

    def log_tail(self, count: int = 12) -> list[str]:
        try:
            text = (self.folder / "worker.log").read_text(errors="replace")
        except OSError:
            return []
        return [line for line in text.splitlines() if line.strip()][-count:]

    def close(self) -> None:
        """Ask the worker to stop, kill it if it does not, remove its folder."""
        if self.alive:
            self.send({"cmd": "close"})
            try:
                self.process.stdin.close()
                self.process.wait(CLOSE_WAIT_S)
            except (OSError, subprocess.TimeoutExpired):
                pass
        kill_tree(self.process)
        if self.job is not None and self.job.fallback is None:
            self.job.cancelled = True
        shutil.rmtree(self.folder, ignore_errors=True)
        _RUNNING.discard(self)


class WorkerJob:
    """One run on a ``StudyWorker``; answers like ``ChildTracking`` (the widget polls either)."""

    def __init__(self, worker: StudyWorker, prepared: Any, config: TrackingConfig) -> None:
        self.worker = worker
        self.context = prepared
        self.config = config
        self.request: int | None = None
        self.started = time.perf_counter()
        self.cancelled = False
        self.last_event: ProgressEvent | None = None
        self.fallback: ChildTracking | None = None
        self.reply: dict | None = None  # the final answer: result or error
        self._events: list[ProgressEvent] = []

    @property
    def process(self) -> subprocess.Popen:
        return self.fallback.process if self.fallback is not None else self.worker.process

    def answer(self, answer: dict) -> None:
        stage = answer.get("stage", "")
        if stage in ("result", "error"):
            self.reply = answer
            return
        self._events.append(ProgressEvent(stage, answer.get("message", ""), int(answer.get("done", 0)),
                                          int(answer.get("total", 0)), answer.get("lesion"), answer.get("scan")))

    def fall_back(self) -> None:
        """The worker died: run this job in a one-shot child instead."""
        log.warning("the study worker stopped (%s); tracking in a one-shot process instead",
                    "; ".join(self.worker.log_tail(3)) or f"exit status {self.worker.process.poll()}")
        relaunch = self.worker.relaunch
        self.fallback = ChildTracking.start(self.context, self.config, relaunch["environment"],
                                            relaunch["plugins"], relaunch["python"])

    def _update(self) -> None:
        """Take the worker's new answers; start the fallback if it died without one."""
        if self.fallback is not None or self.reply is not None or self.cancelled:
            return
        alive = self.worker.alive
        self.worker.poll()  # after the liveness check: a dying worker's last words are read too
        if self.reply is None and not alive:
            try:
                self.fall_back()
            except Exception as exc:  # noqa: BLE001 - polled from the panel's timer: end the run with one line
                log.error("no one-shot process could replace the study worker: %s", exc)
                self.reply = {"stage": "error", "message": "the study worker stopped and no one-shot process "
                              f"could replace it: {exc}"}

    def poll(self) -> list[ProgressEvent]:
        """Progress events since the last call (the worker's, or the fallback child's)."""
        self._update()
        events, self._events = self._events, []
        if self.fallback is not None:
            events += self.fallback.poll()
        if events:
            self.last_event = events[-1]
        return events

    @property
    def finished(self) -> bool:
        self._update()
        if self.fallback is not None:
            return self.fallback.finished
        return self.cancelled or self.reply is not None

    def wait(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.perf_counter() + timeout
        while not self.finished:
            if deadline is not None and time.perf_counter() > deadline:
                return False
            time.sleep(0.05)
        return True

    def cancel(self) -> None:
        """Kill the worker (the study's warm state goes with it); nothing reaches the scene."""
        self.cancelled = True
        if self.fallback is not None:
            self.fallback.cancel()
        kill_tree(self.worker.process)

    @property
    def elapsed_s(self) -> float:
        return time.perf_counter() - self.started

    @property
    def failure(self) -> Failure | None:
        """None on success; bad input: the worker's one line; else its message and last log lines."""
        if self.fallback is not None:
            return self.fallback.failure
        if self.cancelled or self.reply is None or self.reply.get("stage") == "result":
            return None
        message = " ".join(str(self.reply.get("message", "the study worker failed")).split())  # one line
        return Failure(message, "" if self.reply.get("input") else "\n".join(self.worker.log_tail()))

    @property
    def error(self) -> str | None:
        failure = self.failure
        return None if failure is None else failure.text

    def log_tail(self, count: int = 12) -> list[str]:
        return self.fallback.log_tail(count) if self.fallback is not None else self.worker.log_tail(count)

    def result(self) -> Any:
        """The run's ``TrackingResult`` with this run's study (and in-memory images) put back."""
        if self.fallback is not None:
            return self.fallback.result()
        with open(self.worker.folder / self.reply["path"], "rb") as f:
            result = pickle.load(f)  # written by our own worker into our private temporary folder
        result.study = self.context.study
        result.config = self.config
        return result

    def close(self) -> None:
        """Remove this run's files; the worker stays (unless it was cancelled)."""
        if self.fallback is not None:
            self.fallback.close()
        for pattern in (f"request{self.request or 0:03d}-*", f"result-{self.request}.pickle"):
            for path in self.worker.folder.glob(pattern):
                path.unlink(missing_ok=True)
        if self.worker.job is self:
            self.worker.job = None
