"""Shared by the quality tests: a follow-up candidate judged the way the engine judges it."""

import numpy as np
import SimpleITK as sitk

from LinGuinELib.propagation.result import MaskCrop
from LinGuinELib.quality import scan_checks
from LinGuinELib.quality.match import LesionReference, candidate_match, unlike_prompt


def judge(prompt_img: sitk.Image, prompt_mask: np.ndarray, img: sitk.Image, cand: np.ndarray,
          centre_lps: np.ndarray, days: float = 90.0) -> tuple[dict, list[str]]:
    """candidate_match with the look comparison the engine makes (image checks of both)."""
    p_sig, p_find = scan_checks(prompt_img, MaskCrop.from_full(prompt_mask), is_prompt=True)
    c_sig, c_find = scan_checks(img, MaskCrop.from_full(cand), is_prompt=False, point_lps=centre_lps,
                                prompt_signals=p_sig)
    unlike = unlike_prompt(c_find, c_sig, p_find, p_sig, 1.0, 1.0)
    ref = LesionReference.from_prompt(prompt_img, MaskCrop.from_full(prompt_mask), centre_lps)
    return candidate_match(ref, img, MaskCrop.from_full(cand), centre_lps, days, unlike), unlike
