"""A study from a folder of DICOM files: every CT series below it, one chosen per imaging study.

Headers only are read (pydicom, ``stop_before_pixels``), so scanning a PACS export of thousands
of files takes seconds. Series are grouped by patient (PatientID) and study (StudyInstanceUID).
Per study one series is chosen by this rule (``--series UID`` overrides it):

1. eligible: CT Image Storage, not a localizer, at least 3 slices, one orientation and image
   size, slice positions distinct and evenly spaced (a regular volume: masks and SEG frames
   then correspond exactly);
2. axial first (slice normal within 18 degrees of the patient's z axis);
3. full coverage first: extent along the normal at least 90% of the study's longest;
4. then the thinnest slice spacing, the most images, the lowest SeriesNumber, the UID.

Studies are ordered by StudyDate/StudyTime (else the series' own date); a study without any date
can't be placed in time and is refused. Scan ids are the study dates (``2023-01-09``; ``_2``,
``_3`` for several studies on one day).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError

log = logging.getLogger(__name__)

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
AXIAL_MIN_COS = 0.95
FULL_COVERAGE = 0.9
_TAGS = ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPClassUID", "SOPInstanceUID", "Modality",
         "StudyDate", "StudyTime", "SeriesDate", "SeriesTime", "AcquisitionDate", "ContentDate",
         "ImageType", "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "Rows",
         "Columns", "SeriesNumber", "SeriesDescription", "StudyDescription")


@dataclass
class SeriesInfo:
    """One DICOM series as its headers describe it."""

    patient_id: str
    study_uid: str
    series_uid: str
    date: dt.date | None = None
    time: str = ""
    series_number: int = 0
    description: str = ""
    files: list[Path] = field(default_factory=list)
    positions: list[tuple[float, ...]] = field(default_factory=list)
    orientations: set[tuple[float, ...]] = field(default_factory=set)
    sizes: set[tuple[int, int]] = field(default_factory=set)
    localizer: bool = False
    # Filled by ``analyse``:
    problem: str | None = None  # why the series is not a regular volume (None: it is)
    axial: bool = False
    spacing_mm: float = 0.0
    extent_mm: float = 0.0

    @property
    def folder(self) -> Path:
        """The deepest folder holding every file of the series."""
        import os

        return Path(os.path.commonpath([str(f.parent) for f in self.files]))

    def analyse(self) -> SeriesInfo:
        if self.localizer:
            self.problem = "localizer"
        elif len(self.files) < 3:
            self.problem = f"{len(self.files)} image(s)"
        elif len(self.orientations) != 1 or len(self.sizes) != 1:
            self.problem = "several orientations or image sizes"
        if self.problem:
            return self
        iop = np.array(next(iter(self.orientations)), float).reshape(2, 3)
        normal = np.cross(iop[0], iop[1])
        self.axial = abs(normal[2]) / max(np.linalg.norm(normal), 1e-9) >= AXIAL_MIN_COS
        along = np.sort(np.array(self.positions, float) @ normal)
        steps = np.diff(along)
        self.spacing_mm = float(np.median(steps))
        self.extent_mm = float(along[-1] - along[0])
        if self.spacing_mm <= 1e-3 or steps.min() <= 1e-3:
            self.problem = "repeated slice positions"
        elif np.abs(steps - self.spacing_mm).max() > 0.1 * self.spacing_mm:
            self.problem = "uneven slice spacing (gaps)"
        return self


def _date(*values) -> dt.date | None:
    for v in values:
        text = str(v or "").strip()
        if len(text) >= 8 and text[:8].isdigit():
            try:
                return dt.date(int(text[:4]), int(text[4:6]), int(text[6:8]))
            except ValueError:
                continue
    return None


def scan_dicom_folder(folder: Path) -> tuple[list[SeriesInfo], int]:
    """Every CT series below ``folder`` (headers only) and how many other DICOM files were skipped."""
    from ..outputs.dicom_seg import require_dicom_packages

    require_dicom_packages()
    import pydicom
    from pydicom.errors import InvalidDicomError

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder")
    series: dict[str, SeriesInfo] = {}
    skipped = 0
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=list(_TAGS))
        except (InvalidDicomError, OSError, ValueError, EOFError):
            continue
        uid = str(ds.get("SeriesInstanceUID", ""))
        if ds.get("Modality") != "CT" or str(ds.get("SOPClassUID", "")) != CT_IMAGE_STORAGE or not uid:
            skipped += 1
            continue
        info = series.get(uid)
        if info is None:
            info = series[uid] = SeriesInfo(
                patient_id=str(ds.get("PatientID", "") or "").strip() or "unknown",
                study_uid=str(ds.get("StudyInstanceUID", "") or uid),
                series_uid=uid,
                date=_date(ds.get("StudyDate"), ds.get("SeriesDate"), ds.get("AcquisitionDate"),
                           ds.get("ContentDate")),
                time=str(ds.get("StudyTime") or ds.get("SeriesTime") or ""),
                series_number=int(ds.get("SeriesNumber") or 0),
                description=str(ds.get("SeriesDescription", "") or ""),
            )
        info.files.append(path)
        info.localizer |= "LOCALIZER" in [str(v).upper() for v in (ds.get("ImageType") or [])]
        try:
            info.positions.append(tuple(float(v) for v in ds.ImagePositionPatient))
            info.orientations.add(tuple(round(float(v), 4) for v in ds.ImageOrientationPatient))
            info.sizes.add((int(ds.Rows), int(ds.Columns)))
        except (AttributeError, TypeError, ValueError):
            info.problem = "missing image position or orientation"
    return [s if s.problem else s.analyse() for s in series.values()], skipped


def choose_series(candidates: list[SeriesInfo]) -> SeriesInfo | None:
    """The series this module tracks in one study, by the rule in the module docstring."""
    usable = [s for s in candidates if s.problem is None]
    if not usable:
        return None
    longest = max(s.extent_mm for s in usable)
    return min(usable, key=lambda s: (not s.axial, s.extent_mm < FULL_COVERAGE * longest,
                                      round(s.spacing_mm, 2), -len(s.files), s.series_number,
                                      s.series_uid))


@dataclass
class DicomScan:
    """The series chosen for one imaging study, with the id and date the manifest gets."""

    id: str
    series: SeriesInfo
    others: list[SeriesInfo]  # the study's other CT series (not chosen)


def _time_key(s: SeriesInfo) -> tuple:
    digits = "".join(c for c in s.time if c.isdigit() or c == ".")
    try:
        t = float(digits or 0)
    except ValueError:
        t = 0.0
    return (s.date, t, s.study_uid)


def select_study(series: list[SeriesInfo], folder: Path, patient: str | None = None,
                 chosen: list[str] | None = None) -> tuple[str, list[DicomScan]]:
    """(patient id, one scan per imaging study, earliest first) from a folder's CT series."""
    if not series:
        raise InputError(f"{folder}: no CT series found (CT Image Storage, modality CT)")
    patients = sorted({s.patient_id for s in series})
    if patient is not None:
        if patient not in patients:
            raise InputError(f"--patient: '{patient}' not in {folder} (patients: {', '.join(patients)})")
    elif len(patients) > 1:
        raise InputError(f"{folder}: holds {len(patients)} patients ({', '.join(patients[:5])}"
                         f"{', ...' if len(patients) > 5 else ''}): name one with --patient ID")
    else:
        patient = patients[0]
    mine = [s for s in series if s.patient_id == patient]
    by_uid = {s.series_uid: s for s in series}
    forced: dict[str, SeriesInfo] = {}
    for uid in chosen or []:
        s = by_uid.get(uid)
        if s is None or s.patient_id != patient:
            raise InputError(f"--series: no CT series {uid} for patient '{patient}' in {folder}")
        if s.problem:
            raise InputError(f"--series {uid}: not a regular volume ({s.problem})")
        if s.study_uid in forced:
            raise InputError(f"--series: two series given for study {s.study_uid}")
        forced[s.study_uid] = s
    studies: dict[str, list[SeriesInfo]] = defaultdict(list)
    for s in mine:
        studies[s.study_uid].append(s)
    picked = []
    for study_uid, candidates in studies.items():
        best = forced.get(study_uid) or choose_series(candidates)
        if best is None:
            reasons = "; ".join(f"{s.series_uid}: {s.problem}" for s in candidates)
            log.warning("study %s has no CT series usable as a volume (%s): skipped", study_uid, reasons)
            continue
        if best.date is None:
            raise InputError(f"{folder}: study {study_uid} has no StudyDate (nor series date): "
                             f"cannot place it in time")
        picked.append(DicomScan("", best, [s for s in candidates if s is not best]))
    picked.sort(key=lambda p: _time_key(p.series))
    counts: dict[dt.date, int] = defaultdict(int)
    for p in picked:
        counts[p.series.date] += 1
        n = counts[p.series.date]
        p.id = p.series.date.isoformat() + (f"_{n}" if n > 1 else "")
    return patient, picked


def _relative(path: Path, base: Path) -> str:
    import os

    try:
        return os.path.relpath(path.resolve(), base.resolve())
    except ValueError:  # another drive (Windows)
        return str(path.resolve())


def manifest_for(patient: str, scans: list[DicomScan], manifest_dir: Path,
                 lesions: list[dict] | None = None) -> dict:
    """STUDY.json content for the chosen series (image paths relative to ``manifest_dir``)."""
    return {
        "patient_id": patient,
        "scans": [{"id": p.id, "image": _relative(p.series.folder, manifest_dir),
                   "series_uid": p.series.series_uid, "study_uid": p.series.study_uid,
                   "date": p.series.date.isoformat(), "series_description": p.series.description,
                   "images": len(p.series.files), "slice_spacing_mm": round(p.series.spacing_mm, 3)}
                  for p in scans],
        "lesions": lesions or [],
    }


def match_scan(scans: list[DicomScan], key: str) -> DicomScan | None:
    """The scan named by its id, its StudyInstanceUID or SeriesInstanceUID, or its folder's name."""
    for test in (lambda p: p.id, lambda p: p.series.study_uid, lambda p: p.series.series_uid,
                 lambda p: p.series.folder.name):
        hits = [p for p in scans if test(p) == key]
        if len(hits) == 1:
            return hits[0]
    return None


def load_dicom_study(folder: Path, point_ras: tuple[float, float, float], source: str,
                     patient: str | None = None, series: list[str] | None = None):
    """One lesion at ``point_ras`` on scan ``source``: the Study that `track DICOM_FOLDER` runs."""
    from ..geometry import ras_to_lps
    from .manifest import validate_study
    from .model import Lesion, Scan, Study

    found, _ = scan_dicom_folder(folder)
    patient, scans = select_study(found, folder, patient, series)
    prompt = match_scan(scans, source)
    if prompt is None:
        known = ", ".join(p.id for p in scans) or "none"
        raise InputError(f"--source: scan '{source}' not found in {folder} (scans: {known}; "
                         f"a study or series UID works too)")
    study = Study(
        patient_id=patient,
        scans=[Scan(id=p.id, path=p.series.folder, date=p.series.date, series_uid=p.series.series_uid)
               for p in scans],
        lesions=[Lesion(id="L1", scan_id=prompt.id, points_lps=ras_to_lps(np.asarray([point_ras], float)))],
        source=Path(folder),
    )
    return validate_study(study, str(folder))


def is_dicom_folder(folder: Path) -> bool:
    """True when ``folder`` holds no image files SimpleITK reads directly but a DICOM file below it."""
    from .manifest import IMAGE_SUFFIXES

    folder = Path(folder)
    if any(p.is_file() and p.name.lower().endswith(IMAGE_SUFFIXES) for p in folder.iterdir()):
        return False
    try:
        import pydicom
        from pydicom.errors import InvalidDicomError
    except ImportError:  # without the DICOM extra a folder of DICOM series folders still reads
        return False

    for path in folder.rglob("*"):
        if path.is_file() and not path.name.startswith("."):
            try:
                pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["Modality"])
                return True
            except (InvalidDicomError, OSError, ValueError, EOFError):
                continue
    return False
