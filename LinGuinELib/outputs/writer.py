"""Write a tracking result to OUT, all or nothing.

OUT/labels/<scan>.nii.gz         uint16 labelmap on the scan's own grid, value k = k-th lesion
OUT/segmentations/<scan>.seg.nrrd  Slicer segmentation, one segment per lesion (same colour everywhere)
OUT/trajectory.csv               one row per (lesion, scan), columns TRAJECTORY_COLUMNS
OUT/trajectory.png               volume over time
OUT/dicom/<scan>.seg.dcm, .sr.dcm  with ``dicom=True``: DICOM SEG + TID 1500 report per DICOM scan
OUT/run.json                     backends, settings, versions, timings, id -> file names
Everything goes to a sibling temporary folder first, which replaces OUT only when complete
(``staging.staged_output``); file names come from ``names.unique_names`` (ids stay in contents).
"""

from __future__ import annotations

import csv
import json
import os
import platform
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..measures.trajectory import TRAJECTORY_COLUMNS, trajectory_rows
from ..propagation.result import MaskCrop, TrackingResult
from .colors import lesion_color
from .gzipped import write_nifti_gz
from .names import unique_names
from .nrrd_text import write_segmentation_file
from .plot import plot_trajectory
from .staging import staged_output

TRACKING_TAG = "LinGuinE.TrackingID"
# gzip level of the image outputs: level 1 is several times faster than the default 9 and, on
# label images (long runs of zeros), barely larger (gzipped.py: ISA-L, smaller still).
COMPRESSION_LEVEL = 1
# Files are written by this many threads (the compressors release the GIL).
WRITE_THREADS = max(2, min(4, os.cpu_count() or 2))
_PACKAGES = ("numpy", "scipy", "SimpleITK", "connected-components-3d", "edt", "slicerio", "torch",
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


def _extent_ijk(crop: MaskCrop) -> list[int]:
    """Segment extent as Slicer stores it: [i_min, i_max, j_min, j_max, k_min, k_max]."""
    nz = np.nonzero(crop.array)
    if nz[0].size == 0:
        return [0, -1, 0, -1, 0, -1]
    zyx = [(int(a.min()) + o, int(a.max()) + o) for a, o in zip(nz, crop.offset_zyx)]
    return [v for axis in zyx[::-1] for v in axis]


def segmentation_dict(result: TrackingResult, scan_id: str) -> dict:
    """The scan's segments as a ``slicerio`` segmentation, built from the cropped masks.

    Same layers, label values and extents as ``slicerio.add_segment`` gives (a segment goes to
    the first layer where it overlaps nothing, as Slicer stores overlapping segments), without
    expanding each mask to the full grid.
    """
    ref = result.references[scan_id]
    shape_zyx = tuple(ref.GetSize()[::-1])
    layers = [np.zeros(shape_zyx, np.uint8)]
    segments: list[dict] = []
    for k, lesion in enumerate(result.study.lesions):
        crop = result.get(lesion.id, scan_id).mask
        box = crop.slices()
        for layer_index, layer in enumerate(layers):
            label = max((s["labelValue"] for s in segments if s["layer"] == layer_index), default=0) + 1
            if label <= np.iinfo(np.uint8).max and not layer[box][crop.array].any():
                break
        else:
            layers.append(np.zeros(shape_zyx, np.uint8))
            layer_index, label = len(layers) - 1, 1
        layers[layer_index][box][crop.array] = label
        segments.append({"id": lesion.id, "name": lesion.id, "color": list(lesion_color(k)),
                         "tags": {TRACKING_TAG: tracking_id(result.study.patient_id, lesion.id)},
                         "labelValue": label, "layer": layer_index, "extent": _extent_ijk(crop)})
    # slicerio wants (i, j, k[, layer first]) indexing: transposed views, written without a copy
    # in Fortran order.
    voxels = layers[0].T if len(layers) == 1 else np.stack(layers, axis=-1).transpose(3, 2, 1, 0)
    return {"voxels": voxels, "ijkToLPS": ref.ijk_to_lps(), "segments": segments}


def write_segmentation(result: TrackingResult, scan_id: str, path: Path) -> None:
    """OUT/segmentations/<scan>.seg.nrrd (Slicer segmentation, gzip at COMPRESSION_LEVEL)."""
    write_segmentation_file(segmentation_dict(result, scan_id), path, COMPRESSION_LEVEL)


def write_labelmap(result: TrackingResult, scan_id: str, path: Path) -> None:
    """OUT/labels/<scan>.nii.gz (uint16, value k = k-th lesion; as ``sitk.WriteImage`` writes it)."""
    write_nifti_gz(result.label_array(scan_id), result.references[scan_id], path, COMPRESSION_LEVEL)


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
        dicom_info = None
        with ThreadPoolExecutor(WRITE_THREADS, thread_name_prefix="linguine-write") as pool:
            futures = []
            for scan in result.study.scans:
                name = names[scan.id]
                futures.append(pool.submit(write_segmentation, result, scan.id,
                                           tmp / "segmentations" / f"{name}.seg.nrrd"))
                futures.append(pool.submit(write_labelmap, result, scan.id, tmp / "labels" / f"{name}.nii.gz"))
            try:
                rows = trajectory_rows(result)
                write_csv(rows, tmp / "trajectory.csv")
                plot_trajectory(rows, [les.id for les in result.study.lesions], tmp / "trajectory.png",
                                title=f"{result.study.patient_id}: lesion volume over time (star: prompt)")
                if dicom:
                    from .dicom_sr import write_dicom

                    dicom_info = write_dicom(result, rows, tmp / "dicom")
                for future in futures:
                    future.result()  # re-raises a writer's error here
            except BaseException:
                pool.shutdown(cancel_futures=True)
                raise
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
