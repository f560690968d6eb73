"""Cut what is attached to a lesion: walls (a top-hat with a ball larger than the lesion) and
vessels (an opening with a ball that fits inside it), each scaled to the lesion's own size.

A vessel as thick as the lesion-scaled ball survives it; the ball then grows until the eroded core
stays within the lesion. Such a vessel is attached: the opening keeps a fillet where the vessel
meets or runs along the lesion, and the border detail grown back around the opening would keep a
stretch of the vessel. So with an attached vessel the ball is taken near the lesion's own
thickness, and what runs on beyond the regrowth's reach (the vessel) keeps only its rim.
"""

from __future__ import annotations

import logging

import numpy as np

from ..filtering.components import (
    box_around,
    coarse_opening_mm,
    components_touching,
    dilate_mm,
    edt_mm,
    erode_mm,
    fill_holes,
    opening_mm,
)
from .roi import Roi, component_near, ray_profiles

log = logging.getLogger(__name__)

SEED_SEARCH_MM = 3.0  # how far a propagated prompt may sit outside the lesion
BIG_BALL_FACTOR = 2.0  # wall-removing ball radius / lesion radius
BIG_BALL_GRID = 10  # the big ball rolls on a grid of radius / this (walls need no detail)
SMALL_BALL_FACTOR = 0.5  # vessel-cutting ball radius / lesion radius
LEAK_BALL_FACTOR = 0.8  # the same after a leak along vessels (a region reaching the ROI border)
MAX_BALL_FACTOR = 0.9  # the largest vessel-cutting ball tried while the eroded core is not compact
CLOSE_FRACTION = 1.0  # closing radius / small ball: bridges pores of ground-glass lesions
STUB_FRACTION = 0.5  # protrusions up to this fraction of the small ball are kept (border detail)
CORE_ELONGATION = 2.0  # an eroded core reaching farther than this * its middle half-axis runs along a vessel
REGROW_SLACK = 0.5  # voxels (finest axis) regrown beyond the opening, for the staircase
AS_THICK_FACTOR = 0.75  # an attachment that outlasts a ball this share of the lesion's thickness is as thick


def lesion_radius(region: np.ndarray, roi: Roi, sign: float) -> tuple[float, float, np.ndarray]:
    """(radius, extent, origin): median and 90th-percentile exit distance of rays from the most
    lesion-like voxel near the prompt. Rays that never leave run along a wall or vessel."""
    near = np.flatnonzero((region & (roi.dist <= SEED_SEARCH_MM)).ravel())
    best = near[np.argmax(sign * roi.smooth.ravel()[near])]
    origin = np.array(np.unravel_index(best, region.shape), dtype=float)
    inside = ray_profiles(region.astype(np.uint8), origin, roi.spacing, 200.0, order=0)
    exits = np.where(inside.all(axis=1), inside.shape[1], (inside == 0).argmax(axis=1)) * 0.5
    finite = exits[exits < 200.0]
    seen = finite if finite.size >= 0.1 * exits.size else exits
    radius = float(max(np.median(seen), roi.spacing.max()))
    # flat lesions lying on a wall are wide: their long extent, counting only rays that leave
    extent = float(np.percentile(exits[exits <= 3 * radius], 90)) if radius < 200.0 else radius
    return radius, extent, origin


def _compact(core: np.ndarray, centre: np.ndarray, spacing: np.ndarray, ball: float, size: float) -> bool:
    """Does the eroded core stay within a lesion's reach of its deepest point, rather than run
    along an attached structure?

    A tube (a vessel: one long axis, two short) is what the opening must cut; a plate (a flat
    lesion spread on the pleura or a fissure: two long axes, one short) is the lesion itself. So
    the reach is measured against the core's middle half-axis (plus the ball eroded from it), not
    its thinnest: an ellipsoid up to CORE_ELONGATION : 1 in its long axis passes, and so does a
    flat disc; a nodule with a vessel running out of it does not. The half-axis is read from the
    covariance of the core's voxels (a solid ellipsoid's variance along an axis is a^2/5); an
    attached tube only lowers it (its voxels add no spread across it). A sheet that runs on far
    beyond the lesion (the pleura's partial-volume layer on thick slices) is no lesion either:
    the core must also stay within CORE_ELONGATION times the lesion's ``size`` (its thickness, or
    its extent along the rays from the seed that leave it)."""
    pts = (np.argwhere(core) - centre) * spacing
    far = float(np.sqrt((pts**2).sum(axis=1)).max())
    if far > CORE_ELONGATION * size:
        return False
    if len(pts) < 4:
        return True
    middle = float(np.sqrt(5.0 * max(np.linalg.eigvalsh(np.cov(pts.T))[1], 0.0)))
    return far <= CORE_ELONGATION * (middle + ball)


def _regrow(piece: np.ndarray, core: np.ndarray, ball: float, reach: float, sp: np.ndarray,
            vessel: bool, solid: bool) -> np.ndarray:
    """The lesion grown back from its eroded core: the opening (the core grown by the ball) and
    the protrusions within ``reach`` of the core (border detail the ball could not enter).

    A protrusion that runs on beyond the reach is a vessel when one is attached (``vessel``: a lobe
    or a partial-volume bump ends within it) or, for a ``solid`` lesion, when what runs on is itself
    a tube at least half as thick as the ball (a vessel just thinner than the ball passing along
    the lesion's side: the core stayed compact and the regrowth took the stretch alongside, 1.4-1.6x
    on 9 mm nodules). Half the ball, but at least a voxel of the coarsest axis: across 5 mm slices
    the tube must be 10 mm thick, so for a nodule there the rule is in effect off (a slice resolves
    no tube across it); a large tumour's ball is wider. Of it only the opening's rim is kept.
    Thinner ones (spicules, a pleural tag) are border detail that readers draw as lesion; so is what
    runs on from ground glass, whose band reaches through its porous edge into the lung texture and
    vessels round it (LIDC-0002 lost a fifth of its volume)."""
    zone = piece & dilate_mm(core, reach, sp)
    if not (vessel or solid):
        return zone
    rest = piece & ~dilate_mm(core, ball + REGROW_SLACK * sp.min(), sp)
    runs_on = rest & ~zone
    if not vessel:
        runs_on = opening_mm(runs_on, max(0.5 * ball, float(sp.max())), sp)
    return zone & ~components_touching(rest, runs_on)


def separate(region: np.ndarray, roi: Roi, sign: float, *, solid: bool,
             small_factor: float = SMALL_BALL_FACTOR) -> tuple[np.ndarray | None, float, bool]:
    """The lesion within the seed's region, its radius (mm) and whether an attachment as thick as
    it was cut: walls cut off by a top-hat, vessels by an opening. An attached structure that
    outlasts a ball of AS_THICK_FACTOR of the lesion's thickness is about as thick as what is kept:
    then the shape cannot say which is the lesion (a vanished nodule's vessel, a junction of
    vessels). ``solid``: the lesion is as
    dense as its vessels (not ground glass), so a tube running on from it is one (:func:`_regrow`)."""
    radius, extent, _ = lesion_radius(region, roi, sign)
    big = BIG_BALL_FACTOR * max(radius, extent)
    tophat = region & ~coarse_opening_mm(region, big, roi.spacing, BIG_BALL_GRID)
    part = component_near(tophat, roi.dist, SEED_SEARCH_MM)
    if part is None:
        return None, radius, False
    sp = roi.spacing
    # everything below is local to the seed's piece: work in its box (the margin bounds the
    # regrowth and closing radii below, both at most a multiple of the lesion radius)
    top_factor = max(small_factor, MAX_BALL_FACTOR)
    box = box_around(part, (1.0 + STUB_FRACTION + CLOSE_FRACTION) * top_factor * radius, sp)
    piece, dist = part[box], roi.dist[box]
    # the small ball must fit in the lesion itself: size it by the lesion's thickness near the seed
    depth = edt_mm(piece, sp)
    near = dist <= radius
    thickness = float(depth[near].max())
    centre = np.array(np.unravel_index(np.argmax(np.where(near, depth, 0.0)), depth.shape))
    small = core = None
    elongated = as_thick = False
    for factor in np.linspace(small_factor, top_factor, 4) if top_factor > small_factor else [small_factor]:
        small = max(float(factor) * min(radius, thickness), 0.5 * sp.min())
        # opening restricted to the seed's piece: erode, keep the piece by the seed, grow back
        core = component_near(depth > small, dist, radius)
        if core is None or _compact(core, centre, sp, small, max(thickness, extent)):
            break
        # the eroded core still runs far beyond the lesion: a vessel (or fissure) at least as
        # thick as this ball is attached; a ball nearer the lesion's own thickness cuts it
        elongated = True
        as_thick = as_thick or small >= AS_THICK_FACTOR * min(radius, thickness)
    # inside the lung envelope an elongated attachment is a vessel (or a fissure); a region not held
    # to it (no lung around, or judged whole after nothing was found inside it) may run into the
    # wall. A ball thinner than a slice resolves no shape across slices: there the attachment may
    # be the pleura's partial-volume sheet, and whether it runs on or ends cannot be told
    vessel = elongated and roi.allowed is not None and 2.0 * small >= float(sp.max())
    if vessel and core is not None:
        # the ball that first cut the vessel still fits where it meets the lesion (a fillet, or
        # the whole stretch of a vessel running along it): one near the lesion's thickness does
        # not. Half a coarsest voxel below it, as depths are read at voxel centres.
        nearer = min(top_factor * min(radius, thickness), thickness - 0.5 * float(sp.max()))
        if nearer > small:
            small, core = nearer, component_near(depth > nearer, dist, radius)
    regrow = (1.0 + STUB_FRACTION) * small + REGROW_SLACK * sp.min()
    close = max(CLOSE_FRACTION * small, sp.min())
    if core is None:
        core = piece
    lesion = component_near(_regrow(piece, core, small, regrow, sp, vessel, solid), dist, SEED_SEARCH_MM)
    if lesion is None:
        return None, radius, as_thick
    # a closing bridges the pores of textured (ground-glass) lesions before filling holes
    closed = erode_mm(dilate_mm(lesion, close, sp), close - 1e-3, sp)
    if roi.allowed is not None:
        closed &= roi.allowed[box]
    out = np.zeros_like(part)
    out[box] = fill_holes(closed | lesion)
    log.debug("separate: region %d, part %d, lesion %d, small ball %.1f mm",
              region.sum(), part.sum(), out.sum(), small)
    return out, radius, as_thick
