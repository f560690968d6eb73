"""The haze_beyond flag: a part-solid nodule segmented as its solid core leaves its ground glass
just outside the outline; a solid lesion's partial-volume blur has faded there, also where it
leans on the chest wall."""

import numpy as np
from quality_fixtures import CENTRE_ZYX, ball, image, lung, outline, painted, scanned, wall_from
from scipy import ndimage

from LinGuinELib.propagation.result import MaskCrop
from LinGuinELib.quality import Reason, scan_checks

SOLID_HU, HALO_HU, LUNG_HU = 30.0, -550.0, -850.0
SHAPE = (40, 80, 80)


def reasons(arr: np.ndarray, mask: np.ndarray, spacing_xyz=(1.0, 1.0, 1.0)) -> tuple[set, float]:
    """The review reasons of ``mask`` as a prompt scan's segment, and its haze_beyond signal."""
    signals, findings = scan_checks(image(arr, spacing_xyz), MaskCrop.from_full(mask), is_prompt=True)
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


def test_on_thick_slices_too():
    """2.5 mm slices of 0.7 mm pixels: the shells 1-3 mm out lie in the slices' own plane above and
    below the lesion, and the slices' partial volume reaches them."""
    spacing = np.array([2.5, 0.7, 0.7])
    shape = (24, 90, 90)
    centre = np.array(shape) // 2
    mm = np.sqrt(sum(((np.indices(shape)[a] - centre[a]) * spacing[a]) ** 2 for a in range(3)))
    blur = 1.0 / spacing  # 1 mm in the plane; across, the slice's own thickness blurs more
    blur[0] = 0.5
    for parts, cut_core, flagged in (([(mm <= 7.5, HALO_HU), (mm <= 3.5, SOLID_HU)], True, True),
                                     ([(mm <= 7.5, HALO_HU), (mm <= 3.5, SOLID_HU)], False, False),
                                     ([(mm <= 5.0, SOLID_HU)], True, False)):
        arr = ndimage.gaussian_filter(painted(lung(shape), *parts), blur)
        labels, _ = ndimage.label(arr >= 0.5 * ((SOLID_HU if cut_core else HALO_HU) + LUNG_HU))
        mask = labels == labels[tuple(centre)]
        found, haze = reasons(arr, mask, tuple(spacing[::-1]))
        assert (Reason.HAZE_BEYOND in found) is flagged, haze


def test_a_speck_in_a_corner_of_a_coarse_scan_reads_no_haze():
    """Too few voxels round it to read the lung: no number, no flag, no error."""
    arr = lung((6, 6, 6))
    mask = np.zeros(arr.shape, bool)
    mask[0, 0, 0] = True
    found, haze = reasons(arr, mask, (5.0, 5.0, 5.0))
    assert np.isnan(haze)
    assert Reason.HAZE_BEYOND not in found


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


def test_a_large_tumour_on_the_chest_wall_reads_its_lung_not_the_air_outside_the_body():
    """The lung is read within 15 mm of the outline: a large lesion's crop reaches beyond the chest
    wall, and the air outside the body there is no level for the lung (read from it, a softer
    scanner's blur round the tumour passed for haze)."""
    shape, centre = (60, 120, 120), (30, 60, 55)  # a 48 mm tumour on a 20 mm chest wall
    x = np.indices(shape)[2]
    arr = scanned(painted(lung(shape), (x >= 80, 40.0), (x >= 100, -1000.0), (ball(shape, centre, 24), SOLID_HU)), 1.5)
    labels, _ = ndimage.label(arr >= 0.5 * (SOLID_HU + LUNG_HU))
    tumour = (labels == labels[centre]) & (x < 80)
    found, haze = reasons(arr, tumour)
    assert Reason.HAZE_BEYOND not in found, haze
