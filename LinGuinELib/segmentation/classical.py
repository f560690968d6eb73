"""A no-weights point-prompted lesion segmenter for CT (the always-available fallback).

Everything patient-specific is measured from the image, in physical mm (anisotropic voxels and
thick slices behave alike):

1. Seed: nothing denser than lung parenchyma within ``SEED_SEARCH_MM`` gives an empty mask; a
   prompt in aerated lung next to a lesion starts from the densest voxel nearby, one in the air
   of a cavity (a wall all round, met by neighbouring rays at nearby distances) from the cavity's
   wall, with the cavity filled so that its air does not pass for lung (:mod:`.cavity`).
2. Scale: rays from the seed measure how far aerated lung is, and the chords through it how wide
   the lesion is (:mod:`.lung_envelope`; a click near a large lesion's edge is not a nodule). That sizes
   the region of interest (ROI) before any threshold, so a 10 cm tumour gets a ROI that holds it
   and a 5 mm nodule a small, fast one; the ROI still grows while the lesion reaches its border.
3. Levels (:mod:`.levels`): polarity (in the lung, denser than the background), lesion and
   surroundings levels from a radial profile and then from the region found, until the threshold
   half-way between them settles. A band excludes voxels as far above the lesion as the
   surroundings are below (ground glass vs chest wall, lymph node vs enhanced artery).
4. Lung envelope: in the lung, the region may only lie inside the adjacent lung closed with a
   ball scaled to the lesion: juxtapleural lesions come off the chest wall, mediastinum and
   diaphragm, and a large pleural-based tumour keeps its full extent (its dent is in the envelope).
   A lesion lighter than fat gets back its base on the wall, decided by partial volume against the
   wall's own mix with the lung (:func:`.lung_envelope.base_on_wall`).
5. Attached structures (:mod:`.separate`): a top-hat with a ball larger than the lesion drops
   walls, an opening with a ball that fits in it cuts vessels and fissures (from a solid lesion
   also a vessel a little thinner than that ball that runs on past it), a closing and hole
   filling make porous ground glass solid. Negative points claim the voxels nearer to them.
6. Thick slices on a wall along them (:mod:`.end_slices`): the slice a lesion shares with the
   dome is decided by partial volume, over the dome's mix read round the lesion in that slice.

A region that still covers much of a ROI face (an organ, the body wall), or that lies mostly
outside the lung envelope although the prompt is in the lung, gives an empty mask. Each call
leaves its diagnostics in ``last_diagnostics`` (keys: :mod:`.diagnostics`).
"""

from __future__ import annotations

import logging
import math

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from ..filtering.components import edt_mm
from ..geometry import inside_grid, nearest_voxel, physical_to_continuous_index_zyx
from ..partial_volume import edge_threshold
from ..registry import register_segmentation
from ..voxels import voxels
from .base import Segmenter, prompt_points
from .cavity import cavity_beside, fill, find_cavity
from .diagnostics import MIN_ENVELOPE_FRACTION, empty_diagnostics, summary, warnings_of
from .dome import fill_corner
from .end_slices import beside_the_slice, is_slice_of_wall, settle_end_slices
from .levels import (
    AIR_LIKE_HU,
    BELOW_FAT_HU,
    HALO_DOUBT,
    HALO_GAIN,
    HALO_SHARE,
    HALO_SURE,
    halo_around,
    initial_levels,
    noise_delta,
    polarity,
    refine_levels,
)
from .lung_envelope import air_distances, base_on_wall, clear_of_tissue, lesion_scale, lung_envelope
from .roi import Roi, blur_mm, component_near, distance_map, make_roi, open_face_cover
from .separate import LEAK_BALL_FACTOR, SEED_SEARCH_MM, SMALL_BALL_FACTOR, separate

log = logging.getLogger(__name__)

CORE_MM = 1.5  # radius of the ball whose intensity characterises the seed
ROI_MIN_MM, ROI_MAX_MM = 30.0, 120.0  # ROI half-size range
ROI_SCALE = 1.8  # ROI half-size / lesion scale (plus ROI_MARGIN_MM): room for the surroundings
ROI_MARGIN_MM = 12.0
ROI_GROWTH = 1.5  # the ROI grows by this factor while the lesion reaches its border
GROW_FRACTION = 0.25  # grow the ROI only for a lesion whose radius is at least this * half-size
MAX_FACE_COVER = 0.2  # a region covering more of a ROI face is an organ / body wall leak
MAX_ITER = 5  # threshold refinements (they usually settle in 2-3)
RISE_GROWTH = 1.5  # a lighter-than-fat lesion grown this much by a stricter threshold took in something else
LEAK_VOLUME_FACTOR = 8.0  # a region this many times a ball of the lesion's scale is a leak
MIN_SCALE_MM = 2.0  # smallest lesion scale (a 4 mm nodule)


class _NoLesion(Exception):
    """The seed is not in anything that looks like a lesion."""


def seed_reach(spacing: np.ndarray) -> float:
    """How far (mm) from the prompt the lesion is looked for: SEED_SEARCH_MM, or more than half the
    coarsest voxel (a prompt between thick slices)."""
    return max(SEED_SEARCH_MM, 0.6 * float(spacing.max()))


def _core_ball(roi: Roi) -> np.ndarray:
    """The voxels whose intensity characterises the seed: within CORE_MM of it, or more on coarse
    grids, and always the nearest voxel (on 3 x 2.5 x 2.5 mm voxels a seed can lie 2.3 mm from
    every voxel centre: half the voxel's diagonal, with a micrometre to spare for rounding)."""
    radius = max(CORE_MM, 0.6 * float(roi.spacing.max()), 0.5 * float(np.linalg.norm(roi.spacing)) + 1e-3)
    return roi.dist <= radius


def _reaches_out(free: np.ndarray, roi: Roi, scale: float) -> bool:
    """Does the thresholded region extend beyond a lesion of this scale (a wall, an organ)?
    It touches the ROI's faces, or holds more than a ball of twice the scale."""
    if any(np.take(free, end, axis=axis).any() for axis in range(3) for end in (0, -1)):
        return True
    return float(free.sum()) * float(np.prod(roi.spacing)) > 4.0 / 3.0 * np.pi * (2.0 * scale) ** 3


def _segment_in_roi(roi: Roi, negatives: np.ndarray, in_lung: bool, diag: dict,
                    envelope=None, scale: float = 0.0,
                    small_factor: float = SMALL_BALL_FACTOR) -> tuple[np.ndarray, float]:
    """Lesion mask within the ROI and its radius (mm); raises _NoLesion. Fills ``diag``.

    ``envelope``: a callable giving the lung envelope (or None), called only when the
    thresholded region reaches beyond a lesion of ``scale`` mm; it is kept in ``roi.allowed``.
    The radial profile's readings of the levels are tried in turn until one gives a lesion."""
    noise, delta = noise_delta(roi)
    core = float(np.median(roi.smooth[_core_ball(roi)]))
    bright = polarity(roi, core, delta, in_lung)
    candidates = initial_levels(roi, core, bright, delta)
    if not candidates:
        raise _NoLesion("no edge around the prompt (uniform surroundings)")
    sign = 1.0 if bright else -1.0
    for rank, levels in enumerate(candidates):
        lesion, lesion_radius, levels = _refine(roi, levels, sign, noise, diag, envelope, scale, small_factor)
        if lesion is not None:
            first_reading = rank == 0
            break
    else:
        raise _NoLesion("no region of the lesion class within reach of the prompt")
    halo = halo_around(lesion, roi, levels) if bright else None
    if halo is not None and halo.share >= HALO_DOUBT and first_reading:
        # a solid core inside a ground-glass halo: the halo is the lesion's, the aerated lung
        # beyond it the surroundings; kept when it holds the core and, wrapped in lung, reaches
        # no more of the region's border than the core did (not a haze running on). Not after a
        # later reading: the first, the plateau taken as the lesion's, failed (a dome's mix with
        # the lung on thick slices); a first that took a solid core against its own plateau has
        # its halo tried. A shell less than HALO_SHARE hazy is a halo only when reading it at
        # least doubles the result: a solid nodule's wall haze and vessels read as halo gave the
        # same nodule back (1.0-1.2x on LIDC-0001's juxtapleural nodule), a part-solid nodule's
        # halo 2-6x its core (what a volume within 2x of the truth cannot leave out); not on a wall
        # that crosses the slices, whose own haze the shell cannot tell from a halo (below)
        diag_halo = dict(diag)
        doubles = 0.0 if halo.share >= HALO_SHARE else HALO_GAIN * float(lesion.sum())
        whole, whole_radius, _ = _refine(roi, (halo.level, halo.lung), sign, noise, diag_halo, envelope, scale,
                                         small_factor, hold_level=halo.share >= HALO_SURE, at_least=doubles)
        gain = float(whole.sum()) / float(lesion.sum()) if whole is not None else 0.0
        if whole is not None and float((whole & lesion).sum()) >= 0.8 * float(lesion.sum()) \
                and open_face_cover(whole, roi) <= open_face_cover(lesion, roi) \
                and (halo.share >= HALO_SHARE or (gain >= HALO_GAIN and not diag.get("end_slice_on_wall"))):
            lesion, lesion_radius, halo = whole, whole_radius, None
            diag.update(diag_halo)
    # a result resting on a wall that crosses the slices (the dome on thick slices) has that wall's
    # own hazy mix with the lung round it: the shell cannot tell it from a halo
    diag["halo_left_out"] = halo is not None and halo.share >= HALO_DOUBT and not diag.get("end_slice_on_wall")
    if negatives.size:
        lesion = _exclude_negatives(lesion, roi, negatives)
    return lesion, lesion_radius


def _refine(roi: Roi, levels: tuple[float, float], sign: float, noise: float, diag: dict, envelope,
            scale: float, small_factor: float,
            hold_level: bool = False,
            at_least: float = 0.0) -> tuple[np.ndarray | None, float, tuple[float, float]]:
    """Threshold half-way between the levels, grow, separate; re-measure the levels on the region
    found until the threshold settles. (lesion, radius, the levels of its last threshold);
    (None, 0, the given levels) when no lesion is within reach, or as soon as a round finds fewer
    than ``at_least`` voxels (a halo reading that must double the result: re-measured round after
    round, a halo reading only shrinks towards the core, so it is given up once it no longer does).

    ``hold_level``: keep the given lesion level (a clear ground-glass halo's) and re-measure only
    the surroundings. The median of a part-solid whole lies between its core and its halo: a
    threshold half-way from it to the lung cuts into the halo, which raises the median of what is
    left, round after round, until only the core remains (a 20 mm mediastinal part-solid lesion on
    5 mm slices: 0.4x with the halo's outer edge plain to see)."""
    search = roi.dist <= seed_reach(roi.spacing)
    reach = sign * float(np.percentile(sign * roi.smooth[search], 90))
    lesion, lesion_radius, tried, found_levels = None, 0.0, [], levels
    for iteration in range(MAX_ITER):
        allowed_before = None if roi.allowed is None else roi.allowed.copy()
        level, background = levels
        solid = level >= BELOW_FAT_HU  # as dense as a wall; lighter: ground glass, a halo
        threshold = edge_threshold(levels)
        # the band's ceiling: from at least the densest tenth near the prompt, on every round (a
        # prompt in a partial-volume rim underrates the lesion level, and the solid core of a
        # part-solid lesion is denser than the lesion's median: a ceiling below it hollowed the
        # lesion out and let the ring leak along vessels)
        top = sign * max(sign * level, sign * reach)
        ceiling = 2.0 * top - background
        band = (sign * roi.smooth >= sign * threshold) & (sign * roi.smooth <= sign * ceiling)
        free = component_near(band, roi.dist, SEED_SEARCH_MM)
        # walls, mediastinum and diaphragm are soft tissue or fat: a band that stops below fat
        # (ground glass) cannot reach them, and needs no envelope
        if (free is not None and roi.allowed is None and envelope is not None and ceiling > BELOW_FAT_HU
                and _reaches_out(free, roi, scale)):
            # a solid lesion's edge level is that of a wall's own partial volume with the lung: the
            # envelope uses it where a slice crosses a wall along the slices (lung_envelope). A
            # lesion lighter than fat has its edge below that mix (the envelope keeps the air
            # level, and what is clear of tissue is let back in)
            roi.allowed = envelope(threshold if solid else AIR_LIKE_HU)
            if roi.allowed is not None and not solid:
                roi.allowed = roi.allowed | clear_of_tissue(roi)
        region = free if roi.allowed is None or free is None else component_near(
            free & roi.allowed, roi.dist, SEED_SEARCH_MM)
        lesion_new, radius, as_thick = separate(region, roi, sign, small_factor=small_factor, solid=solid) \
            if region is not None else (None, 0.0, False)
        on_wall, base = 0.0, None
        if lesion_new is not None and sign > 0:
            if solid:  # a wall is as dense as the lesion: its outline decides; ground glass is lighter
                lesion_new = fill_corner(lesion_new, free, roi)
            else:  # its base on a wall is measured by the mix with the wall, not as the lesion
                base = base_on_wall(lesion_new, free, roi, level, background)
                lesion_new = lesion_new | base
            settled, on_wall = settle_end_slices(lesion_new, roi.smooth, roi.allowed, roi.spacing, levels)
            if roi.allowed is not None:
                # the slice the lesion was followed into on the dome is lung envelope too: the next
                # round's region must hold it, or separate() sees one slice of a round lesion
                roi.allowed |= settled & ~lesion_new
            lesion_new = settled
        if lesion_new is None or not lesion_new.any():
            if iteration == 0:
                continue  # try again with the lesion level's own ceiling
            break
        if float(lesion_new.sum()) < at_least:
            return None, 0.0, levels
        if lesion is not None and sign > 0 and not solid and threshold > tried[-1] and \
                float(lesion_new.sum()) > RISE_GROWTH * float(lesion.sum()):
            # a stricter threshold finds no more of a lesion lighter than fat: the separation let a
            # denser structure through (a faint nodule's dot of a core beside a vessel, cut by a ball
            # that no longer fits). The last round's lesion stands. Not for solid lesions: their end
            # slices on the dome are settled anew each round, and rightly grow
            log.debug("threshold %.0f -> %.0f HU grew the lesion %d -> %d voxels: kept the last",
                      tried[-1], threshold, lesion.sum(), lesion_new.sum())
            roi.allowed = allowed_before  # the envelope as the kept lesion was found in
            diag["threshold_hu"] = round(tried[-1], 1)
            break
        lesion, lesion_radius, found_levels = lesion_new, radius, levels
        diag["attached_as_thick"] = bool(diag.get("attached_as_thick")) or as_thick
        diag["end_slice_on_wall"] = round(on_wall, 3)
        own = lesion if base is None or not (lesion & ~base).any() else lesion & ~base
        level, shell_level = refine_levels(own, region, roi)
        # the surroundings are the farther of the radial-profile plateau and the shell just
        # outside: a faint halo (ground glass, partial volume) is not the background
        levels = (levels[0] if hold_level else level, sign * min(sign * shell_level, sign * levels[1]))
        new = edge_threshold(levels)
        log.debug("threshold %.0f -> %.0f HU (%d voxels)", threshold, new, lesion.sum())
        tried.append(threshold)
        diag.update(threshold_hu=round(new, 1), edge_contrast_hu=round(abs(levels[0] - levels[1]), 1),
                    contrast_to_noise=round(abs(levels[0] - levels[1]) / max(noise, 1e-3), 2),
                    envelope_cut_fraction=round(1.0 - float(region.sum()) / max(float(free.sum()), 1.0), 3))
        tolerance = 1.0 + 0.02 * abs(levels[0] - levels[1])
        if iteration and min(abs(new - t) for t in tried) < tolerance:
            break  # settled, or cycling between two regions
    return lesion, lesion_radius, found_levels


def _exclude_negatives(lesion: np.ndarray, roi: Roi, negatives: np.ndarray) -> np.ndarray:
    """Drop the voxels nearer (mm) to a negative point than to the positive seed."""
    for neg in negatives:
        lesion = lesion & (distance_map(lesion.shape, neg, roi.spacing) > roi.dist)
    kept = component_near(lesion, roi.dist, SEED_SEARCH_MM)
    return kept if kept is not None else np.zeros_like(lesion)


def _deepest_in(envelope: np.ndarray, roi: Roi) -> np.ndarray | None:
    """The image index of the densest voxel inside the envelope by more than the image's blur
    (clear of the wall's partial volume), within SEED_SEARCH_MM of the envelope's edge nearest
    the seed, if it is denser than aerated lung; else None."""
    blur = blur_mm(roi.spacing)
    near = (roi.dist <= SEED_SEARCH_MM + blur) & (edt_mm(envelope, roi.spacing) > blur)
    near &= roi.smooth >= AIR_LIKE_HU
    if not near.any():
        return None
    best = np.array(np.unravel_index(int(np.argmax(np.where(near, roi.smooth, -np.inf))), near.shape))
    return roi.to_image(best)


def _start_seed(array: np.ndarray, spacing: np.ndarray,
                seed: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(seed, array, where the lesion's scale is measured from): the prompt, or the densest voxel
    within reach when the prompt sits in air / lung. A prompt in a cavity starts from its wall, on a
    copy of the array whose cavity is filled, and the scale is measured from the cavity's middle
    (:mod:`.cavity`); so does a prompt in a cavity's wall, from where it is."""
    reach = seed_reach(spacing)
    # a prompt in air may sit in a cavity, however near its wall (a prompt 3 mm from the wall of
    # a 31 mm lesion's cavity started from the wall and read a piece of it)
    cavity = find_cavity(array, spacing, seed, clearance_mm=reach)
    if cavity is not None:
        array, seed = fill(array, spacing, cavity), cavity.wall
    roi = make_roi(array, spacing, seed, SEED_SEARCH_MM + 4.0)
    search = roi.dist <= reach
    if float(roi.smooth[search].max()) < AIR_LIKE_HU:
        raise _NoLesion("nothing denser than lung parenchyma near the prompt")
    at_seed = roi.smooth[nearest_voxel(roi.seed, roi.smooth.shape)]
    if float(np.median(roi.smooth[_core_ball(roi)])) < AIR_LIKE_HU or at_seed < AIR_LIKE_HU:
        flat = np.flatnonzero(search.ravel())
        best = np.array(np.unravel_index(flat[np.argmax(roi.smooth.ravel()[flat])], roi.smooth.shape))
        seed = roi.to_image(best)
    if cavity is None:
        # a prompt in tissue (or moved into it) may be in a cavity's wall; the click is on the lesion
        cavity = cavity_beside(array, spacing, seed, clearance_mm=reach)
        if cavity is not None:
            array = fill(array, spacing, cavity)
    return seed, array, seed if cavity is None else cavity.centre


@register_segmentation("classical")
class ClassicalSegmenter(Segmenter):
    """Adaptive threshold + region growing + lung envelope + morphological separation; CPU only.

    After every ``segment`` call, ``last_diagnostics`` (a dict) says how far the result can be
    trusted, for a quality flag to read; its keys are described in :mod:`.diagnostics`.
    """

    last_diagnostics: dict

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
        array = voxels(image)
        spacing = np.array(image.GetSpacing()[::-1], dtype=float)
        out = np.zeros(array.shape, dtype=bool)
        neg_zyx = physical_to_continuous_index_zyx(image, negatives) if len(negatives) else negatives
        points = []
        for point in positives:
            diag = empty_diagnostics()
            points.append(diag)
            seed = physical_to_continuous_index_zyx(image, point)[0]
            if not inside_grid(seed, array.shape):
                log.warning("prompt %s lies outside the image; skipped", np.round(point, 1))
                diag.update(reason="prompt outside the image", warnings=["empty"])
                continue
            voxel = nearest_voxel(seed, array.shape)
            if out[voxel]:
                diag.update(empty=False, reason="inside the mask of an earlier point")
                continue
            try:
                self._segment_point(array, spacing, seed, neg_zyx, out, diag)
            except _NoLesion as why:
                log.info("classical segmenter: empty mask (%s)", why)
                diag["reason"] = str(why)
            diag["warnings"] = warnings_of(diag)
        self.last_diagnostics = summary(points, float(out.sum()) * float(np.prod(spacing)) / 1000.0)
        return out

    @staticmethod
    def _segment_point(array: np.ndarray, spacing: np.ndarray, seed: np.ndarray, neg: np.ndarray,
                       out: np.ndarray, diag: dict, moved: bool = False) -> None:
        """Segment around one seed, the ROI sized by the lesion's scale and grown while needed.

        A prompt whose region lies mostly outside the lung envelope (in the wall) is tried once
        more from the densest point well inside the envelope within SEED_SEARCH_MM of its edge,
        when one is denser than lung: a propagated point may land a few mm into the wall beside
        its lesion. A region that is the seed's thick slice of a wall's mix (``is_slice_of_wall``)
        is tried once more from the slice beside it that is more lung, and that result kept when it
        reaches less of its ROI's border: a click on a small lesion in the slice the dome crosses."""
        seed, array, origin = _start_seed(array, spacing, seed)
        dist, hits, across = air_distances(array, spacing, origin)
        scale = lesion_scale(dist, across)
        if scale is not None:
            scale = max(scale, MIN_SCALE_MM, float(spacing.max()))
        diag.update(in_lung=scale is not None, lesion_scale_mm=float("nan") if scale is None else round(scale, 2))
        half = ROI_MIN_MM if scale is None else float(np.clip(ROI_SCALE * scale + ROI_MARGIN_MM,
                                                              ROI_MIN_MM, ROI_MAX_MM))
        lesion = roi = None
        envelope_fraction = float("nan")
        while True:
            roi = make_roi(array, spacing, seed, half)
            log.debug("ROI half %.0f mm, shape %s, step %s", half, roi.raw.shape, roi.step)
            negs = roi.to_roi(neg) if len(neg) else neg
            cache: list = []

            def envelope_of(level, roi=roi, cache=cache):
                # once per ROI, at the edge level of the first reading that needs it
                if not cache:
                    cache.append(lung_envelope(roi, scale, hits, level))
                return cache[0]

            try:
                lesion, radius = _segment_in_roi(roi, negs, scale is not None, diag,
                                                 envelope_of if scale is not None else None, scale or 0.0)
            except _NoLesion:
                if roi.allowed is None:
                    raise
                # nothing inside the envelope: judge the unconstrained region against it
                inside, roi.allowed = roi.allowed, None
                try:
                    lesion, radius = _segment_in_roi(roi, negs, True, diag)
                except _NoLesion:
                    # nothing lesion-like around the prompt at all: it sits in the wall, a few mm
                    # beside its lesion (a propagated point carried into the dome)
                    inner = None if moved else _deepest_in(inside, roi)
                    if inner is None:
                        raise
                    diag.update(empty_diagnostics(), read_off_wall=True)
                    ClassicalSegmenter._segment_point(array, spacing, inner, neg, out, diag, moved=True)
                    return
                diag["leak_retry"] = True
            envelope = cache[0] if cache else None
            if envelope is not None and roi.allowed is not None:
                envelope = roi.allowed
            if envelope is not None:
                envelope_fraction = float((lesion & envelope).sum()) / max(float(lesion.sum()), 1.0)
                if envelope_fraction < MIN_ENVELOPE_FRACTION:
                    inner = None if moved else _deepest_in(envelope, roi)
                    if inner is not None:
                        diag.update(empty_diagnostics(), read_off_wall=True)
                        ClassicalSegmenter._segment_point(array, spacing, inner, neg, out, diag, moved=True)
                        return
                    diag["envelope_fraction"] = round(envelope_fraction, 3)
                    raise _NoLesion(f"region lies {100 * (1 - envelope_fraction):.0f}% outside the lung envelope")
            cover = open_face_cover(lesion, roi)
            diag.update(roi_half_mm=round(half, 1), roi_border_contact=round(cover, 3))
            if cover == 0.0 or radius < GROW_FRACTION * half or half >= ROI_MAX_MM:
                # a small lesion reaching the border through a thin attachment: a larger box would
                # only follow the leak
                break
            if cover > MAX_FACE_COVER and envelope is None:
                raise _NoLesion(f"region covers {100 * cover:.0f}% of a ROI face (organ or body wall)")
            diag["leak_retry"] = diag["leak_retry"] or cover > MAX_FACE_COVER
            half = min(ROI_GROWTH * half, ROI_MAX_MM)
        if cover > 0.0 and scale is not None and float(lesion.sum()) * float(np.prod(roi.spacing)) > \
                LEAK_VOLUME_FACTOR * 4.0 / 3.0 * np.pi * scale**3:
            # a region much larger than the lesion's scale that reaches the ROI border: a leak along
            # vessels; once more with a thicker vessel-cutting ball
            retry_diag = dict(diag)
            try:
                again, _ = _segment_in_roi(roi, negs, True, retry_diag, envelope_of, scale, LEAK_BALL_FACTOR)
                again_cover = open_face_cover(again, roi)
                if again_cover < cover:
                    lesion, cover = again, again_cover
                    diag.update(retry_diag, roi_border_contact=round(cover, 3), leak_retry=True)
            except _NoLesion:
                pass
        # the seed's slice is a wall's mix with the lung: the lesion is read beside it
        beside = None if moved or not is_slice_of_wall(lesion, cover, roi) else beside_the_slice(array, seed, spacing)
        if beside is not None:
            moved_diag, found = empty_diagnostics(), np.zeros_like(out)
            try:
                ClassicalSegmenter._segment_point(array, spacing, beside, neg, found, moved_diag, moved=True)
                better = moved_diag["roi_border_contact"] < cover
            except _NoLesion:
                better = False  # nothing there: the region found stands
            if better:
                log.debug("region lies in the prompt's slice, a wall's mix: read from slice %d", int(beside[0]))
                out |= found
                diag.update(moved_diag, read_beside_slice=True)
                return
        if diag["roi_border_contact"] > MAX_FACE_COVER:
            raise _NoLesion(f"region still covers {100 * cover:.0f}% of the largest ROI's face")
        roi.paste(lesion, out)
        voxel_ml = float(np.prod(roi.spacing)) / 1000.0
        diag.update(empty=False, volume_ml=round(float(lesion.sum()) * voxel_ml, 4),
                    envelope_fraction=round(envelope_fraction, 3) if math.isfinite(envelope_fraction)
                    else envelope_fraction)
