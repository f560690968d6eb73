"""A lesion lighter than fat on a wall (ground glass, a part-solid halo): its base within the wall's
blur is decided by partial volume (:func:`LinGuinELib.segmentation.lung_envelope.base_on_wall`).

The phantom is a flat chest wall and a ground-glass dome of lesion sitting on it, smoothed the way
the segmenter smooths (its own ROI). The region the envelope lets through stops a blur width short
of the wall (:func:`clear_of_tissue`); the base is what lies between, and a voxel is the lesion's
where the lesion fills at least half of it."""

from __future__ import annotations

import numpy as np
import pytest

from LinGuinELib.segmentation.lung_envelope import base_on_wall, clear_of_tissue
from LinGuinELib.segmentation.roi import make_roi

TISSUE, BONE, GGO, LUNG = 40.0, 1000.0, -550.0, -850.0
WALL_X = 30  # wall: x < WALL_X
SHAPE = (60, 80, 80)
CENTRE = np.array([30, 40, WALL_X], float)


def _phantom(radius: float, spacing: np.ndarray, rib: bool = False):
    """(image, truth, roi) with the lesion a half-ball of ``radius`` mm on the wall, voxel centres
    sampled 4x per axis so the truth is each voxel's majority; ``rib``: the wall is bone-dense along
    a 6 mm band that runs under the lesion and on beyond it."""
    fine = 4
    z, y, x = np.meshgrid(*[(np.arange(n * fine) + 0.5) / fine - 0.5 for n in SHAPE], indexing="ij")
    d = np.sqrt(sum(((a - c) * s) ** 2 for a, c, s in zip((z, y, x), CENTRE, spacing)))
    in_wall = x < WALL_X - 0.5
    les = (d <= radius) & ~in_wall
    wall = np.where(rib & (np.abs(y - CENTRE[1]) * spacing[1] < 3.0), BONE, TISSUE)
    value = np.where(in_wall, wall, np.where(les, GGO, LUNG))
    image = value.reshape(SHAPE[0], fine, SHAPE[1], fine, SHAPE[2], fine).mean(axis=(1, 3, 5))
    truth = les.reshape(SHAPE[0], fine, SHAPE[1], fine, SHAPE[2], fine).mean(axis=(1, 3, 5)) >= 0.5
    seed = CENTRE + np.array([0, 0, radius / 2 / spacing[2]])
    roi = make_roi(image, spacing, seed, 35.0)
    return image, truth, roi


def _found(roi):
    """The region a threshold half-way between lesion and lung finds where the envelope (here only
    what is clear of tissue) lets it, and the whole band."""
    band = roi.smooth >= 0.5 * (GGO + LUNG)
    band &= roi.smooth < -150.0  # lighter than fat: the band of a ground-glass lesion stops below the wall
    roi.allowed = clear_of_tissue(roi)
    return band & roi.allowed, band


@pytest.mark.parametrize("spacing", [np.array([1.0, 0.7, 0.7]), np.array([1.25, 0.8, 0.8])])
def test_the_base_on_the_wall_comes_back(spacing):
    """Without its base the half-ball misses a blur-wide layer (10-25% of its volume); with it the
    result covers the truth's base and takes no wall."""
    _, truth, roi = _phantom(8.0, spacing)
    lesion, band = _found(roi)
    truth = truth[tuple(slice(lo, lo + n) for lo, n in zip(roi.lo, roi.smooth.shape))]
    missed_before = (truth & ~lesion).sum() / truth.sum()
    out = base_on_wall(lesion, band, roi, GGO, LUNG)
    missed_after = (truth & ~out).sum() / truth.sum()
    extra = (out & ~truth).sum() / truth.sum()
    assert missed_before > 0.08, missed_before
    assert missed_after < 0.5 * missed_before, (missed_before, missed_after)
    assert extra < 0.05, extra
    assert (out & lesion).sum() == lesion.sum()


@pytest.mark.parametrize("rib", [False, True])
def test_the_walls_own_mix_beside_the_lesion_is_not_taken(rib):
    """Along the wall away from the lesion, the band holds the wall's partial volume with the lung:
    none of it joins the lesion, not even where a rib under the lesion, running on beyond it, makes
    the mix denser than the wall's usual one."""
    spacing = np.array([1.0, 0.7, 0.7])
    _, truth, roi = _phantom(8.0, spacing, rib)
    lesion, band = _found(roi)
    out = base_on_wall(lesion, band, roi, GGO, LUNG)
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
    assert (base_on_wall(lesion, band, roi, LUNG, LUNG) == lesion).all()
