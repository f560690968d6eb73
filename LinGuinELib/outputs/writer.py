"""Write a tracking result to OUT, all or nothing.

OUT/labels/<scan>.nii.gz         uint16 labelmap on the scan's own grid, value k = k-th lesion
OUT/segmentations/<scan>.seg.nrrd  Slicer segmentation, one segment per lesion (same colour everywhere)
OUT/trajectory.csv               one row per (lesion, scan), columns TRAJECTORY_COLUMNS
OUT/trajectory.png               volume over time
OUT/dicom/<scan>.seg.dcm, .sr.dcm  with ``dicom=True``: DICOM SEG + TID 1500 report per DICOM scan
OUT/run.json                     backends, settings, versions, timings (written last)
Everything goes to a sibling temporary folder first, which replaces OUT only when complete.
"""

from __future__ import annotations

import csv
import json
import platform
import shutil
import tempfile
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
from .plot import plot_trajectory

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
    slicerio.write_segmentation(str(path), seg)


def _csv_value(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.1f}"
    return v


def write_csv(rows: list[dict], path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=TRAJECTORY_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _csv_value(row[k]) for k in TRAJECTORY_COLUMNS})


def _replace_dir(tmp: Path, out: Path) -> None:
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{tmp.name[-8:]}")
        out.rename(old)
    tmp.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_outputs(result: TrackingResult, out_dir: Path, extra_run_info: dict | None = None,
                  dicom: bool = False) -> list[dict]:
    """Write every output for ``result`` into ``out_dir`` atomically; returns the trajectory rows.

    ``dicom``: also a DICOM SEG and measurement report per scan read from DICOM (``outputs.dicom_sr``).
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    try:
        (tmp / "labels").mkdir()
        (tmp / "segmentations").mkdir()
        for scan in result.study.scans:
            sitk.WriteImage(result.labelmap(scan.id), str(tmp / "labels" / f"{scan.id}.nii.gz"), True)
            write_segmentation(result, scan.id, tmp / "segmentations" / f"{scan.id}.seg.nrrd")
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
            "scans": [{"id": s.id, "when": s.when} for s in result.study.scans],
            "lesions": [{"id": les.id, "scan": les.scan_id, "label": k}
                        for k, les in enumerate(result.study.lesions, start=1)],
            **({"dicom": dicom_info} if dicom_info is not None else {}),
            **(extra_run_info or {}),
        }
        (tmp / "run.json").write_text(json.dumps(run, indent=2, default=_json_default))
        _replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return rows


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    return str(o)
