"""A lesion's end slices where it rests on a wall that runs along thick slices (the diaphragm's
dome on 5 mm slices).

The dome crosses such a slice obliquely: the slice is a mix of lung and dome, as dense as a
lesion over a wide area, and the lung envelope (closed at the threshold level) calls it wall or
lung depending on how much dome it holds. A 14 mm nodule came out 0.46x (the slice it shares
with the dome left out, the one above cut to the cap's reach) or 2.1x (a slice of dome mix
under it taken) across the benchmark's studies.

A pixel of such a slice reads the shares of the slice's thickness that lung, wall and lesion
fill, each at its level. Beside the lesion it reads the wall's share (the ring round the
lesion's cross-section); over the lesion, the wall's share plus the lesion's. A pixel the lesion
fills at least half of (the benchmark's truth; on an end slice the lesion crosses the slice's
inner face, so this is the pixel's centre lying in it) has an excess over the ring's level of at
least half the lesion's contrast to the lung: the threshold half-way between lesion and lung,
with the wall's share of the slice read locally. A slice with no dome in it reads the lung round
the lesion, and the rule is the threshold.
"""

from __future__ import annotations

import cc3d
import numpy as np

from ..filtering.components import components_touching, edt_mm
from ..partial_volume import edge_threshold
from .levels import more_lesion_than_wall
from .roi import SMOOTH_MM, Roi

THICK_SLICE_RATIO = 2.0  # slices this many times thicker than the pixels are thick: a wall along them is mixed
RING_MM = (2.0, 6.0)  # the wall's share is read this far round a cross-section (past the smoothing's blur)
MIN_RING_PIXELS = 10  # fewer pixels of ring to read the wall's mix from: it cannot be read
MIN_PLANE_SPREAD_MM = 2.0  # a ring whose SD across its thinner axis is less (a strip under ~7 mm) holds no plane
ON_WALL_SHARE = 0.5  # the slice beyond an end, under it, is wall when at most this share of it is in the envelope
SLAB_SHARE = 0.8  # a region this much in the seed's thick slice, reaching its ROI's border: that slice's wall mix
BESIDE_MM = 6.0  # the slices beside the seed's are compared this far round it (a small lesion's surroundings)
MIN_PIECE_MM = SMOOTH_MM  # a piece followed into a slice smaller than a disc this radius (the blur) is noise


def _wall_mix(smooth: np.ndarray, footprint: np.ndarray, spacing: np.ndarray, floor: float,
              crossing: np.ndarray) -> np.ndarray | float | None:
    """The wall's mix under ``footprint`` (never below the lung's level): a plane fitted to a ring
    round it, leaving out ``crossing`` (a dome crossing the slice obliquely is a slope across it;
    where the ring is lung on one side and dome on the other, the plane runs between them). The
    ring's median where the ring holds no plane (a strip); None where there is too little ring to
    read."""
    dist = edt_mm(~footprint, spacing)
    ring = (dist > RING_MM[0]) & (dist <= RING_MM[1]) & ~crossing
    if ring.sum() < MIN_RING_PIXELS:
        return None
    yx = np.argwhere(ring) * spacing
    centre = yx.mean(axis=0)
    yx -= centre
    values = smooth[ring].astype(float)
    if np.linalg.eigvalsh(np.cov(yx.T))[0] < MIN_PLANE_SPREAD_MM**2:
        return max(float(np.median(values)), floor)
    coef, *_ = np.linalg.lstsq(np.column_stack([np.ones(len(yx)), yx]), values, rcond=None)
    grid = np.indices(smooth.shape).reshape(2, -1).T * spacing - centre
    return np.maximum((coef[0] + grid @ coef[1:]).reshape(smooth.shape), floor)


def rests_on_wall(lesion: np.ndarray, allowed: np.ndarray, end: int, beyond: int) -> bool:
    """Does slice ``end`` of the lesion rest on a wall that runs along the slices (the slice
    ``beyond``, under its cross-section, mostly outside the lung envelope ``allowed``)?"""
    return 0 <= beyond < lesion.shape[0] and float(allowed[beyond][lesion[end]].mean()) <= ON_WALL_SHARE


def _ends(lesion: np.ndarray) -> list[tuple[int, int | None, int]]:
    """(end, the slice inwards, the slice beyond) for the lesion's bottom and top slice; the slice
    inwards is None for a lesion of one slice."""
    zs = np.flatnonzero(lesion.any(axis=(1, 2)))
    if zs.size == 0:
        return []
    if zs.size == 1:
        return [(zs[0], None, zs[0] - 1), (zs[0], None, zs[0] + 1)]
    return [(zs[0], zs[0] + 1, zs[0] - 1), (zs[-1], zs[-1] - 1, zs[-1] + 1)]


def _decide(near: np.ndarray, smooth_k: np.ndarray, smooth_near: np.ndarray, had: np.ndarray, spacing: np.ndarray,
            levels: tuple[float, float]) -> np.ndarray:
    """A slice of the lesion next to one where its cross-section is ``near``: the pixels the rule
    gives within what a round lesion can reach from ``near`` (``had``: what the slice held before,
    kept within that reach where the wall's mix cannot be read)."""
    sp2 = spacing[1:]
    # a round lesion of radius r on one slice has at most radius sqrt(r^2 + T^2) on a slice T
    # further on (its equator there), plus a pixel for the edge
    r = float(np.sqrt(near.sum() * sp2[0] * sp2[1] / np.pi))
    grow = float(np.sqrt(r * r + spacing[0] ** 2)) - r + float(sp2.max())
    # dense on the slice next to it too: the lesion there, or a wall that crosses the slices (the
    # chest wall beside a nodule on the dome, a vessel): beside the lesion, not under it, and no
    # mix of the wall along the slices
    dense = smooth_near >= edge_threshold(levels)
    reach = (edt_mm(~near, sp2) <= grow) & ~(dense & ~near)
    wall_mix = _wall_mix(smooth_k, reach, sp2, levels[1], dense)
    found = had & reach if wall_mix is None else reach & more_lesion_than_wall(smooth_k, wall_mix, levels)
    return components_touching(found, near, connectivity=8)


def thick_slices(spacing: np.ndarray) -> bool:
    """Whether slices are THICK_SLICE_RATIO times thicker than the pixels: a wall running along them
    mixes with the lung across a slice. ``spacing``: (z, y, x) mm."""
    return bool(spacing[0] >= THICK_SLICE_RATIO * float(spacing[1:].max()))


def settle_end_slices(lesion: np.ndarray, smooth: np.ndarray, allowed: np.ndarray | None,
                      spacing: np.ndarray, levels: tuple[float, float]) -> tuple[np.ndarray, float]:
    """The lesion with its end slices that rest on a wall along thick slices settled by the
    partial-volume rule, and the share of the volume those slices hold (0: none).

    Each such end slice is decided by the rule within a round lesion's reach from the slice
    inwards (the dome's mix spreads far in it); then the lesion is followed into the slice beyond
    (the one it shares with the dome, which the envelope left out). Both are read through the
    wall's mix, whatever the rule kept: their share of the volume, each slice counted at the larger
    of its volume before and after the rule (so above 0 when the rule emptied one, at most 1), is
    what the volume cannot vouch for. ``allowed`` is read, not changed."""
    if allowed is None or not thick_slices(spacing):
        return lesion, 0.0
    out, settled = lesion.copy(), set()
    for end, inner, beyond in _ends(lesion):
        if not rests_on_wall(lesion, allowed, end, beyond):
            continue
        if inner is not None:
            out[end] = _decide(lesion[inner], smooth[end], smooth[inner], lesion[end], spacing, levels)
        if out[end].any():
            followed = _decide(out[end], smooth[beyond], smooth[end], lesion[beyond], spacing, levels)
            out[beyond] = _without_specks(followed, spacing[1:])
        settled |= {end, beyond}
    if not out.any():  # the rule emptied both ends of a two-slice lesion: nothing to prefer
        return lesion, 1.0
    larger = np.maximum(lesion.sum(axis=(1, 2)), out.sum(axis=(1, 2)))
    return out, float(sum(larger[k] for k in settled)) / max(float(larger.sum()), 1.0)


def _without_specks(piece: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """``piece`` without its parts smaller than a disc of MIN_PIECE_MM (the image's blur: noise)."""
    min_pixels = int(np.ceil(np.pi * MIN_PIECE_MM**2 / float(spacing[0] * spacing[1]) - 1e-9))
    return cc3d.dust(piece, threshold=min_pixels, connectivity=8).astype(bool)


def is_slice_of_wall(lesion: np.ndarray, border_cover: float, roi: Roi) -> bool:
    """Whether a region reaching its ROI's border (``border_cover`` > 0) lies nearly all
    (SLAB_SHARE) in the seed's slice, a thick one: a wall crossing that slice (the dome on 5 mm
    slices), whose mix with the lung is as dense as a ground-glass lesion over the whole slice. A
    lesion on it shows in the next slice into the lung, where the mix it shares the slice with is
    not: a click on an 8 mm ground-glass nodule's centroid, in the slice the dome crosses, took that
    slice's mix (9-11 mL, 35x)."""
    per_slice = np.count_nonzero(lesion, axis=(1, 2))
    seed_slice = int(np.clip(round(float(roi.seed[0])), 0, lesion.shape[0] - 1))
    return bool(thick_slices(roi.spacing) and border_cover > 0.0
                and per_slice[seed_slice] >= SLAB_SHARE * per_slice.sum())


def beside_the_slice(array: np.ndarray, seed: np.ndarray, spacing: np.ndarray) -> np.ndarray | None:
    """The seed moved to the neighbouring slice that is more lung round it (the lower median over a
    box of +-BESIDE_MM round the seed in the slice: the lung side of a wall crossing the seed's
    slice, where a lesion on that wall stands out of the lung), or None at the image's first or last
    slice. ``seed``: continuous (z, y, x) index into ``array``."""
    k = int(round(seed[0]))
    sides = [z for z in (k - 1, k + 1) if 0 <= z < array.shape[0]]
    if len(sides) < 2:
        return None
    reach = [BESIDE_MM / spacing[i] for i in (1, 2)]
    near = tuple(slice(max(0, int(round(seed[i] - r))), int(round(seed[i] + r)) + 1) for i, r in zip((1, 2), reach))
    best = min(sides, key=lambda z: float(np.median(array[z][near])))
    return np.array([float(best), seed[1], seed[2]])
