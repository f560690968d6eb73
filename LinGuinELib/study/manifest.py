"""Build a Study from a STUDY.json manifest or from a plain folder of images.

Everything is validated before any heavy work, so bad input fails in seconds with one line that
names the file or field. Image headers are read here; voxels are read later by the engine.
Manifest keys not listed below are ignored, not rejected.

    {"patient_id": "P001",
     "scans": [{"id": "T0", "image": "scans/T0.nii.gz", "date": "2023-01-09"},
               {"id": "T1", "image": "scans/T1.nii.gz", "timepoint": "week_12",
                "label": "truth/T1.nii.gz"}],
     "lesions": [{"id": "L1", "scan": "T0", "point_ras": [-73.1, -72.2, -191.5]},
                 {"id": "L2", "scan": "T1", "mask": "masks/L2.nii.gz"}]}

``point_ras`` / ``point_lps`` take one point [x, y, z] or a list of points (mm).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..geometry import ras_to_lps
from ..prompt.checks import check_points_inside
from ..prompt.masks import MAX_PROMPT_SPREAD_MM, points_spread_mm
from ..textio import read_json
from .duplicates import check_distinct_files
from .images import dicom_series_files, read_geometry, read_image
from .model import Lesion, Scan, Study
from .timepoints import parse_date, sort_scans

IMAGE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")
PROMPT_KEYS = ("point_ras", "point_lps", "mask")  # a lesion has exactly one


def _points(value: Any, field: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"{field}: expected [x, y, z] or a list of them, got {value!r}") from None
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != 3 or len(arr) == 0 or not np.isfinite(arr).all():
        raise InputError(f"{field}: expected [x, y, z] or a list of them, got {value!r}")
    return arr


def _text_id(value: Any, field: str) -> str:
    """An id: a non-empty string without control characters (they break file headers)."""
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{field}: missing or not a string")
    bad = next((c for c in value if not c.isprintable() and c != " "), None)
    if bad is not None:
        raise InputError(f"{field}: contains the control character {bad!r}")
    return value


def _positive_int(value: Any, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{field}: expected a positive integer, got {value!r}")
    return value


def _unique(ids: list[str], what: str, where: str) -> None:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise InputError(f"{where}: duplicate {what} id '{i}'")
        seen.add(i)


def _scan_from_record(rec: Any, k: int, base: Path, where: str) -> Scan:
    field = f"{where}: scans[{k}]"
    if not isinstance(rec, dict):
        raise InputError(f"{field}: expected an object")
    _text_id(rec.get("id"), f"{field}.id")
    if not isinstance(rec.get("image"), str) or not rec["image"]:
        raise InputError(f"{field}.image: missing or not a string")
    date = None
    if rec.get("date") is not None:
        date = parse_date(str(rec["date"]))
        if date is None:
            raise InputError(f"{field}.date: '{rec['date']}' is not an ISO date (YYYY-MM-DD)")
    timepoint = rec.get("timepoint")
    timepoint = str(timepoint) if timepoint is not None else None
    if date is None and timepoint and parse_date(timepoint):
        date = parse_date(timepoint)
    label = rec.get("label")
    series_uid = rec.get("series_uid")
    if series_uid is not None and (not isinstance(series_uid, str) or not series_uid):
        raise InputError(f"{field}.series_uid: expected a DICOM series UID string")
    return Scan(
        id=rec["id"],
        path=base / rec["image"],
        date=date,
        timepoint=timepoint,
        truth_path=base / label if isinstance(label, str) else None,
        series_uid=series_uid,
    )


def _lesion_from_record(rec: Any, k: int, base: Path, where: str) -> Lesion:
    field = f"{where}: lesions[{k}]"
    if not isinstance(rec, dict):
        raise InputError(f"{field}: expected an object")
    for key in ("id", "scan"):
        _text_id(rec.get(key), f"{field}.{key}")
    field = f"{field} ('{rec['id']}')"
    given = [key for key in PROMPT_KEYS if key in rec]
    if len(given) > 1:
        raise InputError(f"{field}: give one prompt, not both {given[0]} and {given[1]} (which one would be used "
                         "cannot be guessed)")
    if "mask_label" in rec and "mask" not in rec:
        raise InputError(f"{field}.mask_label: picks a value of a mask, but this lesion has no mask; "
                         "give one prompt")
    points = None
    if "point_ras" in rec:
        points = ras_to_lps(_points(rec["point_ras"], f"{field}.point_ras"))
    elif "point_lps" in rec:
        points = _points(rec["point_lps"], f"{field}.point_lps")
    negatives = None
    if "negative_point_ras" in rec:
        negatives = ras_to_lps(_points(rec["negative_point_ras"], f"{field}.negative_point_ras"))
    mask = rec.get("mask")
    if points is None and not isinstance(mask, str):
        raise InputError(f"{field}: needs point_ras, point_lps or mask")
    truth = _positive_int(rec.get("truth_label"), f"{field}.truth_label")
    mask_label = _positive_int(rec.get("mask_label"), f"{field}.mask_label")
    if points is not None and points_spread_mm(points) > MAX_PROMPT_SPREAD_MM:
        raise InputError(f"{field}: its points are {points_spread_mm(points):.0f} mm apart (more than "
                         f"{MAX_PROMPT_SPREAD_MM:.0f} mm): that is several lesions; give one lesion entry each")
    return Lesion(
        id=rec["id"],
        scan_id=rec["scan"],
        points_lps=points,
        mask_path=base / mask if isinstance(mask, str) and points is None else None,
        negative_points_lps=negatives,
        truth_label=truth,
        mask_label=mask_label,
    )


def validate_study(study: Study, where: str) -> Study:
    """Checks that need the images' geometry: prompts inside their scan, masks aligned."""
    if len(study.scans) < 2:
        raise InputError(f"{where}: a study needs at least two scans, got {len(study.scans)}")
    _unique([s.id for s in study.scans], "scan", where)
    _unique([les.id for les in study.lesions], "lesion", where)
    check_distinct_files(study, where)
    if not study.lesions:
        raise InputError(f"{where}: no lesions to track")
    for s in study.scans:
        if s.image is None and s.path is not None and s.path.is_dir():
            # A DICOM series' geometry needs every slice: keep it, read once; its files for DICOM output.
            s.dicom_files = dicom_series_files(s.path, s.series_uid)
            s.image = read_image(s.path, files=s.dicom_files)
    geometries = {s.id: s.image if s.image is not None else read_geometry(s.path) for s in study.scans}
    for lesion in study.lesions:
        if lesion.scan_id not in geometries:
            raise InputError(f"{where}: lesion '{lesion.id}' names unknown scan '{lesion.scan_id}'")
        geom = geometries[lesion.scan_id]
        check_points_inside(lesion, geom, f"{where}: ")
        if lesion.mask_path is not None:
            from ..prompt.masks import read_prompt_mask  # validates alignment and emptiness

            lesion.mask = read_prompt_mask(lesion.mask_path, geom, lesion.mask_label)
    return study


def load_manifest(path: Path) -> Study:
    """Parse and validate STUDY.json (paths relative to it); scans sorted earliest first."""
    path = Path(path)
    where = str(path)
    data = read_json(path, "JSON manifest")
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object with 'scans' and 'lesions'")
    scans = data.get("scans")
    lesions = data.get("lesions", [])
    if not isinstance(scans, list):
        raise InputError(f"{path}: 'scans' missing or not a list")
    if not isinstance(lesions, list):
        raise InputError(f"{path}: 'lesions' is not a list")
    base = path.parent
    pid = data.get("patient_id")
    study = Study(
        patient_id=_text_id(str(pid) if isinstance(pid, (int, float)) else pid, f"{path}: patient_id")
        if pid not in (None, "") else path.parent.name,
        scans=[_scan_from_record(r, k, base, where) for k, r in enumerate(scans)],
        lesions=[_lesion_from_record(r, k, base, where) for k, r in enumerate(lesions)],
        source=path,
    )
    _unique([s.id for s in study.scans], "scan", where)
    study.scans = sort_scans(study.scans)
    return validate_study(study, where)


def _scan_id(path: Path) -> str:
    name = path.name
    for suffix in IMAGE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def load_folder(folder: Path, point_ras: tuple[float, float, float], source_scan: str) -> Study:
    """One lesion, one point: every image (or DICOM sub-folder) in ``folder`` is a timepoint.

    Scans are ordered by the dates or labels in their names (``2023-01-09.nii.gz``,
    ``week_12.nii.gz``), by the one rule of ``timepoints.sort_scans``; names that carry no order
    are refused (sorting names as text put ``CT_10`` before ``CT_9``).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder")
    entries = sorted(
        p for p in folder.iterdir()
        if p.is_dir() or any(p.name.lower().endswith(s) for s in IMAGE_SUFFIXES)
    )
    scans = []
    for p in entries:
        sid = _scan_id(p)
        scans.append(Scan(id=sid, path=p, date=parse_date(sid), timepoint=sid))
    try:
        scans = sort_scans(scans)
    except InputError as exc:
        raise InputError(f"{folder}: {exc}: name the files by date (2023-01-09.nii.gz) or label (week_12, "
                         "visit_2), write a STUDY.json manifest with dates, or give DICOM series (their "
                         "study dates are used)") from None
    if source_scan not in [s.id for s in scans]:
        known = ", ".join(s.id for s in scans) or "none"
        raise InputError(f"--source: scan '{source_scan}' not found in {folder} (scans: {known})")
    lesion = Lesion(id="L1", scan_id=source_scan, points_lps=ras_to_lps(_points(point_ras, "--point-ras")))
    study = Study(patient_id=folder.name, scans=scans, lesions=[lesion], source=folder)
    return validate_study(study, str(folder))
