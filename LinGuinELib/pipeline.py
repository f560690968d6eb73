"""One study end to end (load, track, write): the unit of work of the CLI and of batch runs."""

from __future__ import annotations

import time
from pathlib import Path

from .config import TrackingConfig
from .outputs.writer import write_outputs
from .propagation.engine import track
from .propagation.progress import CancelCheck, ProgressCallback
from .propagation.result import TrackingResult
from .study.manifest import load_manifest
from .study.model import Study
from .study.preflight import preflight


def run_tracking(study: Study, out_dir: Path, config: TrackingConfig,
                 progress: ProgressCallback | None = None, cancel: CancelCheck | None = None,
                 dicom: bool = False) -> tuple[TrackingResult, list[dict]]:
    """Track a loaded study and write OUT atomically; returns the result and trajectory rows.

    ``dicom``: also write DICOM SEG + measurement report per scan read from DICOM.
    """
    result = track(study, config, progress=progress, cancel=cancel)
    walls = {k: round(v, 3) for k, v in result.walls.items()}
    start = time.perf_counter()
    rows = write_outputs(result, out_dir, {"wall_s": walls}, dicom=dicom)
    result.walls["write"] = time.perf_counter() - start  # after run.json: for callers (benchmark)
    return result, rows


def run_study(manifest: Path, out_dir: Path, config: TrackingConfig,
              progress: ProgressCallback | None = None, dicom: bool = False) -> TrackingResult:
    """Load STUDY.json, check it and OUT (``preflight``), track it and write OUT atomically."""
    study = load_manifest(manifest)
    preflight(study, out_dir)
    return run_tracking(study, out_dir, config, progress, dicom=dicom)[0]
