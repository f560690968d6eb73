"""Mask prompts: read, check against the scan's grid, reduce to a centre."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from ..geometry import same_grid
from ..study.images import read_image


def read_prompt_mask(path: Path, geometry) -> sitk.Image:
    """A non-empty binary mask on exactly the scan's grid (no silent resampling)."""
    mask = read_image(path)
    if not same_grid(mask, geometry):
        raise InputError(
            f"{path}: mask grid (size {mask.GetSize()}, spacing {np.round(mask.GetSpacing(), 3).tolist()}) "
            f"does not match its scan (size {tuple(geometry.GetSize())})"
        )
    arr = sitk.GetArrayViewFromImage(mask)
    if not np.any(arr):
        raise InputError(f"{path}: mask is empty")
    return sitk.Cast(mask != 0, sitk.sitkUInt8)
