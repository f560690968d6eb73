"""Shared by the quality tests: synthetic lung cases on 1 mm voxels (a lesion at ``CENTRE``, the
vessels, fissures and chest wall around it, painted in HU), and a follow-up candidate judged the
way the engine judges it."""

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from LinGuinELib.propagation.result import MaskCrop
from LinGuinELib.quality import scan_checks
from LinGuinELib.quality.match import LesionReference, candidate_match, unlike_prompt

CENTRE_LPS = np.array([45.0, 40.0, 20.0])  # (x, y, z) of voxel (20, 40, 45) on 1 mm voxels
CENTRE_ZYX = (20, 40, 45)


def lung(shape=(40, 80, 80), seed=0) -> np.ndarray:
    """Aerated lung: -850 HU with noise."""
    rng = np.random.default_rng(seed)
    return -850 + 20 * rng.standard_normal(shape)


def painted(base: np.ndarray, *parts: tuple[np.ndarray, float]) -> np.ndarray:
    """A scan of a case: ``base`` with each (mask, HU) painted over it in turn (later ones on top)."""
    arr = base.copy()
    for mask, hu in parts:
        arr[mask] = hu
    return arr


def image(arr: np.ndarray, spacing=(1.0, 1.0, 1.0)) -> sitk.Image:
    img = sitk.GetImageFromArray(arr.astype(np.int16))
    img.SetSpacing(spacing)
    return img


def ball(shape, centre_zyx, r) -> np.ndarray:
    zz, yy, xx = np.indices(shape)
    return (zz - centre_zyx[0]) ** 2 + (yy - centre_zyx[1]) ** 2 + (xx - centre_zyx[2]) ** 2 <= r**2


def tube_x(shape, zyx, radius, x0, x1) -> np.ndarray:
    """A vessel along x at (z, y) = zyx[:2], from x0 to x1."""
    zz, yy, xx = np.indices(shape)
    return ((zz - zyx[0]) ** 2 + (yy - zyx[1]) ** 2 <= radius**2) & (xx >= x0) & (xx < x1)


def wall_from(shape, x) -> np.ndarray:
    """The chest wall: every voxel from column ``x`` on."""
    return np.indices(shape)[2] >= x


def scanned(arr: np.ndarray, blur_mm: float = 1.0) -> np.ndarray:
    """A scanner's blur over the painted tissues (1 mm voxels): every edge has its partial-volume rim."""
    return ndimage.gaussian_filter(arr, blur_mm)


def outline(arr: np.ndarray, level: float) -> np.ndarray:
    """What a segmenter draws at ``level``: the component at ``CENTRE_ZYX`` at or above it."""
    labels, _ = ndimage.label(arr >= level)
    return labels == labels[CENTRE_ZYX]


def judge(prompt_img: sitk.Image, prompt_mask: np.ndarray, img: sitk.Image, cand: np.ndarray,
          centre_lps: np.ndarray, days: float = 90.0) -> tuple[dict, list[str]]:
    """candidate_match with the look comparison the engine makes (image checks of both)."""
    p_sig, p_find = scan_checks(prompt_img, MaskCrop.from_full(prompt_mask), is_prompt=True)
    c_sig, c_find = scan_checks(img, MaskCrop.from_full(cand), is_prompt=False, point_lps=centre_lps,
                                prompt_signals=p_sig)
    unlike = unlike_prompt(c_find, c_sig, p_find, p_sig, 1.0, 1.0)
    ref = LesionReference.from_prompt(prompt_img, MaskCrop.from_full(prompt_mask), centre_lps, p_sig["inscribed_mm"])
    return candidate_match(ref, img, MaskCrop.from_full(cand), c_sig["inscribed_mm"], centre_lps, days, unlike), unlike


def judge_case(prompt_arr, prompt_mask, arr, cand, days=90.0) -> tuple[dict, list[str]]:
    """``judge`` on a case's arrays (1 mm voxels), the lesion at ``CENTRE``."""
    return judge(image(prompt_arr), prompt_mask, image(arr), cand, CENTRE_LPS, days)
