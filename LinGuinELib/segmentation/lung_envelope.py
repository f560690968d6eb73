"""The lesion's scale and its lung envelope: what separates a lung lesion from the wall it touches.

A nodule on the chest wall, the mediastinum or the diaphragm has their density; it bulges into
the lung, though. Closing the adjacent lung with a ball wider than the lesion takes the lesion's
dent in and leaves the wall out (the lung envelope of one-click volumetry, e.g. Kuhnigk et al.,
IEEE TMI 2006). The ball is scaled to the lesion, measured before any threshold: the distance
from the prompt to aerated lung along rays (a lower quantile, since rays into the wall find no
lung for a long way), or half the chords through the prompt that cross the lesion alone when they
are longer (a click near a large lesion's edge has lung close by on one side only). The same scale
sizes the region of interest.
"""

from __future__ import annotations

import cc3d
import numpy as np
from scipy import ndimage

from ..filtering.components import (
    coarse_opening_mm,
    components_touching,
    dilate_mm,
    edt_mm,
    labels_touching,
    opening_mm,
)
from ..geometry import inside_grid
from ..partial_volume import edge_threshold
from .levels import AIR_LIKE_HU, BELOW_FAT_HU, more_lesion_than_wall, shell_quantile
from .roi import DIRECTIONS, OPPOSITE, SMOOTH_MM, Roi, blur_mm, distance_map

ENVELOPE_FACTOR = 2.5  # closing ball radius / lesion scale: the ball must span the lesion's dent
SCALE_QUANTILE = 30  # percentile of the ray distances to lung (rays that find it): robust to the
# rays that run along a wall or vessel before they find lung; the same percentile of the chords
MAX_REACH_MM = 120.0  # rays look this far for lung
MIN_LUNG_RAYS = 0.25  # a prompt with lung along fewer rays is not in the lung (liver, node, wall)
ENVELOPE_REACH = 3.0  # the envelope is computed within this many scales (+ its ball) of the seed
CLOSING_GRID = 10  # the envelope is closed on a grid of its ball radius / this
OUTSIDE_AIR_HU = -960.0  # air this dark (smoothed) is outside the body, not lung parenchyma
MIN_LUNG_MM = 3.0  # aerated lung is thicker than this (the air rim along the skin is not)
AIR_RUN_MM = 2.0  # a ray has reached lung when it stays aerated this long (noise, texture)
CHORD_HU = 100.0  # a ray that strays further from the seed's density (a 2 mm mean) before the lung
# left the lesion (fat, bone, another organ, a ground-glass lesion's wall): it ends no chord
EDGE_BLUR_MM = 2.0  # the lesion's edge blurs into the lung over this much before a ray's lung
MIN_CHORD_RAYS = 10  # rays that, with their opposite, cross the lesion alone (a chord counts from both ends)
MIN_MIX_VOXELS = 20  # the wall's mix with the lung is read at a distance only from this many voxels


def air_distances(array: np.ndarray, spacing: np.ndarray,
                  seed: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(distance in mm, continuous zyx index, across) where each ray from the seed first enters
    aerated lung for AIR_RUN_MM; inf / nan where it does not within MAX_REACH_MM. ``across``: the
    ray crosses the lesion itself on its way, so it may end a chord: it stays within CHORD_HU of the
    seed's density until the lung's edge, and what it meets is lung, not the air outside the body
    (darker than OUTSIDE_AIR_HU: a ray across a wall, or through fat or bone, crossed no lesion)."""
    step = 1.0
    radii = np.arange(0.0, MAX_REACH_MM + 1e-6, step)
    pts = seed + DIRECTIONS[:, None, :] * radii[None, :, None] / spacing
    inside = inside_grid(pts, array.shape)
    values = ndimage.map_coordinates(array, pts.reshape(-1, 3).T, order=1, mode="nearest")
    values = values.reshape(len(DIRECTIONS), len(radii)).astype(np.float32)
    run = max(1, int(round(AIR_RUN_MM / step)) + 1)
    kernel = np.ones(run) / run
    mean = ndimage.convolve1d(values, kernel, axis=1, mode="nearest", origin=-(run // 2))
    air = (mean < AIR_LIKE_HU) & inside
    first = np.where(air.any(axis=1), air.argmax(axis=1), -1)
    dist = np.where(first >= 0, radii[np.maximum(first, 0)], np.inf)
    hits = np.where(first[:, None] >= 0, pts[np.arange(len(DIRECTIONS)), np.maximum(first, 0)], np.nan)
    # read past the edge's partial volume (a skin's edge mixes into the first run)
    past = np.minimum(np.maximum(first, 0) + run, len(radii) - 1)
    outside = mean[np.arange(len(DIRECTIONS)), past] <= OUTSIDE_AIR_HU
    level = float(np.median(mean[:, 0]))  # the seed's density, read all round it
    before_edge = radii[None, :] < dist[:, None] - AIR_RUN_MM - EDGE_BLUR_MM
    held = ~np.any(before_edge & (np.abs(mean - level) > CHORD_HU), axis=1)
    return dist, hits, (first >= 0) & ~outside & held


def lesion_scale(dist: np.ndarray, across: np.ndarray) -> float | None:
    """The lesion's radius-like scale in mm from the ray distances to lung (rays along DIRECTIONS);
    None when the prompt is not in the lung (too few rays find aerated lung).

    The larger of a low percentile of the rays and half that of the chords through the prompt (a
    ray and its opposite): both are the radius for a click at a ball's centre, but a click a few
    mm inside a large tumour's surface has lung that near along a third of its rays (sized as a
    nodule, it gave a sliver of the tumour), while the chords across it stay as long as the
    tumour is wide: for a click anywhere in a ball, half of them are longer than its radius."""
    found = np.isfinite(dist)
    if np.mean(found) < MIN_LUNG_RAYS:
        return None
    scale = float(np.percentile(dist[found], SCALE_QUANTILE))
    chords = (dist + dist[OPPOSITE])[across & across[OPPOSITE]]  # rays that cross the lesion only
    if chords.size >= MIN_CHORD_RAYS:
        scale = max(scale, 0.5 * float(np.percentile(chords, SCALE_QUANTILE)))
    return scale


def lung_envelope(roi: Roi, scale_mm: float, hits_image_zyx: np.ndarray,
                  level_hu: float = AIR_LIKE_HU) -> np.ndarray | None:
    """The lung around the lesion (the lung components the rays reached near the lesion's scale),
    closed with a ball of ENVELOPE_FACTOR * scale; None when no such lung lies in the ROI.

    The lung is aerated lung (the air level; the margin gives back the pleura's partial volume),
    except where a slice crosses a wall that runs along the slices (the diaphragm's dome on thick
    slices): that slice is a mix of lung and wall, up to its whole thickness, which the air level
    calls wall, and the envelope cut away the slice in which a lesion meets the dome. A voxel with
    aerated lung on one side along z and tissue on the other is lung below ``level_hu`` (the
    lesion's own edge level, half-way between it and the lung: there envelope and lesion edge are
    the same iso-surface of the partial volume). Drawn so everywhere, the envelope also took a
    layer of wall under every juxtapleural nodule. On slices thicker than the closing's grid the
    closing runs on sub-slices (intensities interpolated between slice centres), a voxel lying in
    the envelope when most of it does: a ball sampled only at slice centres fits into a lesion's
    bottom slice, where it rests on the dome, as if that slice were a dent, and cut it.
    """
    hits = hits_image_zyx[np.all(np.isfinite(hits_image_zyx), axis=1)]
    pts = roi.to_roi(hits) if len(hits) else np.zeros((0, 3))
    r = max(ENVELOPE_FACTOR * scale_mm, 2.0 * float(roi.spacing.max()))
    k = int(np.ceil(roi.spacing[0] / max(r / CLOSING_GRID, float(roi.spacing[1:].min())) - 1e-6))
    levels = _lung_levels(roi.smooth, level_hu)
    if k <= 1:
        return _envelope(roi.smooth, roi.spacing, roi.seed, roi.dist, pts, scale_mm, r, levels, level_hu)
    n = roi.smooth.shape[0]
    levels = np.repeat(levels, k, axis=0)
    centres = (np.arange(n * k) + 0.5) / k - 0.5  # sub-slice centres in slice indices
    lo = np.clip(np.floor(centres), 0, n - 1).astype(int)
    w = np.clip(centres - lo, 0.0, 1.0)[:, None, None].astype(np.float32)
    fine = roi.smooth[lo] * (1 - w) + roi.smooth[np.minimum(lo + 1, n - 1)] * w
    to_fine, shift = np.array([k, 1.0, 1.0]), np.array([(k - 1) / 2, 0.0, 0.0])
    spacing, seed = roi.spacing / to_fine, roi.seed * to_fine + shift
    env = _envelope(fine, spacing, seed, distance_map(fine.shape, seed, spacing), pts * to_fine + shift,
                    scale_mm, r, levels, level_hu)
    return None if env is None else env.reshape(n, k, *env.shape[1:]).mean(axis=1) > 0.5


def _lung_levels(smooth: np.ndarray, level_hu: float) -> np.ndarray:
    """Per voxel, the level below which it counts as lung: the air level, or ``level_hu`` (the
    lesion's edge level) for a voxel between aerated lung on one side along z and tissue at least
    that dense on the other, where the slice crosses a wall running along the slices."""
    out = np.full(smooth.shape, AIR_LIKE_HU, np.float32)
    if level_hu <= AIR_LIKE_HU or smooth.shape[0] < 3:
        return out
    above, below = smooth[2:], smooth[:-2]
    crossing = (np.minimum(above, below) < AIR_LIKE_HU) & (np.maximum(above, below) >= level_hu)
    out[1:-1][crossing] = level_hu
    return out


def _envelope(smooth: np.ndarray, spacing: np.ndarray, seed: np.ndarray, dist: np.ndarray, hits: np.ndarray,
              scale_mm: float, r: float, levels: np.ndarray, edge_hu: float) -> np.ndarray | None:
    """:func:`lung_envelope` on one grid (``hits``: continuous indices on it; ``dist``: mm from the seed;
    ``levels``: below which a voxel is lung)."""
    # aerated lung holds parenchyma (about -850 HU); air outside the body is about -1000
    outside = smooth <= OUTSIDE_AIR_HU
    air = (smooth < levels) & ~outside
    if outside.any():
        # the partial-volume rim along the skin lies within the blur of the air outside; what is
        # left of it is thin everywhere: lung is not
        air &= edt_mm(~outside, spacing) > blur_mm(spacing)
    labels = cc3d.connected_components(air, connectivity=26)
    labels = _thick_parts(labels, air, max(MIN_LUNG_MM, float(spacing.min())), spacing)
    if not labels.any():
        return None
    pts = np.round(hits).astype(int)
    near = pts[np.all((pts >= 0) & (pts < np.array(air.shape)), axis=1)]
    d = np.sqrt((((near - seed) * spacing) ** 2).sum(axis=1)) if len(near) else np.zeros(0)
    near = near[d <= 2.0 * scale_mm + 3.0]
    ids = np.unique(labels[tuple(near.T)]) if len(near) else np.zeros(0, int)
    ids = ids[ids > 0]
    if not ids.size:
        return None
    # only near the lesion (it reaches about twice its scale from the seed), plus the ball's reach
    half = np.ceil((ENVELOPE_REACH * scale_mm + r + 5.0) / spacing).astype(int)
    centre = np.round(seed).astype(int)
    box = tuple(slice(max(c - h, 0), min(c + h + 1, n)) for c, h, n in zip(centre, half, air.shape))
    lung = np.isin(labels[box], ids)
    # closing = complement of the opening of the complement; on a grid of r / CLOSING_GRID with
    # the border extended (the anatomy continues beyond the box)
    closed = ~coarse_opening_mm(~lung, r, spacing, CLOSING_GRID)
    # the envelope falls short of the pleura under a lesion's base: the ball cuts it by about
    # scale^2 / (2 r), and the air level lies inside the wall's surface by the width of the wall's
    # partial-volume layer (measured at a solid lesion's edge level; else about the smoothing).
    # Give that back, only near the lesion (the sheet of wall it adds is cut by the opening that
    # follows); the larger of the two, as their sum took a layer of wall under 6-40 mm nodules
    offset = _edge_offset(smooth[box], closed, dist[box] <= ENVELOPE_REACH * scale_mm, spacing, edge_hu)
    sagitta = scale_mm**2 / (2.0 * r)
    margin = sagitta + 0.5 * SMOOTH_MM if offset is None else max(sagitta, offset)
    out = np.zeros(air.shape, dtype=bool)
    out[box] = closed | (dilate_mm(closed, margin, spacing) & (dist[box] <= 1.5 * scale_mm + margin))
    return out


def _thick_parts(labels: np.ndarray, air: np.ndarray, radius: float, spacing: np.ndarray) -> np.ndarray:
    """The labelled air components that hold a ball of ``radius`` mm somewhere (others zeroed).

    The partial-volume rim along the skin is thin everywhere: lung is not. An opening would also
    take the lung's own narrow parts: the recess where a nodule meets the wall, lung squeezed
    between vessels and the wall beside a small nodule, the costophrenic angle's tip, and the
    closing then cut the nodule there."""
    return np.where(labels_touching(labels, opening_mm(air, radius, spacing)), labels, 0)


def _edge_offset(smooth: np.ndarray, closed: np.ndarray, near: np.ndarray, spacing: np.ndarray,
                 edge_hu: float) -> float | None:
    """How far beyond the envelope (drawn at the air level) the wall's surface lies at the lesion's
    edge level ``edge_hu``, near the lesion: the width of the wall's partial-volume layer next to
    the lung, which blur, slice thickness and the wall's density set (1.4-2.1 mm measured on the
    synthetic chest). None when no edge level above the air level is given (a lesion lighter than
    fat) or no such layer borders the envelope."""
    if edge_hu <= AIR_LIKE_HU:
        return None
    layer = ~closed & (smooth < edge_hu)
    layer = components_touching(layer, dilate_mm(closed, float(spacing.max()), spacing) & layer)
    # the wall's surface: tissue at the edge level that borders the layer
    surface = near & ~closed & (smooth >= edge_hu) & dilate_mm(layer, float(spacing.max()), spacing)
    if not surface.any():
        return None
    return float(np.median(edt_mm(~closed, spacing)[surface]))


def clear_of_tissue(roi: Roi) -> np.ndarray:
    """Voxels lighter than fat and farther from anything as dense as fat than the image's blur.

    For a lesion lighter than fat (ground glass), whose band reaches the wall only through a
    denser spot: the envelope is there to keep out wall tissue, but its closing ball also cuts
    the lesion's base where it meets the wall. Wall tissue is fat or denser; the mix of wall and
    lung that the slice thickness and smoothing make next to it lies within the blur of it. What
    lies beyond is neither, so the envelope need not hold it back (the base: :func:`base_on_wall`)."""
    return edt_mm(roi.smooth < BELOW_FAT_HU, roi.spacing) > blur_mm(roi.spacing)


def base_on_wall(lesion: np.ndarray, free: np.ndarray, roi: Roi, level: float, lung: float) -> np.ndarray:
    """The base on a wall of a lesion lighter than fat (empty where it has none): the voxels of
    ``free`` (its band) within the blur of both the wall and the lesion that the envelope
    (``roi.allowed``) held back, that are more lesion than wall and that join the lesion.
    ``roi.allowed`` is not changed.

    Within the blur of the wall a voxel beside the lung reads the wall's mix with the lung at its
    distance from the wall's tissue: the median, per distance, over the wall's blur in the ROI (the
    wall being the tissue within the blur of the lesion, not the vessels round it). A voxel beside
    the lesion reads more, by its lesion share times the lesion's contrast to the lung: standing
    above the mix by half that contrast, it is more lesion than wall (the end slices' partial-volume
    rule, in-plane). Only within the lesion's own slices and their in-plane blur of it: across thick
    slices the end slices are settled on their own (:mod:`.end_slices`). A ground-glass nodule on a
    wall on thin slices lost this layer: 0.7-0.85x.

    Distances are whole voxels: where the wall's surface lies in a voxel matters, since the lesion
    beside the wall lifts the edge voxel's mix and can move the tissue's border out by one voxel (a
    half-ball on a flat wall: its base comes back with the wall's surface on a voxel boundary, not
    half-way through one). The rule then takes less, never the wall. ``level``, ``lung``: the
    lesion's and the aerated lung's levels.

    Only a lesion that is in the image gets a base: the median of its unsmoothed voxels reaches the
    threshold half-way from the lung to its level (ground-glass lesions on a wall read 112-196 HU
    above it). Where a wall nodule had gone, the segment at its place was the wall's blur in the
    smoothed image, its own voxels lung (124 HU below); given a base, it read as tissue and was
    kept as the lesion (held out, seeds 85-89)."""
    empty = np.zeros_like(lesion)
    if roi.allowed is None or level <= lung or not lesion.any():
        return empty
    if float(np.median(roi.raw[lesion])) < edge_threshold((level, lung)):
        return empty  # not in the image, only in its smoothing: the wall's own blur, no lesion to give a base
    blur = blur_mm(roi.spacing)
    tissue = roi.smooth >= BELOW_FAT_HU
    # the envelope kept the lesion a blur away from it: the tissue a voxel beyond that
    wall = components_touching(tissue, dilate_mm(lesion, blur + float(roi.spacing.max()), roi.spacing) & tissue)
    if not wall.any():
        return empty
    dist = edt_mm(~wall, roi.spacing)
    zone = ~tissue & (dist <= blur)
    beside = edt_mm(~lesion, roi.spacing) <= blur_mm(roi.spacing[1:])
    beside &= lesion.any(axis=(1, 2))[:, None, None]
    held = zone & free & ~roi.allowed & beside
    if not held.any():
        return empty
    values, step = roi.smooth[zone], 0.5 * float(roi.spacing.min())
    bins = np.floor(dist[zone] / step).astype(np.int32)
    n_bins = int(bins.max()) + 1
    mix = np.full(n_bins, np.inf)
    read = np.bincount(bins, minlength=n_bins) >= MIN_MIX_VOXELS
    mix[read] = shell_quantile(values, bins, n_bins, 0.5)[read]
    at = np.floor(dist[held] / step).astype(np.int32)
    base = np.zeros_like(held)
    base[held] = more_lesion_than_wall(roi.smooth[held], mix[at], (level, lung))
    return components_touching(lesion | base, lesion) & ~lesion
