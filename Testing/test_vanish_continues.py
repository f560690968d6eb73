"""A piece cut out of a vessel or a fissure where a lesion has gone runs on into that structure
beyond its cut faces; a lesion that shrank keeps what it touched (``quality.match.continues``)."""

import math

import numpy as np
from quality_fixtures import CENTRE_ZYX, ball, judge_case, lung, painted, tube_x, wall_from

from LinGuinELib.quality.match import CONTINUES, continues


def _sheet(shape, y, half):
    """A fissure: a plane across the lung at y (1 mm voxels), partial volume at its faces."""
    yy = np.indices(shape)[1]
    return np.abs(yy - y) <= half


def test_a_piece_of_a_vessel_through_a_gone_nodules_place_is_rejected_the_nodule_shrunk_on_it_is_kept():
    base = lung()
    tube = tube_x(base.shape, CENTRE_ZYX[:2], 2.0, 0, 80)  # a 4 mm vessel runs through the nodule's middle
    nodule = ball(base.shape, CENTRE_ZYX, 5)
    prompt, gone = painted(base, (tube, 40), (nodule, 30)), painted(base, (tube, 40))
    piece = tube & ball(base.shape, CENTRE_ZYX, 3)  # what the segmenter cut of it: 6 mm, centred
    match, unlike = judge_case(prompt, nodule, gone, piece)
    assert match["candidate_coverage"] < 0.25 and match["candidate_misfit_mm"] <= 1.0, match  # not off its place
    assert unlike == [CONTINUES] and match["plausible"] == 0.0, (match, unlike)  # compact, dense, round-ended
    # the nodule still there at a fifth of its volume, a bulge 1.5x as thick as the same vessel: kept
    # (at 1.3x, 2.6 mm, it is not: the image checks already call a ball that small thin_part on 1 mm voxels)
    small = ball(base.shape, CENTRE_ZYX, 3.0)
    match, unlike = judge_case(prompt, nodule, painted(gone, (small, 30)), small)
    assert CONTINUES not in unlike and match["plausible"] == 1.0, (match, unlike)


def test_a_patch_of_a_fissure_where_a_nodule_was_is_rejected_the_nodule_shrunk_on_it_is_kept():
    base = lung()
    fissure = _sheet(base.shape, CENTRE_ZYX[1], 0.5)
    nodule = ball(base.shape, CENTRE_ZYX, 6)
    prompt, gone = painted(base, (fissure, -400), (nodule, 20)), painted(base, (fissure, -400))
    patch = fissure & ball(base.shape, CENTRE_ZYX, 3)  # a disc of it at the nodule's centre
    match, unlike = judge_case(prompt, nodule, gone, patch)
    assert CONTINUES in unlike and match["plausible"] == 0.0, (match, unlike)
    small = ball(base.shape, CENTRE_ZYX, 3)  # a ninth of its volume, on the fissure
    match, unlike = judge_case(prompt, nodule, painted(gone, (small, 20)), small)
    assert CONTINUES not in unlike and match["plausible"] == 1.0, (match, unlike)


def test_a_wall_nodule_that_shrank_keeps_its_wall_contact_and_is_kept():
    base = lung()
    wall = wall_from(base.shape, 50)
    nodule = ball(base.shape, CENTRE_ZYX, 6) & ~wall  # on the chest wall (x >= 50), centre 5 mm from it
    prompt = painted(base, (wall, 40), (nodule, 30))
    small = ball(base.shape, (20, 40, 47), 3) & ~wall  # shrunk onto the wall: its contact a larger share
    match, unlike = judge_case(prompt, nodule, painted(base, (wall, 40), (small, 30)), small)
    assert CONTINUES not in unlike and match["plausible"] == 1.0, (match, unlike)


def test_a_piece_of_a_vessel_where_a_wall_tumour_was_is_rejected_the_wall_contact_does_not_count():
    base = lung()
    wall = wall_from(base.shape, 54)
    tumour = ball(base.shape, CENTRE_ZYX, 11) & ~wall  # leans on the chest wall over a 9 mm-radius disc
    tube = tube_x(base.shape, CENTRE_ZYX[:2], 2.0, 0, 54)  # a vessel it had swallowed, running to the wall
    prompt = painted(base, (wall, 40), (tube, 40), (tumour, 30))
    gone = painted(base, (wall, 40), (tube, 40))
    piece = tube & ball(base.shape, CENTRE_ZYX, 3)
    match, unlike = judge_case(prompt, tumour, gone, piece)
    assert unlike == [CONTINUES] and match["plausible"] == 0.0, (match, unlike)


def test_continues_needs_both_measurements():
    assert continues({"open_in_lung": 0.3}, {"open_in_lung": 0.05})
    assert not continues({"open_in_lung": 0.12}, {"open_in_lung": 0.05})  # not a tenth more
    assert not continues({"open_in_lung": 0.45}, {"open_in_lung": 0.25})  # not twice
    assert not continues({"open_in_lung": 0.3}, {"open_in_lung": math.nan})  # no lung round the prompt
    assert not continues({"open_boundary": 0.3}, {"open_in_lung": 0.0})
