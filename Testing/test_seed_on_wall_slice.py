"""A click in the thick slice a wall crosses (the dome on 5 mm slices): that slice is the wall's mix
with the lung, as dense as ground glass across the whole slice, so the region grown from the
click is the slice itself. The lesion is read in the next slice into the lung
(:func:`LinGuinELib.segmentation.end_slices.is_slice_of_wall`, ``beside_the_slice``)."""

from __future__ import annotations

import numpy as np
import pytest

from LinGuinELib.segmentation.classical import ClassicalSegmenter
from LinGuinELib.segmentation.end_slices import beside_the_slice, is_slice_of_wall
from LinGuinELib.segmentation.roi import Roi
from LinGuinELib.synthetic import LesionKind, render_case

THICK = np.array([5.0, 0.7, 0.7])
THIN = np.array([1.25, 0.7, 0.7])


def _region(slices: dict[int, int]) -> np.ndarray:
    """A region with ``n`` pixels in slice ``k`` for each ``k: n``."""
    region = np.zeros((5, 40, 40), bool)
    for k, n in slices.items():
        region[k].flat[:n] = True
    return region


def _roi(spacing: np.ndarray, seed_slice: float = 2.0) -> Roi:
    shape = (5, 40, 40)
    return Roi(lo=np.zeros(3, int), raw=np.zeros(shape), smooth=np.zeros(shape), spacing=spacing,
               seed=np.array([seed_slice, 20.0, 20.0]), dist=np.zeros(shape), clipped=np.zeros((3, 2), bool),
               step=np.ones(3, int))


def test_a_region_nearly_all_in_the_seeds_thick_slice_at_the_roi_border_is_the_slice_of_a_wall():
    assert is_slice_of_wall(_region({2: 900, 3: 100}), 0.05, _roi(THICK))
    assert is_slice_of_wall(_region({2: 800, 3: 200}), 0.05, _roi(THICK))  # SLAB_SHARE itself
    assert not is_slice_of_wall(_region({2: 790, 3: 210}), 0.05, _roi(THICK))  # just under it
    # the same region not reaching the border: a small lesion seen in one slice
    assert not is_slice_of_wall(_region({2: 900, 3: 100}), 0.0, _roi(THICK))
    # spread over slices: a lesion (or a leak) reaching the border, not one slice's mix
    assert not is_slice_of_wall(_region({1: 300, 2: 400, 3: 300}), 0.05, _roi(THICK))
    # crowded in a slice that is not the seed's: the seed's own slice is not a wall's mix
    assert not is_slice_of_wall(_region({2: 100, 3: 900}), 0.05, _roi(THICK, seed_slice=2.2))
    # thin slices: a wall crossing one is not mixed with the lung over the whole slice
    assert not is_slice_of_wall(_region({2: 1000}), 0.05, _roi(THIN))


def test_the_seed_moves_to_the_neighbouring_slice_that_is_more_lung_round_it():
    image = np.full((5, 40, 40), -850.0)
    image[:2] = 40.0  # the dome below
    image[2] = -370.0  # its mix with the lung
    seed = np.array([2.0, 20.0, 21.0])
    assert beside_the_slice(image, seed, THICK).tolist() == [3.0, 20.0, 21.0]
    flipped = image[::-1].copy()  # the dome above
    assert beside_the_slice(flipped, seed, THICK).tolist() == [1.0, 20.0, 21.0]
    # read round the seed, not over the whole slice: the dome fills most of slice 3 away from the seed
    image[3] = 40.0
    image[3, 12:29, 13:30] = -850.0  # lung within 6 mm of the seed
    image[1] = -600.0
    assert beside_the_slice(image, seed, THICK).tolist() == [3.0, 20.0, 21.0]
    assert beside_the_slice(image, np.array([0.0, 20.0, 21.0]), THICK) is None  # no slice below
    assert beside_the_slice(image, np.array([4.0, 20.0, 21.0]), THICK) is None  # no slice above


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
    assert seg.last_diagnostics["read_beside_slice"]  # said, for whoever reads the diagnostics


def test_the_same_nodule_on_thin_slices_is_read_where_clicked():
    """On 1.25 mm slices the dome's average with the lung is one voxel thick, not a slice's breadth:
    the click's own region is the nodule and nothing is read beside it."""
    case = render_case(LesionKind(8.0, "diaphragm", "ground_glass", 1.25), seed=0)
    seg = ClassicalSegmenter()
    mask = seg.segment(case.image, case.centre_lps[None])
    assert mask.any() and not seg.last_diagnostics["read_beside_slice"]


def test_where_the_slice_beside_holds_nothing_better_the_region_found_stands(monkeypatch):
    """A 5 mm ground-glass nodule on the dome (seed 2): its click's region is the slice's average of
    dome and lung (89x), and the slice beside gives nothing that reaches less of the ROI's border.
    The result is the one found without the rule, unchanged (and still warned `roi_border`)."""
    import LinGuinELib.segmentation.classical as classical

    case = render_case(LesionKind(5.0, "diaphragm", "ground_glass", 5.0), seed=2)
    seg = ClassicalSegmenter()
    fired = []
    rule = classical.is_slice_of_wall
    monkeypatch.setattr(classical, "is_slice_of_wall", lambda *a: fired.append(rule(*a)) or fired[-1])
    with_rule = seg.segment(case.image, case.centre_lps[None])
    assert fired == [True] and not seg.last_diagnostics["read_beside_slice"]
    assert "roi_border" in seg.last_diagnostics["warnings"]
    monkeypatch.setattr(classical, "is_slice_of_wall", lambda *a: False)
    assert (seg.segment(case.image, case.centre_lps[None]) == with_rule).all()
