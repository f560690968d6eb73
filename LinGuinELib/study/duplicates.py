"""The same image given for two dates is refused: its "change" would be a measurement of nothing.

Two checks, both cheap. ``check_distinct_files`` (before anything is read): two scans naming the
same file or DICOM series (also through a symlink or a hard link) are refused. ``check_distinct_voxels``
(as each scan's voxels are read, by preflight or the engine): two scans whose voxels are exactly
equal (a copy, a re-export, another format of the same scan) are refused. Only scans of the same
size and voxel type are compared, against the earlier ones still in memory (weak references: the
check never keeps an image alive), a sparse sample first: two real scans differ there at once, so
the check costs nothing measurable. Two real acquisitions never hold the same voxels (noise alone
differs), so neither check refuses a real study.
"""

from __future__ import annotations

import os
import threading
import weakref
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from .model import Scan, Study

_LOCK = threading.Lock()  # scans are read by preflight and by the engine's threads
SAMPLE = 4096  # voxels compared before the whole buffer


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # missing or unreadable: the read names it
        return False


def check_distinct_files(study: Study, where: str) -> None:
    """Refuse two scans that name the same image file, or the same series of the same DICOM folder."""
    seen: list[Scan] = []
    for scan in study.scans:
        if scan.path is None:
            continue
        for other in seen:
            one_series = scan.series_uid == other.series_uid or not Path(scan.path).is_dir()  # uid: folders only
            if one_series and _same_file(scan.path, other.path):
                raise InputError(f"{where}: scans '{other.id}' and '{scan.id}' are the same image "
                                 f"('{other.path}'{', ' + str(scan.path) if scan.path != other.path else ''}): "
                                 "one scan given for two dates; give each date its own scan")
        seen.append(scan)


def _same_voxels(a, b) -> bool:
    """Exactly equal buffers; a sparse sample first, so two different scans cost microseconds."""
    flat_a, flat_b = a.reshape(-1), b.reshape(-1)
    step = max(1, flat_a.size // SAMPLE)
    return bool(np.array_equal(flat_a[::step], flat_b[::step]) and np.array_equal(flat_a, flat_b))


def check_distinct_voxels(study: Study, scan: Scan, image: sitk.Image) -> None:
    """Refuse this scan when an earlier-read scan of the study (still in memory) holds the same voxels."""
    key = (tuple(image.GetSize()), image.GetPixelIDValue())
    view = sitk.GetArrayViewFromImage(image)
    with _LOCK:
        seen = study.seen_voxels.setdefault(key, [])
        for other_id, ref in seen:
            other = ref()
            if other is not None and other_id != scan.id and _same_voxels(view, sitk.GetArrayViewFromImage(other)):
                first = study.scan(other_id)
                raise InputError(f"scans '{first.id}' ({first.path}) and '{scan.id}' ({scan.path}) hold identical "
                                 "voxels: the same image given for two dates; give each date its own scan")
        seen.append((scan.id, weakref.ref(image)))
