"""A lesion lighter than fat on a wall (ground glass, a part-solid halo): its base within the wall's
blur is decided by partial volume (:func:`LinGuinELib.segmentation.lung_envelope.base_on_wall`).

The phantom is a flat chest wall and a ground-glass dome of lesion sitting on it, smoothed the way
the segmenter smooths (its own ROI). The region the envelope lets through stops a blur width short
of the wall (:func:`clear_of_tissue`); the base is what lies between, and a voxel is the lesion's
where the lesion fills at least half of it. Where the wall's surface lies within a voxel matters
(a code review measured it): the rule is asserted to take no wall at any phase, and to bring the
base back where the surface lies on a voxel boundary and on average over the phases."""

from __future__ import annotations

import numpy as np
import pytest

from LinGuinELib.filtering.components import edt_mm
from LinGuinELib.segmentation.classical import ClassicalSegmenter
from LinGuinELib.segmentation.lung_envelope import base_on_wall, clear_of_tissue
from LinGuinELib.segmentation.roi import make_roi
from LinGuinELib.synthetic import LesionKind, render_case

TISSUE, BONE, GGO, LUNG = 40.0, 1000.0, -550.0, -850.0
WALL_X = 30  # wall: x < WALL_X
SHAPE = (60, 80, 80)
CENTRE = np.array([30, 40, WALL_X], float)


def _phantom(radius: float, spacing: np.ndarray, rib: bool = False, phase: float = 0.0):
    """(image, truth, roi) with the lesion a half-ball of ``radius`` mm on the wall, voxel centres
    sampled 4x per axis so the truth is each voxel's majority; ``rib``: the wall is bone-dense along
    a 6 mm band that runs under the lesion and on beyond it; ``phase``: where the wall's surface
    lies within a voxel (0: on a voxel boundary)."""
    fine = 4
    z, y, x = np.meshgrid(*[(np.arange(n * fine) + 0.5) / fine - 0.5 for n in SHAPE], indexing="ij")
    d = np.sqrt(sum(((a - c) * s) ** 2 for a, c, s in zip((z, y, x), CENTRE, spacing)))
    in_wall = x < WALL_X - 0.5 + phase
    les = (d <= radius) & ~in_wall
    wall = np.where(rib & (np.abs(y - CENTRE[1]) * spacing[1] < 3.0), BONE, TISSUE)
    value = np.where(in_wall, wall, np.where(les, GGO, LUNG))
    image = value.reshape(SHAPE[0], fine, SHAPE[1], fine, SHAPE[2], fine).mean(axis=(1, 3, 5))
    truth = les.reshape(SHAPE[0], fine, SHAPE[1], fine, SHAPE[2], fine).mean(axis=(1, 3, 5)) >= 0.5
    seed = CENTRE + np.array([0, 0, radius / 2 / spacing[2]])
    roi = make_roi(image, spacing, seed, 35.0)
    return image, truth, roi


def _found(roi) -> tuple[np.ndarray, np.ndarray]:
    """The region a threshold half-way between lesion and lung finds where the envelope (here only
    what is clear of tissue) lets it, and the whole band."""
    band = roi.smooth >= 0.5 * (GGO + LUNG)
    band &= roi.smooth < -150.0  # lighter than fat: the band of a ground-glass lesion stops below the wall
    roi.allowed = clear_of_tissue(roi)
    return band & roi.allowed, band


def _missed_and_extra(spacing: np.ndarray, phase: float) -> tuple[float, float, float]:
    """(truth share missed before the rule, after it, share of the result outside the truth)."""
    _, truth, roi = _phantom(8.0, spacing, phase=phase)
    lesion, band = _found(roi)
    truth = truth[tuple(slice(lo, lo + n) for lo, n in zip(roi.lo, roi.smooth.shape))]
    base = base_on_wall(lesion, band, roi, GGO, LUNG)
    assert not (base & lesion).any()
    out = lesion | base
    return (truth & ~lesion).sum() / truth.sum(), (truth & ~out).sum() / truth.sum(), \
        (out & ~truth).sum() / truth.sum()


@pytest.mark.parametrize("spacing", [np.array([1.0, 0.7, 0.7]), np.array([1.25, 0.8, 0.8])])
def test_the_base_on_the_wall_comes_back(spacing):
    """Without its base the half-ball misses a blur-wide layer (a quarter to a third of its
    volume); with it, the wall's surface on a voxel boundary, the result covers the truth's base
    and takes no wall."""
    before, after, extra = _missed_and_extra(spacing, 0.0)
    assert before > 0.2, before
    assert after < 0.5 * before, (before, after)
    assert extra < 0.05, extra


@pytest.mark.parametrize("spacing", [np.array([1.0, 0.7, 0.7]), np.array([1.0, 0.5, 0.5])])
def test_wherever_the_wall_lies_in_a_voxel_no_wall_is_taken_and_the_base_comes_back_on_average(spacing):
    """The lesion lifts the mix of the voxel it shares with the wall, which can move the tissue's
    border out by a voxel: its base is then read against the lung's mix a voxel nearer the wall
    and less of it comes back (nothing with the surface half-way through a voxel at 0.7 mm). At
    no phase does the result take wall; over four phases at least a quarter of the missed base
    comes back."""
    runs = [_missed_and_extra(spacing, phase) for phase in (0.0, 0.25, 0.5, 0.75)]
    for before, after, extra in runs:
        assert after <= before and extra < 0.05, (before, after, extra)
    before, after = np.mean([r[0] for r in runs]), np.mean([r[1] for r in runs])
    assert after < 0.75 * before, (before, after)


@pytest.mark.parametrize("rib", [False, True])
def test_the_walls_own_mix_beside_the_lesion_is_not_taken(rib):
    """Along the wall away from the lesion, the band holds the wall's partial volume with the lung:
    none of it joins the lesion, not even where a rib under the lesion, running on beyond it, makes
    the mix denser than the wall's usual one."""
    spacing = np.array([1.0, 0.7, 0.7])
    _, truth, roi = _phantom(8.0, spacing, rib)
    lesion, band = _found(roi)
    out = lesion | base_on_wall(lesion, band, roi, GGO, LUNG)
    truth = truth[tuple(slice(lo, lo + n) for lo, n in zip(roi.lo, roi.smooth.shape))]
    zz, yy, _ = np.indices(out.shape)
    centre = CENTRE - roi.lo
    beyond = np.sqrt(((zz - centre[0]) * spacing[0]) ** 2 + ((yy - centre[1]) * spacing[1]) ** 2) > 8.0 + 3.0
    assert band[beyond].any()  # the wall's mix is in the band there
    assert not (out & beyond).any()


def test_no_contrast_no_base():
    """A lesion no denser than the lung gives nothing to stand above the wall's mix by."""
    _, _, roi = _phantom(8.0, np.array([1.0, 0.7, 0.7]))
    lesion, band = _found(roi)
    assert not base_on_wall(lesion, band, roi, LUNG, LUNG).any()


def test_a_part_solid_nodule_in_the_costophrenic_angle_on_thick_slices_gets_its_base_not_the_corner():
    """A 20 mm part-solid nodule in the costophrenic angle on 5 mm slices, clicked 3 mm off its
    centre: the envelope left out its base on both walls (0.51x before the rule). Its base comes
    back; the mix along the walls beyond the lesion's own in-plane blur stays out (taken with it,
    the corner's mix ran to the ROI's border: 1.24x)."""
    case = render_case(LesionKind(20.0, "costophrenic", "part_solid", 5.0), seed=1)
    seg = ClassicalSegmenter()
    mask = seg.segment(case.image, (case.centre_lps + [3.0, 0.0, 0.0])[None])
    ratio = mask.sum() / case.truth.sum()
    assert 0.65 < ratio < 1.15 and "roi_border" not in seg.last_diagnostics["warnings"], ratio


def test_a_segment_that_is_only_in_the_smoothing_gets_no_base():
    """Where a wall nodule had gone, the segmenter found the wall's own blur in its smoothed image:
    its voxels were lung (held out, seeds 85-89: median 124 HU below the threshold), and the base it
    was given beside the wall made it read as tissue, kept as the lesion. Here the lung beside a
    ground-glass dome that the wall's blur lifts into the band (above the threshold when smoothed,
    lung in the image), as a segment, gets none of the dome's base; the dome itself does."""
    spacing = np.array([1.0, 0.7, 0.7])
    _, _, roi = _phantom(8.0, spacing)
    lesion, band = _found(roi)
    mid = 0.5 * (GGO + LUNG)
    ghost = band & (roi.raw < mid) & (edt_mm(~lesion, roi.spacing) <= 3.0)
    assert ghost.sum() > 20 and np.median(roi.smooth[ghost]) >= mid > np.median(roi.raw[ghost])
    assert not base_on_wall(ghost, band, roi, GGO, LUNG).any()
    assert base_on_wall(lesion, band, roi, GGO, LUNG).any()
