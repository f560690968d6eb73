"""Checks before any tracking work, so that bad input or a bad OUT costs seconds, not minutes.

``preflight(study, out)``: OUT allowed by the data-safety policy and writable with room to
spare, every image file's header readable and its data complete (a truncated file is an error
naming it), the prompted scans read in full (the engine reuses them) with every prompt on finite
voxels. The other scans are read by the engine while it registers (reading them all first left a
core idle and the method waiting); ``check_pixels`` refuses a constant (empty) or non-finite scan
as it is read, still before anything is written. ``read_all=True`` reads every scan here instead.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from ..outputs.safety import check_out
from ..prompt.checks import check_prompt_voxels
from ..voxels import voxels
from .duplicates import check_distinct_voxels
from .images import read_geometry, read_image
from .integrity import check_complete
from .model import Study

log = logging.getLogger(__name__)

# Rough output size: compressed uint16 labelmaps and .seg.nrrd files are mostly zeros; a tenth of
# a byte per scan voxel and 20 MB for the table, plot and slack over-estimates what is written.
BYTES_PER_VOXEL = 0.1
BASE_BYTES = 20_000_000
READ_THREADS = 2  # more only adds memory: each read briefly holds about twice its image
# A chest CT in Hounsfield units holds air (-1000) and aerated lung (-900 to -700 HU), also when
# cropped around a lung lesion. A scan with almost nothing darker than LUNG_MAX_HU (under
# DARK_FRACTION of its voxels, so that a few ringing or padding voxels do not count) is MR, PET, or
# CT whose stored values were read without their rescale (unsigned values whose intercept -1024
# was dropped): every threshold of the method is in HU, so it would measure nonsense unflagged.
LUNG_MAX_HU = -500.0
DARK_FRACTION = 0.001
DARK_SAMPLE = 1_000_000  # voxels, evenly spaced, that estimate the fraction (all of a small scan)


def study_inputs(study: Study) -> list[Path]:
    """Every file or folder the study reads: OUT must neither hold nor sit inside any of them."""
    paths = [study.source] if study.source is not None else []
    for scan in study.scans:
        paths += [p for p in (scan.path, scan.truth_path) if p is not None]
    paths += [les.mask_path for les in study.lesions if les.mask_path is not None]
    return [Path(p) for p in paths]


def output_bytes(study: Study) -> int:
    """A rough upper estimate of what a track OUT needs on disk."""
    count = 0
    for scan in study.scans:
        if scan.image is not None:
            count += int(np.prod(scan.image.GetSize()))
        elif scan.path is not None and Path(scan.path).is_file():
            count += Path(scan.path).stat().st_size  # a compressed file holds at least 1 byte/voxel/10
    return int(BASE_BYTES + BYTES_PER_VOXEL * count * 2)


def load_pixels(study: Study, scan_ids: set[str] | None = None) -> None:
    """Read these scans (default: all) in full, kept on the scan for the engine; refuse empty ones.
    Scans already in memory (DICOM series, read whole to know their grid) are checked too.

    Two files at a time: decompression is most of a read and SimpleITK releases the GIL.
    """
    chosen = [scan for scan in study.scans if scan_ids is None or scan.id in scan_ids or scan.image is not None]
    unread = [scan for scan in chosen if scan.image is None]
    with ThreadPoolExecutor(READ_THREADS, thread_name_prefix="linguine-read") as pool:
        for scan, image in zip(unread, pool.map(lambda s: read_image(s.path), unread)):
            scan.image = image
    for scan in chosen:
        check_pixels(scan.id, scan.path, scan.image)
        check_distinct_voxels(study, scan, scan.image)


def check_pixels(scan_id: str, path: Path | None, image: sitk.Image) -> None:
    """Refuse a scan with no finite voxel, one value everywhere, or values that are not CT in HU
    (no air or lung: ``LUNG_MAX_HU``); warn about NaN/inf voxels."""
    name = f"scan '{scan_id}'" + (f" ({path})" if path is not None else "")  # in memory (Slicer): no path
    arr = voxels(image)
    finite = np.isfinite(arr) if arr.dtype.kind == "f" else None
    values = arr[finite] if finite is not None else arr
    if values.size == 0:
        raise InputError(f"{name}: no finite voxel")
    lo, hi = values.min(), values.max()
    if lo == hi:
        raise InputError(f"{name}: every voxel is {lo:g}; an empty image, not a CT")
    sample = values.reshape(-1)[::max(1, values.size // DARK_SAMPLE)]
    if lo > LUNG_MAX_HU or np.count_nonzero(sample <= LUNG_MAX_HU) < DARK_FRACTION * sample.size:
        raise InputError(f"{name}: values {lo:g} to {hi:g} with no air or lung (below "
                         f"{LUNG_MAX_HU:g}): not a CT in Hounsfield units (MR or PET, or CT values read "
                         "without their rescale slope/intercept); give the CT in HU")
    if finite is not None and not finite.all():
        log.warning("scan %s: %.1f%% of its voxels are not finite (NaN/inf)", scan_id, 100.0 * (1 - finite.mean()))


def check_files(study: Study) -> None:
    """Header and completeness of every scan file not in memory (cheap: no voxels are read)."""
    for scan in study.scans:
        if scan.image is None and scan.path is not None and Path(scan.path).is_file():
            check_complete(scan.path)
            read_geometry(scan.path)


def preflight(study: Study, out: Path, kind: str = "track", read_all: bool = False) -> Path:
    """Every check before the work: OUT (policy, writable, space), files, prompts. Writes nothing.

    Reads the prompted scans (``read_all``: every scan); the engine reads the others, checked
    with ``check_pixels`` (they are listed in ``study.unchecked_scans``).
    """
    target = check_out(out, study_inputs(study), kind, need_bytes=output_bytes(study))
    check_files(study)
    load_pixels(study, None if read_all else {les.scan_id for les in study.lesions})
    study.unchecked_scans = {scan.id for scan in study.scans if scan.image is None}
    for lesion in study.lesions:  # the prompts, on the scans just read
        image = study.scan(lesion.scan_id).image
        if image is not None:
            check_prompt_voxels(lesion, image, voxels(image))
    return target

