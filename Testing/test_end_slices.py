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
SPACING = np.array([5.0, 0.8, 0.8])


def _phantom(h: float, n_left: float, n_right: float, wall: bool = False):
    """Slices: 0 dome, 1 dome share ``h`` with the nodule's bottom (share ``n_left`` / ``n_right``
    of the slice in the left / right half of its disc), 2-3 the nodule in lung, 4 lung. The lung
    envelope leaves out slices 0-1 (the mix reads as wall at the lesion's threshold)."""
    shape = (5, 64, 64)
    yy, xx = np.indices(shape[1:])
    disc = (yy - 32) ** 2 + (xx - 32) ** 2 <= 10**2  # 8 mm radius
    image = np.full(shape, LUNG)
    image[0] = TISSUE
    mix = h * TISSUE + (1 - h) * LUNG
    image[1] = mix
    share = np.where(xx < 32, n_left, n_right)
    image[1][disc] = mix + share[disc] * (TISSUE - LUNG)
    image[2][disc] = image[3][disc] = TISSUE
    allowed = np.ones(shape, bool)
    allowed[:2] = False
    if wall:  # a wall crossing every slice, touching the disc's right side
        image[:, :, 43:] = TISSUE
        allowed[:, :, 43:] = False
    lesion = np.zeros(shape, bool)
    lesion[2:4] = disc
    return image, allowed, lesion, disc, xx


@pytest.mark.parametrize("h", [0.0, 0.2, 0.4])
def test_the_slice_shared_with_the_dome_keeps_what_the_lesion_fills_half_of(h):
    """The envelope left out the slice the nodule shares with the dome: the nodule is followed
    into it where it fills more than half of it (left half: 0.6) and not where less (right: 0.35),
    for any share of dome in that slice (a threshold between lesion and lung alone takes all of it
    once the dome fills a fifth of the slice, and the envelope none of it)."""
    image, allowed, lesion, disc, xx = _phantom(h, 0.6, 0.35)
    out, share = settle_end_slices(lesion, image, allowed, SPACING, (TISSUE, LUNG))
    left, right = disc & (xx < 31), disc & (xx > 33)
    assert out[1][left].mean() > 0.9, out[1][left].mean()
    assert out[1][right].mean() < 0.1, out[1][right].mean()
    assert not out[0].any() and (out[2:4] == lesion[2:4]).all()
    assert 0.0 < share < 1.0
    assert allowed[1][out[1]].all()  # what the rule found is lung envelope now


def test_a_slice_of_dome_mix_under_a_nodule_is_not_the_nodule():
    """The nodule ends above the dome's slice: that slice, as dense as the lesion's edge over the
    nodule's whole footprint (the dome fills 60% of it, the nodule 10% more), is not taken, though
    a threshold half-way between lesion and lung holds all of it."""
    image, allowed, lesion, disc, _ = _phantom(0.6, 0.1, 0.1)
    allowed[1] = True  # the envelope let the mix in: the region holds it
    lesion[1] = disc
    out, share = settle_end_slices(lesion, image, allowed, SPACING, (TISSUE, LUNG))
    assert not out[1].any()
    assert (out[2:4] == lesion[2:4]).all() and share > 0.0


def test_a_wall_crossing_the_slices_beside_the_nodule_is_not_taken():
    """A wall that crosses every slice (the chest wall beside a nodule in the costophrenic angle) is
    dense on the slice inwards too: neither the nodule's slice on the dome nor the wall's mix is
    read there."""
    image, allowed, lesion, disc, xx = _phantom(0.3, 0.7, 0.7, wall=True)
    out, _ = settle_end_slices(lesion, image, allowed, SPACING, (TISSUE, LUNG))
    assert not out[1][:, 43:].any()
    assert out[1][disc & (xx < 41)].mean() > 0.9


def test_thin_slices_are_left_alone():
    image, allowed, lesion, _, _ = _phantom(0.3, 0.7, 0.7)
    out, share = settle_end_slices(lesion, image, allowed, np.array([0.8, 0.8, 0.8]), (TISSUE, LUNG))
    assert (out == lesion).all() and share == 0.0
