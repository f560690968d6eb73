"""Tracking in a child process under Slicer's Python, driven from the main thread by polling.

Why a process: Slicer's embedded Python keeps the GIL on the main thread while Qt idles, so a
worker thread inside Slicer advances only in GIL-free C calls; a child process runs at full speed,
can be killed at any point (Cancel) and cannot take Slicer down when a backend crashes.

``ChildTracking.start`` writes the prepared study (each volume's voxels raw beside a detached
NRRD header, prompts as ``study.json``) into a private temporary folder and starts ``python -m LinGuinELib.child``.
The child's stdout (JSON progress lines) and stderr (log) go to files in that folder, so
nothing blocks when no one reads them; the widget's QTimer calls ``poll()``, which returns the
progress events that arrived since the last call. No Qt here: tests drive the same object.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import weakref
from pathlib import Path
from typing import Any

import SimpleITK as sitk

from LinGuinELib.child import INPUT_EXIT, INPUT_PREFIX
from LinGuinELib.config import TrackingConfig
from LinGuinELib.propagation.progress import ProgressEvent

from .failure import Failure, from_log
from .volumes import write_volume_nrrd

log = logging.getLogger(__name__)

KILL_WAIT_S = 2.0
ERROR_LINES = 12
_RUNNING: weakref.WeakSet[ChildTracking] = weakref.WeakSet()


def library_root() -> str:
    """The folder holding the LinGuinELib package (repository root, or qt-scripted-modules)."""
    import LinGuinELib

    return str(Path(LinGuinELib.__file__).resolve().parent.parent)


def python_executable() -> str:
    """Slicer's own Python (PythonSlicer) inside the application, else this interpreter."""
    try:
        import slicer
    except ImportError:
        slicer = None
    if slicer is not None and hasattr(slicer, "app"):
        found = shutil.which("PythonSlicer")  # Slicer puts its bin folder on PATH
        if found:
            return found
        candidate = Path(sys.executable).with_name("PythonSlicer" + (".exe" if os.name == "nt" else ""))
        if candidate.is_file():
            return str(candidate)
        raise RuntimeError("PythonSlicer was not found next to Slicer; cannot start the tracking process")
    return sys.executable


# Windows process creation flags (subprocess has them only on Windows).
CREATE_NO_WINDOW = 0x08000000
CREATE_NEW_PROCESS_GROUP = 0x00000200
WINDOWS = os.name == "nt"


def popen_options(own_group: bool = True) -> dict[str, Any]:
    """Popen options for every process the module starts under PythonSlicer (a console program):
    on Windows no console window, as ``slicer.util.launchConsoleProcess`` hides it; ``own_group``:
    the child leads its own process group (POSIX: session) so that Cancel kills its whole tree."""
    if WINDOWS:
        return {"creationflags": CREATE_NO_WINDOW | (CREATE_NEW_PROCESS_GROUP if own_group else 0)}
    return {"start_new_session": True} if own_group else {}


def lesion_records(lesions: list, folder: Path, prefix: str = "") -> list:
    """The lesions' prompts as JSON records for the child; mask prompts written into ``folder``."""
    records = []
    for k, lesion in enumerate(lesions):
        record: dict[str, Any] = {"id": lesion.id, "scan": lesion.scan_id}
        if lesion.points_lps is not None:
            record["points_lps"] = lesion.points_lps.tolist()
        if lesion.negative_points_lps is not None:
            record["negative_points_lps"] = lesion.negative_points_lps.tolist()
        if lesion.mask is not None:
            record["mask"] = f"{prefix}mask{k:03d}.nrrd"
            sitk.WriteImage(lesion.mask, str(folder / record["mask"]), True)
        records.append(record)
    return records


def write_child_study(study: Any, volumes: list, config: TrackingConfig, folder: Path, plugins: list[str]) -> None:
    """The prepared study as files the child reads (see LinGuinELib/child.py); the voxels come from
    ``volumes``, the study's scans in the same order (their in-memory images are not needed)."""
    scans = []
    for k, (scan, volume) in enumerate(zip(study.scans, volumes)):
        if scan.id != volume.scan_id:
            raise ValueError(f"scan {scan.id} is not volume {volume.scan_id}: the study and its volumes differ")
        name = f"scan{k:03d}.nhdr"
        write_volume_nrrd(volume.node, folder / name)
        scans.append({"id": scan.id, "image": name, "date": scan.date.isoformat() if scan.date else None,
                      "timepoint": scan.timepoint})
    spec = {"patient_id": study.patient_id, "scans": scans, "lesions": lesion_records(study.lesions, folder),
            "config": config.to_dict(), "plugins": list(plugins)}
    (folder / "study.json").write_text(json.dumps(spec))


def kill_tree(process: subprocess.Popen) -> None:
    """Kill the child and everything it started (PythonSlicer is a launcher with a child)."""
    if process.poll() is not None:
        return
    try:
        if WINDOWS:
            subprocess.run(["taskkill", "/F", "/T", "/PID", str(process.pid)], capture_output=True,
                           timeout=KILL_WAIT_S, check=False, **popen_options(own_group=False))
        else:
            os.killpg(process.pid, signal.SIGKILL)  # the child leads its own process group
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("could not kill the tracking process group: %s", exc)
        process.kill()
    try:
        process.wait(KILL_WAIT_S)
    except subprocess.TimeoutExpired:
        log.error("the tracking process %d did not stop within %.0f s", process.pid, KILL_WAIT_S)


class ChildTracking:
    """One tracking run in a child process: poll it, cancel it, then read its result."""

    def __init__(self, prepared: Any, config: TrackingConfig, folder: Path, process: subprocess.Popen) -> None:
        self.context = prepared  # what the main thread needs to build nodes afterwards
        self.config = config
        self.folder = folder
        self.process = process
        self.started = time.perf_counter()
        self.cancelled = False
        self.last_event: ProgressEvent | None = None
        self._offset = 0
        self._result_seen = False
        _RUNNING.add(self)

    @classmethod
    def start(cls, prepared: Any, config: TrackingConfig, environment: dict[str, str] | None = None,
              plugins: list[str] | None = None, python: str | None = None) -> ChildTracking:
        """Write the study and start the child; ``environment`` adds variables (model folder, API key)."""
        folder = Path(tempfile.mkdtemp(prefix="LinGuinE-run-"))
        try:
            write_child_study(prepared.study, prepared.volumes, config, folder, plugins or [])
            env = dict(os.environ)
            env.update(environment or {})
            env["PYTHONPATH"] = os.pathsep.join(p for p in (library_root(), env.get("PYTHONPATH", "")) if p)
            env["PYTHONUNBUFFERED"] = "1"
            command = [python or python_executable(), "-m", "LinGuinELib.child", str(folder)]
            with open(folder / "progress.jsonl", "wb") as out, open(folder / "child.log", "wb") as err:
                process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                           env=env, cwd=str(folder), **popen_options())
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        log.info("tracking in process %d: %s", process.pid, " ".join(command[:3]))
        return cls(prepared, config, folder, process)

    # --- while it runs ---------------------------------------------------------------------
    def poll(self) -> list[ProgressEvent]:
        """Progress events written since the last call (call it from the main thread's timer)."""
        path = self.folder / "progress.jsonl"
        if not path.is_file():
            return []
        with open(path, "rb") as f:
            f.seek(self._offset)
            data = f.read()
        end = data.rfind(b"\n") + 1  # only complete lines
        self._offset += end
        events = []
        for line in data[:end].splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("stage") == "result":
                self._result_seen = True
                continue
            events.append(ProgressEvent(record.get("stage", ""), record.get("message", ""),
                                        int(record.get("done", 0)), int(record.get("total", 0)),
                                        record.get("lesion"), record.get("scan")))
        if events:
            self.last_event = events[-1]
        return events

    @property
    def finished(self) -> bool:
        return self.process.poll() is not None

    def wait(self, timeout: float | None = None) -> bool:
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def cancel(self) -> None:
        """Kill the child and its children now (within ~2 s); nothing reaches the scene."""
        self.cancelled = True
        kill_tree(self.process)

    @property
    def elapsed_s(self) -> float:
        return time.perf_counter() - self.started

    # --- once it finished ------------------------------------------------------------------
    @property
    def failure(self) -> Failure | None:
        """None on success; bad input: its one line, as the study worker and the CLI give it; else
        the exception or crash that ended the child (or why it stopped) and its last log lines."""
        code = self.process.poll()
        if code is None or self.cancelled:
            return None
        self.poll()
        if code == 0 and self._result_seen and (self.folder / "result.pickle").is_file():
            return None
        lines = self.log_tail()
        if code == INPUT_EXIT and lines and lines[-1].startswith(INPUT_PREFIX):
            return Failure(lines[-1][len(INPUT_PREFIX):])
        reason = f"the tracking process stopped with exit status {code}"
        if code < 0:
            reason = f"the tracking process was killed by signal {-code}"
        return from_log(reason, lines)

    @property
    def error(self) -> str | None:
        """The failure's text (one line for bad input), None on success."""
        failure = self.failure
        return None if failure is None else failure.text

    def log_tail(self, count: int = ERROR_LINES) -> list[str]:
        """The log's last lines; after a native crash, the lines before Python's fault handler's
        report, its first line and the innermost frame (not the list of extension modules)."""
        try:
            text = (self.folder / "child.log").read_text(errors="replace")
        except OSError:
            return []
        lines = [line for line in text.splitlines() if line.strip()]
        crash = next((i for i, line in enumerate(lines) if line.startswith("Fatal Python error")), None)
        if crash is None:
            return lines[-count:]
        frame = [line.strip() for line in lines[crash + 1:] if line.strip().startswith("File ")][:1]
        return lines[:crash][-max(count - 1 - len(frame), 1):] + [lines[crash]] + frame

    def result(self) -> Any:
        """The child's ``TrackingResult`` with this study (and its in-memory images) put back."""
        with open(self.folder / "result.pickle", "rb") as f:
            result = pickle.load(f)  # written by our own child into our private temporary folder
        result.study = self.context.study
        result.config = self.config
        return result

    def close(self) -> None:
        """Stop the child if it still runs and remove the temporary folder."""
        kill_tree(self.process)
        shutil.rmtree(self.folder, ignore_errors=True)
        _RUNNING.discard(self)


@atexit.register
def _stop_children() -> None:
    """Slicer is exiting: no tracking process may outlive it."""
    for job in list(_RUNNING):
        job.close()


class DeviceProbe:
    """Asks Slicer's Python, in a child process, whether torch sees a GPU (torch is never imported here).

    ``devices()`` is None while the answer is pending, then ["cpu"] or ["cpu", "cuda"].
    """

    CODE = "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')"

    def __init__(self, python: str | None = None) -> None:
        import importlib.util

        self.process = None
        self._devices: list[str] | None = ["cpu"]
        if importlib.util.find_spec("torch") is not None:
            self.process = subprocess.Popen([python or python_executable(), "-c", self.CODE],
                                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                            stderr=subprocess.DEVNULL, text=True,
                                            **popen_options(own_group=False))
            self._devices = None

    def devices(self) -> list[str] | None:
        if self._devices is None and self.process is not None and self.process.poll() is not None:
            answer = self.process.stdout.read().strip().splitlines()
            self._devices = ["cpu", "cuda"] if answer and answer[-1] == "cuda" else ["cpu"]
            self.process.stdout.close()
        return self._devices
