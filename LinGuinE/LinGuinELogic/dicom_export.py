"""DICOM SEG + measurement report from Export, for volumes loaded from Slicer's DICOM database.

A SEG must reference the CT instances it was made on, so only volumes with the
``DICOM.instanceUIDs`` attribute (loaded through the DICOM module) get one; their files come from
the database. The objects are written by ``LinGuinELib.outputs.dicom_sr`` inside the export's
atomic folder, then imported (copied) into the database so they appear under the patient in the
DICOM browser. Needs pydicom >= 3 and highdicom in Slicer's Python: Slicer 5.8-5.10 bundle
pydicom 2.4.4, which this module never replaces (Slicer's own DICOM module depends on it), so
there Export writes everything else and says why DICOM was skipped.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import slicer

from LinGuinELib.errors import InputError

log = logging.getLogger(__name__)


def dicom_files_of(volume: Any) -> list | None:
    """The CT files a volume was loaded from (DICOM database), else None."""
    uids = (volume.GetAttribute("DICOM.instanceUIDs") or "").split()
    database = getattr(slicer, "dicomDatabase", None)
    if not uids or database is None:
        return None
    files = [database.fileForInstance(uid) for uid in uids]
    return files if all(files) else None


def prepare_dicom(result: Any, scans_info: list, wanted: bool | None) -> bool:
    """Attach each DICOM volume's files to its scan; whether to write DICOM (None: when possible)."""
    if wanted is False:
        return False
    found = 0
    for info in scans_info:
        files = dicom_files_of(info.volume)
        if files:
            result.study.scan(info.scan_id).dicom_files = files
            found += 1
    if not found:
        if wanted:
            raise InputError("DICOM export: no volume was loaded from the DICOM database "
                             "(a SEG must reference the CT it was made on)")
        return False
    from LinGuinELib.outputs.dicom_seg import require_dicom_packages

    try:
        require_dicom_packages()
    except InputError as exc:
        if wanted:
            raise
        log.warning("DICOM SEG/SR not exported: %s", exc)
        return False
    return True


def import_into_database(folder: Path) -> int:
    """Copy the exported SEG/SR into Slicer's DICOM database; how many files (0: no database)."""
    files = sorted(Path(folder).glob("*.dcm"))
    database = getattr(slicer, "dicomDatabase", None)
    if not files or database is None:
        return 0
    try:
        from DICOMLib import DICOMUtils
    except ImportError:  # headless slicer-core has no DICOM module
        log.warning("DICOM module not available: %d exported objects not added to the database", len(files))
        return 0
    if not DICOMUtils.importDicom(str(folder), database, copyFiles=True):  # it logs the reason
        log.warning("the exported DICOM objects in %s were not added to the DICOM database", folder)
        return 0
    return len(files)
