"""The haze_beyond flag: a part-solid nodule segmented as its solid core leaves its ground glass
just outside the outline; a solid lesion's partial-volume blur has faded there, also where it
leans on the chest wall."""

import numpy as np
from quality_fixtures import CENTRE_ZYX, ball, image, lung, painted, wall_from
from scipy import ndimage

from LinGuinELib.propagation.result import MaskCrop
from LinGuinELib.quality import Reason, scan_checks

SOLID_HU, HALO_HU, LUNG_HU = 30.0, -550.0, -850.0
SHAPE = (40, 80, 80)


def scanned(arr: np.ndarray) -> np.ndarray:
    """A scanner's blur (1 mm) over the painted tissues: every edge has its partial-volume rim."""
    return ndimage.gaussian_filter(arr, 1.0)


def outline(arr: np.ndarray, level: float) -> np.ndarray:
    """What a segmenter draws at ``level``: the component at the centre at or above it."""
    labels, _ = ndimage.label(arr >= level)
    return labels == labels[CENTRE_ZYX]


def reasons(arr: np.ndarray, mask: np.ndarray) -> tuple[set, float]:
    signals, findings = scan_checks(image(arr), MaskCrop.from_full(mask), is_prompt=True)
    return {f.reason for f in findings}, signals["haze_beyond"]


def test_a_part_solid_nodule_cut_to_its_core_is_flagged_its_whole_is_not():
    arr = scanned(painted(lung(SHAPE), (ball(SHAPE, CENTRE_ZYX, 7), HALO_HU), (ball(SHAPE, CENTRE_ZYX, 3), SOLID_HU)))
    core = outline(arr, 0.5 * (SOLID_HU + LUNG_HU))  # half-way from the core to the lung: the core alone
    whole = outline(arr, 0.5 * (HALO_HU + LUNG_HU))  # half-way from the halo to the lung
    assert core.sum() < 0.25 * whole.sum()
    found, haze = reasons(arr, core)
    assert Reason.HAZE_BEYOND in found, haze
    found, haze = reasons(arr, whole)
    assert Reason.HAZE_BEYOND not in found, haze


def test_a_solid_nodule_is_not_flagged_in_the_lung_nor_on_the_chest_wall():
    for radius in (2.5, 4, 8):
        arr = scanned(painted(lung(SHAPE), (ball(SHAPE, CENTRE_ZYX, radius), SOLID_HU)))
        found, haze = reasons(arr, outline(arr, 0.5 * (SOLID_HU + LUNG_HU)))
        assert Reason.HAZE_BEYOND not in found, (radius, haze)
    wall = wall_from(SHAPE, 51)
    arr = scanned(painted(lung(SHAPE), (wall, 40.0), (ball(SHAPE, CENTRE_ZYX, 7), SOLID_HU)))
    nodule = outline(arr, 0.5 * (SOLID_HU + LUNG_HU)) & ~wall  # cut off the wall where it meets it
    found, haze = reasons(arr, nodule)
    assert Reason.HAZE_BEYOND not in found, haze
