"""Lesions filling a corner of the pleura (the dome's lateral slope meeting the chest wall, the
costophrenic angle) on thick slices: the lung envelope's ball, resting on both walls, covered the
corner's half of the nodule as if it were wall, and the segment was cut through its middle
(held-out seed 14: a 14 mm nodule at 0.2-0.5x its volume on every scan). The circle through the
nodule's outline towards the lung, bounded by the slice's pleura, gives that half back
(:mod:`LinGuinELib.segmentation.dome`). The quality flag's closed lung cut such a lesion the same
way; the ball through its outline counts as lung there too (``quality.image_checks._own_ball``).
"""

from __future__ import annotations

import numpy as np
import pytest
from kind_scoring import score
from scipy import ndimage

from LinGuinELib.propagation.result import MaskCrop
from LinGuinELib.quality import Reason, scan_checks
from LinGuinELib.segmentation.dome import fill_corner
from LinGuinELib.segmentation.roi import Roi
from LinGuinELib.synthetic import LesionKind, render_case


@pytest.mark.parametrize("diameter, seed, min_dice, min_ratio", [
    # main before this: Dice 0.775 / 0.843 / 0.733 / 0.745, volume 0.63 / 0.78 / 0.58 / 0.59x
    (14.0, 2, 0.85, 0.75), (14.0, 4, 0.87, 0.85), (10.0, 1, 0.85, 0.75), (10.0, 3, 0.82, 0.7)])
def test_nodule_in_the_costophrenic_corner_on_thick_slices_is_not_cut_in_half(seg, diameter, seed, min_dice,
                                                                                min_ratio):
    case = render_case(LesionKind(diameter, "costophrenic", "solid", 5.0), seed=seed)
    dice, ratio = score(case, seg.segment(case.image, case.centre_lps[None]))
    assert dice > min_dice and min_ratio < ratio < 1.3, (dice, ratio)


def _roi(smooth: np.ndarray, allowed: np.ndarray) -> Roi:
    shape = np.array(smooth.shape)
    return Roi(lo=np.zeros(3, int), raw=smooth, smooth=smooth, spacing=np.array([5.0, 0.8, 0.8]),
               seed=(shape - 1) / 2.0, dist=np.zeros(smooth.shape), clipped=np.zeros((3, 2), bool),
               step=np.ones(3, int), allowed=allowed)


def _corner(wall_hu: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One 5 mm slice: lung, the chest wall along x >= 40 (pixels) and a disc of radius 10 px
    centred (33, 30) against it. The corner is with the dome, below this slice: the envelope's
    ball resting on both walls cut the disc's half towards them (x + y > 63), with the wall."""
    yy, xx = np.indices((60, 60))
    disc = (yy - 30) ** 2 + (xx - 33) ** 2 <= 100
    wall = xx >= 40
    smooth = np.full((3, 60, 60), -850.0, np.float32)
    smooth[1][wall] = wall_hu
    smooth[1][disc] = 0.0
    free = np.zeros((3, 60, 60), bool)
    free[1] = disc | wall
    allowed = np.ones((3, 60, 60), bool)
    allowed[1] = ~wall & (xx + yy <= 63)
    lesion = np.zeros((3, 60, 60), bool)
    lesion[1] = disc & allowed[1]
    return smooth, free, allowed, lesion


def test_corner_half_is_given_back_up_to_the_pleura():
    smooth, free, allowed, lesion = _corner(40.0)
    out = fill_corner(lesion, free, _roi(smooth, allowed))
    yy, xx = np.indices((60, 60))
    disc_in_lung = ((yy - 30) ** 2 + (xx - 33) ** 2 <= 100) & (xx < 40)
    assert (out[1] & disc_in_lung).sum() >= 0.95 * disc_in_lung.sum()
    # nothing beyond the pleura (the wall from x = 40 on), nothing on the other slices
    assert not (out[1] & ~ndimage.binary_dilation(disc_in_lung)).any()
    assert not out[0].any() and not out[2].any()


def test_a_lesion_the_envelope_did_not_cut_is_unchanged():
    smooth, free, allowed, lesion = _corner(40.0)
    allowed[1] = True  # no envelope cut: a nodule beside a wall, not in a corner
    lesion[1] = free[1] & (smooth[1] == 0.0)
    out = fill_corner(lesion, free, _roi(smooth, allowed))
    assert (out == lesion).all()


def test_a_round_lesion_filling_the_costophrenic_angle_is_not_outside_the_lung():
    """The quality flag's closed lung holds a lesion that dents it, not one that fills a corner: the
    truth of a 17 mm nodule in the costophrenic angle on 5 mm slices read 54% outside the lung
    (random kind 4096). Its outline towards the lung is its own sphere's, and that ball counts as lung."""
    case = render_case(LesionKind(17.3, "costophrenic", "solid", 5.0), seed=4096)
    signals, findings = scan_checks(case.image, MaskCrop.from_full(case.truth), is_prompt=True)
    assert Reason.OUTSIDE_LUNG not in {f.reason for f in findings}, signals
    assert signals["outside_lung"] < 0.1, signals
    # its half towards the walls (a piece of the corner, no longer round) is still outside the lung
    half = case.truth.copy()
    half[:, :, int(np.median(np.nonzero(case.truth)[2])):] = False
    signals, findings = scan_checks(case.image, MaskCrop.from_full(half), is_prompt=True)
    assert Reason.OUTSIDE_LUNG in {f.reason for f in findings}, signals
