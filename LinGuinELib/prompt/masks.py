"""Mask prompts: read, check against the scan's grid, one lesion per mask."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from ..geometry import index_zyx_to_physical, same_grid
from ..study.images import read_image
from ..voxels import voxels

# Farthest apart two parts of one lesion's prompt may be (mm): clicks or mask pieces farther apart
# than the largest lung masses (about 10 cm) are two lesions, not one.
MAX_PROMPT_SPREAD_MM = 100.0
# Mask pieces smaller than this fraction of the largest are specks (drawing noise), not lesions.
MIN_PIECE_FRACTION = 0.1


def read_prompt_mask(path: Path, geometry, label: int | None = None) -> sitk.Image:
    """A non-empty binary mask of one lesion on exactly the scan's grid (no silent resampling).

    A mask holding several label values is refused unless ``label`` picks one: a mask prompt
    is one lesion (give one lesion entry per label, each with its ``mask_label``).
    """
    mask = read_image(path)
    if not same_grid(mask, geometry):
        raise InputError(
            f"{path}: mask grid (size {mask.GetSize()}, spacing {np.round(mask.GetSpacing(), 3).tolist()}) "
            f"does not match its scan (size {tuple(geometry.GetSize())})"
        )
    arr = voxels(mask)
    if label is not None:
        binary = arr == label
        if not binary.any():
            raise InputError(f"{path}: mask_label {label} does not occur in the mask")
    else:
        values = np.unique(arr[arr != 0])
        if len(values) > 1:
            shown = ", ".join(f"{v:g}" for v in values[:5]) + (", ..." if len(values) > 5 else "")
            raise InputError(f"{path}: mask holds {len(values)} labels ({shown}); a mask prompt is one "
                             "lesion: give one lesion per label with \"mask_label\": N")
        binary = arr != 0
    if not binary.any():
        raise InputError(f"{path}: mask is empty")
    check_spread(binary, mask, str(path))
    out = sitk.GetImageFromArray(binary.astype(np.uint8))
    out.CopyInformation(mask)
    return out


def check_spread(binary: np.ndarray, image, where: str) -> None:
    """Refuse a mask whose separate pieces lie farther apart than one lesion can span."""
    from scipy import ndimage  # here: a manifest of clicks is read without importing scipy

    labels, n = ndimage.label(binary, structure=np.ones((3, 3, 3)))
    if n < 2:
        return
    sizes = np.asarray(ndimage.sum(binary, labels, range(1, n + 1)))
    pieces = [k + 1 for k in np.flatnonzero(sizes >= MIN_PIECE_FRACTION * sizes.max())]
    if len(pieces) < 2:  # stray voxels of an outline are not another lesion
        return
    centres = np.array(ndimage.center_of_mass(binary, labels, pieces))
    pts = index_zyx_to_physical(image, centres)
    spread = float(np.max(np.linalg.norm(pts[:, None] - pts[None], axis=-1)))
    if spread > MAX_PROMPT_SPREAD_MM:
        raise InputError(f"{where}: mask has pieces {spread:.0f} mm apart (more than "
                         f"{MAX_PROMPT_SPREAD_MM:.0f} mm): that is several lesions; give one mask per lesion")


def points_spread_mm(points_lps: np.ndarray) -> float:
    """Largest distance between two prompt points of one lesion (0 for one point)."""
    pts = np.asarray(points_lps, float).reshape(-1, 3)
    if len(pts) < 2:
        return 0.0
    return float(np.max(np.linalg.norm(pts[:, None] - pts[None], axis=-1)))
