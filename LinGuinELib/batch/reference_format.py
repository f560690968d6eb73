"""The reference LinGuinE input format (a JSON list of records) converted to study manifests.

One record per scan, the semantics of n-e-garibli/LinGuinE v0.0.2:

- ``patient_id`` (required): scans are grouped by it; a patient with fewer than 2 scans is skipped.
- ``file_id`` (required, unique): the scan id.
- ``image`` (required): image file or DICOM folder (a list means its first entry).
- ``timepoint``: label such as ``baseline`` or ``week_12``; when absent the ``file_id`` is used,
  as the reference does.
- ``label``: labelmap of the scan; each non-zero value is one lesion, the same value on every
  scan. It is the ground truth for evaluation and, on the source scan, the prompt.
- ``use_as_source`` (optional, at most one ``true`` per patient): the scan to propagate from.
  Otherwise the earliest scan whose label is non-empty, else the earliest scan with clicks.
- ``clicks`` (optional): ``[[x, y, z], ...]`` integer voxel indices into the image as MONAI loads
  it (``LoadImage`` + ``Orientation(as_closest_canonical=True)``): array axes re-ordered and
  flipped so that indices increase towards patient Right, Anterior, Superior (RAS). All clicks
  belong to one lesion; they replace the label as the prompt on that scan.

Relative paths are resolved against the folder of the JSON file (then the working directory).
Label prompts become binary mask files next to each written manifest (``prompt_<value>.nii.gz``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from ..geometry import RAS_LPS_MATRIX
from ..outputs.names import unique_names
from ..textio import read_json, write_text_atomic
from ..voxels import voxels

log = logging.getLogger(__name__)

REQUIRED_KEYS = ("patient_id", "file_id", "image")


def load_records(path: Path) -> list[dict[str, Any]]:
    """Read and validate a reference-format JSON file (a list of per-scan records)."""
    path = Path(path)
    records = read_json(path, "JSON list of records")
    validate_records(records, path)
    return records


def validate_records(records: Any, where: Path | str = "records") -> None:
    """Raise InputError naming the record and field that break the reference format."""
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise InputError(f"{where}: expected a JSON list of records (objects)")
    seen: set[str] = set()
    sources: dict[str, str] = {}
    for i, rec in enumerate(records):
        for key in REQUIRED_KEYS:
            if rec.get(key) in (None, ""):
                raise InputError(f"{where}: record {i} has no '{key}'")
        fid = str(rec["file_id"])
        if fid in seen:
            raise InputError(f"{where}: file_id '{fid}' appears twice")
        seen.add(fid)
        if rec.get("use_as_source"):
            pid = str(rec["patient_id"])
            if pid in sources:
                raise InputError(
                    f"{where}: patient '{pid}' has use_as_source on both '{sources[pid]}' and '{fid}'"
                )
            sources[pid] = fid
        clicks = rec.get("clicks")
        if clicks is not None:
            if not isinstance(clicks, list) or not clicks:
                raise InputError(f"{where}: record '{fid}' clicks must be a non-empty list")
            for c in clicks:
                ok = isinstance(c, (list, tuple)) and len(c) == 3
                if not ok or not all(isinstance(v, int) and not isinstance(v, bool) for v in c):
                    raise InputError(
                        f"{where}: record '{fid}' click {c!r} is not 3 integer voxel indices (x, y, z)"
                    )


def _canonical_axes(image: sitk.Image) -> list[tuple[int, bool]]:
    """Per ITK index axis j: (RAS world axis it becomes in closest-canonical order, flipped?).

    Greedy assignment on the largest direction cosines, as nibabel's ``io_orientation`` does
    for non-degenerate directions.
    """
    m = RAS_LPS_MATRIX @ np.array(image.GetDirection(), dtype=float).reshape(3, 3)
    work = np.abs(m)
    out: list[tuple[int, bool] | None] = [None, None, None]
    for _ in range(3):
        w, j = np.unravel_index(int(np.argmax(work)), work.shape)
        out[j] = (int(w), bool(m[w, j] < 0))
        work[w, :] = -1.0
        work[:, j] = -1.0
    return [o for o in out if o is not None]


def clicks_to_lps(image: sitk.Image, clicks: list) -> np.ndarray:
    """Reference clicks (canonical RAS-ordered voxel indices) -> (N, 3) LPS mm points."""
    axes = _canonical_axes(image)
    size = image.GetSize()
    pts = []
    for click in clicks:
        ijk = []
        for j, (w, flip) in enumerate(axes):
            v = float(click[w])
            ijk.append(size[j] - 1 - v if flip else v)
        pts.append(image.TransformContinuousIndexToPhysicalPoint(ijk))
    return np.array(pts, dtype=float).reshape(-1, 3)


def lps_to_clicks(image: sitk.Image, points_lps: np.ndarray) -> list[list[int]]:
    """(N, 3) LPS mm -> reference clicks (rounded canonical voxel indices); inverse of the above."""
    axes = _canonical_axes(image)
    size = image.GetSize()
    out = []
    for p in np.asarray(points_lps, dtype=float).reshape(-1, 3):
        ijk = image.TransformPhysicalPointToContinuousIndex([float(v) for v in p])
        click = [0, 0, 0]
        for j, (w, flip) in enumerate(axes):
            v = size[j] - 1 - ijk[j] if flip else ijk[j]
            click[w] = int(round(v))
        out.append(click)
    return out


def _path(value: Any, base_dir: Path, what: str) -> Path | None:
    if value is None or value == "":
        return None
    if isinstance(value, (list, tuple)):
        value = value[0]
    p = Path(str(value)).expanduser()
    if p.is_absolute():
        return p
    for cand in (base_dir / p, Path.cwd() / p):
        if cand.exists():
            return cand.resolve()
    raise InputError(f"{what}: '{value}' not found (relative to {base_dir} or the working directory)")


def group_records(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Records grouped by patient, in file order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for rec in records:
        groups.setdefault(str(rec["patient_id"]), []).append(rec)
    return groups


def _order(recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records sorted in time with the engine's timepoint sorter (falls back to file order)."""
    try:
        from ..study.model import Scan
        from ..study.timepoints import sort_scans
    except ImportError:  # engine not there yet: keep file order
        return list(recs)
    scans = [Scan(id=str(r["file_id"]), timepoint=_timepoint(r)) for r in recs]
    by_id = {str(r["file_id"]): r for r in recs}
    return [by_id[s.id] for s in sort_scans(scans)]


def _timepoint(rec: dict[str, Any]) -> str:
    return str(rec.get("timepoint") or rec["file_id"])


def _label_values(path: Path) -> tuple[sitk.Image, list[int]]:
    label = sitk.ReadImage(str(path))
    arr = voxels(label)
    values = [int(v) for v in np.unique(arr) if v != 0]
    return label, values


def patient_manifest(
    patient_id: str, recs: list[dict[str, Any]], work_dir: Path, base_dir: Path
) -> dict[str, Any]:
    """The manifest dict of one patient; writes the label prompts as mask files in work_dir."""
    work_dir.mkdir(parents=True, exist_ok=True)
    ordered = _order(recs)
    scans = []
    for r in ordered:
        fid = str(r["file_id"])
        entry: dict[str, Any] = {
            "id": fid,
            "image": str(_path(r["image"], base_dir, f"record '{fid}' image")),
            "timepoint": _timepoint(r),
        }
        label = _path(r.get("label"), base_dir, f"record '{fid}' label")
        if label is not None:
            entry["label"] = str(label)
        scans.append(entry)
    flagged = [r for r in ordered if r.get("use_as_source")]
    candidates = flagged or [r for r in ordered if r.get("label")] + [
        r for r in ordered if r.get("clicks")
    ]
    for rec in candidates:
        lesions = _lesions_from(rec, scans, work_dir)
        if lesions:
            return {"patient_id": patient_id, "scans": scans, "lesions": lesions}
        if flagged:
            raise InputError(f"patient '{patient_id}': source scan '{rec['file_id']}' has no clicks "
                             "and an empty or missing label")
    raise InputError(f"patient '{patient_id}': no scan has clicks or a non-empty label to start from")


def _lesions_from(rec: dict[str, Any], scans: list[dict], work_dir: Path) -> list[dict[str, Any]]:
    """Lesion prompts on one record's scan: its clicks (one lesion) or one mask per label value."""
    fid = str(rec["file_id"])
    scan = next(s for s in scans if s["id"] == fid)
    label_path = scan.get("label")
    if rec.get("clicks"):
        from ..study.images import read_image

        image = read_image(Path(scan["image"]))
        pts = clicks_to_lps(image, rec["clicks"])
        lesion: dict[str, Any] = {"id": "lesion_1", "scan": fid, "point_lps": pts.tolist()}
        if label_path:
            label = sitk.ReadImage(label_path)
            idx = label.TransformPhysicalPointToIndex([float(v) for v in pts[0]])
            size = label.GetSize()
            if all(0 <= i < n for i, n in zip(idx, size)) and label[idx] != 0:
                lesion["truth_label"] = int(label[idx])
        return [lesion]
    if not label_path:
        return []
    label, values = _label_values(Path(label_path))
    lesions = []
    for v in values:
        mask_path = work_dir / f"prompt_{fid}_{v}.nii.gz"
        sitk.WriteImage(sitk.Cast(label == v, sitk.sitkUInt8), str(mask_path), True)
        lesions.append({"id": f"lesion_{v}", "scan": fid, "mask": str(mask_path), "truth_label": v})
    return lesions


def records_to_manifests(records_path: Path, work_dir: Path) -> tuple[list[Path], dict[str, str]]:
    """Convert a records file into work_dir/<patient_id>/STUDY.json manifests.

    Returns the manifest paths and, per patient that could not be converted, the reason (a bad
    patient must not stop the others). Patients with fewer than 2 scans are skipped with a
    warning, as in the reference.
    """
    records_path = Path(records_path)
    records = load_records(records_path)
    base_dir = records_path.resolve().parent
    out: list[Path] = []
    failures: dict[str, str] = {}
    groups = group_records(records)
    folders = unique_names(sorted(groups))
    for pid, recs in groups.items():
        if len(recs) < 2:
            log.warning("patient %s has fewer than 2 scans: skipped", pid)
            continue
        folder = Path(work_dir) / folders[pid]
        try:
            manifest = patient_manifest(pid, recs, folder, base_dir)
        except (InputError, RuntimeError, OSError) as exc:
            # the batch labels these failures InputError itself: only a foreign error names its type
            failures[pid] = str(exc) if isinstance(exc, InputError) else f"{type(exc).__name__}: {exc}"
            continue
        path = folder / "STUDY.json"
        write_text_atomic(path, json.dumps(manifest, indent=2, ensure_ascii=False))
        out.append(path)
    return out, failures

