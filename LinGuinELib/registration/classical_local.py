"""Local stage of the classical registration: a cascade of shrinking boxes around each point.

For a point p the global (or lungs-only) affine is refined in boxes centred on p
(native-resolution crops, block-averaged, sampled on a regular lattice: deterministic, no seed):

1. ``COARSE``: a 72 mm affine on a 4 mm lattice, started from the global affine (its moving
   crop reaches 12 mm further: it catches up with breathing motion the global affine misses);
2. ``MEDIUM``: a 40 mm affine started from 1;
3. ``FINE``: a ``local_box_mm`` (28 mm) translation started from 2, and the same box started
   from 1 as an independent check.

Smaller boxes follow non-rigid motion more closely but may jump to a neighbouring structure
when the box holds little that matches. A medium or fine box whose normalised correlation after
alignment is below ``MIN_NCC`` is not trusted and its parent's estimate is kept. When the two fine estimates
converge to different places the one that matches the fine box better is kept (both optimise the
same metric on the same box) and the confidence drops with their distance. For a point in or
next to a lung, every box is restricted to the lung (plus a ball around the point, so the lesion
itself always counts): the lung slides along the chest wall when breathing, and a point in the
lung must follow the lung, not the ribs.

A lesion's centre (``map_lesion``) is estimated by the boxes above and, where that estimate is
``changing.unsettled`` (vouched for little, or moved by the smaller boxes away from the coarse
box's estimate), a second time (why: ``changing``): by the same boxes with the lesion, widened,
left out of every box's metric, each box widened to keep a ring of context around it as thick as
half its own side (its lattice coarsened in proportion, so the work per box stays the same).
Placed by its surroundings alone, a growing lesion's centre is biased where the context is
one-sided (a wall on one side), by a few mm, and more where the lesion shrank to a tenth (its
surroundings then move inwards by most of its radius); ``changing.choose`` keeps the lesion's
own estimate unless the two part.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from ..geometry import inside_grid, nearest_voxel
from ..voxels import voxel_copy, voxels
from .base import PointMapper
from .changing import Changing, choose, unsettled
from .classical_global import (
    PADDING_HU,
    affine_from,
    as_float_clamped,
    lung_mask,
    method,
    pinned_threads,
    shrink_factors,
)

log = logging.getLogger(__name__)

# (box side mm, block-average voxel mm, lattice step mm, iterations, affine (else translation), levels)
COARSE = (72.0, 2.0, 4.0, 40, True, 1)
MEDIUM = (40.0, 1.0, 2.5, 30, True, 1)
FINE = (28.0, 1.0, 2.0, 40, False, 1)
MIN_NCC = 0.5  # a box matching worse than this after alignment (less than a quarter of the variance) holds no estimate
AGREE_MM = 2.0  # fine starts this far apart (a 5-10 mm nodule's centre tolerance): confidence 0.5; twice: 0
UNCHECKED = 0.6  # confidence factor when only one start of the fine box held
NO_FINE = 0.4  # ... and when neither did (the larger box's estimate is kept): below the 0.5 of the quality flag
LESION_BALL_MM = 6.0  # always part of a lung point's metric region
NEAR_LUNG_MM = 8.0  # a point this close to a lung is treated as a lung point


def source_lung_masks(source: sitk.Image) -> tuple[sitk.Image, sitk.Image]:
    """(lungs, within ``NEAR_LUNG_MM`` of them) of a scan on a ~2 mm grid: where a point is a lung point."""
    lungs = lung_mask(source)
    radius = int(round(NEAR_LUNG_MM / lungs.GetSpacing()[0]))
    return lungs, (sitk.BinaryDilate(lungs, [radius] * 3) if radius else lungs)


def _widened(stage: tuple, changing: Changing) -> tuple:
    """``stage`` with its box widened to hold the lesion plus a ring of half its side
    (box side, voxel and lattice step scaled together)."""
    scale = max(1.0, (2 * changing.reach_mm + 0.5 * stage[0]) / stage[0])
    return (stage[0] * scale, stage[1] * scale, stage[2] * scale) + tuple(stage[3:])


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


def _box_grid(reference: sitk.Image, center: np.ndarray, side_mm: float, step_mm: float) -> sitk.Image:
    """An empty image: a cube of ``side_mm`` centred on ``center``, axes of ``reference``."""
    n = max(4, int(round(side_mm / step_mm)))
    direction = np.array(reference.GetDirection()).reshape(3, 3)
    origin = center - direction @ np.full(3, 0.5 * (n - 1) * step_mm)
    grid = sitk.Image([n, n, n], sitk.sitkUInt8)
    grid.SetSpacing((step_mm,) * 3)
    grid.SetDirection(reference.GetDirection())
    grid.SetOrigin(tuple(map(float, origin)))
    return grid


def _shrink(image: sitk.Image, voxel_mm: float) -> sitk.Image:
    """Block-average to about ``voxel_mm`` (no clamping: the box keeps its own intensities)."""
    factors = shrink_factors(image, voxel_mm)
    return sitk.BinShrink(image, factors) if max(factors) > 1 else image


class _Entry:
    """One cached refinement: (mapped point, confidence, drift mm) once computed (drift: how far
    the smaller boxes moved the point from the coarse box's estimate), and the lock it is computed under."""

    __slots__ = ("lock", "value")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.value: tuple[np.ndarray, float, float] | None = None


class LocalRefinementMapper(PointMapper):
    """Global affine, refined lazily around each asked point (see the module docstring).

    Thread-safe: each point (and each lesion left out) is refined under its own lock, so several
    points of one pair refine at once on several threads (each refinement is deterministic, so the
    answers do not depend on that); a second ask for a point waits for the first. Different
    mappers share nothing mutable.
    """

    def __init__(self, source: sitk.Image, target: sitk.Image, global_transform: sitk.AffineTransform,
                 refine: bool = True, local_box_mm: float = 28.0, max_correction_mm: float = 25.0,
                 threads: int = 1, lung_aware: bool = True,
                 lung_transform: sitk.AffineTransform | None = None,
                 lung_masks: Callable[[bool], tuple[sitk.Image, sitk.Image] | None] | None = None) -> None:
        """``lung_masks(wait)``: gives ``source_lung_masks(source)`` (a backend shares them between
        the pairs of one source; with ``wait`` False, None while another pair computes them);
        computed here when not given."""
        self.source = source
        self.target = target
        self.global_transform = global_transform
        self.refine = refine
        self.local_box_mm = local_box_mm
        self.max_correction_mm = max_correction_mm
        self.threads = threads
        self.lung_aware = lung_aware
        self.lung_transform = lung_transform  # start for lung points (lungs move more than the wall)
        self._cache: dict[tuple, _Entry] = {}
        self._lock = threading.Lock()  # guards the cache's keys; each entry has its own lock
        self._lungs_lock = threading.Lock()
        self._lungs: tuple[sitk.Image, sitk.Image] | None = None
        self._lung_source = lung_masks or (lambda wait: source_lung_masks(source))

    def map_points(self, points_lps: np.ndarray) -> np.ndarray:
        return np.array([self._map_one(p)[0] for p in self._check(points_lps)]).reshape(-1, 3)

    def map_lesion(self, centre_lps: np.ndarray, lesion: sitk.Image | None = None) -> tuple[np.ndarray, float]:
        """The lesion's own estimate, or its surroundings' where it is unsettled and the two part
        (see the module docstring)."""
        point = self._check(centre_lps)[0]
        mapped, confidence, drift = self._estimate(point)
        own = (mapped, confidence)
        changing = Changing.of(lesion, point) if lesion is not None and self.refine else None
        if changing is None or not unsettled(confidence, drift, changing.radius_mm):
            return mapped, float(confidence)
        around = self._map_one(point, changing)
        chosen, apart = choose(own, around, changing.radius_mm)
        if chosen is around:
            log.debug("lesion at %s: its own match is %.2f radii from its surroundings' (confidence %.2f, "
                      "theirs %.2f): placed by its surroundings", point.round(1), apart, own[1], around[1])
        return chosen[0], float(chosen[1])

    def confidence(self, points_lps: np.ndarray) -> np.ndarray:
        """Per point in [0, 1]: how far the local estimates vouch for the mapping.

        The product of: 1 - (distance between the fine box's two estimates) / (2 AGREE_MM); the
        fine box's correlation after alignment (0 at 0.2, 1 from 0.6 up); UNCHECKED when only
        one of its starts held, NO_FINE when neither did. So the quality flag's 0.5
        (``quality.image_checks.MIN_CONFIDENCE``) flags points whose two fine starts land more
        than AGREE_MM apart or whose neighbourhood matches nothing; on the breathing benchmark
        that caught every landmark off by more than 2 mm (README). 0: no local estimate was
        possible, the coarse box moved too far, or the point maps outside the target. NaN when
        refinement is off (nothing to compare).
        """
        pts = self._check(points_lps)
        if not self.refine:
            return np.full(len(pts), np.nan)
        return np.array([self._map_one(p)[1] for p in pts], dtype=float)

    def map_global(self, points_lps: np.ndarray) -> np.ndarray:
        """Points through the global affine only (no local refinement)."""
        pts = np.asarray(points_lps, dtype=float).reshape(-1, 3)
        return np.array([self.global_transform.TransformPoint(tuple(map(float, p)))
                         for p in pts]).reshape(-1, 3)

    @staticmethod
    def _check(points_lps: np.ndarray) -> np.ndarray:
        pts = np.asarray(points_lps, dtype=float).reshape(-1, 3)
        if not np.all(np.isfinite(pts)):
            raise InputError("points_lps: every coordinate must be a finite number (LPS mm)")
        return pts

    def _map_one(self, point: np.ndarray, changing: Changing | None = None) -> tuple[np.ndarray, float]:
        mapped, conf, _ = self._estimate(point, changing)
        return mapped, conf

    def _estimate(self, point: np.ndarray, changing: Changing | None = None) -> tuple[np.ndarray, float, float]:
        """(mapped point, confidence, drift mm), refined once per point (and lesion left out)."""
        key = (tuple(round(float(v), 3) for v in point), None if changing is None else changing.key)
        with self._lock:
            entry = self._cache.setdefault(key, _Entry())
        with entry.lock:
            if entry.value is None:
                coarse = np.array(self.global_transform.TransformPoint(tuple(map(float, point))))
                if self.refine:
                    with pinned_threads(self.threads):
                        entry.value = self._refine(point, coarse, changing)
                else:
                    entry.value = (coarse, np.nan, 0.0)
            mapped, conf, drift = entry.value
        return mapped.copy(), conf, drift

    def _lung_masks(self) -> tuple[sitk.Image, sitk.Image]:
        """``source_lung_masks`` of the source, fetched once."""
        with self._lungs_lock:
            if self._lungs is None:
                self._lungs = self._lung_source(True)
            return self._lungs

    def prepare(self) -> None:
        """The source's lung masks, which the first point in the lungs would compute; not while
        another pair of the same source computes them (this pair's first point waits for them
        then, and its worker registers the next pair meanwhile)."""
        if self.refine and self.lung_aware:
            with self._lungs_lock:
                if self._lungs is None:
                    self._lungs = self._lung_source(False)

    def _in_lung(self, point: np.ndarray) -> bool:
        near = self._lung_masks()[1]
        idx = near.TransformPhysicalPointToIndex(tuple(map(float, point)))
        return all(0 <= idx[k] < near.GetSize()[k] for k in range(3)) and bool(near[idx])

    def _refine(self, point: np.ndarray, coarse: np.ndarray, changing: Changing | None = None
                ) -> tuple[np.ndarray, float, float]:
        """(mapped point, confidence, drift mm from the coarse box's estimate); falls back to
        ``coarse`` (confidence 0) when no local estimate holds."""
        start = time.perf_counter()
        lung = self.lung_aware and self._in_lung(point)
        start_transform = self.lung_transform if lung and self.lung_transform is not None else self.global_transform
        first = self._stage(point, affine_from(start_transform, point), COARSE, lung, changing)
        if first is None:  # a poor match here is still the best start the smaller boxes have
            return coarse, 0.0, 0.0
        a = self._apply(first[0], point)
        if np.linalg.norm(a - coarse) > self.max_correction_mm:
            log.warning("local refinement moved %.1f mm (> %.1f), global estimate kept",
                        np.linalg.norm(a - coarse), self.max_correction_mm)
            return coarse, 0.0, 0.0
        medium = self._stage(point, first[0], MEDIUM, lung, changing)
        parent = medium if medium is not None and medium[1] >= MIN_NCC else first
        fine_stage = (self.local_box_mm,) + FINE[1:]
        fines = [self._stage(point, parent[0], fine_stage, lung, changing)]
        if parent is medium:  # the same box started from the coarse estimate: does it land there too?
            fines.append(self._stage(point, first[0], fine_stage, lung, changing))
        good = [f for f in fines if f is not None and f[1] >= MIN_NCC]
        if good:
            best = max(good, key=lambda f: f[1])  # the first on ties
            mapped, ncc = self._apply(best[0], point), best[1]
            spread = float(np.linalg.norm(self._apply(good[0][0], point) - self._apply(good[-1][0], point)))
            trust = 1.0 if len(good) == 2 else UNCHECKED
        else:  # the point's own neighbourhood matches nothing: keep the larger box, and say so
            mapped, ncc, spread, trust = self._apply(parent[0], point), parent[1], 0.0, NO_FINE
        similarity = float(np.clip((ncc - 0.2) / 0.4, 0.0, 1.0))
        confidence = float(np.clip(1.0 - 0.5 * spread / AGREE_MM, 0.0, 1.0)) * similarity * trust
        if not self._inside_target(mapped):
            confidence = 0.0
        log.debug("local refinement at %s: coarse-global %.2f, fine spread %.2f mm, ncc %.2f, %.2f s",
                  point.round(1), np.linalg.norm(a - coarse), spread, ncc, time.perf_counter() - start)
        return mapped, confidence, float(np.linalg.norm(mapped - a))

    @staticmethod
    def _apply(transform: sitk.Transform, point: np.ndarray) -> np.ndarray:
        return np.array(transform.TransformPoint(tuple(map(float, point))))

    def _inside_target(self, point: np.ndarray) -> bool:
        idx = np.array(self.target.TransformPhysicalPointToContinuousIndex(tuple(map(float, point))))
        if not inside_grid(idx, self.target.GetSize()):
            return False
        return float(self.target[nearest_voxel(idx, self.target.GetSize())]) > PADDING_HU

    def _stage(self, point: np.ndarray, initial: sitk.Transform, stage: tuple, lung: bool,
               changing: Changing | None = None) -> tuple[sitk.Transform, float] | None:
        """``initial`` refined in a box around ``point``: (transform, correlation after alignment) or None.

        An affine stage returns an affine; a translation stage returns ``initial`` followed by
        the optimised translation (the linear part of the larger box is kept). ``changing``: a
        lesion left out of the metric (its box widened to keep context around it)."""
        moving_margin = 12.0 if stage is COARSE else 8.0
        box_mm, voxel_mm, step_mm, iterations, affine, levels = stage if changing is None else _widened(stage, changing)
        half = 0.5 * box_mm
        guess = np.array(initial.TransformPoint(tuple(map(float, point))))
        fixed_crop = _crop(self.source, point, half + voxel_mm)
        moving_crop = _crop(self.target, guess, half + moving_margin)
        if fixed_crop is None or moving_crop is None:
            log.debug("point %s: local box outside an image", point)
            return None
        grid = _box_grid(self.source, point, box_mm, step_mm)
        fixed = sitk.Resample(_shrink(sitk.Cast(fixed_crop, sitk.sitkFloat32), voxel_mm), grid,
                              sitk.Transform(), sitk.sitkLinear, -3024.0, sitk.sitkFloat32)
        values = voxels(fixed)
        mask = values > PADDING_HU
        if lung:
            lungs = voxel_copy(sitk.Resample(self._lung_masks()[0], grid, sitk.Transform(),
                                                             sitk.sitkNearestNeighbor, 0)) > 0
            zyx = np.stack(np.meshgrid(*[np.arange(n) for n in values.shape], indexing="ij"), axis=-1)
            ball = np.sum((zyx - (np.array(values.shape) - 1) / 2.0) ** 2, axis=-1) * step_mm**2
            mask &= lungs | (ball <= LESION_BALL_MM**2)
        if changing is not None:
            mask &= voxel_copy(sitk.Resample(changing.mask, grid, sitk.Transform(),
                                                         sitk.sitkNearestNeighbor, 0)) == 0
        moving = _shrink(sitk.Cast(moving_crop, sitk.sitkFloat32), voxel_mm)
        if float(np.min(voxels(moving))) < PADDING_HU:
            # Padding outside the target's reconstruction circle: sample only where the initial
            # estimate lands on reconstructed voxels. A fixed sample set (no moving mask) keeps
            # the optimiser from improving the metric by sliding the box off the hard parts.
            reach = voxel_copy(sitk.Resample(moving, grid, initial, sitk.sitkLinear, -3024.0,
                                                         sitk.sitkFloat32))
            mask &= reach > -1100.0  # below air: padding (or its blur) reached
        if mask.sum() < 200 or float(np.std(np.clip(values[mask], -1000, 1000))) < 5.0:
            return None  # featureless or nearly empty box (air, padding): nothing to align
        fixed_mask = sitk.GetImageFromArray(mask.astype(np.uint8))
        fixed_mask.CopyInformation(fixed)
        pyramid = ([2, 1], [2.0 * step_mm, 0.0]) if levels > 1 else ([1], [0.0])
        reg = method(iterations, 2.0, *pyramid, self.threads, fixed_mask)
        if affine:
            local = sitk.AffineTransform(initial)
        else:
            local = sitk.TranslationTransform(3)
            reg.SetMovingInitialTransform(initial)
        reg.SetInitialTransform(local, inPlace=True)
        try:
            reg.Execute(as_float_clamped(fixed), as_float_clamped(moving))
        except RuntimeError as exc:  # e.g. too few samples map inside the moving crop
            log.debug("local refinement failed at %s: %s", point, exc)
            return None
        log.debug("stage %s: %d iterations, metric %.3f", stage, reg.GetOptimizerIteration(), reg.GetMetricValue())
        found = local if affine else sitk.CompositeTransform([initial, local])
        return found, float(np.sqrt(max(0.0, -reg.GetMetricValue())))
