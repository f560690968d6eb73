"""Global stage of the classical registration, and image helpers shared with the local stage.

Determinism: every metric here is a normalised correlation evaluated at *all* voxels of a
fixed-image lattice (no random sampling, so no seed), and ITK's correlation metric sums its
per-work-unit partial results in a fixed order (Mattes MI does not: its joint histogram is
accumulated across threads in varying order). The number of work units is SimpleITK's
process-wide default thread count (``SetNumberOfThreads`` of the method does not reach the
metric), so ``pinned_threads`` holds that global at the backend's ``threads`` while any classical
registration runs: same inputs and same ``threads`` give the same mapping bit for bit, also when
pairs are registered in parallel threads of one process.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from ..voxels import voxel_copy, voxels
from .classical_search import best_translation

log = logging.getLogger(__name__)

HU_RANGE = (-1000.0, 1000.0)  # clamp: metal, contrast and air outside the body add nothing
BODY_HU = -500.0  # soft tissue vs air; lungs become body after per-slice hole filling
LUNG_HU = -400.0  # aerated lung vs soft tissue
PADDING_HU = -1500.0  # below air: values a scanner writes outside its reconstruction circle
OUTSIDE = -1.0e4  # value of voxels resampled from outside an image
ITERATIONS = 50  # per level of each global registration (100 left the breathing cases' global errors as they were)


_pin_lock = threading.Lock()
_pin_count = 0
_pin_saved = 0


@contextmanager
def pinned_threads(count: int) -> Iterator[None]:
    """SimpleITK's default thread count held at ``count`` while any classical registration runs.

    Reference-counted: concurrent registrations (threads of one process) keep it set until the
    last one ends, so none restores it under another; concurrent ones asking for another count
    get the count of the first (all use the backend default, 1, unless told otherwise).
    """
    global _pin_count, _pin_saved
    with _pin_lock:
        if _pin_count == 0:
            _pin_saved = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
            sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(count)
        _pin_count += 1
    try:
        yield
    finally:
        with _pin_lock:
            _pin_count -= 1
            if _pin_count == 0:
                sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(_pin_saved)


def as_float_clamped(image: sitk.Image) -> sitk.Image:
    """Float32 copy clamped to HU_RANGE (keeps geometry)."""
    img = sitk.Cast(image, sitk.sitkFloat32)
    return sitk.Clamp(img, sitk.sitkFloat32, HU_RANGE[0], HU_RANGE[1])


def shrink_factors(image: sitk.Image, spacing_mm: float) -> list[int]:
    return [max(1, int(round(spacing_mm / s))) for s in image.GetSpacing()]


def downsample(image: sitk.Image, spacing_mm: float) -> sitk.Image:
    """Block-average (BinShrink) to roughly ``spacing_mm``: fast and anti-aliased."""
    factors = shrink_factors(image, spacing_mm)
    small = sitk.BinShrink(image, factors) if max(factors) > 1 else image
    return as_float_clamped(small)


def valid_mask(image: sitk.Image, factors: list[int]) -> sitk.Image | None:
    """Voxels (after BinShrink by ``factors``) holding no padding; None when nothing is padded."""
    if float(voxels(image).min()) >= PADDING_HU:  # numpy's min: 20x ITK's filter's speed
        return None
    padded = sitk.Cast(image < PADDING_HU, sitk.sitkFloat32)
    small = sitk.BinShrink(padded, factors) if max(factors) > 1 else padded
    return sitk.Cast(small < 0.01, sitk.sitkUInt8)


def warn_field_of_view(name: str, image: sitk.Image, small: sitk.Image, valid: sitk.Image | None) -> None:
    """Warn when a scan is padded outside its reconstruction circle or cuts through the body."""
    arr = voxels(image)
    step = max(1, arr.shape[1] // 128)
    values = arr[:, ::step, ::step]
    padded = values < PADDING_HU
    if padded.mean() > 0.01:
        log.warning("%s: %.0f%% of the voxels are padding (%d) outside the reconstructed field of view; "
                    "registration uses the reconstructed region only, points outside it cannot be mapped",
                    name, 100 * padded.mean(), int(values[padded].min()))
    body = voxels(small) > BODY_HU
    inside = np.ones(body.shape, bool) if valid is None else voxels(valid) > 0
    edge = inside & ~ndimage.binary_erosion(inside, np.ones((1, 3, 3), bool), border_value=0)
    edge[[0, -1]] = False  # the first and last slices always cut the body
    if edge.sum() and (body & edge).sum() / edge.sum() > 0.25:
        log.warning("%s: the field of view cuts through the body (%.0f%% of its in-plane border is tissue): "
                    "a partial thorax; points near or beyond its edge are mapped with less support",
                    name, 100 * (body & edge).sum() / edge.sum())


def body_mask(small: sitk.Image, valid: sitk.Image | None = None) -> sitk.Image:
    """Largest connected component above BODY_HU with per-slice holes (lungs) filled.

    The mask keeps the registration metric on the patient (not the table, not the air
    around it, not padding), which matters because the table does not follow the patient.
    """
    arr = voxels(small) > BODY_HU  # (z, y, x)
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
    if valid is not None:
        mask &= voxels(valid).astype(np.uint8)
    out = sitk.GetImageFromArray(mask)
    out.CopyInformation(small)
    return out


def lung_mask(image: sitk.Image, spacing_mm: float = 2.0) -> sitk.Image:
    """Lungs (aerated parenchyma closed over vessels and nodules) on a ~``spacing_mm`` grid.

    Air inside the body not connected to the air around it, components over 50 mL, closed
    and hole-filled per slice, then grown by one voxel so the pleural surface itself counts.
    """
    return lung_mask_of(downsample(image, spacing_mm))


def lung_mask_of(small: sitk.Image, valid: sitk.Image | None = None) -> sitk.Image:
    """``lung_mask`` of an already downsampled, clamped image."""
    # body_mask is grown by two voxels: shrink it back past the skin, or the ring of outside
    # air around the patient would count as lung.
    body = ndimage.binary_erosion(voxel_copy(body_mask(small, valid)) > 0, iterations=3)
    arr = voxels(small)
    labels, count = ndimage.label(body & (arr < LUNG_HU))
    voxel_ml = float(np.prod(small.GetSpacing())) / 1000.0
    lungs = np.zeros(arr.shape, bool)
    if count:
        keep = np.bincount(labels.ravel()) * voxel_ml > 50.0
        keep[0] = False
        lungs = keep[labels]
        lungs = ndimage.binary_closing(lungs, np.ones((3, 3, 3), bool), iterations=2)
        lungs = np.stack([ndimage.binary_fill_holes(s) for s in lungs])
        lungs = ndimage.binary_dilation(lungs)
    out = sitk.GetImageFromArray(lungs.astype(np.uint8))
    out.CopyInformation(small)
    return out


def mask_centroid(mask: sitk.Image) -> np.ndarray:
    """Physical (LPS mm) centroid of a binary mask."""
    idx_zyx = np.argwhere(voxels(mask) > 0)
    if len(idx_zyx) == 0:
        size = np.array(mask.GetSize(), dtype=float)
        return np.array(mask.TransformContinuousIndexToPhysicalPoint(tuple((size - 1) / 2)))
    mean_xyz = idx_zyx.mean(axis=0)[::-1]
    return np.array(mask.TransformContinuousIndexToPhysicalPoint(tuple(map(float, mean_xyz))))


def method(iterations: int, max_step_mm: float, shrink: list[int], sigmas_mm: list[float],
           threads: int, fixed_mask: sitk.Image | None = None,
           moving_mask: sitk.Image | None = None) -> sitk.ImageRegistrationMethod:
    """Normalised-correlation registration over every fixed voxel (deterministic, no seed)."""
    reg = sitk.ImageRegistrationMethod()
    reg.SetNumberOfThreads(threads)
    reg.SetMetricAsCorrelation()
    reg.SetMetricSamplingStrategy(reg.NONE)
    if fixed_mask is not None:
        reg.SetMetricFixedMask(fixed_mask)
    if moving_mask is not None:
        reg.SetMetricMovingMask(moving_mask)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(
        learningRate=1.0, minStep=1e-3, numberOfIterations=iterations, relaxationFactor=0.5,
        gradientMagnitudeTolerance=1e-6, estimateLearningRate=reg.EachIteration,
        maximumStepSizeInPhysicalUnits=max_step_mm)
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel(shrink)
    reg.SetSmoothingSigmasPerLevel(sigmas_mm)
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    return reg


def affine_from(transform: sitk.Transform, center: np.ndarray) -> sitk.AffineTransform:
    """The affine part of a rigid/affine transform, re-expressed about ``center``.

    Optimising an affine about the point of interest decouples translation from the
    linear part there, which makes local refinement well conditioned.
    """
    if not isinstance(transform, (sitk.AffineTransform, sitk.Euler3DTransform)):
        raise TypeError(f"unsupported transform {type(transform).__name__}")
    matrix = np.array(transform.GetMatrix()).reshape(3, 3)
    c0 = np.array(transform.GetCenter())
    t0 = np.array(transform.GetTranslation())
    offset = t0 + c0 - matrix @ c0  # y = M x + offset
    generic = sitk.AffineTransform(3)
    generic.SetMatrix(tuple(matrix.ravel()))
    generic.SetCenter(tuple(map(float, center)))
    generic.SetTranslation(tuple(map(float, offset + matrix @ center - center)))
    return generic


def lattice(image: sitk.Image, step: int) -> sitk.Image:
    """Every ``step``-th voxel along each axis (exact voxel values, geometry kept)."""
    return image[::step, ::step, ::step] if step > 1 else image


Prepared = tuple  # (source small, source valid, target small, target valid) from ``prepare``


def small_of(image: sitk.Image, spacing_mm: float) -> tuple[sitk.Image, sitk.Image | None]:
    """The image block-averaged to ~``spacing_mm`` and its padding-free mask (None: no padding)."""
    return downsample(image, spacing_mm), valid_mask(image, shrink_factors(image, spacing_mm))


def prepare(source: sitk.Image, target: sitk.Image, spacing_mm: float) -> Prepared:
    """``small_of`` both images."""
    return small_of(source, spacing_mm) + small_of(target, spacing_mm)


def check_scan(name: str, image: sitk.Image, small: sitk.Image, valid: sitk.Image | None) -> None:
    """Warn when a scan does not look like CT in HU, is padded or cuts through the body."""
    values = voxels(small)
    if valid is not None:
        values = values[voxels(valid) > 0]
    if values.size and float(np.percentile(values, 5)) > BODY_HU:
        log.warning("%s has almost no voxels below %.0f: is it CT in Hounsfield units? "
                    "Registration assumes HU (air -1000).", name, BODY_HU)
    warn_field_of_view(name, image, small, valid)


@dataclass(frozen=True)
class SourceSide:
    """What the global stage derives from the source alone: computed once for a scan in several pairs."""

    mask: sitk.Image  # body, padding left out: where the metric counts
    centre: np.ndarray  # its centroid (LPS mm): the centre of rotation
    coarse: tuple[sitk.Image, sitk.Image]  # image and mask twice as coarse, for the translation search
    fixed: sitk.Image  # every other voxel: the metric's samples


def source_side(image: sitk.Image, small: sitk.Image, valid: sitk.Image | None) -> SourceSide:
    """``SourceSide`` of a scan, from its ``small_of`` (warns about the scan, as ``check_scan``)."""
    check_scan("source", image, small, valid)
    mask = body_mask(small, valid)
    return SourceSide(mask, mask_centroid(mask), (sitk.BinShrink(small, [2, 2, 2]), sitk.BinShrink(mask, [2, 2, 2])),
                      lattice(small, 2))  # every other 4 mm voxel: 1/8 of the samples, still all image-derived


def global_affine(source: sitk.Image, target: sitk.Image, spacing_mm: float = 4.0, threads: int = 1,
                  prepared: Prepared | None = None, side: SourceSide | None = None) -> sitk.AffineTransform:
    """Affine source -> target estimated on ~``spacing_mm`` images (rigid, then affine).

    Started from the best translation of an exhaustive search on images twice as coarse
    (``classical_search``): scans of one patient often differ in field of view (along z, or a
    half-thorax reconstruction circle), which misleads centroids. Padding outside a
    reconstruction circle is excluded on both sides. ``side``: the source's ``source_side``
    (computed here unless given).
    """
    src, src_valid, tgt, tgt_valid = prepared or prepare(source, target, spacing_mm)
    side = side or source_side(source, src, src_valid)
    check_scan("target", target, tgt, tgt_valid)
    shift, score = best_translation(*side.coarse, sitk.BinShrink(tgt, [2, 2, 2]),
                                    None if tgt_valid is None else sitk.BinShrink(tgt_valid, [2, 2, 2]), OUTSIDE)
    rigid = sitk.Euler3DTransform()
    rigid.SetCenter(tuple(map(float, side.centre)))
    rigid.SetTranslation(tuple(map(float, shift)))
    log.debug("global init: translation search chose %s mm (NCC %.2f)", shift.round(1), score)

    for transform, max_step in ((rigid, 2.0 * spacing_mm), (None, spacing_mm)):
        if transform is None:
            transform = affine_from(rigid, side.centre)
        reg = method(ITERATIONS, max_step, [2, 1], [spacing_mm, 0.0], threads, side.mask, tgt_valid)
        reg.SetInitialTransform(transform, inPlace=True)
        reg.Execute(side.fixed, tgt)
        log.debug("global %s: %s iterations, metric %.4f", type(transform).__name__,
                  reg.GetOptimizerIteration(), reg.GetMetricValue())
    return transform


def lung_affine(source: sitk.Image, target: sitk.Image, body: sitk.AffineTransform, spacing_mm: float = 4.0,
                threads: int = 1, prepared: Prepared | None = None, lungs: sitk.Image | None = None
                ) -> sitk.AffineTransform | None:
    """Affine of the lungs alone (source lung mask, ``lung_mask_of`` the prepared source unless
    given), started from the body affine.

    Breathing moves the lungs (diaphragm 10-40 mm) much more than the chest wall and spine,
    which dominate the body affine; a lung point starts its local search from this one.
    None when the source shows no lungs.
    """
    src, src_valid, tgt, tgt_valid = prepared or prepare(source, target, spacing_mm)
    lungs = lung_mask_of(src, src_valid) if lungs is None else lungs
    if voxels(lungs).sum() < 500:
        return None
    transform = affine_from(body, mask_centroid(lungs))
    reg = method(ITERATIONS, spacing_mm, [2, 1], [spacing_mm, 0.0], threads, lungs, tgt_valid)
    reg.SetInitialTransform(transform, inPlace=True)
    reg.Execute(lattice(src, 2), tgt)
    return transform
