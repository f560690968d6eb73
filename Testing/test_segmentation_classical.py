"""The classical segmenter on synthetic CT-like lesions, and on the LIDC nodules when present.

Phantoms are drawn in physical mm on an anisotropic, rotated grid: lung (-850 HU) or liver
(60 HU), a lesion (sphere / ellipsoid), attached vessels (cylinders) and a chest wall
(half-space), blurred like a scanner's point spread and with Gaussian noise.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import cc3d
import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from LinGuinELib.registry import backend_class, create_backend
from LinGuinELib.segmentation.classical import ClassicalSegmenter

LIDC = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "lidc"

# 25 degrees about z then 10 about x: a non-trivial direction matrix
_C, _S = np.cos(np.radians(25)), np.sin(np.radians(25))
_CX, _SX = np.cos(np.radians(10)), np.sin(np.radians(10))
DIRECTION = (np.array([[_C, -_S, 0], [_S, _C, 0], [0, 0, 1]]) @ np.array(
    [[1, 0, 0], [0, _CX, -_SX], [0, _SX, _CX]]
))


class Phantom:
    """A small CT volume; ``world``: each voxel centre's LPS position relative to the centre."""

    def __init__(self, size_xyz=(110, 110, 36), spacing_xyz=(0.7, 0.75, 2.5), seed=0):
        self.image = sitk.Image(*size_xyz, sitk.sitkInt16)
        self.image.SetSpacing(spacing_xyz)
        self.image.SetDirection(tuple(DIRECTION.ravel()))
        self.centre = np.array([-20.0, 35.0, 110.0])
        half = (np.array(size_xyz) - 1) / 2 * np.array(spacing_xyz)
        self.image.SetOrigin(tuple(self.centre - DIRECTION @ half))
        zyx = np.indices(size_xyz[::-1], dtype=np.float32)
        ijk = np.stack([zyx[2], zyx[1], zyx[0]], axis=-1) * np.array(spacing_xyz, np.float32)
        self.world = ijk @ DIRECTION.T.astype(np.float32) - (DIRECTION @ half).astype(np.float32)
        self.spacing_zyx = np.array(spacing_xyz[::-1])
        self.rng = np.random.default_rng(seed)

    def ellipsoid(self, centre, radii, axes=None) -> np.ndarray:
        axes = np.eye(3) if axes is None else axes
        local = (self.world - np.asarray(centre, np.float32)) @ np.asarray(axes, np.float32)
        return ((local / np.asarray(radii, np.float32)) ** 2).sum(-1) <= 1.0

    def cylinder(self, point, direction, radius) -> np.ndarray:
        d = np.asarray(direction, np.float32) / np.linalg.norm(direction)
        rel = self.world - np.asarray(point, np.float32)
        along = rel @ d
        return ((rel**2).sum(-1) - along**2) <= radius**2

    def half_space(self, normal, offset) -> np.ndarray:
        return self.world @ np.asarray(normal, np.float32) >= offset

    def render(self, layers, background=-850.0, noise=25.0) -> sitk.Image:
        """layers: (mask, HU) painted in order; then blur (~0.6 mm) and noise."""
        vol = np.full(layers[0][0].shape, background, np.float32)
        for mask, hu in layers:
            vol[mask] = hu
        vol = ndimage.gaussian_filter(vol, 0.6 / self.spacing_zyx)
        vol += self.rng.normal(0, noise, vol.shape).astype(np.float32)
        img = sitk.GetImageFromArray(np.round(vol).astype(np.int16))
        img.CopyInformation(self.image)
        return img

    def lps(self, offset_mm) -> np.ndarray:
        return (self.centre + np.asarray(offset_mm, float))[None, :]


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


@pytest.fixture(scope="module")
def phantom() -> Phantom:
    return Phantom()


@pytest.fixture(scope="module")
def seg() -> ClassicalSegmenter:
    return create_backend("segmentation", "classical")


def test_registered_under_its_name():
    assert backend_class("segmentation", "classical") is ClassicalSegmenter


def test_sphere_with_attached_vessels(phantom, seg):
    nodule = phantom.ellipsoid((0, 0, 0), (7, 7, 7))
    vessel = phantom.cylinder((0, 6.5, 0), (1, 0.2, 0.7), 1.5)
    vessel2 = phantom.cylinder((5, 0, 0), (0.1, 1, 0.3), 1.2)
    img = phantom.render([(vessel, 30.0), (vessel2, 30.0), (nodule, 20.0)])
    mask = seg.segment(img, phantom.lps((0, 0, 0)))
    assert mask.dtype == bool and mask.shape == nodule.shape
    assert dice(mask, nodule) > 0.9
    far = (phantom.world**2).sum(-1) > 10.0**2  # vessels beyond 3 mm of the nodule surface
    assert not (mask & far).any()


def test_off_centre_prompt_and_prompt_just_outside(phantom, seg):
    nodule = phantom.ellipsoid((0, 0, 0), (8, 5.5, 6.5), axes=DIRECTION)
    img = phantom.render([(nodule, 0.0)])
    for offset in [(2.0, -1.5, 1.5), (0, 0, -3.0), (0, 7.0, 0)]:  # last: 1.5 mm outside
        mask = seg.segment(img, phantom.lps(offset))
        assert dice(mask, nodule) > 0.9, offset


def test_small_nodule_on_thick_slices(phantom, seg):
    nodule = phantom.ellipsoid((0, 0, 0), (2.8, 2.8, 2.8))  # 5.6 mm, about two 2.5 mm slices
    img = phantom.render([(nodule, 10.0)])
    assert dice(seg.segment(img, phantom.lps((0.5, -0.5, 0))), nodule) > 0.85


def test_click_between_the_voxel_centres_of_a_coarse_grid():
    """On 2.5 x 2.5 x 3 mm voxels a click can lie 2.3 mm from every voxel centre: the intensity
    at the seed is still read (it was the median of no voxel, NaN, and the click on a nodule
    fell through to the densest voxel nearby by accident)."""
    coarse = Phantom(size_xyz=(40, 40, 24), spacing_xyz=(2.5, 2.5, 3.0), seed=3)
    nodule = coarse.ellipsoid((0, 0, 0), (9, 9, 9))
    img = coarse.render([(nodule, 20.0)])
    # the voxel corner nearest the nodule's centre, in the grid's own (rotated) frame
    corner = np.array(img.TransformContinuousIndexToPhysicalPoint((19.5, 19.5, 11.5)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        mask = create_backend("segmentation", "classical").segment(img, corner[None])
    assert dice(mask, nodule) > 0.8


def test_juxta_pleural_nodule_is_cut_from_the_wall(phantom, seg):
    normal = np.array([0.0, -1.0, 0.0])  # wall occupies y <= -6 (posterior-like side)
    wall = phantom.half_space(normal, 6.0)
    nodule = phantom.ellipsoid((0, -1, 0), (7, 7, 7)) & ~wall
    img = phantom.render([(wall, 40.0), (nodule, 30.0)])
    mask = seg.segment(img, phantom.lps((0, 0, 0)))
    assert dice(mask, nodule) > 0.9
    assert (mask & wall).sum() < 0.05 * nodule.sum()


def test_nodule_on_a_curved_wall(phantom, seg):
    wall = ~phantom.ellipsoid((0, -60, 0), (62, 62, 62))  # lung: a 62 mm ball, wall outside
    nodule = phantom.ellipsoid((0, -1, 0), (7, 7, 7)) & ~wall
    img = phantom.render([(wall, 40.0), (nodule, 30.0)])
    mask = seg.segment(img, phantom.lps((0, -1, 0)))
    assert dice(mask, nodule) > 0.85
    assert (mask & wall).sum() < 0.05 * nodule.sum()


def test_two_positive_points_give_both_lesions(phantom, seg):
    a = phantom.ellipsoid((-12, 0, 0), (5, 5, 5))
    b = phantom.ellipsoid((12, 5, 0), (6, 6, 6))
    img = phantom.render([(a | b, 20.0)])
    mask = seg.segment(img, np.vstack([phantom.lps((-12, 0, 0)), phantom.lps((12, 5, 0))]))
    assert dice(mask, a | b) > 0.9


def test_prompt_in_uniform_tissue_gives_empty(phantom, seg):
    organ = phantom.ellipsoid((0, 0, 0), (60, 60, 60))
    img = phantom.render([(organ, 60.0)], background=-100.0, noise=12.0)
    assert not seg.segment(img, phantom.lps((0, 0, 0))).any()


def test_prompt_inside_the_chest_wall_gives_empty(phantom, seg):
    wall = phantom.half_space(np.array([0.0, -1.0, 0.0]), -8.0)  # the wall fills y <= 8
    img = phantom.render([(wall, 40.0)])
    start = time.perf_counter()
    assert not seg.segment(img, phantom.lps((0, -10, 0))).any()
    assert time.perf_counter() - start < 5.0


def test_ground_glass_nodule_on_the_wall(phantom, seg):
    wall = phantom.half_space(np.array([0.0, -1.0, 0.0]), 5.0)
    nodule = phantom.ellipsoid((0, -2, 0), (9, 7, 8)) & ~wall
    img = phantom.render([(wall, 40.0), (nodule, -600.0)], noise=40.0)
    mask = seg.segment(img, phantom.lps((1, 0, 0)))
    assert dice(mask, nodule) > 0.85
    assert (mask & wall).sum() < 0.05 * nodule.sum()


def test_hypodense_liver_lesion(phantom, seg):
    liver = np.ones(phantom.world.shape[:-1], bool)
    lesion = phantom.ellipsoid((0, 0, 0), (9, 9, 8))
    img = phantom.render([(liver, 60.0), (lesion, 15.0)], noise=12.0)
    mask = seg.segment(img, phantom.lps((1.5, 1.0, 0)))
    assert dice(mask, lesion) > 0.85


def test_lymph_node_in_fat(phantom, seg):
    fat = np.ones(phantom.world.shape[:-1], bool)
    node = phantom.ellipsoid((0, 0, 0), (6, 4.5, 5), axes=DIRECTION)
    img = phantom.render([(fat, -100.0), (node, 40.0)], noise=15.0)
    assert dice(seg.segment(img, phantom.lps((0, 0, 0))), node) > 0.85


def test_prompt_in_air_gives_empty(phantom, seg):
    nodule = phantom.ellipsoid((0, 0, 0), (6, 6, 6))
    img = phantom.render([(nodule, 20.0)])
    assert not seg.segment(img, phantom.lps((20, 15, 0))).any()
    assert not seg.segment(img, phantom.lps((500, 0, 0))).any()  # outside the image


def test_negative_point_excludes_the_touching_neighbour(phantom, seg):
    a = phantom.ellipsoid((-6, 0, 0), (6, 6, 6))
    b = phantom.ellipsoid((6, 0, 0), (6, 6, 6))
    img = phantom.render([(a | b, 20.0)])
    only_a = seg.segment(img, phantom.lps((-6, 0, 0)), phantom.lps((6, 0, 0)))
    assert dice(only_a, a) > 0.85 and (only_a & b).sum() < 0.1 * b.sum()


def test_bad_prompt_shape_raises(phantom, seg):
    from LinGuinELib.errors import InputError

    img = phantom.render([(phantom.ellipsoid((0, 0, 0), (5, 5, 5)), 20.0)])
    with pytest.raises(InputError, match="positive_lps"):
        seg.segment(img, np.zeros((2, 2)))


def test_full_size_ct_is_fast(seg):
    size_zyx = (260, 512, 512)
    vol = np.full(size_zyx, -850, np.int16)
    zz, yy, xx = np.ogrid[:260, :512, :512]
    spacing = np.array([1.25, 0.7, 0.7])
    r2 = ((zz - 130) * spacing[0]) ** 2 + ((yy - 250) * spacing[1]) ** 2 + ((xx - 260) * 0.7) ** 2
    vol[r2 <= 10.0**2] = 30
    vol[:, 330:, :] = 40  # a wall 10 mm from the nodule surface
    img = sitk.GetImageFromArray(vol)
    img.SetSpacing((0.7, 0.7, 1.25))
    point = np.array(img.TransformContinuousIndexToPhysicalPoint((260.0, 250.0, 130.0)))[None]
    seg.segment(img, point)  # warm-up (imports, caches)
    start = time.perf_counter()
    mask = seg.segment(img, point)
    assert time.perf_counter() - start < 2.0
    assert abs(mask.sum() * 0.7 * 0.7 * 1.25 - 4 / 3 * np.pi * 1000) < 0.1 * 4 / 3 * np.pi * 1000


@pytest.mark.lidc
@pytest.mark.skipif(not LIDC.is_dir(), reason="LIDC data not available at ../shared/data/lidc")
@pytest.mark.parametrize("patient", ["LIDC-IDRI-0001", "LIDC-IDRI-0002"])
def test_lidc_main_nodule(seg, patient):
    image = sitk.ReadImage(str(LIDC / f"{patient}_ct.nii.gz"))
    consensus = sitk.GetArrayFromImage(sitk.ReadImage(str(LIDC / f"{patient}_consensus2.nii.gz")))
    truth = cc3d.largest_k(consensus > 0, k=1, connectivity=26) > 0
    box = ndimage.find_objects(truth.astype(np.uint8))[0]
    depth = ndimage.distance_transform_edt(
        np.pad(truth[box], 1), sampling=image.GetSpacing()[::-1]
    )[1:-1, 1:-1, 1:-1]
    local = np.unravel_index(np.argmax(depth), depth.shape)
    centre = [s.start + i for s, i in zip(box, local)]
    point = np.array(image.TransformContinuousIndexToPhysicalPoint(
        [float(v) for v in centre[::-1]]))
    point = point + np.array([1.0, -1.0, 0.5])  # "near" the centre, not on it
    mask = seg.segment(image, point[None])
    # the readers themselves agree to 0.77 on LIDC-0002 (>=1 vs >=2 readers, see the README);
    # its volume, 0.66 of the consensus before issue 9's level and ceiling changes, is now 0.75
    assert dice(mask, truth) >= 0.74
    assert 0.5 <= mask.sum() / truth.sum() <= 2.0


def _ball_mask(shape, centre, radius):
    grid = np.indices(shape).astype(float)
    return sum((g - c) ** 2 for g, c in zip(grid, centre)) <= radius**2


def test_eroded_core_shape_tells_a_vessel_from_a_flat_lesion():
    """separate._compact: a plate (two long axes) is a lesion, a ball with a tube running out of
    it is a nodule on a vessel, a sheet reaching far beyond the lesion's size is a wall layer."""
    from LinGuinELib.segmentation.separate import _compact

    sp = np.ones(3)
    shape = (40, 80, 80)
    centre = np.array([20.0, 40.0, 40.0])
    grid = np.indices(shape).astype(float)
    disc = (np.abs(grid[0] - 20) <= 1) & ((grid[1] - 40) ** 2 + (grid[2] - 40) ** 2 <= 12**2)
    assert _compact(disc, centre, sp, ball=2.0, size=14.0)  # 12 mm wide, 1 mm thick core
    tube = (np.abs(grid[0] - 20) <= 1) & (np.abs(grid[1] - 40) <= 1) & (grid[2] >= 40)
    nodule = _ball_mask(shape, centre, 3.0) | tube  # a 3 mm core with a 40 mm vessel
    assert not _compact(nodule, centre, sp, ball=2.0, size=14.0)
    assert _compact(_ball_mask(shape, centre, 3.0), centre, sp, ball=2.0, size=5.0)
    sheet = np.abs(grid[0] - 20) <= 1  # the whole plane: far beyond a 5 mm lesion
    assert not _compact(sheet, centre, sp, ball=0.5, size=5.0)
