"""A lesion's end slices where it rests on a wall that runs along thick slices (the diaphragm's
dome on 5 mm slices).

The dome crosses such a slice obliquely: the slice is a mix of lung and dome, as dense as a
lesion over a wide area, and the lung envelope (closed at the threshold level) calls it wall or
lung depending on how much dome it holds. A 14 mm nodule came out 0.46x (the slice it shares
with the dome left out, the one above cut to the cap's reach) or 2.1x (a slice of dome mix
under it taken) across the benchmark's studies.

A pixel of such a slice reads the shares of the slice's thickness that lung, wall and lesion
fill, each at its level. Beside the lesion it reads the wall's share (the ring round the
lesion's cross-section); over the lesion, the wall's share plus the lesion's. The truth holds a
pixel the lesion fills at least half of, so a pixel is the lesion's when its excess over the
ring's level is at least half the lesion's contrast to the lung: the same rule as the
threshold half-way between lesion and lung, with the wall's share of the slice read locally.
A slice with no dome in it reads the lung round the lesion, and the rule is the threshold.
"""

from __future__ import annotations

import numpy as np

from ..filtering.components import components_touching, edt_mm

THICK_SLICE_RATIO = 2.0  # slices this many times thicker than the pixels are thick: a wall along them is mixed
RING_MM = (2.0, 6.0)  # the wall's share is read this far round a cross-section (past the smoothing's blur)
MIN_RING_PIXELS = 10  # fewer pixels of ring to read the wall's mix from: it cannot be read
PLANE_ROUNDS = 2  # fits of the wall's plane, each leaving out what stood out of the one before
OUTLIER_SD = 2.5  # a ring pixel this many robust SDs off the plane stands out of it
ON_WALL_SHARE = 0.5  # the slice beyond an end, under it, is wall when at most this share of it is in the envelope


def _wall_mix(smooth: np.ndarray, footprint: np.ndarray, spacing: np.ndarray, floor: float,
              crossing: np.ndarray) -> np.ndarray | None:
    """The wall's mix under ``footprint`` (never below the lung's level): a plane fitted to a ring
    round it, leaving out ``crossing`` and, robustly, what stands out of the plane (a vessel).
    A dome crossing the slice obliquely is a slope across it. None: too little ring to read."""
    dist = edt_mm(~footprint, spacing)
    ring = (dist > RING_MM[0]) & (dist <= RING_MM[1]) & ~crossing
    if ring.sum() < MIN_RING_PIXELS:
        return None
    yy, xx = np.nonzero(ring)
    design = np.column_stack([np.ones(yy.size), yy, xx]).astype(float)
    values = smooth[ring].astype(float)
    keep = np.ones(values.size, bool)
    for _ in range(PLANE_ROUNDS):
        coef, *_ = np.linalg.lstsq(design[keep], values[keep], rcond=None)
        res = values - design @ coef
        spread = 1.4826 * float(np.median(np.abs(res[keep] - np.median(res[keep])))) + 1e-3
        keep = np.abs(res) <= OUTLIER_SD * spread
    y, x = np.indices(smooth.shape)
    return np.maximum(coef[0] + coef[1] * y + coef[2] * x, floor)


def _lesion_pixels(smooth: np.ndarray, within: np.ndarray, crossing: np.ndarray, spacing: np.ndarray,
                   levels: tuple[float, float]) -> np.ndarray | None:
    """The pixels of ``within`` that the lesion fills at least half of, over the wall's mix round
    it (read where the slice next to it, towards the lesion's middle, is not ``crossing``). None:
    the mix cannot be read."""
    level, lung = levels
    wall_mix = _wall_mix(smooth, within, spacing, lung, crossing)
    return None if wall_mix is None else within & (smooth - wall_mix >= 0.5 * (level - lung))


def rests_on_wall(lesion: np.ndarray, allowed: np.ndarray, end: int, beyond: int) -> bool:
    """Does slice ``end`` of the lesion rest on a wall that runs along the slices (the slice
    ``beyond``, under its cross-section, mostly outside the lung envelope ``allowed``)?"""
    return 0 <= beyond < lesion.shape[0] and float(allowed[beyond][lesion[end]].mean()) <= ON_WALL_SHARE


def _ends(lesion: np.ndarray) -> list[tuple[int, int, int]]:
    """(end, the slice inwards, the slice beyond) for the lesion's bottom and top slice (a lesion
    of one slice: that slice is its own inward neighbour)."""
    zs = np.flatnonzero(lesion.any(axis=(1, 2)))
    if zs.size == 0:
        return []
    return [(zs[0], min(zs[0] + 1, zs[-1]), zs[0] - 1), (zs[-1], max(zs[-1] - 1, zs[0]), zs[-1] + 1)]


def _decide(out: np.ndarray, k: int, inner: int, smooth: np.ndarray, allowed: np.ndarray, spacing: np.ndarray,
            levels: tuple[float, float]) -> None:
    """Slice ``k`` of the lesion, next to slice ``inner``, decided by the rule within what a round
    lesion can reach from ``inner``; what it holds joins ``allowed``."""
    sp2 = spacing[1:]
    # a round lesion of radius r across slice ``inner`` is at most sqrt(r^2 + T^2) across on a
    # slice T further on (its equator there), plus a pixel for the edge
    r = float(np.sqrt(out[inner].sum() * sp2[0] * sp2[1] / np.pi))
    grow = float(np.sqrt(r * r + spacing[0] ** 2)) - r + float(sp2.max())
    # dense on slice ``inner`` too: the lesion there, or a wall that crosses the slices (the chest
    # wall beside a nodule on the dome, a vessel): beside the lesion, not under it, and no mix of
    # the wall along the slices
    dense = smooth[inner] >= 0.5 * sum(levels)
    reach = (edt_mm(~out[inner], sp2) <= grow) & ~(dense & ~out[inner])
    found = _lesion_pixels(smooth[k], reach, dense, sp2, levels)
    if found is None:  # walls all round: keep what the envelope gave, within the reach
        found = out[k] & reach
    out[k] = components_touching(found, out[inner], connectivity=8)
    allowed[k] |= out[k]


def settle_end_slices(lesion: np.ndarray, smooth: np.ndarray, allowed: np.ndarray | None,
                      spacing: np.ndarray, levels: tuple[float, float]) -> tuple[np.ndarray, float]:
    """The lesion with its end slices that rest on a wall along thick slices settled by the
    partial-volume rule, and the share of the volume such end slices held before the rule
    decided them (0: none).

    First the lesion is followed into the slice beyond each such end (the slice it shares with
    the dome, which the envelope left out); then each end slice on a wall is decided by the rule
    within a round lesion's reach from the slice inwards (the dome's mix spreads far in it).
    ``allowed`` (the lung envelope) gains what the rule finds. An end slice on a wall is read
    through the wall's mix, whatever the rule kept of it: its share is what the volume cannot
    vouch for."""
    if allowed is None or spacing[0] < THICK_SLICE_RATIO * float(spacing[1:].max()):
        return lesion, 0.0
    out = lesion.copy()
    for end, _inner, beyond in _ends(out):
        if rests_on_wall(out, allowed, end, beyond):
            _decide(out, beyond, end, smooth, allowed, spacing, levels)
    in_doubt, before = 0.0, float(out.sum())
    for end, inner, beyond in _ends(out):
        if inner != end and rests_on_wall(out, allowed, end, beyond):
            in_doubt += float(out[end].sum())
            _decide(out, end, inner, smooth, allowed, spacing, levels)
    if not out.any():  # two slices, both a wall's mix by the rule: nothing to prefer
        return lesion, 1.0
    return out, in_doubt / max(before, 1.0)
