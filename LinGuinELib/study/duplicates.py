"""The same image given for two dates is refused: its "change" would be a measurement of nothing.

Two checks, both cheap. ``check_distinct_files`` (before anything is read): two scans naming the
same file or DICOM series (also through a symlink or a hard link) are refused. ``check_distinct_voxels``
(as each scan's voxels are read, by preflight, the engine or the Slicer module): two scans whose
voxels hold exactly the same values are refused, in the order they are stored (a copy, a re-export,
another format of the same scan, whatever its header says) or at the same places of the body (the
same scan stored in another voxel type, int16 / float32, or in another axis order or direction:
flipped, a re-export in RAS instead of LPS order; ``physical_view``, no copy). Values are compared
as numbers with the earlier scans still in memory (weak references: the check never keeps an image
alive), a sparse sample first: two real scans differ there at once, so the check costs nothing
measurable. Two real acquisitions never hold the same values everywhere (noise alone differs), so
neither check refuses a real study.
"""

from __future__ import annotations

import os
import threading
import weakref
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from ..voxels import voxels
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


def physical_view(array: np.ndarray, direction: tuple[float, ...]) -> np.ndarray:
    """The (z, y, x) voxel array of an image with ``direction`` (SimpleITK's row-major 3x3), its axes
    put in the order of the physical axes they run along (nearest axis; S, P, L: an axial scan's
    own order) and each turned to run towards +L/+P/+S: the same scan stored flipped or with its
    axes permuted gives the same view. A view, never a copy; the array as it is when an axis is
    oblique enough that two of them run nearest the same physical axis."""
    matrix = np.asarray(direction, dtype=float).reshape(3, 3)
    # array axis a is image index axis 2 - a, i.e. column 2 - a of the direction matrix
    physical = [int(np.argmax(np.abs(matrix[:, 2 - a]))) for a in range(3)]
    if len(set(physical)) < 3:
        return array
    order = sorted(range(3), key=lambda a: -physical[a])  # physical z (S) first, as in zyx
    flips = tuple(slice(None, None, -1) if matrix[physical[a], 2 - a] < 0 else slice(None) for a in order)
    return np.transpose(array, order)[flips]


def _same_values(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal values everywhere (as numbers, whatever the voxel types); a sparse sample first (about
    ``SAMPLE`` voxels), so two different scans cost microseconds."""
    if a.shape != b.shape:
        return False
    step = tuple(max(1, int(np.ceil(n / SAMPLE ** (1 / 3)))) for n in a.shape)
    sample = tuple(slice(None, None, k) for k in step)
    return bool(np.array_equal(a[sample], b[sample]) and np.array_equal(a, b))


def _named(scan: Scan) -> str:
    return f"'{scan.id}'" + (f" ({scan.path})" if scan.path is not None else "")


def check_distinct_voxels(study: Study, scan: Scan, image: sitk.Image) -> None:
    """Refuse this scan when an earlier-read scan of the study (still in memory) holds the same voxels:
    as stored, or in the body's order (another voxel type, axis order or direction)."""
    stored = voxels(image)
    placed = physical_view(stored, image.GetDirection())
    with _LOCK:
        for other_id, ref in study.seen_voxels:
            other = ref()
            if other is None or other_id == scan.id:
                continue
            other_stored = voxels(other)
            if _same_values(stored, other_stored) or _same_values(
                    placed, physical_view(other_stored, other.GetDirection())):
                raise InputError(f"scans {_named(study.scan(other_id))} and {_named(scan)} hold identical voxels: "
                                 "the same image given for two dates; give each date its own scan")
        study.seen_voxels.append((scan.id, weakref.ref(image)))
