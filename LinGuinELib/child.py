"""Track one study in a child process: ``python -m LinGuinELib.child WORKDIR``.

The Slicer module runs tracking here, under Slicer's own Python (PythonSlicer), so that the
application stays responsive, Cancel can kill the work at any point and a crash in a backend
cannot take Slicer down. The parent writes into WORKDIR:

    study.json   {"patient_id", "scans": [{"id", "image", "date", "timepoint"}],
                  "lesions": [{"id", "scan", "points_lps", "negative_points_lps", "mask"}],
                  "config": TrackingConfig.to_dict(), "plugins": [module, ...]}
    images and masks named there (paths relative to WORKDIR), in the order given (time order)

The child prints one JSON object per line on stdout (everything else it or a library prints goes
to stderr): ``{"stage", "message", "lesion", "scan", "done", "total", "fraction"}`` while it
works, then ``{"stage": "result", "path": "result.pickle"}``. The result is the
``TrackingResult`` pickled with the scans' voxels left out (the parent has them) and the config
without secrets. An API key comes from the environment variable LINGUINE_API_KEY, never from
argv or a file. Exit status: 0 done, 2 bad input (one line on stderr), 1 anything else.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib
import inspect
import json
import logging
import os
import pickle
import sys
import threading
from pathlib import Path
from typing import IO, Any

import numpy as np

from .logsetup import log_to_stderr

API_KEY_ENV = "LINGUINE_API_KEY"
RESULT_FILE = "result.pickle"
INPUT_EXIT = 2  # bad input: the last stderr line is INPUT_PREFIX + the one-line reason
INPUT_PREFIX = "linguine: error: "


def _points(value: Any) -> np.ndarray | None:
    return None if value is None else np.asarray(value, dtype=float).reshape(-1, 3)


def load_child_study(workdir: Path) -> tuple[Any, Any]:
    """(Study, TrackingConfig) from WORKDIR/study.json, scans kept in the order given."""
    from .config import TrackingConfig
    from .study.model import Scan, Study

    spec = json.loads((workdir / "study.json").read_text())
    for module in spec.get("plugins", []):
        importlib.import_module(module)  # third-party or test backends register themselves
    scans = [Scan(id=s["id"], path=workdir / s["image"],
                  date=dt.date.fromisoformat(s["date"]) if s.get("date") else None,
                  timepoint=s.get("timepoint")) for s in spec["scans"]]
    config = with_secret_from_environment(TrackingConfig(**spec["config"]))
    study = Study(spec["patient_id"], scans, read_lesions(spec["lesions"], workdir))
    study.unchecked_scans = {s.id for s in scans}  # each read like the CLI's: no MR, no empty scan, no image twice
    return study, config


def read_lesions(records: list[dict], workdir: Path) -> list[Any]:
    """Lesions from their study.json records (mask files relative to WORKDIR)."""
    import SimpleITK as sitk

    from .study.model import Lesion

    lesions = []
    for les in records:
        mask = sitk.ReadImage(str(workdir / les["mask"])) if les.get("mask") else None
        lesions.append(Lesion(id=les["id"], scan_id=les["scan"], points_lps=_points(les.get("points_lps")),
                              mask=mask, negative_points_lps=_points(les.get("negative_points_lps"))))
    return lesions


def with_secret_from_environment(config: Any) -> Any:
    """The config with LINGUINE_API_KEY given to each chosen backend that takes an ``api_key``."""
    key = os.environ.get(API_KEY_ENV)
    if not key:
        return config
    from .registry import backend_class

    changes = {}
    for kind in ("registration", "segmentation"):
        cls = backend_class(kind, getattr(config, kind))
        if "api_key" in inspect.signature(cls.__init__).parameters:
            changes[f"{kind}_options"] = {**getattr(config, f"{kind}_options"), "api_key": key}
    return dataclasses.replace(config, **changes)


class JsonProgress:
    """Engine progress events as JSON lines on the protocol stream."""

    def __init__(self, stream: IO[str], **extra: Any) -> None:
        self.stream = stream
        self.extra = extra  # fields added to every progress line (the worker's request id)
        self._lock = threading.Lock()

    def emit(self, record: dict) -> None:
        with self._lock:  # whole lines, also when a background thread reports
            self.stream.write(json.dumps(record) + "\n")
            self.stream.flush()

    def __call__(self, event: Any) -> None:
        self.emit({**self.extra, "stage": event.stage, "message": event.message, "lesion": event.lesion,
                   "scan": event.scan, "done": event.done, "total": event.total,
                   "fraction": round(event.fraction, 4)})


def write_result(result: Any, workdir: Path, name: str = RESULT_FILE) -> Path:
    """Pickle the result without voxels or secrets, atomically (a half-written file never counts)."""
    from .config import TrackingConfig

    scans = [dataclasses.replace(s, image=None) for s in result.study.scans]
    lesions = [dataclasses.replace(les, mask=None) for les in result.study.lesions]
    study = dataclasses.replace(result.study, scans=scans, lesions=lesions)
    config = TrackingConfig(**result.config.to_dict())
    slim = dataclasses.replace(result, study=study, config=config)
    tmp = workdir / (name + ".partial")
    with open(tmp, "wb") as f:
        pickle.dump(slim, f, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, workdir / name)
    return workdir / name


def protocol_stream() -> IO[str]:
    """The original stdout for protocol lines; fd 1 then points at stderr for everything else."""
    sys.stdout.flush()
    stream = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return stream


def main(argv: list[str] | None = None) -> int:
    from .errors import InputError
    from .propagation.engine import track

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m LinGuinELib.child WORKDIR", file=sys.stderr)
        return INPUT_EXIT
    log_to_stderr(logging.INFO)
    progress = JsonProgress(protocol_stream())
    workdir = Path(args[0])
    try:
        study, config = load_child_study(workdir)
        result = track(study, config, progress=progress)
    except InputError as exc:
        print(f"{INPUT_PREFIX}{exc}", file=sys.stderr)
        return INPUT_EXIT
    path = write_result(result, workdir)
    progress.emit({"stage": "result", "path": path.name})
    return 0


if __name__ == "__main__":
    sys.exit(main())
