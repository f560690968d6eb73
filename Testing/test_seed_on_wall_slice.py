"""A click in the thick slice a wall crosses (the dome on 5 mm slices): that slice is the wall's mix
with the lung, as dense as ground glass across the whole slice, so the region grown from the
click is the slice itself. The lesion is read in the next slice into the lung
(:func:`LinGuinELib.segmentation.end_slices.is_slice_of_wall`, ``beside_the_slice``)."""

from __future__ import annotations

import numpy as np
import pytest

from LinGuinELib.segmentation.classical import ClassicalSegmenter
from LinGuinELib.segmentation.end_slices import beside_the_slice, is_slice_of_wall
from LinGuinELib.synthetic import LesionKind, render_case

THICK = np.array([5.0, 0.7, 0.7])
THIN = np.array([1.25, 0.7, 0.7])


def _region(slices: dict[int, int]) -> np.ndarray:
    """A region with ``n`` pixels in slice ``k`` for each ``k: n``."""
    region = np.zeros((5, 40, 40), bool)
    for k, n in slices.items():
        region[k].flat[:n] = True
    return region


def test_a_region_nearly_all_in_one_thick_slice_at_the_roi_border_is_the_slice_of_a_wall():
    assert is_slice_of_wall(_region({2: 900, 3: 100}), 0.05, THICK)
    # the same region not reaching the border: a small lesion seen in one slice
    assert not is_slice_of_wall(_region({2: 900, 3: 100}), 0.0, THICK)
    # spread over slices: a lesion (or a leak) reaching the border, not one slice's mix
    assert not is_slice_of_wall(_region({1: 300, 2: 400, 3: 300}), 0.05, THICK)
    # just under the share held in one slice
    assert not is_slice_of_wall(_region({2: 790, 3: 210}), 0.05, THICK)
    # thin slices: a wall crossing one is not mixed with the lung over the whole slice
    assert not is_slice_of_wall(_region({2: 1000}), 0.05, THIN)


def test_the_seed_moves_to_the_neighbouring_slice_that_is_more_lung():
    image = np.full((5, 40, 40), -850.0)
    image[:2] = 40.0  # the dome below
    image[2] = -370.0  # its mix with the lung
    moved = beside_the_slice(image, np.array([2.0, 20.0, 21.0]), THICK)
    assert moved.tolist() == [3.0, 20.0, 21.0]
    image = image[::-1].copy()  # the dome above
    assert beside_the_slice(image, np.array([2.0, 20.0, 21.0]), THICK).tolist() == [1.0, 20.0, 21.0]
    assert beside_the_slice(image, np.array([0.0, 20.0, 21.0]), THICK) is None  # no slice on one side


@pytest.mark.parametrize("seed", [0, 1])
def test_a_click_on_a_ground_glass_nodule_where_the_dome_crosses_its_slice(seed):
    """An 8 mm ground-glass nodule on the dome on 5 mm slices, clicked at its centroid, which lies
    in the slice the dome crosses. Before: that slice's mix, 35x and 27x the nodule (Dice 0.02,
    0.04); from the slice above it, 0.75 and 0.65."""
    case = render_case(LesionKind(8.0, "diaphragm", "ground_glass", 5.0), seed=seed)
    seg = ClassicalSegmenter()
    mask = seg.segment(case.image, case.centre_lps[None])
    dice = 2.0 * (mask & case.truth).sum() / (mask.sum() + case.truth.sum())
    ratio = mask.sum() / case.truth.sum()
    assert dice > 0.55 and 0.5 < ratio < 1.5, (dice, ratio)
    assert not seg.last_diagnostics["roi_border_contact"]
