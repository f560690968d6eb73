"""Checks before any tracking work, so that bad input or a bad OUT costs seconds, not minutes.

``preflight(study, out)``: OUT allowed by the data-safety policy and writable with room to
spare, every image read in full (voxels, not just the header: a truncated file is an error
naming it, and the engine reuses what was read), no constant (empty) scan, every prompt on
finite voxels.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from ..geometry import physical_to_continuous_index_zyx
from ..outputs.safety import check_out
from .images import read_image
from .model import Study

log = logging.getLogger(__name__)

# Rough output size: compressed uint16 labelmaps and .seg.nrrd files are mostly zeros; a tenth of
# a byte per scan voxel and 20 MB for the table, plot and slack over-estimates what is written.
BYTES_PER_VOXEL = 0.1
BASE_BYTES = 20_000_000
# A click whose surroundings are darker than this (HU) is in air or aerated lung, not on a lesion:
# ground-glass nodules are about -300 to -700 HU, aerated lung about -850, air -1000.
AIR_HU = -900.0


def study_inputs(study: Study) -> list[Path]:
    """Every file or folder the study reads: OUT must neither hold nor sit inside any of them."""
    paths = [study.source] if study.source is not None else []
    for scan in study.scans:
        paths += [p for p in (scan.path, scan.truth_path) if p is not None]
    paths += [les.mask_path for les in study.lesions if les.mask_path is not None]
    return [Path(p) for p in paths]


def output_bytes(study: Study) -> int:
    """A rough upper estimate of what a track OUT needs on disk."""
    voxels = 0
    for scan in study.scans:
        if scan.image is not None:
            voxels += int(np.prod(scan.image.GetSize()))
        elif scan.path is not None and Path(scan.path).is_file():
            voxels += Path(scan.path).stat().st_size  # a compressed file holds at least 1 byte/voxel/10
    return int(BASE_BYTES + BYTES_PER_VOXEL * voxels * 2)


def load_pixels(study: Study) -> None:
    """Read every scan in full (kept on the scan for the engine) and refuse empty ones."""
    for scan in study.scans:
        if scan.image is None:
            scan.image = read_image(scan.path)
        arr = sitk.GetArrayViewFromImage(scan.image)
        finite = np.isfinite(arr) if arr.dtype.kind == "f" else None
        values = arr[finite] if finite is not None else arr
        if values.size == 0:
            raise InputError(f"scan '{scan.id}' ({scan.path}): no finite voxel")
        lo, hi = values.min(), values.max()
        if lo == hi:
            raise InputError(f"scan '{scan.id}' ({scan.path}): every voxel is {lo:g}; an empty image, not a CT")
        if finite is not None and not finite.all():
            log.warning("scan %s: %.1f%% of its voxels are not finite (NaN/inf)", scan.id,
                        100.0 * (1 - finite.mean()))


def check_prompt_voxels(study: Study) -> None:
    """Refuse point prompts on NaN/inf voxels or in air, and masks over NaN/inf voxels.

    Air: the median of the 3x3x3 voxels around the click is below ``AIR_HU`` on a scan in
    Hounsfield units (one that holds air at -1000); no lesion is that dark, so the click missed.
    """
    for lesion in study.lesions:
        image = study.scan(lesion.scan_id).image
        if image is None:
            continue
        arr = sitk.GetArrayViewFromImage(image)
        if lesion.points_lps is not None:
            idx = np.round(physical_to_continuous_index_zyx(image, lesion.points_lps)).astype(int)
            idx = np.clip(idx, 0, np.array(arr.shape) - 1)
            for z, y, x in idx:
                near = np.asarray(arr[max(z - 1, 0):z + 2, max(y - 1, 0):y + 2, max(x - 1, 0):x + 2], float)
                if not np.all(np.isfinite(near)):
                    _refuse(lesion, "lies on non-finite (NaN/inf) voxels")
                if np.median(near) < AIR_HU and np.nanmin(arr) <= -1000 + 50:
                    _refuse(lesion, f"lies in air or aerated lung (median {np.median(near):.0f} HU around it); "
                                    "click inside the lesion")
        elif lesion.mask is not None and arr.dtype.kind == "f":
            if not np.all(np.isfinite(arr[sitk.GetArrayViewFromImage(lesion.mask) != 0])):
                _refuse(lesion, "covers non-finite (NaN/inf) voxels")


def _refuse(lesion, what: str) -> None:
    raise InputError(f"lesion '{lesion.id}': its prompt on scan '{lesion.scan_id}' {what}")


def preflight(study: Study, out: Path, kind: str = "track") -> Path:
    """Every check before the work: OUT (policy, writable, space), images, prompts. Writes nothing."""
    target = check_out(out, study_inputs(study), kind, need_bytes=output_bytes(study))
    load_pixels(study)
    check_prompt_voxels(study)
    return target
