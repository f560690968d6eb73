"""Classical (no weights) registration: a coarse global affine plus lazy local refinement.

LinGuinE only moves lesion centres, so a dense whole-volume deformable registration is not
needed. ``register`` estimates one affine on heavily downsampled images (a few seconds); the
returned mapper refines that estimate in a box of a few centimetres around each point it is
asked about, at the scans' native resolution, and caches the answer. Breathing and pose
changes are smooth, so an affine that is only asked to be right inside a small box absorbs
the local deformation well.

Direction: every transform here is estimated with fixed = source and moving = target, so it
maps source physical points (LPS mm) to target physical points, as ``map_points`` needs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from ..errors import InputError
from ..registry import register_registration
from .base import PointMapper, Registration

log = logging.getLogger(__name__)

HU_RANGE = (-1000.0, 1000.0)  # clamp: metal, contrast and air outside the body add nothing
BODY_HU = -500.0  # soft tissue vs air; lungs become body after per-slice hole filling
GLOBAL_SAMPLING = 0.1  # fraction of voxels sampled by the metric
LOCAL_SAMPLING = 0.1
OUTSIDE = -1.0e4  # value of voxels resampled from outside an image


def _as_float_clamped(image: sitk.Image) -> sitk.Image:
    """Float32 copy clamped to HU_RANGE (keeps geometry)."""
    img = sitk.Cast(image, sitk.sitkFloat32)
    return sitk.Clamp(img, sitk.sitkFloat32, HU_RANGE[0], HU_RANGE[1])


def _downsample(image: sitk.Image, spacing_mm: float) -> sitk.Image:
    """Block-average (BinShrink) to roughly ``spacing_mm``: fast and anti-aliased."""
    factors = [max(1, int(round(spacing_mm / s))) for s in image.GetSpacing()]
    small = sitk.BinShrink(image, factors) if max(factors) > 1 else image
    return _as_float_clamped(small)


def _body_mask(small: sitk.Image) -> sitk.Image:
    """Largest connected component above BODY_HU with per-slice holes (lungs) filled.

    The mask keeps the registration metric on the patient (not the table, not the air
    around it), which matters because the table does not follow the patient's pose.
    """
    arr = sitk.GetArrayViewFromImage(small) > BODY_HU  # (z, y, x)
    labels, count = ndimage.label(arr)
    if count == 0:
        mask = np.ones(arr.shape, dtype=np.uint8)
    else:
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        body = labels == int(np.argmax(sizes))
        for z in range(body.shape[0]):
            body[z] = ndimage.binary_fill_holes(body[z])
        body = ndimage.binary_dilation(body, iterations=2)
        mask = body.astype(np.uint8)
    out = sitk.GetImageFromArray(mask)
    out.CopyInformation(small)
    return out


def _normalized_mi(a: np.ndarray, b: np.ndarray, bins: int = 32) -> float:
    """(H(a) + H(b)) / H(a, b): unlike plain MI it does not reward overlap size."""
    joint, _, _ = np.histogram2d(a, b, bins=bins, range=[HU_RANGE, HU_RANGE])
    p = joint[joint > 0] / joint.sum()
    pa = joint.sum(axis=1)
    pb = joint.sum(axis=0)
    pa, pb = pa[pa > 0] / joint.sum(), pb[pb > 0] / joint.sum()
    return float((np.sum(pa * np.log(pa)) + np.sum(pb * np.log(pb))) / np.sum(p * np.log(p)))


def _mask_centroid(mask: sitk.Image) -> np.ndarray:
    """Physical (LPS mm) centroid of a binary mask."""
    idx_zyx = np.argwhere(sitk.GetArrayViewFromImage(mask) > 0)
    if len(idx_zyx) == 0:
        size = np.array(mask.GetSize(), dtype=float)
        return np.array(mask.TransformContinuousIndexToPhysicalPoint(tuple((size - 1) / 2)))
    mean_xyz = idx_zyx.mean(axis=0)[::-1]
    return np.array(mask.TransformContinuousIndexToPhysicalPoint(tuple(map(float, mean_xyz))))


@contextmanager
def _threads(count: int) -> Iterator[None]:
    """Run with SimpleITK's default thread count set to ``count``, then restore it.

    ``ImageRegistrationMethod.SetNumberOfThreads`` does not reach the metric's own threader:
    its per-thread histograms are summed in varying order and results wobble by ~1e-6 mm
    (~0.1 mm after the optimiser amplifies it). One thread makes runs bit-for-bit identical.
    """
    previous = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(count)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(previous)


def _method(
    seed: int,
    sampling: float,
    iterations: int,
    max_step_mm: float,
    shrink: list[int],
    sigmas_mm: list[float],
    fixed_mask: sitk.Image | None = None,
    threads: int = 1,
) -> sitk.ImageRegistrationMethod:
    """A Mattes-MI registration method with seeded random sampling.

    With one thread the result is bit-for-bit reproducible; with more, the per-thread
    histogram sums are added in varying order and results wobble by ~0.1 mm.
    """
    reg = sitk.ImageRegistrationMethod()
    reg.SetNumberOfThreads(threads)
    reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(sampling, seed)
    if fixed_mask is not None:
        reg.SetMetricFixedMask(fixed_mask)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(
        learningRate=1.0,
        minStep=1e-3,
        numberOfIterations=iterations,
        relaxationFactor=0.5,
        gradientMagnitudeTolerance=1e-6,
        estimateLearningRate=reg.EachIteration,
        maximumStepSizeInPhysicalUnits=max_step_mm,
    )
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel(shrink)
    reg.SetSmoothingSigmasPerLevel(sigmas_mm)
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    return reg


def _affine_from(transform: sitk.Transform, center: np.ndarray) -> sitk.AffineTransform:
    """The affine part of a rigid/affine transform, re-expressed about ``center``.

    Optimising an affine about the point of interest decouples translation from the
    linear part there, which makes local refinement well conditioned.
    """
    generic = sitk.AffineTransform(3)
    if isinstance(transform, (sitk.AffineTransform, sitk.Euler3DTransform)):
        matrix = np.array(transform.GetMatrix()).reshape(3, 3)
        c0 = np.array(transform.GetCenter())
        t0 = np.array(transform.GetTranslation())
    else:
        raise TypeError(f"unsupported transform {type(transform).__name__}")
    offset = t0 + c0 - matrix @ c0  # y = M x + offset
    generic.SetMatrix(tuple(matrix.ravel()))
    generic.SetCenter(tuple(map(float, center)))
    generic.SetTranslation(tuple(map(float, offset + matrix @ center - center)))
    return generic


def global_affine(
    source: sitk.Image,
    target: sitk.Image,
    spacing_mm: float = 4.0,
    seed: int = 20240611,
    z_search_mm: float = 80.0,
    threads: int = 1,
) -> sitk.AffineTransform:
    """Affine source -> target estimated on ~``spacing_mm`` images (rigid, then affine).

    Initialised by the body-mask centroids, then by the best of a few cranio-caudal shifts:
    scans of one patient often differ in field of view along z, which biases centroids there.
    """
    with _threads(threads):
        return _global_affine(source, target, spacing_mm, seed, z_search_mm, threads)


def _global_affine(source: sitk.Image, target: sitk.Image, spacing_mm: float, seed: int,
                   z_search_mm: float, threads: int) -> sitk.AffineTransform:
    src = _downsample(source, spacing_mm)
    tgt = _downsample(target, spacing_mm)
    for name, small in (("source", src), ("target", tgt)):
        if float(np.percentile(sitk.GetArrayViewFromImage(small), 5)) > BODY_HU:
            log.warning("%s has almost no voxels below %.0f: is it CT in Hounsfield units? "
                        "Registration assumes HU (air -1000).", name, BODY_HU)
    src_mask = _body_mask(src)
    tgt_mask = _body_mask(tgt)
    c_src = _mask_centroid(src_mask)
    c_tgt = _mask_centroid(tgt_mask)

    rigid = sitk.Euler3DTransform()
    rigid.SetCenter(tuple(map(float, c_src)))
    base_shift = c_tgt - c_src

    # Scans of one patient often differ in z field of view, which biases the centroids along
    # z: try a range of cranio-caudal shifts on images twice as coarse, keep the best.
    src2, tgt2 = sitk.BinShrink(src, [2, 2, 2]), sitk.BinShrink(tgt, [2, 2, 2])
    mask2 = sitk.GetArrayViewFromImage(sitk.BinShrink(src_mask, [2, 2, 2])) > 0
    fixed_values = sitk.GetArrayViewFromImage(src2)[mask2]
    step = 2.0 * spacing_mm
    # A scan much longer than the other (whole body vs chest) moves its centroid far away.
    z_search_mm += 0.5 * abs(_z_extent(source) - _z_extent(target))
    n_steps = int(z_search_mm // step)
    candidates = []  # (shift, overlap fraction, NMI)
    for k in range(-n_steps, n_steps + 1):
        shift = base_shift + np.array([0.0, 0.0, k * step])
        rigid.SetTranslation(tuple(map(float, shift)))
        warped = sitk.Resample(tgt2, src2, rigid, sitk.sitkLinear, OUTSIDE)
        moving_values = sitk.GetArrayViewFromImage(warped)[mask2]
        inside = moving_values > OUTSIDE / 2
        if inside.sum() < 100:
            continue
        nmi = _normalized_mi(fixed_values[inside], moving_values[inside])
        candidates.append((shift, float(inside.mean()), nmi))
    # Judge only shifts with a fair share of the best achievable overlap (a short scan
    # never covers all of a long one).
    best_overlap = max((c[1] for c in candidates), default=0.0)
    fair = [c for c in candidates if c[1] >= 0.5 * best_overlap]
    best_shift = max(fair, key=lambda c: c[2])[0] if fair else base_shift
    rigid.SetTranslation(tuple(map(float, best_shift)))
    log.debug("global init: centroid shift %s, z search chose %+.0f mm", base_shift.round(1),
              best_shift[2] - base_shift[2])

    reg = _method(seed, GLOBAL_SAMPLING, 100, 2.0 * spacing_mm, [2, 1], [spacing_mm, 0.0], src_mask,
                  threads)
    reg.SetInitialTransform(rigid, inPlace=True)
    reg.Execute(src, tgt)
    log.debug("global rigid: %s iterations, MI %.4f", reg.GetOptimizerIteration(),
              reg.GetMetricValue())

    affine = _affine_from(rigid, c_src)
    reg = _method(seed, GLOBAL_SAMPLING, 100, spacing_mm, [2, 1], [spacing_mm, 0.0], src_mask,
                  threads)
    reg.SetInitialTransform(affine, inPlace=True)
    reg.Execute(src, tgt)
    log.debug("global affine: %s iterations, MI %.4f", reg.GetOptimizerIteration(),
              reg.GetMetricValue())
    return affine


def _z_extent(image: sitk.Image) -> float:
    """Length (mm) of the image's physical bounding box along z."""
    size = image.GetSize()
    zs = [image.TransformIndexToPhysicalPoint((i, j, k))[2]
          for i in (0, size[0] - 1) for j in (0, size[1] - 1) for k in (0, size[2] - 1)]
    return float(max(zs) - min(zs))


def _crop(image: sitk.Image, center: np.ndarray, half_mm: float) -> sitk.Image | None:
    """Native-resolution crop of the voxels within ``half_mm`` of ``center`` (per axis)."""
    direction = np.array(image.GetDirection()).reshape(3, 3)
    spacing = np.array(image.GetSpacing())
    origin = np.array(image.GetOrigin())
    center_ijk = np.linalg.solve(direction, center - origin) / spacing
    half_vox = half_mm / spacing
    size = np.array(image.GetSize())
    lo = np.clip(np.floor(center_ijk - half_vox), 0, size).astype(int)
    hi = np.clip(np.ceil(center_ijk + half_vox) + 1, 0, size).astype(int)
    extent = hi - lo
    if np.any(extent < 4):
        return None
    return sitk.RegionOfInterest(image, [int(e) for e in extent], [int(v) for v in lo])


class LocalRefinementMapper(PointMapper):
    """Global affine, refined lazily by a local affine in a box around each asked point."""

    def __init__(
        self,
        source: sitk.Image,
        target: sitk.Image,
        global_transform: sitk.AffineTransform,
        refine: bool = True,
        local_box_mm: float = 60.0,
        max_correction_mm: float = 25.0,
        seed: int = 20240611,
        threads: int = 1,
    ) -> None:
        self.source = source
        self.threads = threads
        self.target = target
        self.global_transform = global_transform
        self.refine = refine
        self.local_box_mm = local_box_mm
        self.max_correction_mm = max_correction_mm
        self.seed = seed
        self._cache: dict[tuple[float, float, float], np.ndarray] = {}

    def map_points(self, points_lps: np.ndarray) -> np.ndarray:
        pts = np.asarray(points_lps, dtype=float).reshape(-1, 3)
        if not np.all(np.isfinite(pts)):
            raise InputError("points_lps: every coordinate must be a finite number (LPS mm)")
        return np.array([self._map_one(p) for p in pts]).reshape(-1, 3)

    def map_global(self, points_lps: np.ndarray) -> np.ndarray:
        """Points through the global affine only (no local refinement)."""
        pts = np.asarray(points_lps, dtype=float).reshape(-1, 3)
        return np.array([self.global_transform.TransformPoint(tuple(map(float, p)))
                         for p in pts]).reshape(-1, 3)

    def _map_one(self, point: np.ndarray) -> np.ndarray:
        key = tuple(round(float(v), 3) for v in point)
        if key not in self._cache:
            coarse = np.array(self.global_transform.TransformPoint(tuple(map(float, point))))
            if self.refine:
                with _threads(self.threads):
                    self._cache[key] = self._refine(point, coarse)
            else:
                self._cache[key] = coarse
        return self._cache[key].copy()

    def _refine(self, point: np.ndarray, coarse: np.ndarray) -> np.ndarray:
        """Local affine about ``point``; falls back to ``coarse`` if it fails or runs away."""
        start = time.perf_counter()
        transform: sitk.AffineTransform | None = _affine_from(self.global_transform, point)
        for box_mm, shrink in self._stages():
            transform = self._local_affine(point, transform, box_mm, shrink)
            if transform is None:
                return coarse
        refined = np.array(transform.TransformPoint(tuple(map(float, point))))
        correction = float(np.linalg.norm(refined - coarse))
        log.debug("local refinement at %s: moved %.2f mm in %.2f s", point.round(1), correction,
                  time.perf_counter() - start)
        if correction > self.max_correction_mm:
            log.warning("local refinement moved %.1f mm (> %.1f), global estimate kept",
                        correction, self.max_correction_mm)
            return coarse
        return refined

    def _stages(self) -> list[tuple[float, list[int]]]:
        """(box side in mm, shrink factors) of each local stage, coarse to fine.

        Measured on LIDC cases and rejected: a second, smaller box (halves the median error
        but sometimes jumps to a neighbouring vessel: 4-6 mm errors); masking the box to
        the lung (helps lung points when the lungs slide along the chest wall, but moved
        two large nodules by 5-6 mm); excluding a ball around the point (no effect).
        """
        return [(self.local_box_mm, [2, 1])]

    def _local_affine(self, point: np.ndarray, initial: sitk.AffineTransform, box_mm: float,
                      shrink: list[int]) -> sitk.AffineTransform | None:
        """Affine optimised in a ``box_mm`` box around ``point`` (native resolution)."""
        half = box_mm / 2.0
        guess = np.array(initial.TransformPoint(tuple(map(float, point))))
        fixed = _crop(self.source, point, half)
        moving = _crop(self.target, guess, half + self.max_correction_mm)
        if fixed is None or moving is None:
            log.debug("point %s: local box outside an image, global estimate kept", point)
            return None
        fixed = _as_float_clamped(fixed)
        moving = _as_float_clamped(moving)
        if float(np.std(sitk.GetArrayViewFromImage(fixed))) < 1.0:
            return None  # featureless box (air, padding): nothing to align
        local = sitk.AffineTransform(initial)
        sigmas = [float(f > 1) for f in shrink]
        reg = _method(self.seed, LOCAL_SAMPLING, 60, 2.0, shrink, sigmas, None, self.threads)
        reg.SetInitialTransform(local, inPlace=True)
        try:
            reg.Execute(fixed, moving)
        except RuntimeError as exc:  # e.g. too few samples map inside the moving crop
            log.debug("local refinement failed at %s: %s", point, exc)
            return None
        return local


def _positive_mm(field: str, value: Any) -> float:
    """A positive, finite length in mm (numbers or numeric strings, as from a GUI)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if isinstance(value, bool) or not np.isfinite(number) or number <= 0:
        raise InputError(f"{field} must be a positive number of mm, got {value!r}")
    return number


@register_registration("classical")
class ClassicalRegistration(Registration):
    """Intensity-based registration with SimpleITK; needs no weights and no GPU.

    Options:
        global_spacing_mm: voxel size of the global affine stage (default 4.0; smaller is
            slower and rarely better, as the local stage does the fine work).
        local_box_mm: side of the box refined around each point (default 60.0). It must hold
            enough structure (vessels, pleura, ribs) to pin an affine down.
        refine: run the local stage (default True); False maps through the global affine.
        max_correction_mm: a local result further than this from the global estimate is
            treated as a failure and the global estimate is kept (default 25.0).
        seed: seed of the metric's random sampling, so that runs are reproducible.
        threads: threads per registration (default 1: bit-for-bit reproducible results;
            0 uses SimpleITK's global default, which may be faster on an idle multi-core
            machine, but results then vary by ~0.1 mm between runs). While a registration
            runs, SimpleITK's global default thread count is set to this value.
    """

    def __init__(
        self,
        device: str = "cpu",
        global_spacing_mm: float = 4.0,
        local_box_mm: float = 60.0,
        refine: bool = True,
        max_correction_mm: float = 25.0,
        seed: int = 20240611,
        threads: int = 1,
        **options: Any,
    ) -> None:
        global_spacing_mm = _positive_mm("global_spacing_mm", global_spacing_mm)
        local_box_mm = _positive_mm("local_box_mm", local_box_mm)
        max_correction_mm = _positive_mm("max_correction_mm", max_correction_mm)
        if isinstance(refine, str) and refine.lower() in ("true", "false", "1", "0"):
            refine = refine.lower() in ("true", "1")
        if not isinstance(refine, bool):
            raise InputError(f"refine must be true or false, got {refine!r}")
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
            raise InputError(f"threads must be a whole number >= 0, got {threads!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise InputError(f"seed must be a whole number >= 0, got {seed!r}")
        if options:
            log.warning("classical registration ignores unknown option(s): %s",
                        ", ".join(sorted(options)))
        super().__init__(device=device, global_spacing_mm=global_spacing_mm,
                         local_box_mm=local_box_mm, refine=refine,
                         max_correction_mm=max_correction_mm, seed=seed, threads=threads,
                         **options)
        self.global_spacing_mm = global_spacing_mm
        self.local_box_mm = local_box_mm
        self.refine = refine
        self.max_correction_mm = max_correction_mm
        self.seed = seed
        self.threads = threads or sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()

    def register(self, source: sitk.Image, target: sitk.Image) -> LocalRefinementMapper:
        for field, image in (("source", source), ("target", target)):
            if not isinstance(image, sitk.Image) or image.GetDimension() != 3:
                raise InputError(f"{field} must be a 3D SimpleITK image")
            if image.GetNumberOfComponentsPerPixel() != 1:
                raise InputError(f"{field} must be a scalar (grey-level CT) image")
        start = time.perf_counter()
        transform = global_affine(source, target, self.global_spacing_mm, self.seed,
                                  threads=self.threads)
        log.info("classical registration: global affine in %.1f s", time.perf_counter() - start)
        return LocalRefinementMapper(source, target, transform, refine=self.refine,
                                     local_box_mm=self.local_box_mm,
                                     max_correction_mm=self.max_correction_mm, seed=self.seed,
                                     threads=self.threads)
