"""The faint_rim flag: a lesion's volume, like its truth, is drawn where a voxel is half lesion. A
segment whose outer layer is mostly fainter than that (lower in HU) took in partial volume (a small nodule) or was
cut through ground glass (a part-solid nodule), and its volume rests on where the line was drawn."""

import numpy as np
from quality_fixtures import CENTRE_ZYX, ball, image, lung, outline, painted, scanned
from scipy import ndimage

from LinGuinELib.propagation.result import MaskCrop
from LinGuinELib.quality import Reason, scan_checks

SOLID_HU, HALO_HU, LUNG_HU = 30.0, -550.0, -850.0
SHAPE = (40, 80, 80)


def reasons(arr: np.ndarray, mask: np.ndarray) -> tuple[set, float]:
    """The review reasons of ``mask`` as a prompt scan's segment, and its faint_rim signal."""
    signals, findings = scan_checks(image(arr), MaskCrop.from_full(mask), is_prompt=True)
    return {f.reason for f in findings}, signals["faint_rim"]


def test_a_small_nodule_outlined_into_its_partial_volume_is_flagged_at_half_way_it_is_not():
    """A 6 mm nodule outlined a fifth of the way up from the lung holds half again its volume or
    more: its blurred rim, which the truth (half-way) leaves out."""
    arr = scanned(painted(lung(SHAPE), (ball(SHAPE, CENTRE_ZYX, 3), SOLID_HU)))
    half = outline(arr, 0.5 * (SOLID_HU + LUNG_HU))
    low = outline(arr, LUNG_HU + 0.2 * (SOLID_HU - LUNG_HU))
    assert low.sum() > 1.5 * half.sum()
    found, rim = reasons(arr, low)
    assert Reason.FAINT_RIM in found, rim
    found, rim = reasons(arr, half)
    assert Reason.FAINT_RIM not in found, rim


def test_a_part_solid_nodule_cut_through_its_ground_glass_is_flagged_its_whole_is_not():
    """The core and a shell of the ground glass round it (0.3-0.45x of the truth on the random
    kinds, unflagged before): its interior reads solid and its rim is ground glass, fainter than
    half-way from the lung to it. Outlined whole, half-way from the lung to the ground glass, the
    same nodule is not flagged."""
    arr = scanned(painted(lung(SHAPE), (ball(SHAPE, CENTRE_ZYX, 8), HALO_HU), (ball(SHAPE, CENTRE_ZYX, 3.5), SOLID_HU)))
    cut = ball(SHAPE, CENTRE_ZYX, 5)
    whole = outline(arr, 0.5 * (HALO_HU + LUNG_HU))
    assert cut.sum() < 0.4 * whole.sum()
    found, rim = reasons(arr, cut)
    assert Reason.FAINT_RIM in found, rim
    found, rim = reasons(arr, whole)
    assert Reason.FAINT_RIM not in found, rim


def test_a_cavity_inside_the_outline_is_not_a_faint_rim():
    """A 30 mm mass with a 22 mm cavity, its outline filled: two fifths of the segment are air, but inside.
    Only the outer layer counts, so the thin-walled cavity is not read as partial volume."""
    outer, cavity = ball(SHAPE, CENTRE_ZYX, 15), ball(SHAPE, CENTRE_ZYX, 11)
    arr = scanned(painted(lung(SHAPE), (outer, SOLID_HU), (cavity, LUNG_HU)))
    filled = ndimage.binary_fill_holes((arr >= 0.5 * (SOLID_HU + LUNG_HU)) & ball(SHAPE, CENTRE_ZYX, 17))
    assert np.mean(arr[filled] < 0.5 * (SOLID_HU + LUNG_HU)) > 0.3  # all its voxels counted, it would read light
    found, rim = reasons(arr, filled)
    assert Reason.FAINT_RIM not in found, rim
