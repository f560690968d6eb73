"""A lesion resting on a wall that runs along thick slices (the dome on 5 mm slices): the slice it
shares with the wall is decided by its partial volume (:mod:`LinGuinELib.segmentation.end_slices`).

The phantom is the layer model itself, built by hand: a slice holding a share ``h`` of dome
(tissue at the bottom of the slab), a share ``n`` of nodule above it and lung for the rest reads
``h * tissue + n * tissue + (1 - h - n) * lung``. The truth holds a pixel the nodule fills at least
half of, whatever ``h`` is."""

from __future__ import annotations

import numpy as np
import pytest

from LinGuinELib.segmentation.end_slices import settle_end_slices

TISSUE, LUNG = 40.0, -850.0
LEVELS = (TISSUE, LUNG)
SPACING = np.array([5.0, 0.8, 0.8])
SHAPE = (5, 64, 64)
YY, XX = np.indices(SHAPE[1:])
DISC = (YY - 32) ** 2 + (XX - 32) ** 2 <= 10**2  # 8 mm radius
LEFT, RIGHT = DISC & (XX < 31), DISC & (XX > 33)


def _phantom(h, n_left: float, n_right: float):
    """Slices: 0 dome, 1 dome share ``h`` (a number, or an array: a slope) with the nodule's
    bottom (share ``n_left`` / ``n_right`` of the slice in the left / right half of its disc),
    2-3 the nodule in lung, 4 lung. The lung envelope leaves out slices 0-1."""
    image = np.full(SHAPE, LUNG)
    image[0] = TISSUE
    mix = h * TISSUE + (1 - h) * LUNG + np.zeros(SHAPE[1:])
    share = np.where(XX < 32, n_left, n_right)
    image[1] = mix + DISC * share * (TISSUE - LUNG)
    image[2][DISC] = image[3][DISC] = TISSUE
    allowed = np.ones(SHAPE, bool)
    allowed[:2] = False
    lesion = np.zeros(SHAPE, bool)
    lesion[2:4] = DISC
    return image, allowed, lesion


def _settle(image, allowed, lesion):
    before = allowed.copy()
    out, share = settle_end_slices(lesion, image, allowed, SPACING, LEVELS)
    assert (allowed == before).all()  # read, not changed: the segmenter adds the result to it
    return out, share


@pytest.mark.parametrize("h", [0.0, 0.2, 0.4])
def test_the_slice_shared_with_the_dome_keeps_what_the_lesion_fills_half_of(h):
    """The envelope left out the slice the nodule shares with the dome: the nodule is followed
    into it where it fills more than half of it (left half: 0.6) and not where less (right: 0.35),
    for any share of dome in that slice (a threshold between lesion and lung alone takes all of it
    once the dome fills a fifth of the slice, and the envelope none of it)."""
    out, share = _settle(*_phantom(h, 0.6, 0.35))
    assert out[1][LEFT].mean() > 0.9, out[1][LEFT].mean()
    assert out[1][RIGHT].mean() < 0.1, out[1][RIGHT].mean()
    assert not out[0].any() and (out[2:4] == DISC).all()
    assert 0.0 < share < 1.0


def test_a_sloping_dome_is_read_under_the_nodule_not_round_it():
    """The dome crosses the slice obliquely: its share runs from 0 on the left of the slice to 0.6
    on the right. Read as one level round the nodule (0.3), the rule would take the right half,
    where the nodule fills only 0.3 but the dome more than 0.3, and drop the left, where the nodule
    fills 0.6 over less dome."""
    slope = np.clip((XX - 12) / 40.0, 0.0, 1.0) * 0.6
    out, _ = _settle(*_phantom(slope, 0.6, 0.3))
    assert out[1][LEFT].mean() > 0.9, out[1][LEFT].mean()
    assert out[1][RIGHT].mean() < 0.1, out[1][RIGHT].mean()


def test_a_slice_of_dome_mix_under_a_nodule_is_not_the_nodule():
    """The nodule ends above the dome's slice: that slice, as dense as the lesion's edge over the
    nodule's whole footprint (the dome fills 60% of it, the nodule 10% more), is not taken, though
    a threshold half-way between lesion and lung holds all of it."""
    image, allowed, lesion = _phantom(0.6, 0.1, 0.1)
    allowed[1] = True  # the envelope let the mix in: the region holds it
    lesion[1] = DISC
    allowed[0] = False
    out, share = _settle(image, allowed, lesion)
    assert not out[1].any() and not out[0].any()
    assert (out[2:4] == DISC).all() and share > 0.0


def test_a_two_slice_lesion_with_walls_at_both_ends_keeps_the_slice_it_fills():
    """Walls under and over a lesion of two slices: the bottom slice is a mix the nodule fills 0.3
    of, the top one 0.7. Each end is decided against the other as it was found (decided against a
    bottom slice already emptied, the top one would be emptied too)."""
    image = np.full(SHAPE, TISSUE)
    mix = 0.3 * TISSUE + 0.7 * LUNG
    image[1:3] = mix
    image[1][DISC] = mix + 0.3 * (TISSUE - LUNG)
    image[2][DISC] = mix + 0.7 * (TISSUE - LUNG)
    allowed = np.zeros(SHAPE, bool)
    allowed[1:3] = True
    lesion = np.zeros(SHAPE, bool)
    lesion[1:3] = DISC
    out, _ = _settle(image, allowed, lesion)
    assert not out[1].any() and out[2][DISC].mean() > 0.9


def test_a_lesion_followed_into_the_first_slice_is_counted():
    """The lesion is followed into the image's first slice (no slice beyond it to rest on): that
    slice still counts in the share read through the wall's mix."""
    image, allowed, lesion = _phantom(0.2, 0.6, 0.6)
    out, share = _settle(image[1:], allowed[1:], lesion[1:])
    assert out[0][DISC].mean() > 0.9 and 0.0 < share < 1.0


def test_a_wall_crossing_the_slices_beside_the_nodule_is_not_taken():
    """A wall that crosses every slice (the chest wall beside a nodule in the costophrenic angle) is
    dense on the slice inwards too: neither taken in the nodule's slice on the dome nor read as the
    dome's mix there."""
    image, allowed, lesion = _phantom(0.3, 0.7, 0.7)
    image[:, :, 43:] = TISSUE  # touching the disc's right side
    allowed[:, :, 43:] = False
    out, _ = _settle(image, allowed, lesion)
    assert not out[1][:, 43:].any()
    assert out[1][DISC & (XX < 41)].mean() > 0.9


def test_walls_all_round_keep_what_the_envelope_gave():
    """No ring to read the wall's mix from (a wall crossing every slice round the nodule): the end
    slice keeps what the region held, within a round lesion's reach."""
    image, allowed, lesion = _phantom(0.3, 0.6, 0.6)
    wall = ~DISC & ((YY - 32) ** 2 + (XX - 32) ** 2 <= 30**2)
    image[:, wall] = TISSUE
    lesion[1] = DISC
    out, _ = _settle(image, allowed, lesion)
    assert (out[1] == DISC).all()


def test_thin_slices_and_no_envelope_are_left_alone():
    image, allowed, lesion = _phantom(0.3, 0.7, 0.7)
    for spacing, env in ((np.array([0.8, 0.8, 0.8]), allowed), (SPACING, None)):
        out, share = settle_end_slices(lesion, image, env, spacing, LEVELS)
        assert (out == lesion).all() and share == 0.0


def test_a_speck_under_the_nodule_is_not_followed():
    """A few pixels denser than the dome's mix under the nodule (noise, a vessel's tip), smaller
    than the image's blur: the nodule is not followed into the dome's slice for them."""
    image, allowed, lesion = _phantom(0.3, 0.0, 0.0)
    image[1][31:33, 31:33] += 0.9 * (TISSUE - LUNG)
    out, share = _settle(image, allowed, lesion)
    assert not out[1].any() and (out[2:4] == DISC).all()


def test_a_one_slice_lesion_between_two_walls_is_followed_both_ways():
    """A lesion found on one slice, the slices under and over it mixes of a wall and the lesion
    (the envelope left both out): it is followed into both, and the share of its volume read
    through a wall's mix is all of it, not more."""
    image, allowed, lesion = _phantom(0.3, 0.7, 0.7)
    image[3] = image[1]
    image[4] = TISSUE
    allowed[3:] = False
    lesion[3] = False
    out, share = _settle(image, allowed, lesion)
    assert out[1][DISC].mean() > 0.9 and out[3][DISC].mean() > 0.9
    assert share == pytest.approx(1.0)


def test_both_ends_of_a_two_slice_lesion_a_mix_keep_the_lesion_as_found():
    """Both slices of a two-slice lesion read as a wall's mix the lesion fills under half of: the
    rule would leave nothing, so the lesion is kept as found, all of it in doubt."""
    image = np.full(SHAPE, TISSUE)
    mix = 0.3 * TISSUE + 0.7 * LUNG
    image[1:3] = mix
    image[1:3, DISC] = mix + 0.3 * (TISSUE - LUNG)
    allowed = np.zeros(SHAPE, bool)
    allowed[1:3] = True
    lesion = np.zeros(SHAPE, bool)
    lesion[1:3] = DISC
    out, share = _settle(image, allowed, lesion)
    assert (out == lesion).all() and share == 1.0
