"""Write a tracking result to OUT, all or nothing.

OUT/labels/<scan>.nii.gz         uint16 labelmap on the scan's own grid, value k = k-th lesion
OUT/segmentations/<scan>.seg.nrrd  Slicer segmentation, one segment per lesion (same colour everywhere)
OUT/trajectory.csv               one row per (lesion, scan), columns TRAJECTORY_COLUMNS
OUT/trajectory.png               volume over time
OUT/dicom/<scan>.seg.dcm, .sr.dcm  with ``dicom=True``: DICOM SEG + TID 1500 report per DICOM scan
OUT/run.json                     backends, settings, versions, timings, id -> file names
Everything goes to a sibling temporary folder first, which replaces OUT only when complete
(``safety.staged_output``); file names come from ``safety.unique_names`` (ids stay in contents).
"""

from __future__ import annotations

import csv
import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
import slicerio

from .. import __version__
from ..measures.trajectory import TRAJECTORY_COLUMNS, trajectory_rows
from ..propagation.result import TrackingResult
from .colors import lesion_color
from .nrrd_text import write_segmentation_file
from .plot import plot_trajectory
from .safety import staged_output, unique_names

TRACKING_TAG = "LinGuinE.TrackingID"
_PACKAGES = ("numpy", "scipy", "SimpleITK", "connected-components-3d", "slicerio", "torch",
             "icon_registration", "unigradicon", "nnInteractive", "monai")


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "linguine": __version__}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def tracking_id(patient_id: str, lesion_id: str) -> str:
    return f"{patient_id}/{lesion_id}"


def write_segmentation(result: TrackingResult, scan_id: str, path: Path) -> None:
    ref = result.references[scan_id]
    seg = slicerio.create_segmentation(tuple(ref.GetSize()), ref.ijk_to_lps())
    for k, lesion in enumerate(result.study.lesions):
        mask_ijk = result.get(lesion.id, scan_id).mask.to_full().transpose(2, 1, 0)
        slicerio.add_segment(seg, mask_ijk, {
            "id": lesion.id, "name": lesion.id, "color": list(lesion_color(k)),
            "tags": {TRACKING_TAG: tracking_id(result.study.patient_id, lesion.id)},
        })
    write_segmentation_file(seg, path)


def _csv_value(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.1f}"
    return v


def write_csv(rows: list[dict], path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=TRAJECTORY_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _csv_value(row[k]) for k in TRAJECTORY_COLUMNS})


def write_outputs(result: TrackingResult, out_dir: Path, extra_run_info: dict | None = None,
                  dicom: bool = False) -> list[dict]:
    """Write every output for ``result`` into ``out_dir`` atomically; returns the trajectory rows.

    The caller checks OUT first (``safety.check_out``): this replaces it whole.
    ``dicom``: also a DICOM SEG and measurement report per scan read from DICOM (``outputs.dicom_sr``).
    """
    names = unique_names([s.id for s in result.study.scans])
    with staged_output(Path(out_dir), "track") as tmp:
        (tmp / "labels").mkdir()
        (tmp / "segmentations").mkdir()
        for scan in result.study.scans:
            name = names[scan.id]
            sitk.WriteImage(result.labelmap(scan.id), str(tmp / "labels" / f"{name}.nii.gz"), True)
            write_segmentation(result, scan.id, tmp / "segmentations" / f"{name}.seg.nrrd")
        rows = trajectory_rows(result)
        write_csv(rows, tmp / "trajectory.csv")
        plot_trajectory(rows, [les.id for les in result.study.lesions], tmp / "trajectory.png",
                        title=f"{result.study.patient_id}: lesion volume over time (star: prompt)")
        dicom_info = None
        if dicom:
            from .dicom_sr import write_dicom

            dicom_info = write_dicom(result, rows, tmp / "dicom")
        run = {
            "patient_id": result.study.patient_id,
            "source": str(result.study.source) if result.study.source else None,
            "config": result.config.to_dict(),
            "backends": result.backends,
            "versions": package_versions(),
            "timings_s": {k: round(v, 3) for k, v in result.timings.items()},
            "scans": [{"id": s.id, "when": s.when, "file": names[s.id]} for s in result.study.scans],
            "lesions": [{"id": les.id, "scan": les.scan_id, "label": k}
                        for k, les in enumerate(result.study.lesions, start=1)],
            **({"dicom": dicom_info} if dicom_info is not None else {}),
            **(extra_run_info or {}),
        }
        (tmp / "run.json").write_text(json.dumps(run, indent=2, default=_json_default, ensure_ascii=False),
                                      encoding="utf-8")
    return rows


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    return str(o)
