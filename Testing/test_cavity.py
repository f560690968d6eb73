"""A prompt in the air of a cavitating lesion: the cavity is told from the lung round any point,
and the lesion is read whole, with its cavity, from its wall."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from LinGuinELib.segmentation.cavity import find_cavity
from LinGuinELib.segmentation.classical import ClassicalSegmenter
from LinGuinELib.segmentation.roi import DIRECTIONS
from LinGuinELib.synthetic import LesionKind, render_case


@pytest.fixture(scope="module")
def seg() -> ClassicalSegmenter:
    return ClassicalSegmenter()


def _score(case, mask):
    dice = 2.0 * (mask & case.truth).sum() / (mask.sum() + case.truth.sum())
    return float(dice), float(mask.sum() / case.truth.sum())


@pytest.mark.parametrize("kind,seed,offset_mm", [
    # eccentric: the prompt 3 mm from one side of the cavity, 11 mm from the other (the old rule
    # asked the farthest wall to lie within 2.5x the nearest + 3 mm: empty)
    (LesionKind(32.6, "isolated", "solid", 5.0, shape="cavitating"), 2064, (0.0, 0.0, 0.0)),
    # a 27 mm one on the mediastinum: the cavity's air passed for lung, the envelope was the
    # cavity and the wall lay outside it (empty)
    (LesionKind(26.9, "mediastinum", "solid", 1.0, shape="cavitating"), 2058, (4.04, 0.0, 0.0)),
])
def test_a_prompt_in_a_cavity_finds_the_whole_lesion(seg, kind, seed, offset_mm):
    case = render_case(kind, seed=seed)
    point = case.centre_lps + np.array(offset_mm)
    index = np.array(case.image.TransformPhysicalPointToContinuousIndex(point.tolist()))[::-1]
    assert sitk.GetArrayFromImage(case.image)[tuple(np.round(index).astype(int))] < -900  # in the air
    dice, ratio = _score(case, seg.segment(case.image, point[None]))
    assert dice > 0.85 and 0.8 < ratio < 1.25, (dice, ratio)


def test_enclosed_points_of_real_lung_are_no_cavity(lidc_dir):
    """Points of real aerated lung with no tissue within 3 mm (where the segmenter asks) that the
    vessels and walls round them enclose as a cavity's wall would: neighbouring rays meet different
    structures there, and none is taken for a cavity (filled, it would be a lesion made up)."""
    image = sitk.ReadImage(str(lidc_dir / "LIDC-IDRI-0001_ct.nii.gz"))
    arr = sitk.GetArrayFromImage(image).astype(np.float32)
    sp = np.array(image.GetSpacing()[::-1])
    smooth = ndimage.gaussian_filter(arr, 1.0)
    clear = ndimage.distance_transform_edt(smooth < -750, sampling=sp) > 3.0
    points = np.argwhere(clear & (smooth > -960))
    points = points[np.random.default_rng(0).choice(len(points), 2000, replace=False)].astype(float)
    radii = np.arange(1.0, 41.0)
    enclosed = []
    for p in points:
        rays = p + DIRECTIONS[:, None, :] * radii[None, :, None] / sp
        values = ndimage.map_coordinates(arr, rays.reshape(-1, 3).T, order=1).reshape(len(DIRECTIONS), -1)
        if (values >= -750).any(axis=1).mean() >= 0.95:
            enclosed.append(p)
    assert len(enclosed) >= 5  # what the rule is measured on
    assert all(find_cavity(arr, sp, p) is None for p in enclosed)
