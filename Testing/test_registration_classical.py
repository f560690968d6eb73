"""The classical registration backend recovers known transforms of structured volumes.

Targets are made by resampling a source through a known transform g (target -> source
points), so the truth for a source point p is the q with g(q) = p.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from LinGuinELib.errors import InputError
from LinGuinELib.registration.classical import ClassicalRegistration, LocalRefinementMapper
from LinGuinELib.registry import create_backend

LIDC = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "lidc"


def _rotation(ax: float, ay: float, az: float) -> np.ndarray:
    return np.array(sitk.Euler3DTransform((0, 0, 0), ax, ay, az).GetMatrix()).reshape(3, 3)


def _phantom(seed: int = 3) -> sitk.Image:
    """A chest-like volume: body, two lungs with vessel-like blobs, textured soft tissue.

    Anisotropic spacing and a rotated direction matrix exercise the geometry handling.
    """
    rng = np.random.default_rng(seed)
    shape = (48, 96, 96)  # (z, y, x); spacing (x, y, z) = (2, 2, 3) mm
    zz, yy, xx = np.meshgrid(*[np.arange(n, dtype=float) for n in shape], indexing="ij")
    x, y, z = (xx - 47.5) * 2.0, (yy - 47.5) * 2.0, (zz - 23.5) * 3.0
    body = (x / 85.0) ** 2 + (y / 65.0) ** 2 < 1.0 - 0.3 * (z > 40.0)  # narrower neck end
    lungs = ((np.abs(x) - 40.0) / 30.0) ** 2 + (y / 45.0) ** 2 + ((z - 10.0) / 70.0) ** 2 < 1.0
    heart = ((x + 15.0) / 35.0) ** 2 + ((y + 10.0) / 30.0) ** 2 + ((z + 30.0) / 35.0) ** 2 < 1.0
    lungs &= ~heart
    texture = ndimage.gaussian_filter(rng.normal(size=shape), sigma=(1.0, 1.5, 1.5))
    texture /= texture.std()
    vol = np.full(shape, -1000.0)
    vol[body] = 40.0 + 60.0 * texture[body]
    vessels = lungs & (texture > 1.2)
    vol[lungs] = -850.0 + 20.0 * texture[lungs]
    vol[vessels] = 30.0
    img = sitk.GetImageFromArray(vol.astype(np.float32))
    img.SetSpacing((2.0, 2.0, 3.0))
    img.SetDirection(tuple(_rotation(0.05, -0.03, 0.35).ravel()))
    img.SetOrigin((-60.0, -120.0, -70.0))
    return sitk.Cast(img, sitk.sitkInt16)


def _displacement(reference: sitk.Image, max_mm: float, seed: int) -> sitk.Transform:
    """Smooth displacement (one broad Gaussian bump per axis) on a coarse grid, in mm."""
    rng = np.random.default_rng(seed)
    corners = np.array([reference.TransformIndexToPhysicalPoint((i, j, k))
                        for i in (0, reference.GetWidth()) for j in (0, reference.GetHeight())
                        for k in (0, reference.GetDepth())])
    lo, hi = corners.min(axis=0) - 60.0, corners.max(axis=0) + 60.0
    step = 8.0
    axes = [np.arange(lo[i], hi[i] + step, step) for i in range(3)]
    pts = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)  # (x, y, z, 3)
    centre = 0.5 * (lo + hi) + rng.uniform(-20.0, 20.0, 3)
    bump = np.exp(-np.sum((pts - centre) ** 2, axis=-1) / (2 * 70.0**2))
    field = bump[..., None] * rng.uniform(-1.0, 1.0, 3)
    field *= max_mm / np.linalg.norm(field, axis=-1).max()
    img = sitk.GetImageFromArray(np.transpose(field, (2, 1, 0, 3)).copy(), isVector=True)
    img.SetOrigin(tuple(lo))
    img.SetSpacing((step,) * 3)
    return sitk.DisplacementFieldTransform(img)


def _known_target(source: sitk.Image, angles: tuple[float, float, float], shift: np.ndarray,
                  max_def_mm: float, spacing: tuple[float, float, float], crop_z_mm: float,
                  seed: int = 0) -> tuple[sitk.Image, sitk.Transform]:
    """Target on another grid (identity direction, other spacing and z field of view)."""
    size = np.array(source.GetSize())
    centre = np.array(source.TransformContinuousIndexToPhysicalPoint(tuple((size - 1) / 2.0)))
    pose = sitk.AffineTransform(3)
    pose.SetMatrix(tuple((_rotation(*angles) @ np.diag([1.02, 0.98, 1.01])).ravel()))
    pose.SetCenter(tuple(centre))
    pose.SetTranslation(tuple(map(float, shift)))
    g = sitk.CompositeTransform([pose, _displacement(source, max_def_mm, seed)])
    corners = np.array([source.TransformIndexToPhysicalPoint((i, j, k))
                        for i in (0, int(size[0])) for j in (0, int(size[1]))
                        for k in (0, int(size[2]))])
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    lo[2] += crop_z_mm
    new_size = [int((hi[i] - lo[i]) / spacing[i]) for i in range(3)]
    target = sitk.Resample(source, new_size, g, sitk.sitkLinear, tuple(lo), spacing,
                           (1, 0, 0, 0, 1, 0, 0, 0, 1), -1000.0, sitk.sitkInt16)
    return target, g


def _invert(g: sitk.Transform, p: np.ndarray) -> np.ndarray:
    """Solve g(q) = p by Newton iterations with a finite-difference Jacobian."""
    q = np.asarray(p, dtype=float).copy()
    for _ in range(30):
        gq = np.array(g.TransformPoint(tuple(q)))
        if np.linalg.norm(gq - p) < 1e-5:
            break
        jac = np.column_stack([(np.array(g.TransformPoint(tuple(q + 0.5 * e))) - gq) / 0.5
                               for e in np.eye(3)])
        q = q - np.linalg.solve(jac, gq - p)
    return q


def _points_inside(source: sitk.Image) -> np.ndarray:
    """Source points in the lungs and soft tissue, well inside the field of view."""
    idx = [(30, 40, 24), (66, 50, 20), (48, 30, 28), (58, 62, 16), (36, 58, 30)]
    return np.array([source.TransformIndexToPhysicalPoint(i) for i in idx])


@pytest.fixture(scope="module")
def phantom() -> sitk.Image:
    return _phantom()


@pytest.fixture(scope="module")
def moved(phantom: sitk.Image) -> tuple[sitk.Image, sitk.Transform]:
    return _known_target(phantom, (0.06, -0.08, 0.12), np.array([12.0, -18.0, 9.0]), 5.0,
                         (1.6, 1.6, 2.2), crop_z_mm=12.0)


def test_backend_is_registered() -> None:
    backend = create_backend("registration", "classical", local_box_mm=50)
    assert isinstance(backend, ClassicalRegistration)
    assert backend.settings()["local_box_mm"] == 50.0
    with pytest.raises(InputError, match="local_box"):  # a typo is an error naming the key
        create_backend("registration", "classical", local_box=50)


def test_recovers_pose_and_deformation(phantom: sitk.Image, moved) -> None:
    target, g = moved
    points = _points_inside(phantom)
    truth = np.array([_invert(g, p) for p in points])
    assert np.linalg.norm(truth - points, axis=1).min() > 10.0  # the motion is not trivial
    mapper = ClassicalRegistration().register(phantom, target)
    mapped = mapper.map_points(points)
    tolerance = 1.5 * min(min(phantom.GetSpacing()), min(target.GetSpacing()))
    errors = np.linalg.norm(mapped - truth, axis=1)
    assert errors.max() < tolerance, errors


def test_local_refinement_beats_global(phantom: sitk.Image, moved) -> None:
    target, g = moved
    points = _points_inside(phantom)
    truth = np.array([_invert(g, p) for p in points])
    mapper = ClassicalRegistration().register(phantom, target)
    refined = np.linalg.norm(mapper.map_points(points) - truth, axis=1)
    coarse = np.linalg.norm(mapper.map_global(points) - truth, axis=1)
    assert refined.mean() < coarse.mean(), (refined, coarse)


def test_large_cranio_caudal_shift_and_cut_field_of_view(phantom: sitk.Image) -> None:
    """40 mm along z plus a 30 mm shorter scan: centroids alone would start 20 mm off."""
    target, g = _known_target(phantom, (0.03, 0.05, -0.1), np.array([0.0, 0.0, -40.0]), 4.0,
                              (1.6, 1.6, 2.2), crop_z_mm=30.0, seed=2)
    points = _points_inside(phantom)
    truth = np.array([_invert(g, p) for p in points])
    mapped = ClassicalRegistration().register(phantom, target).map_points(points)
    assert np.linalg.norm(mapped - truth, axis=1).max() < 1.5 * 1.6


def test_short_scan_against_long_scan(phantom: sitk.Image, moved) -> None:
    """A follow-up covering only part of the baseline's z range, in both directions."""
    target, g = moved
    slab = target[:, :, 10:45]  # about 77 mm of the ~130 mm target
    points = _points_inside(phantom)
    truth = np.array([_invert(g, p) for p in points])
    idx_z = np.array([slab.TransformPhysicalPointToContinuousIndex(tuple(t))[2] for t in truth])
    keep = (idx_z > 3) & (idx_z < slab.GetDepth() - 4)
    assert keep.sum() >= 2
    tolerance = 1.5 * 1.6
    forward = ClassicalRegistration().register(phantom, slab).map_points(points[keep])
    assert np.linalg.norm(forward - truth[keep], axis=1).max() < tolerance
    backward = ClassicalRegistration().register(slab, phantom).map_points(truth[keep])
    assert np.linalg.norm(backward - points[keep], axis=1).max() < tolerance


def test_identity_pair_maps_to_itself(phantom: sitk.Image) -> None:
    points = _points_inside(phantom)
    mapper = ClassicalRegistration().register(phantom, phantom)
    assert np.abs(mapper.map_points(points) - points).max() < 0.5


def test_deterministic_and_cached(phantom: sitk.Image, moved) -> None:
    target, _ = moved
    points = _points_inside(phantom)[:2]
    first = ClassicalRegistration().register(phantom, target)
    second = ClassicalRegistration().register(phantom, target)
    a = first.map_points(points)
    np.testing.assert_array_equal(a, second.map_points(points))
    start = time.perf_counter()
    np.testing.assert_array_equal(first.map_points(points[1]), a[1:])  # (3,) input, cached
    assert time.perf_counter() - start < 0.05


def test_point_outside_both_images_falls_back_to_global(phantom: sitk.Image, moved) -> None:
    target, _ = moved
    mapper = ClassicalRegistration().register(phantom, target)
    far = np.array([[900.0, -900.0, 900.0]])
    np.testing.assert_allclose(mapper.map_points(far), mapper.map_global(far))


def test_bad_input_names_the_field(phantom: sitk.Image) -> None:
    with pytest.raises(InputError, match="local_box_mm"):
        ClassicalRegistration(local_box_mm=-5)
    with pytest.raises(InputError, match="target"):
        ClassicalRegistration().register(phantom, None)  # type: ignore[arg-type]
    rgb = sitk.Image([8, 8, 8], sitk.sitkVectorFloat32, 3)
    with pytest.raises(InputError, match="source"):
        ClassicalRegistration().register(rgb, phantom)
    with pytest.raises(InputError, match="threads"):
        ClassicalRegistration(threads=-1)
    with pytest.raises(InputError, match="refine"):
        ClassicalRegistration(refine="maybe")
    assert ClassicalRegistration(local_box_mm="45", refine="false").local_box_mm == 45.0
    mapper = LocalRefinementMapper(phantom, phantom, sitk.AffineTransform(3))
    with pytest.raises(InputError, match="points_lps"):
        mapper.map_points(np.array([[np.nan, 0.0, 0.0]]))


@pytest.mark.lidc
@pytest.mark.skipif(not LIDC.is_dir(), reason="../shared/data/lidc is absent")
def test_lidc_nodule_tre_below_2mm() -> None:
    """Real chest CT (1.25 mm slices) moved, deformed and re-sliced at 2.5 mm."""
    source = sitk.ReadImage(str(LIDC / "LIDC-IDRI-0002_ct.nii.gz"))
    nodule = sitk.GetArrayFromImage(sitk.ReadImage(str(LIDC / "LIDC-IDRI-0002_consensus2.nii.gz")))
    labels, _ = ndimage.label(nodule > 0)
    largest = np.argmax(np.bincount(labels.ravel())[1:]) + 1
    centre_zyx = np.argwhere(labels == largest).mean(axis=0)
    centre = np.array(source.TransformContinuousIndexToPhysicalPoint(tuple(centre_zyx[::-1])))
    thick = sitk.RecursiveGaussian(sitk.Cast(source, sitk.sitkFloat32), sigma=1.25, direction=2)
    thick = sitk.Cast(thick, sitk.sitkInt16)
    thick.CopyInformation(source)
    target, g = _known_target(thick, (0.05, -0.1, 0.08), np.array([-15.0, 20.0, 12.0]), 7.0,
                              (0.75, 0.75, 2.5), crop_z_mm=20.0, seed=4)
    truth = _invert(g, centre)
    assert np.linalg.norm(truth - centre) > 15.0
    mapper = ClassicalRegistration().register(source, target)
    error = float(np.linalg.norm(mapper.map_points(centre[None])[0] - truth))
    assert error < 2.0, error


def test_half_thorax_field_of_view_against_full_one(phantom: sitk.Image, moved) -> None:
    """A target reconstructed around one lung only: its body centroid lies ~40 mm to the side.

    The global stage must still start on the right anatomy (an exhaustive translation search,
    not centroids), in both directions."""
    target, g = moved
    half = target[: target.GetWidth() * 11 // 20, :, :]
    points = _points_inside(phantom)
    truth = np.array([_invert(g, p) for p in points])
    idx = np.array([half.TransformPhysicalPointToContinuousIndex(tuple(t)) for t in truth])
    keep = np.all((idx > 4) & (idx < np.array(half.GetSize()) - 5), axis=1)
    assert keep.sum() >= 2
    forward = ClassicalRegistration(refine=False).register(phantom, half).map_points(points[keep])
    assert np.linalg.norm(forward - truth[keep], axis=1).max() < 4.0
    backward = ClassicalRegistration(refine=False).register(half, phantom).map_points(truth[keep])
    assert np.linalg.norm(backward - points[keep], axis=1).max() < 4.0


def test_translation_search_finds_a_known_shift(phantom: sitk.Image) -> None:
    from LinGuinELib.registration.classical_global import OUTSIDE, body_mask, prepare
    from LinGuinELib.registration.classical_search import best_translation

    shift = np.array([-36.0, 20.0, -45.0])
    moved = sitk.Image(phantom)
    moved.SetOrigin(tuple(np.array(phantom.GetOrigin()) + shift))
    small, valid, other, _ = prepare(phantom, moved, 4.0)
    found, score = best_translation(small, body_mask(small, valid), other, None, OUTSIDE)
    assert np.linalg.norm(found - shift) < 4.0 and score > 0.9, (found, score)


def test_translation_search_prefers_full_overlap_on_a_chest_alike_along_z(tmp_path: Path) -> None:
    """A chest whose slices look alike along z (the kinds generator's, seed 4): a shift leaving half
    the scan outside the overlap correlated better (0.86) than the true one (0.76), so the search
    jumped ~90 mm. A correlation measured on fewer voxels must not beat one measured on all."""
    from LinGuinELib.registration.classical_global import global_affine
    from LinGuinELib.synthetic import LesionKind, make_kind_study

    kinds = [(6, "chest_wall", "solid"), (9, "vessel", "solid"), (16, "isolated", "ground_glass"),
             (22, "fissure", "part_solid")]
    manifest = make_kind_study(tmp_path / "k", [LesionKind(float(d), a, c, slice_mm=2.5) for d, a, c in kinds],
                               n_scans=3, seed=4, pixel_mm=2.0)
    folder = manifest.parent
    source, target = (sitk.ReadImage(str(folder / "scans" / f"{s}.nii.gz")) for s in ("T0", "T2"))
    before, after = (sitk.LabelShapeStatisticsImageFilter() for _ in range(2))
    before.Execute(sitk.ReadImage(str(folder / "truth" / "T0.nii.gz")))
    after.Execute(sitk.ReadImage(str(folder / "truth" / "T2.nii.gz")))
    affine = global_affine(source, target)
    errors = [np.linalg.norm(np.array(affine.TransformPoint(before.GetCentroid(k))) - after.GetCentroid(k))
              for k in before.GetLabels() if k in after.GetLabels()]
    assert len(errors) >= 3 and max(errors) < 10.0, errors


def counting_mapper(source: sitk.Image, target: sitk.Image
                    ) -> tuple[LocalRefinementMapper, LocalRefinementMapper, list[bool]]:
    """(the pair's plain registration, a local mapper over it that records each refinement, the
    record): True for a lesion's own estimate, False for its surroundings' one."""
    refined: list[bool] = []

    class Counting(LocalRefinementMapper):
        def _refine(self, point, coarse, changing=None):
            refined.append(changing is None)
            return super()._refine(point, coarse, changing)

    plain = ClassicalRegistration().register(source, target)
    return plain, Counting(source, target, plain.global_transform, lung_transform=plain.lung_transform), refined


def test_a_lesion_that_has_gone_is_placed_by_its_surroundings(tmp_path: Path) -> None:
    """A 35 mm mediastinal mass present on T0 and gone on T1 (the kinds generator, seed 3). Boxes
    that matched the mass itself pulled its centre 17 mm, onto the mediastinum (their two fine
    starts parting, so the estimate is unsettled and the second one is made); placed by what is
    around it (``map_lesion`` with its mask), the centre lands where it was."""
    import json

    from LinGuinELib.synthetic import LesionKind, make_kind_study

    folder = make_kind_study(tmp_path / "k", [LesionKind(35.0, "mediastinum", "solid", slice_mm=2.5)],
                             n_scans=2, seed=3, growth=[1, 0], pixel_mm=1.2).parent
    source, target = (sitk.ReadImage(str(folder / "scans" / f"{s}.nii.gz")) for s in ("T0", "T1"))
    lesion = sitk.ReadImage(str(folder / "truth" / "T0.nii.gz")) == 1
    centres = json.loads((folder / "truth.json").read_text())["lesions"][0]["centre_lps"]
    plain, mapper, refined = counting_mapper(source, target)
    mapped, confidence = mapper.map_lesion(np.array(centres[0]), lesion)
    assert np.linalg.norm(mapped - centres[1]) < 3.0 and confidence > 0.5, (mapped, centres[1], confidence)
    assert refined == [True, False]  # its own estimate, then its surroundings'
    own, own_confidence = plain.map_points(np.array(centres[0]))[0], plain.confidence(np.array(centres[0]))[0]
    assert np.linalg.norm(own - centres[1]) > 10.0 and own_confidence < 0.5, (own, own_confidence)


def test_a_source_in_several_pairs_is_prepared_once(phantom: sitk.Image, moved) -> None:
    """Direct mode registers the prompt scan with every other scan: its downsampled copy and lung
    masks are shared by those pairs (same objects), and each mapping is what a lone pair gives."""
    target, _ = moved
    backend = ClassicalRegistration()
    first, second = backend.register(phantom, target), backend.register(phantom, phantom)
    first.prepare(), second.prepare()
    assert first._lung_masks()[0] is second._lung_masks()[0]
    point = _points_inside(phantom)[:1]
    np.testing.assert_array_equal(first.map_points(point), ClassicalRegistration().register(phantom, target)
                                  .map_points(point))


def test_what_is_kept_per_scan_is_computed_once_and_goes_with_the_scan() -> None:
    import gc
    import threading

    from LinGuinELib.registration.per_image import PerImage

    memo, calls = PerImage(), []

    def slow() -> int:
        calls.append(1)
        time.sleep(0.05)
        return len(calls)

    scan = sitk.Image(4, 4, 4, sitk.sitkInt16)
    threads = [threading.Thread(target=memo.get, args=(scan, "x", slow)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert memo.get(scan, "x", slow) == 1 and len(calls) == 1  # four threads at once, one computation
    assert memo.get(sitk.Image(4, 4, 4, sitk.sitkInt16), "x", slow) == 2  # an equal scan is another scan
    del scan
    gc.collect()
    memo.get(sitk.Image(2, 2, 2, sitk.sitkInt16), "y", slow)
    assert len(memo._entries) == 1  # the freed scans' values are gone
