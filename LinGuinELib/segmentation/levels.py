"""Intensity levels of a lesion and its surroundings, measured from the image around the prompt.

No HU constant decides where a lesion ends: the threshold is half-way between the lesion's own
level and that of its surroundings (the iso-level of a partial-volume edge), both read from the
lesion's radial intensity profile and then from the region found, so solid, part-solid and
ground-glass lesions, lymph nodes in fat and liver lesions are handled alike.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..filtering.components import box_around, edt_mm
from ..partial_volume import edge_threshold
from .roi import SMOOTH_MM, Roi, kernel_l2, ray_profiles

log = logging.getLogger(__name__)

AIR_LIKE_HU = -750.0  # below this: air / aerated lung parenchyma
SOFT_TISSUE_HU = -300.0  # a lesion darker than its surroundings must itself be at least this dense
FAT_HU_MAX = -40.0  # fat is below this (about -100 HU); solid tissue, even necrotic, above
BELOW_FAT_HU = -150.0  # fat (about -100 HU) and every other wall tissue is denser
MIN_CONTRAST_HU = 5.0  # below this no edge is trusted, whatever the noise
MIN_INTERIOR_VOXELS = 20  # fewer voxels beyond the partial-volume rim: a "small" lesion
HALO_SHARE = 0.5  # a lesion with this much of its near surroundings hazy has a ground-glass halo
HALO_SURE = 0.6  # ... and with this much, the halo's level holds through the re-measuring
HALO_DOUBT = 0.4  # a solid result with this much of them hazy cannot vouch that it has no halo
HALO_GAIN = 2.0  # ... and is a core in a halo when reading the halo gives at least this many times its volume
HALO_FLOOR = 0.2  # hazy: at least this share of the way from the aerated lung to the lesion
HALO_MIN_RISE_HU = 100.0  # ... and at least this far above it (lung texture and noise stay below)
LUNG_REACH_MM = 15.0  # how far out from a found lesion the aerated lung is looked for
MIN_SHELL_VOXELS = 10  # a shell round a lesion with fewer voxels says nothing of what lies there


def more_lesion_than_wall(values: np.ndarray, wall_mix: np.ndarray | float, levels: tuple[float, float]) -> np.ndarray:
    """The partial-volume rule where a lesion meets a wall: beside the lung a voxel reads the wall's
    mix with the lung; beside the lesion more, by its lesion share times the lesion's contrast to
    the lung. A voxel standing above the wall's mix by half that contrast is at least half lesion
    (the threshold half-way between lesion and lung, with the wall's share read locally).
    ``levels``: (lesion, aerated lung)."""
    level, lung = levels
    return values - wall_mix >= 0.5 * (level - lung)


def noise_delta(roi: Roi) -> tuple[float, float]:
    """(noise sd of the raw image near the seed, smallest trusted step after smoothing)."""
    noise = 1.4826 * float(np.median(np.abs(roi.raw - roi.smooth)[roi.dist <= 10.0]))
    # noise left after smoothing (white noise scales with the kernel's L2 norm), three sigma
    return noise, max(MIN_CONTRAST_HU, 3.0 * noise * kernel_l2(roi.spacing))


def shell_quantile(values: np.ndarray, shell: np.ndarray, n_shells: int, q: float) -> np.ndarray:
    """The q-quantile of ``values`` in each shell 0..n_shells-1 (one sort, no Python loop)."""
    keep = shell < n_shells
    v, lab = values[keep], shell[keep]
    order = np.argsort(v, kind="stable")
    order = order[np.argsort(lab[order], kind="stable")]
    counts = np.bincount(lab, minlength=n_shells)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pick = starts + np.round(q * np.maximum(counts - 1, 0)).astype(int)
    return v[order][np.minimum(pick, len(v) - 1)].astype(float)


def plateau(profile: np.ndarray, level: float, start: int, delta: float) -> tuple[int, float]:
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


def initial_levels(roi: Roi, core: float, bright: bool, delta: float) -> list[tuple[float, float]]:
    """Candidate (lesion level, surroundings level) pairs from a radial profile around the seed,
    most likely first; empty when the profile shows no edge.

    Each 1 mm spherical shell around the seed is summarised by its lower quartile (upper for
    dark lesions): robust to texture and noise, and it sees the surrounding tissue even when
    an attached wall fills half the shell. Going outwards, the surroundings are where the
    profile, having left the core level, levels off (a plateau) or turns back (next structure).
    A ground-glass plateau that later gives way to aerated lung is part of the lesion (the
    halo of a part-solid nodule): the lesion level becomes that plateau's. The same profile
    arises where thick slices average a solid lesion with the lung around it (a nodule on the
    diaphragm dome on 5 mm slices): the plain reading (core against that plateau) is kept as
    the second candidate.
    """
    shell = roi.dist.astype(np.int32)  # 1 mm shells
    n_shells = int(min(shell.max(), np.min(np.array(roi.smooth.shape) * roi.spacing) / 2))
    if n_shells < 4:
        return []
    sign = 1.0 if bright else -1.0
    q = 0.25 if bright else 0.75
    profile = sign * shell_quantile(roi.smooth, shell, n_shells, q)
    # the innermost shells hold few voxels: a running median keeps their noise from posing as an edge
    profile = ndimage.median_filter(profile, size=3, mode="nearest")
    level = sign * core
    k, background = plateau(profile, level, 0, delta)
    if k < 0:
        return []
    candidates = [(sign * level, sign * background)]
    if bright and (AIR_LIKE_HU < background < SOFT_TISSUE_HU or background > FAT_HU_MAX) and k + 1 < n_shells:
        # a ground-glass halo (part-solid nodule), or a denser core inside a solid tumour: when
        # aerated lung follows, that plateau is the lesion's and the lung its surroundings
        # (fat around a lymph node is not: it stays the surroundings)
        lung = lung_beyond(profile, k + 1, background, delta)
        if lung < AIR_LIKE_HU:
            candidates.insert(0, (sign * background, sign * lung))
    log.debug("radial profile: core %.0f, candidate (level, surroundings) %s HU", core,
              [(round(a), round(b)) for a, b in candidates])
    return candidates


def lung_beyond(profile: np.ndarray, start: int, level: float, delta: float) -> float:
    """The level of the first aerated plateau of the (sign-normalised) profile from ``start`` on,
    going from plateau to plateau while they stay above aerated lung; NaN when the profile climbs
    back above ``level`` (a denser structure: a wall, a vessel) or ends first.

    A thick halo is not flat: its density fades slowly outwards (an 80 mm part-solid tumour's
    halo fell 65 HU over 15 mm), and the first place where it levels off is still halo. Where the
    aerated lung lies is read as far out as the halo goes, not at its first bend."""
    while start < profile.size:
        k, value = plateau(profile, level, start, delta)
        if k < 0:
            return float("nan")
        lowest = min(value, float(np.min(profile[start : k + 6])))
        if lowest < AIR_LIKE_HU:
            return lowest
        if np.any(profile[start : k + 1] > level + 2.0 * delta):
            return float("nan")
        start, level = k + 1, value
    return float("nan")


def polarity(roi: Roi, core: float, delta: float, in_lung: bool) -> bool:
    """True when the lesion is brighter than its surroundings.

    In the lung (aerated parenchyma around the prompt) a lesion is denser than its background,
    whatever its inside looks like (a necrotic centre is darker than the tumour's rim). Elsewhere
    each ray votes for the larger of its rise and its fall within 20 mm of the seed: texture inside
    a lesion is small next to the step to the surrounding tissue.
    """
    if core < SOFT_TISSUE_HU or in_lung:
        return True
    prof = ray_profiles(roi.smooth, roi.seed, roi.spacing, 20.0, order=1)
    up = (prof - core).max(axis=1)
    down = (core - prof).max(axis=1)
    seen = np.maximum(up, down) > delta
    n_dark = int(np.sum(seen & (up > down)))
    n_bright = int(np.sum(seen & (down >= up)))
    log.debug("polarity votes: %d bright, %d dark", n_bright, n_dark)
    return n_bright >= n_dark


def refine_levels(lesion: np.ndarray, region: np.ndarray, roi: Roi) -> tuple[float, float]:
    """The lesion's typical (median) level and that of the shell just outside it (sign-free)."""
    inner, outer = roi.spacing.max(), roi.spacing.max() + 3.0
    box = box_around(lesion, outer, roi.spacing)
    les, smooth = lesion[box], roi.smooth[box]
    # the median of the whole lesion, solid and ground-glass parts alike, while most of it lies
    # beyond the partial-volume rim (one blur width plus half a voxel). A lesion that is mostly
    # rim would pull its median, and with it the next threshold, outwards round after round (a
    # 5 mm nodule on thin slices grew 2-3x): its interior's median stands for it, or with
    # hardly any interior its upper decile (the blurred peak)
    deep = edt_mm(les, roi.spacing) > SMOOTH_MM + 0.5 * roi.spacing.max()
    n_deep = int(deep.sum())
    if n_deep >= 0.5 * les.sum():
        core = float(np.median(smooth[les]))
    elif n_deep >= MIN_INTERIOR_VOXELS:
        core = float(np.median(smooth[deep]))
    else:
        core = float(np.percentile(smooth[les], 90))
    out_dist = edt_mm(~les, roi.spacing)
    shell = (out_dist > inner) & (out_dist <= outer) & ~region[box]
    if shell.sum() < MIN_SHELL_VOXELS:
        shell = (out_dist > 0) & (out_dist <= outer)
    return core, float(np.median(smooth[shell]))


def shells_beyond(values: np.ndarray, mask: np.ndarray, spacing: np.ndarray, width_mm: float,
                  reach_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """(lower quartile, voxel count) of ``values`` in each shell ``width_mm`` thick outside ``mask``,
    out to ``reach_mm``; shell k lies k to k + 1 widths out. A quartile sees the lung even where a
    wall or a vessel fills half a shell. A shell with no voxels has a count of 0 and no meaning."""
    out = edt_mm(~mask, spacing)
    near = (out > 0) & (out <= reach_mm)
    shell = np.floor(out[near] / width_mm).astype(np.int32)
    n_shells = int(shell.max()) + 1 if shell.size else 0
    return shell_quantile(values[near], shell, n_shells, 0.25), np.bincount(shell, minlength=n_shells)


def lowest_shell(quartiles: np.ndarray, counts: np.ndarray) -> float:
    """The lowest quartile of the shells with MIN_SHELL_VOXELS or more (NaN: none): the shell that
    is most lung."""
    full = counts >= MIN_SHELL_VOXELS
    return float(quartiles[full].min()) if full.any() else float("nan")


def aerated_level(lesion: np.ndarray, roi: Roi, reach_mm: float = LUNG_REACH_MM) -> float:
    """The level of the aerated lung around a found (bright) lesion: the lowest lower quartile of
    the 1 mm shells out to ``reach_mm`` from it.

    The radial profile's first plateau may lie on a ground-glass halo or on its fading edge; the
    lung lies beyond, wherever that is."""
    box = box_around(lesion, reach_mm, roi.spacing)
    return lowest_shell(*shells_beyond(roi.smooth[box], lesion[box], roi.spacing, 1.0, reach_mm))


@dataclass(frozen=True)
class Halo:
    """The shell 1-4 mm around a found (bright) lesion, read as a possible ground-glass halo."""

    level: float  # median of its hazy voxels (NaN: none)
    share: float  # fraction of the shell that is hazy
    lung: float  # the aerated lung's level beyond it


def halo_around(lesion: np.ndarray, roi: Roi, levels: tuple[float, float]) -> Halo | None:
    """The hazy shell around a found solid lesion in the lung, or None (not solid, no lung around).

    Hazy: between the threshold that found the lesion and a floor HALO_FLOOR of the way from the
    aerated lung to the lesion (noise, lung texture and the blur of a solid edge stay below it).
    The lung is read beyond the shell (:func:`aerated_level`), not from the radial profile's
    plateau: that may be the halo itself or its fading edge, and a halo is then its own floor.
    A lesion so faint that the floor would not stand HALO_MIN_RISE_HU above the lung (ground glass)
    has no halo to read; a solid core averaged with its halo across a thick slice (lighter than soft
    tissue) still has. The whole shell is read, wall and vessels included: read only inside the lung
    envelope and below the threshold, a real solid juxtapleural nodule (LIDC-0001's follow-ups)
    passed for half hazy and was taken at 1.8x."""
    level, background = levels
    box = box_around(lesion, 4.0 + roi.spacing.max(), roi.spacing)
    out_dist = edt_mm(~lesion[box], roi.spacing)
    values = roi.smooth[box][(out_dist > 1.0) & (out_dist <= 4.0)]
    threshold = edge_threshold(levels)
    lung = min(background, aerated_level(lesion, roi))
    floor = lung + HALO_FLOOR * (level - lung)
    if values.size < MIN_SHELL_VOXELS or not lung < AIR_LIKE_HU or floor - lung < HALO_MIN_RISE_HU:
        return None
    hazy = (values > floor) & (values < threshold)
    return Halo(float(np.median(values[hazy])) if hazy.any() else float("nan"), float(hazy.mean()), lung)
