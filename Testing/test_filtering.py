"""keep_nearest_component: which component survives, with exact expected masks."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from LinGuinELib.errors import InputError
from LinGuinELib.filtering import keep_nearest_component
from LinGuinELib.geometry import index_zyx_to_physical


def _image(shape_zyx=(20, 30, 40), spacing_xyz=(1.0, 1.0, 1.0), direction=None) -> sitk.Image:
    img = sitk.Image(shape_zyx[2], shape_zyx[1], shape_zyx[0], sitk.sitkInt16)
    img.SetSpacing(spacing_xyz)
    img.SetOrigin((-12.0, 40.0, 7.5))
    if direction is not None:
        img.SetDirection(direction)
    return img


def _point(img: sitk.Image, zyx) -> np.ndarray:
    return index_zyx_to_physical(img, np.array([zyx], dtype=float))[0]


def _two_blocks(shape=(20, 30, 40)):
    mask = np.zeros(shape, dtype=bool)
    a = (slice(2, 6), slice(3, 8), slice(4, 9))
    b = (slice(10, 14), slice(20, 25), slice(25, 32))
    mask[a] = True
    mask[b] = True
    return mask, a, b


def test_point_inside_component_keeps_exactly_it():
    img = _image()
    mask, a, _ = _two_blocks()
    out = keep_nearest_component(mask, img, _point(img, (3, 5, 6)), radius_mm=0.0)
    expected = np.zeros_like(mask)
    expected[a] = True
    assert out.dtype == bool
    np.testing.assert_array_equal(out, expected)


def test_nearest_component_within_radius():
    img = _image()
    mask, _, b = _two_blocks()
    # 3 voxels (3 mm) beyond b's x-extent end (x = 31)
    point = _point(img, (12, 22, 34))
    out = keep_nearest_component(mask, img, point, radius_mm=3.5)
    expected = np.zeros_like(mask)
    expected[b] = True
    np.testing.assert_array_equal(out, expected)
    assert not keep_nearest_component(mask, img, point, radius_mm=2.9).any()


def test_distance_is_in_mm_not_voxels():
    # z spacing 5 mm: a component 1 voxel away in z (5 mm) loses to one 3 voxels away in x (3 mm)
    img = _image(spacing_xyz=(1.0, 1.0, 5.0))
    mask = np.zeros((20, 30, 40), dtype=bool)
    mask[11, 10, 10] = True  # 1 voxel in z
    mask[10, 10, 13] = True  # 3 voxels in x
    out = keep_nearest_component(mask, img, _point(img, (10, 10, 10)), radius_mm=10.0)
    assert out.sum() == 1 and out[10, 10, 13]


def test_non_identity_direction_is_respected():
    direction = (0.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0)  # 90 degrees about z
    img = _image(direction=direction)
    mask, a, _ = _two_blocks()
    out = keep_nearest_component(mask, img, _point(img, (4, 4, 5)), radius_mm=0.0)
    assert out[a].all() and out.sum() == mask[a].sum()


def test_26_connectivity_joins_diagonal_neighbours():
    img = _image()
    mask = np.zeros((20, 30, 40), dtype=bool)
    mask[5, 5, 5] = mask[6, 6, 6] = True  # corner-touching only
    out = keep_nearest_component(mask, img, _point(img, (5, 5, 5)), radius_mm=0.0)
    np.testing.assert_array_equal(out, mask)


def test_empty_mask_gives_empty():
    img = _image()
    out = keep_nearest_component(np.zeros((20, 30, 40), bool), img, _point(img, (1, 1, 1)), 5.0)
    assert out.shape == (20, 30, 40) and not out.any()


def test_point_outside_the_bounding_box_and_image():
    img = _image()
    mask, a, _ = _two_blocks()
    far = _point(img, (-30, -30, -30))
    assert not keep_nearest_component(mask, img, far, radius_mm=5.0).any()
    near = _point(img, (2, 3, 2))  # 2 voxels before a's x start
    expected = np.zeros_like(mask)
    expected[a] = True
    np.testing.assert_array_equal(keep_nearest_component(mask, img, near, 2.0), expected)


def test_bad_inputs_raise_input_error():
    img = _image()
    mask, _, _ = _two_blocks()
    with pytest.raises(InputError, match="mask_zyx"):
        keep_nearest_component(mask[:-1], img, _point(img, (1, 1, 1)), 1.0)
    with pytest.raises(InputError, match="point_lps"):
        keep_nearest_component(mask, img, np.array([1.0, 2.0]), 1.0)
    with pytest.raises(InputError, match="radius_mm"):
        keep_nearest_component(mask, img, _point(img, (1, 1, 1)), -1.0)


def test_full_size_grid_is_fast():
    import time

    img = _image((260, 512, 512), (0.7, 0.7, 1.25))
    mask = np.zeros((260, 512, 512), dtype=bool)
    mask[100:120, 200:230, 200:230] = True
    mask[150:160, 300:310, 300:310] = True
    start = time.perf_counter()
    out = keep_nearest_component(mask, img, _point(img, (110, 215, 215)), 5.0)
    assert time.perf_counter() - start < 1.0
    assert out.sum() == 20 * 30 * 30


def test_mm_dilation_and_erosion_respect_spacing():
    from LinGuinELib.filtering import dilate_mm, erode_mm

    spacing = np.array([3.0, 1.0, 1.0])  # (z, y, x) mm
    mask = np.zeros((9, 15, 15), bool)
    mask[4, 7, 7] = True
    grown = dilate_mm(mask, 2.0, spacing)
    # in-plane: the 13 voxels of the 2 mm disc; z neighbours are 3 mm away
    assert grown.sum() == 13 and grown[4].sum() == 13
    block = np.zeros((9, 15, 15), bool)
    block[2:7, 3:12, 3:12] = True  # 15 x 9 x 9 mm
    core = erode_mm(block, 2.0, spacing)
    # nearest outside voxel centre more than 2 mm away: x, y 5..9; every slice (z steps are 3 mm)
    assert core.sum() == 5 * 5 * 5 and core[2:7, 5:10, 5:10].all()


def test_fill_holes_and_opening():
    from LinGuinELib.filtering import fill_holes, opening_mm

    shell = np.zeros((10, 10, 10), bool)
    shell[2:8, 2:8, 2:8] = True
    shell[3:7, 3:7, 3:7] = False
    np.testing.assert_array_equal(fill_holes(shell), np.pad(np.ones((6, 6, 6), bool), 2))
    cup = shell.copy()
    cup[3:7, 3:7, 7] = False  # open the lid: the cavity now reaches the outside
    np.testing.assert_array_equal(fill_holes(cup), cup)
    blob = np.zeros((20, 20, 30), bool)
    blob[5:15, 5:15, 5:15] = True
    blob[10, 10, 15:28] = True  # a one-voxel "vessel"
    opened = opening_mm(blob, 1.5, np.ones(3))
    assert not opened[10, 10, 16:].any() and opened[6:14, 6:14, 6:14].all()


def test_coarse_opening_keeps_the_wall_and_drops_the_bump():
    from LinGuinELib.filtering import coarse_opening_mm

    spacing = np.array([1.0, 1.0, 1.0])
    mask = np.zeros((40, 40, 40), bool)
    mask[:, 25:, :] = True  # a wall 15 mm thick that runs past the array border
    zz, yy, xx = np.indices(mask.shape)
    bump = ((zz - 20) ** 2 + (yy - 24) ** 2 + (xx - 20) ** 2) <= 25
    mask |= bump
    opened = coarse_opening_mm(mask, 10.0, spacing)
    assert opened[:, 30:, :].all()  # the wall interior is kept
    assert not opened[bump & (yy < 22)].any()  # the bump's tip is not


def test_components_touching_keeps_exactly_the_components_with_a_voxel_in_where():
    """Three blobs; ``where`` reaches into one of them and into background: that blob alone, whole."""
    from LinGuinELib.filtering import components_touching, labels_touching

    mask = np.zeros((12, 12, 12), dtype=bool)
    mask[1:4, 1:4, 1:4] = mask[6:9, 6:9, 6:9] = mask[1:3, 9:11, 1:3] = True
    mask[4, 4, 4] = True  # joins the first blob diagonally: 26- but not 6-connected
    where = np.zeros_like(mask)
    where[7, 7, 7] = where[0, 11, 11] = True  # the middle blob, and background
    expected = np.zeros_like(mask)
    expected[6:9, 6:9, 6:9] = True
    assert np.array_equal(components_touching(mask, where), expected)
    where[4, 4, 4] = True
    six = components_touching(mask, where, connectivity=6)
    assert six[4, 4, 4] and not six[2, 2, 2] and np.array_equal(six & ~expected, where & mask & ~expected)
    assert components_touching(mask, where)[2, 2, 2]
    assert not components_touching(mask, np.zeros_like(mask)).any()
    assert not labels_touching(np.zeros((3, 3), np.uint32), np.ones((3, 3), bool)).any()
