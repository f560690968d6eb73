"""The prompt scan's own segment on thick slices: a lesion cut to fewer slices than its width
needs (the slice it shares with the dome left out) is flagged ``shallow``, and the flag is
carried to its follow-ups (``baseline_doubtful``). A round lesion segmented whole is not
flagged, on thick or thin slices, nor is one that fills its slices."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from LinGuinELib.propagation.result import MaskCrop
from LinGuinELib.quality import Reason, scan_checks
from LinGuinELib.quality.baseline import baseline_doubt
from LinGuinELib.quality.slice_depth import MIN_DEPTH_SHARE, depth_share, narrowest_width_mm
from LinGuinELib.synthetic import LesionKind, render_case


def _ball(shape, centre_mm, radius_mm, spacing):
    zz, yy, xx = np.indices(shape)
    d2 = sum(((g + 0.5) * s - c) ** 2 for g, s, c in zip((zz, yy, xx), spacing, centre_mm))
    return d2 <= radius_mm**2


def test_width_is_the_narrowest_axis_of_the_cross_section():
    sp = np.array([0.5, 0.5])
    yy, xx = np.indices((80, 80))
    ellipse = ((yy - 40) * 0.5 / 6.0) ** 2 + ((xx - 40) * 0.5 / 15.0) ** 2 <= 1.0  # 12 x 30 mm
    assert narrowest_width_mm(ellipse, sp) == pytest.approx(12.0, rel=0.05)


@pytest.mark.parametrize("z_centre", [7.5, 10.0])  # mid-slice, on a slice boundary
def test_round_nodule_on_thick_slices_is_deep_enough_and_one_slice_of_it_is_not(z_centre):
    sp = np.array([5.0, 0.8, 0.8])
    ball = _ball((5, 40, 40), (z_centre, 16.0, 16.0), 7.0, sp)  # a 14 mm nodule on 5 mm slices
    share, width = depth_share(ball, sp)
    assert share >= MIN_DEPTH_SHARE and width == pytest.approx(14.0, abs=1.5)
    cut = ball.copy()
    keep = int(np.argmax(ball.sum(axis=(1, 2))))
    cut[np.arange(5) != keep] = False  # the slices beside the dome left out
    assert depth_share(cut, sp)[0] < MIN_DEPTH_SHARE


def test_small_nodule_in_one_thick_slice_is_not_shallow():
    sp = np.array([5.0, 0.8, 0.8])
    ball = _ball((5, 30, 30), (12.5, 12.0, 12.0), 3.5, sp)  # 7 mm, its middle in one 5 mm slice
    assert np.count_nonzero(ball.any(axis=(1, 2))) == 1
    assert depth_share(ball, sp)[0] >= MIN_DEPTH_SHARE


@pytest.mark.parametrize("kind, seed", [(LesionKind(14.0, "diaphragm", "solid", 5.0), 1),
                                        (LesionKind(7.0, "isolated", "solid", 5.0), 2),
                                        (LesionKind(14.0, "diaphragm", "solid", 1.25), 1)])
def test_rendered_truth_is_not_shallow_and_its_widest_slice_alone_is(kind, seed):
    case = render_case(kind, seed=seed)
    _, findings = scan_checks(case.image, MaskCrop.from_full(case.truth), is_prompt=True)
    assert Reason.SHALLOW not in {f.reason for f in findings}
    if kind.slice_mm < 3.0 or kind.diameter_mm < 10.0:
        return
    widest = case.truth.copy()
    keep = int(np.argmax(widest.sum(axis=(1, 2))))
    widest[np.arange(widest.shape[0]) != keep] = False
    signals, findings = scan_checks(case.image, MaskCrop.from_full(widest), is_prompt=True)
    assert Reason.SHALLOW in {f.reason for f in findings}, signals["depth_share"]
    carried = baseline_doubt(findings)
    assert carried is not None and carried.reason is Reason.BASELINE_DOUBTFUL and "shallow" in carried.detail


@pytest.mark.parametrize("kind, seed, flagged", [(LesionKind(7.0, "isolated", "solid", 5.0), 2, True),
                                                 (LesionKind(7.0, "isolated", "solid", 1.25), 2, False),
                                                 (LesionKind(14.0, "diaphragm", "solid", 5.0), 1, False)])
def test_a_nodule_less_than_two_slices_across_is_flagged(kind, seed, flagged):
    """A 7 mm nodule on 5 mm slices is mostly partial volume: its volume, even its true outline's,
    is not known within 2x (held out, session 11: such nodules were the two unflagged bad results,
    1.55x with Dice 0.42, and a 0.21 mL piece where one had gone). On thin slices, or 14 mm across
    on 5 mm slices, it is measurable."""
    case = render_case(kind, seed=seed)
    _, findings = scan_checks(case.image, MaskCrop.from_full(case.truth), is_prompt=True)
    assert (Reason.FEW_SLICES in {f.reason for f in findings}) is flagged


@pytest.mark.parametrize("prompt_across_mm, flagged", [(7.0, True), (14.0, False)])
def test_a_follow_up_grown_past_two_slices_is_read_at_the_prompt_lesion_size(prompt_across_mm, flagged):
    """A 7 mm nodule's follow-up segment on 5 mm slices that took in its neighbours' partial volume
    (held out, session 15: 2.56x, 10 mm across, only its response marked uncertain) is no better
    measured for looking larger: the prompt's lesion size decides. A lesion 14 mm across on the
    prompt scan is measurable on 5 mm slices whatever its follow-up segment."""
    case = render_case(LesionKind(7.0, "isolated", "solid", 5.0), seed=2)
    grown = ndimage.binary_dilation(case.truth, iterations=2)
    alone, findings = scan_checks(case.image, MaskCrop.from_full(grown), is_prompt=True)
    assert 2 * alone["radius_mm"] > 10.0 and Reason.FEW_SLICES not in {f.reason for f in findings}
    prompt = {"radius_mm": prompt_across_mm / 2}
    _, findings = scan_checks(case.image, MaskCrop.from_full(grown), is_prompt=False,
                              point_lps=case.centre_lps, prompt_signals=prompt)
    assert (Reason.FEW_SLICES in {f.reason for f in findings}) is flagged
    # the smaller of the two decides: a follow-up segment of the 7 mm nodule itself is flagged
    # whatever size the prompt's was
    _, findings = scan_checks(case.image, MaskCrop.from_full(case.truth), is_prompt=False,
                              point_lps=case.centre_lps, prompt_signals=prompt)
    assert Reason.FEW_SLICES in {f.reason for f in findings}
