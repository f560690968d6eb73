"""A no-weights point-prompted lesion segmenter for CT (the always-available fallback).

It works in a region of interest (ROI) around the prompt, in physical mm (anisotropic voxels
behave alike), and measures everything patient-specific from the image itself:

1. Seed: nothing denser than lung parenchyma within ``SEED_SEARCH_MM`` gives an empty mask;
   a prompt in aerated lung next to a lesion starts from the densest voxel nearby.
2. Polarity (brighter or darker than the surroundings) by a vote of rays from the seed.
3. Levels: lesion and surroundings levels from a radial profile (a quartile of each 1 mm shell
   around the seed), then from the region found (median) and the shell just outside it, until
   the threshold half-way between them (the iso-level of a partial-volume edge) settles.
   A ground-glass plateau in front of aerated lung belongs to a part-solid nodule.
4. Band: voxels as far above the lesion level as the surroundings are below are excluded
   (ground glass vs chest wall, lymph node vs enhanced artery).
5. Attached structures: a large ball rolled inside the region (radius a multiple of the
   lesion's own, measured by rays) keeps walls and drops the lesion bump (a top-hat); a small
   opening (a fraction of the lesion's radius or thickness) cuts vessels and a limited
   regrowth restores the border; closing + hole filling make porous ground glass solid.
6. Negative points claim the voxels nearer to them than to the seed.

The ROI grows while a large lesion reaches its border; a region covering much of a ROI face
(an organ, the body wall) or still reaching the largest ROI gives an empty mask.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cc3d
import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from ..errors import InputError
from ..filtering.components import (
    box_around,
    coarse_opening_mm,
    dilate_mm,
    edt_mm,
    erode_mm,
    fill_holes,
)
from ..geometry import physical_to_continuous_index_zyx
from ..registry import register_segmentation
from .base import Segmenter, prompt_points
from .lung_envelope import lung_envelope

log = logging.getLogger(__name__)

AIR_LIKE_HU = -750.0  # densest point near the seed below this: air / lung parenchyma, no lesion
SOFT_TISSUE_HU = -300.0  # a lesion darker than its surroundings must itself be at least this dense
MIN_CONTRAST_HU = 5.0  # below this no edge is trusted, whatever the noise
SMOOTH_MM = 1.0  # Gaussian sigma that tames noise and ground-glass texture, keeps mm edges
SEED_SEARCH_MM = 3.0  # how far a propagated prompt may sit outside the lesion
CORE_MM = 1.5  # radius of the ball whose intensity characterises the seed
ROI_HALF_MM = (30.0, 45.0, 70.0)  # ROI half-sizes tried in turn
GROW_FRACTION = 0.25  # grow the ROI only for a lesion whose radius is at least this * half-size
MAX_FACE_COVER = 0.2  # a region covering more of a ROI face is an organ / body wall leak
MAX_ROI_VOXELS = 8e5  # larger ROIs are block-averaged (big lesions need no sub-mm voxels)
BIG_BALL_FACTOR = 2.0  # wall-removing ball radius / lesion radius
BIG_BALL_GRID = 10  # the big ball rolls on a grid of radius / this (walls need no detail)
SMALL_BALL_FACTOR = 0.5  # vessel-cutting ball radius / lesion radius
MAX_ITER = 5  # threshold refinements (they usually settle in 2-3)
MIN_INTERIOR_VOXELS = 20  # fewer voxels beyond the partial-volume rim: a "small" lesion
CLOSE_FRACTION = 1.0  # closing radius / small ball: bridges pores of ground-glass lesions
STUB_FRACTION = 0.5  # protrusions up to this fraction of the small ball are kept (border detail)
REGROW_SLACK = 0.5  # voxels (finest axis) regrown beyond the opening, for the staircase
N_RAYS = 162


@dataclass
class _Roi:
    """A box of the image, with its smoothed intensities and per-voxel distance to the seed."""

    lo: np.ndarray  # (z, y, x) start in the image
    raw: np.ndarray
    smooth: np.ndarray
    spacing: np.ndarray  # (z, y, x) mm
    seed: np.ndarray  # continuous (z, y, x) inside the ROI
    dist: np.ndarray  # mm from the seed
    clipped: np.ndarray  # (3, 2) bool: does the box side coincide with the image border?
    step: np.ndarray  # (z, y, x) image voxels per ROI voxel (large ROIs are block-averaged)
    allowed: np.ndarray | None = None  # where the lesion may be (juxta-pleural retry), else anywhere

    def to_roi(self, index_zyx: np.ndarray) -> np.ndarray:
        """Continuous image index (z, y, x) -> continuous ROI index."""
        return (np.asarray(index_zyx, dtype=float) - self.lo - (self.step - 1) / 2) / self.step

    def paste(self, mask: np.ndarray, out: np.ndarray) -> None:
        """OR a ROI mask into the full image grid (undoing the block averaging)."""
        for axis, k in enumerate(self.step):
            mask = np.repeat(mask, k, axis=axis)
        hi = np.minimum(self.lo + np.array(mask.shape), out.shape)
        out[tuple(slice(a, b) for a, b in zip(self.lo, hi))] |= mask[
            tuple(slice(0, b - a) for a, b in zip(self.lo, hi))
        ]


def _fibonacci_directions(n: int) -> np.ndarray:
    """Nearly uniform unit vectors on the sphere (mm space, (z, y, x) order)."""
    i = np.arange(n) + 0.5
    polar = np.arccos(1 - 2 * i / n)
    azimuth = np.pi * (1 + 5**0.5) * i
    return np.stack(
        [np.cos(polar), np.sin(polar) * np.sin(azimuth), np.sin(polar) * np.cos(azimuth)], axis=1
    )


_DIRECTIONS = _fibonacci_directions(N_RAYS)


def _component_near(mask: np.ndarray, dist: np.ndarray, reach_mm: float) -> np.ndarray | None:
    """The 26-connected component nearest the seed (``dist``: mm from it) within reach, or None."""
    if not mask.any():
        return None
    labels = cc3d.connected_components(mask, connectivity=26)
    near = (dist <= reach_mm) & (labels > 0)
    if not near.any():
        return None
    idx = np.flatnonzero(near)
    best = idx[np.argmin(dist.ravel()[idx])]
    return labels == labels.ravel()[best]


def _ray_profiles(volume: np.ndarray, roi: _Roi, length_mm: float, order: int, origin=None):
    """Samples of ``volume`` every 0.5 mm along rays from the seed (or origin): (n_rays, n)."""
    radii = np.arange(0.0, length_mm + 1e-6, 0.5)
    start = roi.seed if origin is None else origin
    pts = start + _DIRECTIONS[:, None, :] * radii[None, :, None] / roi.spacing
    values = ndimage.map_coordinates(volume, pts.reshape(-1, 3).T, order=order, mode="nearest")
    return values.reshape(len(_DIRECTIONS), len(radii))


def _shell_quantile(values: np.ndarray, shell: np.ndarray, n_shells: int, q: float) -> np.ndarray:
    """The q-quantile of ``values`` in each shell 0..n_shells-1 (one sort, no Python loop)."""
    keep = shell < n_shells
    v, lab = values[keep], shell[keep]
    order = np.argsort(v, kind="stable")
    order = order[np.argsort(lab[order], kind="stable")]
    counts = np.bincount(lab, minlength=n_shells)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pick = starts + np.round(q * np.maximum(counts - 1, 0)).astype(int)
    return v[order][np.minimum(pick, len(v) - 1)].astype(float)


def _plateau(profile: np.ndarray, level: float, start: int, delta: float) -> tuple[int, float]:
    """First shell from ``start`` where the (sign-normalised) profile, having fallen more than
    2 delta below ``level``, levels off or turns back up; (index, value) or (-1, nan)."""
    running = np.minimum.accumulate(profile[start:])
    for i, value in enumerate(profile[start:]):
        depth = level - running[i]
        if depth <= 2 * delta:
            continue
        ahead = profile[start + i : start + i + 4]
        if value - running[i] > max(2 * delta, 0.25 * depth):  # next structure reached
            return start + i, float(running[i])
        if ahead.size == 4 and ahead.min() > value - max(0.1 * depth, 0.25 * delta):
            return start + i, float(running[i])
    if level - running[-1] > 2 * delta:
        return profile.size - 1, float(running[-1])
    return -1, float("nan")


def _initial_levels(
    roi: _Roi, core: float, bright: bool, delta: float
) -> tuple[float, float] | None:
    """Lesion level and surroundings level from a radial profile around the seed.

    Each 1 mm spherical shell around the seed is summarised by its lower quartile (upper for
    dark lesions): robust to texture and noise, and it sees the surrounding tissue even when
    an attached wall fills half the shell. Going outwards, the surroundings are where the
    profile, having left the core level, levels off (a plateau) or turns back (next structure).
    A ground-glass plateau that later gives way to aerated lung is part of the lesion (the
    halo of a part-solid nodule): the lesion level becomes that plateau's.
    """
    shell = roi.dist.astype(np.int32)  # 1 mm shells
    n_shells = int(min(shell.max(), np.min(np.array(roi.smooth.shape) * roi.spacing) / 2))
    if n_shells < 4:
        return None
    sign = 1.0 if bright else -1.0
    q = 0.25 if bright else 0.75
    profile = sign * _shell_quantile(roi.smooth, shell, n_shells, q)
    # the innermost shells hold few voxels: a running median keeps their noise from posing as
    # an edge
    profile = ndimage.median_filter(profile, size=3, mode="nearest")
    level = sign * core
    k, background = _plateau(profile, level, 0, delta)
    if k < 0:
        return None
    if bright and AIR_LIKE_HU < background < SOFT_TISSUE_HU and k + 1 < n_shells:
        k2, lung = _plateau(profile, background, k + 1, delta)
        if k2 >= 0 and lung < AIR_LIKE_HU:
            level, background = background, lung
    log.debug("radial profile: core %.0f, level %.0f, surroundings %.0f HU",
              core, sign * level, sign * background)
    return sign * level, sign * background


def _polarity(roi: _Roi, core: float, delta: float) -> bool:
    """True when the lesion is brighter than its surroundings.

    Each ray votes for the larger of its rise and its fall within 20 mm of the seed: texture
    inside a lesion is small next to the step to the surrounding tissue.
    """
    if core < SOFT_TISSUE_HU:
        return True
    prof = _ray_profiles(roi.smooth, roi, 20.0, order=1)
    up = (prof - core).max(axis=1)
    down = (core - prof).max(axis=1)
    seen = np.maximum(up, down) > delta
    n_dark = int(np.sum(seen & (up > down)))
    n_bright = int(np.sum(seen & (down >= up)))
    log.debug("polarity votes: %d bright, %d dark", n_bright, n_dark)
    return n_bright >= n_dark


def _separate(
    region: np.ndarray, roi: _Roi, sign: float
) -> tuple[np.ndarray | None, float]:
    """Cut walls (top-hat with a big ball) and vessels (small opening) off the seed's region."""
    # measure the lesion from its most typical point near the prompt, not from a prompt that
    # may sit on its rim: the most lesion-like (densest, for bright lesions) voxel within reach
    near = np.flatnonzero((region & (roi.dist <= SEED_SEARCH_MM)).ravel())
    best = near[np.argmax(sign * roi.smooth.ravel()[near])]
    origin = np.array(np.unravel_index(best, region.shape), dtype=float)
    inside = _ray_profiles(region.astype(np.uint8), roi, 200.0, order=0, origin=origin)
    exits = np.where(inside.all(axis=1), inside.shape[1], (inside == 0).argmax(axis=1)) * 0.5
    # rays that never leave the region run along a wall or vessel: the others see the lesion
    finite = exits[exits < 200.0]
    seen = finite if finite.size >= 0.1 * exits.size else exits
    radius = float(max(np.median(seen), roi.spacing.max()))
    # flat lesions lying on a wall are wide: size the wall-finding ball by their long extent,
    # counting only rays that leave the region (not those running into the wall or a vessel)
    extent = float(np.percentile(exits[exits <= 3 * radius], 90)) if radius < 200.0 else radius
    big = BIG_BALL_FACTOR * max(radius, extent)
    tophat = region & ~coarse_opening_mm(region, big, roi.spacing, BIG_BALL_GRID)
    part = _component_near(tophat, roi.dist, SEED_SEARCH_MM)
    if part is None:
        return None, radius
    sp = roi.spacing
    # everything below is local to the seed's piece: work in its box (the margin bounds the
    # regrowth and closing radii below, both at most a multiple of the lesion radius)
    box = box_around(part, (1.0 + STUB_FRACTION + CLOSE_FRACTION) * SMALL_BALL_FACTOR * radius, sp)
    piece, dist = part[box], roi.dist[box]
    # the small ball must fit in the lesion itself: size it by the lesion's thickness near the seed
    depth = edt_mm(piece, sp)
    thickness = float(depth[dist <= radius].max())
    small = max(SMALL_BALL_FACTOR * min(radius, thickness), 0.5 * sp.min())
    regrow = (1.0 + STUB_FRACTION) * small + REGROW_SLACK * sp.min()
    close = max(CLOSE_FRACTION * small, sp.min())
    # opening restricted to the seed's piece: erode, keep the piece by the seed, grow back
    core = _component_near(depth > small, dist, radius)
    if core is None:
        core = piece
    lesion = _component_near(piece & dilate_mm(core, regrow, sp), dist, SEED_SEARCH_MM)
    if lesion is None:
        return None, radius
    # a closing bridges the pores of textured (ground-glass) lesions before filling holes
    closed = erode_mm(dilate_mm(lesion, close, sp), close - 1e-3, sp)
    out = np.zeros_like(part)
    out[box] = fill_holes(closed | lesion)
    log.debug("separate: region %d, tophat %d, part %d, lesion %d, small ball %.1f mm",
              region.sum(), tophat.sum(), part.sum(), out.sum(), small)
    return out, radius


def _refine_levels(lesion: np.ndarray, region: np.ndarray, roi: _Roi) -> tuple[float, float]:
    """The lesion's typical (median) level and that of the shell just outside it (sign-free)."""
    inner, outer = roi.spacing.max(), roi.spacing.max() + 3.0
    box = box_around(lesion, outer, roi.spacing)
    les, smooth = lesion[box], roi.smooth[box]
    # the median of the whole lesion, solid and ground-glass parts alike; but a lesion with
    # hardly any interior beyond the partial-volume rim (one blur width plus half a voxel) is
    # mostly rim, so its upper quartile stands for it
    deep = edt_mm(les, roi.spacing) > SMOOTH_MM + 0.5 * roi.spacing.max()
    quantile = 50 if deep.sum() >= MIN_INTERIOR_VOXELS else 75
    core = float(np.percentile(smooth[les], quantile))
    out_dist = edt_mm(~les, roi.spacing)
    shell = (out_dist > inner) & (out_dist <= outer) & ~region[box]
    if shell.sum() < 10:
        shell = (out_dist > 0) & (out_dist <= outer)
    return core, float(np.median(smooth[shell]))


class _NoLesion(Exception):
    """The seed is not in anything that looks like a lesion."""


def _segment_in_roi(roi: _Roi, negatives: np.ndarray) -> tuple[np.ndarray, float]:
    """Lesion mask within the ROI and its radius (mm); raises _NoLesion."""
    search = roi.dist <= max(SEED_SEARCH_MM, roi.spacing.max() * 0.6)
    densest = float(roi.smooth[search].max())
    if densest < AIR_LIKE_HU:
        raise _NoLesion("nothing denser than lung parenchyma near the prompt")
    core_ball = roi.dist <= max(CORE_MM, roi.spacing.max() * 0.6)
    if float(np.median(roi.smooth[core_ball])) < AIR_LIKE_HU:
        # the prompt sits in air / lung next to the lesion: start from the densest point nearby
        flat = np.flatnonzero(search.ravel())
        best = flat[np.argmax(roi.smooth.ravel()[flat])]
        roi.seed = np.array(np.unravel_index(best, roi.smooth.shape), dtype=float)
        roi.dist = _distance_map(roi.smooth.shape, roi.seed, roi.spacing)
        core_ball = roi.dist <= max(CORE_MM, roi.spacing.max() * 0.6)
    noise = 1.4826 * float(np.median(np.abs(roi.raw - roi.smooth)[roi.dist <= 10.0]))
    # noise left after smoothing (white noise scales with the kernel's L2 norm), three sigma
    delta = max(MIN_CONTRAST_HU, 3.0 * noise * _kernel_l2(roi.spacing))
    core = float(np.median(roi.smooth[core_ball]))
    bright = _polarity(roi, core, delta)
    sign = 1.0 if bright else -1.0
    levels = _initial_levels(roi, core, bright, delta)
    reach = sign * float(np.percentile(sign * roi.smooth[search], 90))
    if levels is None:
        raise _NoLesion("no edge around the prompt (uniform surroundings)")
    lesion = None
    tried: list[float] = []
    for iteration in range(MAX_ITER):
        level, background = levels
        threshold = 0.5 * (level + background)
        # the band's ceiling: at first from at least the densest tenth near the prompt (a prompt
        # in a partial-volume rim underrates the lesion level), later from the region's level
        top = sign * max(sign * level, sign * reach) if iteration == 0 else level
        ceiling = 2.0 * top - background
        band = (sign * roi.smooth >= sign * threshold) & (sign * roi.smooth <= sign * ceiling)
        band = band if roi.allowed is None else band & roi.allowed
        region = _component_near(band, roi.dist, SEED_SEARCH_MM)
        lesion_new, radius = _separate(region, roi, sign) if region is not None else (None, 0.0)
        if lesion_new is None:
            if iteration == 0:
                continue  # try again with the lesion level's own ceiling
            break
        lesion, lesion_radius = lesion_new, radius
        level, shell_level = _refine_levels(lesion, region, roi)
        # the surroundings are the farther of the radial-profile plateau and the shell just
        # outside: a faint halo (ground glass, partial volume) is not the background
        levels = (level, sign * min(sign * shell_level, sign * levels[1]))
        new = 0.5 * sum(levels)
        log.debug("threshold %.0f -> %.0f HU (%d voxels)", threshold, new, lesion.sum())
        tried.append(threshold)
        tolerance = 1.0 + 0.02 * abs(levels[0] - levels[1])
        if iteration and min(abs(new - t) for t in tried) < tolerance:
            break  # settled, or cycling between two regions
    if lesion is None:
        raise _NoLesion("no region of the lesion class within reach of the prompt")
    if negatives.size:
        lesion = _exclude_negatives(lesion, roi, negatives)
    return lesion, lesion_radius


def _exclude_negatives(lesion: np.ndarray, roi: _Roi, negatives: np.ndarray) -> np.ndarray:
    """Drop the voxels nearer (mm) to a negative point than to the positive seed."""
    for neg in negatives:
        lesion = lesion & (_distance_map(lesion.shape, neg, roi.spacing) > roi.dist)
    kept = _component_near(lesion, roi.dist, SEED_SEARCH_MM)
    return kept if kept is not None else np.zeros_like(lesion)


def _distance_map(shape: tuple[int, ...], point: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """mm from a continuous (z, y, x) index to every voxel centre of an array."""
    grid = np.ogrid[tuple(slice(0, n) for n in shape)]
    d2 = sum(((g - c) * s) ** 2 for g, c, s in zip(grid, point, spacing))
    return np.sqrt(d2).astype(np.float32)


def _kernel_l2(spacing: np.ndarray) -> float:
    """L2 norm of the smoothing kernel: the factor by which it scales white noise."""
    sigma = _sigma_voxels(spacing)
    impulse = np.zeros([2 * int(np.ceil(3 * s)) + 1 for s in sigma], np.float32)
    impulse[tuple(n // 2 for n in impulse.shape)] = 1.0
    return float(np.sqrt((ndimage.gaussian_filter(impulse, sigma, truncate=3.0) ** 2).sum()))


def _sigma_voxels(spacing: np.ndarray) -> np.ndarray:
    sigma = SMOOTH_MM / spacing
    return np.where(sigma < 0.3, 0.0, sigma)


def _make_roi(array: np.ndarray, spacing: np.ndarray, seed: np.ndarray, half_mm: float) -> _Roi:
    """Box of half_mm around the seed; block-averaged when it would exceed MAX_ROI_VOXELS."""
    half = np.ceil(half_mm / spacing).astype(int)
    centre = np.round(seed).astype(int)
    shape = np.array(array.shape)
    lo = np.maximum(centre - half, 0)
    hi = np.minimum(centre + half + 1, shape)
    target = (np.prod((hi - lo) * spacing) / MAX_ROI_VOXELS) ** (1 / 3)
    step = np.maximum(1, np.ceil(target / spacing - 0.05)).astype(int)
    hi = lo + (hi - lo) // step * step
    raw = np.asarray(array[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]], dtype=np.float32)
    if np.any(step > 1):
        n = (hi - lo) // step
        raw = raw.reshape(n[0], step[0], n[1], step[1], n[2], step[2]).mean(axis=(1, 3, 5))
        spacing = spacing * step
    smooth = ndimage.gaussian_filter(raw, _sigma_voxels(spacing), mode="nearest", truncate=3.0)
    local = (seed - lo - (step - 1) / 2) / step
    dist = _distance_map(raw.shape, local, spacing)
    clipped = np.stack([lo == 0, hi == shape], axis=1)
    return _Roi(lo, raw, smooth, spacing, local, dist, clipped, step)


def _open_face_cover(mask: np.ndarray, roi: _Roi) -> float:
    """Largest fraction of a ROI face (one that is not the image border) that the mask covers."""
    cover = 0.0
    for axis in range(3):
        for end, at_image_border in zip((0, -1), roi.clipped[axis]):
            if not at_image_border:
                cover = max(cover, float(np.take(mask, end, axis=axis).mean()))
    return cover


@register_segmentation("classical")
class ClassicalSegmenter(Segmenter):
    """Adaptive threshold + region growing + morphological separation; no weights, CPU only."""

    def segment(
        self,
        image: sitk.Image,
        positive_lps: np.ndarray,
        negative_lps: np.ndarray | None = None,
    ) -> np.ndarray:
        if image.GetDimension() != 3:
            raise InputError(f"image must be 3D, got {image.GetDimension()}D")
        positives = prompt_points(positive_lps, "positive_lps")
        negatives = prompt_points(negative_lps, "negative_lps")
        array = sitk.GetArrayViewFromImage(image)
        spacing = np.array(image.GetSpacing()[::-1], dtype=float)
        shape = np.array(array.shape)
        out = np.zeros(array.shape, dtype=bool)
        neg_zyx = (
            physical_to_continuous_index_zyx(image, negatives) if len(negatives) else negatives
        )
        for point in positives:
            seed = physical_to_continuous_index_zyx(image, point)[0]
            if np.any(seed < -0.5) or np.any(seed > shape - 0.5):
                log.warning("prompt %s lies outside the image; skipped", np.round(point, 1))
                continue
            voxel = tuple(np.clip(np.round(seed).astype(int), 0, shape - 1))
            if out[voxel]:
                continue
            self._segment_point(array, spacing, seed, neg_zyx, out)
        return out

    @staticmethod
    def _segment_point(
        array: np.ndarray, spacing: np.ndarray, seed: np.ndarray, neg: np.ndarray, out: np.ndarray
    ) -> None:
        """Segment around one seed, growing the ROI while the lesion reaches its border."""
        lesion = roi = None
        for half_mm in ROI_HALF_MM:
            roi = _make_roi(array, spacing, seed, half_mm)
            log.debug("ROI half %.0f mm, shape %s, step %s", half_mm, roi.raw.shape, roi.step)
            try:
                lesion, radius = _segment_in_roi(roi, roi.to_roi(neg) if len(neg) else neg)
            except _NoLesion as why:
                log.info("classical segmenter: empty mask (%s)", why)
                return
            cover = _open_face_cover(lesion, roi)
            if cover == 0.0:
                break
            if cover > MAX_FACE_COVER and roi.allowed is None:
                # an organ or the body wall (a compact lesion cut by the box shows only a small
                # cross-section): retry once on the lung side of the pleura, same box
                retry = _make_roi(array, spacing, seed, half_mm)
                retry.allowed = lung_envelope(retry.smooth, retry.dist, retry.spacing, radius, AIR_LIKE_HU)
                try:
                    lesion, radius = _segment_in_roi(retry, retry.to_roi(neg) if len(neg) else neg)
                    roi, cover = retry, _open_face_cover(lesion, retry)
                except _NoLesion:
                    pass
                if cover == 0.0:
                    break
            if cover > MAX_FACE_COVER:
                log.info("classical segmenter: empty mask (region covers %.0f%% of a ROI face)",
                         100 * cover)
                return
            if radius < GROW_FRACTION * half_mm:
                # a small lesion that reaches the border through a thin attachment (a vessel
                # left by the prompt's own structure): a larger box would only follow the leak
                log.debug("lesion radius %.1f mm: ROI not grown", radius)
                break
        else:
            log.warning("classical segmenter: region reaches beyond %.0f mm; empty", half_mm)
            return
        if lesion is not None and roi is not None:
            roi.paste(lesion, out)
