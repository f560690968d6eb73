"""A prompt in the air of a cavitating lesion: find the cavity, and read the lesion whole.

A lesion's centre, as a propagated point lands, may be its cavity. From there nearly every ray
meets tissue (the wall); in aerated lung rays meet vessels at scattered distances or nothing, and
along a bronchus they run on.

The cavity's air is not lung: left as it is, the rays that measure the lesion's scale find "lung"
a millimetre into the cavity, the region of interest is sized for a nodule, and the lung envelope
is the cavity itself, which leaves the wall outside it (a 72 mm cavitating tumour and a 27 mm one
came back empty). So the lesion is read on a copy of the scan whose cavity is filled with its
wall's level, the part of each ray short of the wall (:func:`fill`): a cavitating lesion read as
the solid one it outlines, its mask holding the cavity (the segmenter fills enclosed holes). Its
levels are read from the wall, the real tissue (from inside the fill, noiseless and a little off
the wall's level, they found an edge between the two: 0.06x); its scale from the cavity's middle,
through the fill (from a 2 mm wall it was 4 mm, and the result a piece of the wall).

A prompt need not sit at the cavity's middle: a click a few millimetres off a lesion's centre may
land near its cavity's wall. The cavity is looked for from the middle of the air round the prompt
(the prompt climbs away from the nearest tissue), and every prompt in air is asked, however near
tissue (such a prompt had started from the wall, and read a piece of it).

Nor need it sit in air: the wall is the tissue a reader sees and clicks, and a point carried from
another scan may land in it. From a prompt in tissue the nearest air along the rays may be
the cavity's: it then passed for the lung as above, and the result was a sliver of the wall (18
of 72 wall clicks on the random cavitating lesions of seeds 8000-8599 gave under a fifth of the
lesion, 15 of them with no warning). So the pockets of air round such a prompt are asked the same
question (:func:`cavity_beside`), with one more condition: the wall round the cavity must be thick
(an emphysematous bulla beside a nodule is enclosed too, by a membrane). A cavity found so is
filled as above, and the lesion read from the click, which is on it. (Read from the cavity's
nearest wall instead, as a click in its air is, a cavity near the chest wall gave the rib behind
its thin side, or a corner lesion's cut: 0.6x clicks came out 0.1x.)
"""

from __future__ import annotations

from dataclasses import dataclass

import cc3d
import numpy as np

from ..filtering.components import edt_mm
from ..geometry import nearest_voxel
from .levels import AIR_LIKE_HU
from .roi import DIRECTIONS, make_roi, ray_profiles

CAVITY_REACH_MM = 40.0  # a prompt in air looks this far for the wall of a cavity around it
CAVITY_ENCLOSED = 0.95  # share of rays that must meet tissue: a cavity is closed ...
MAX_ASPECT = 2.5  # ... within this many times its middle's distance to the wall (from an airway's
# axis, 7% of rays run on past that; a cavity 2.5 times as long as it is wide is closed within it)
RAY_STEP_MM = 1.0  # the rays' sampling
CLIMB_MM = 20.0  # how far from the prompt the middle of the air round it is looked for
CAVITY_SMOOTH = 0.75  # 90th percentile of the jump in reach between neighbouring rays (relative)
NEIGHBOURS = np.argsort(-(DIRECTIONS @ DIRECTIONS.T), axis=1)[:, 1:6]  # each ray's five nearest
WALL_DEPTH_MM = 3.0  # the wall's level is read this far past where each ray meets it
MIN_WALL_MM = WALL_DEPTH_MM + RAY_STEP_MM  # a cavity beside a prompt in tissue: tissue all the
# depth read along most rays (a lesion's wall; a bulla's membrane, 2 mm thick, reads 3 mm)
BESIDE_MM = 20.0  # how far from a prompt in tissue the air of a cavity is looked for
MAX_POCKETS = 3  # pockets of air round such a prompt asked whether they are a cavity


@dataclass(frozen=True)
class Cavity:
    """A cavity round a prompt: ``centre`` (its middle, zyx index), ``reach`` (mm to the wall
    along each of ``roi.DIRECTIONS``), the wall's ``level`` (HU), ``wall`` (a continuous zyx
    index 1 mm into the nearest wall: where the lesion's levels are read from) and ``thickness``
    (mm: the median over the rays of the tissue met before air again, up to WALL_DEPTH_MM + 1)."""

    centre: np.ndarray
    reach: np.ndarray
    level: float
    wall: np.ndarray
    thickness: float


def clearance(air: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """mm from each air voxel of a box to the nearest tissue, the box's faces counted as tissue:
    beyond them nothing is known (air there would draw a climb out to a face)."""
    return edt_mm(np.pad(air, 1, constant_values=False), spacing)[1:-1, 1:-1, 1:-1]


def deepest_air(smooth: np.ndarray, spacing: np.ndarray, start: np.ndarray) -> tuple[np.ndarray, float]:
    """(index, mm): the point of the air round ``start`` (a voxel in air) farthest from tissue that
    ``start`` climbs to, always moving away from the nearest tissue, and its distance to tissue.
    In a cavity, its middle, however eccentric the prompt."""
    clear = clearance(smooth < AIR_LIKE_HU, spacing)
    at = np.array(nearest_voxel(start, smooth.shape))
    steps = np.argwhere(np.ones((3, 3, 3), bool)) - 1
    while True:
        near = np.clip(at + steps, 0, np.array(smooth.shape) - 1)
        best = near[np.argmax(clear[tuple(near.T)])]
        if clear[tuple(best)] <= clear[tuple(at)]:
            return at.astype(float), float(clear[tuple(at)])
        at = best


def find_cavity(array: np.ndarray, spacing: np.ndarray, seed: np.ndarray,
                clearance_mm: float) -> Cavity | None:
    """The cavity enclosing a prompt in air, or None when the prompt is not enclosed so. The test is
    made from the middle of the air round the prompt (:func:`deepest_air`), which must lie at least
    ``clearance_mm`` from tissue: from a prompt a millimetre or two from tissue, neighbouring rays
    meet one surface in real lung as in a cavity (beside a vessel, in a bronchus). From there nearly
    every ray (CAVITY_ENCLOSED) meets tissue, and neighbouring rays meet it at nearby distances
    (CAVITY_SMOOTH): a wall is one surface, however eccentric the point. In aerated lung, where
    the vessels and walls round a point enclose it, neighbouring rays meet different structures.

    Measured on points of the three real scans in ``../shared/data`` with no tissue within 3 mm,
    6000 in all: 138 were enclosed; their jump's 90th percentile was 1.26 or more (the 5 mm mass
    scan's lung; 2.15 or more on the two LIDC scans), against 0.21-0.50 for prompts in synthetic
    cavities. From points a millimetre or two from tissue real lung read as low as 0.5: the climb
    keeps the test where it was measured. With it, none of 4500 points of the three scans' lung air
    (half a millimetre or more from tissue) is taken for a cavity; of all air, only bowel gas below
    the lungs is (air enclosed by a wall, where no lung prompt lands). All 60 clicks that land in
    a cavity's air (the centre and four clicks off it on the random cavitating lesions of seeds
    1200-1349, 2000-2199 and 3000-3199), a millimetre from the wall included, are taken.
    The rule it replaces (farthest wall within 2.5x the nearest + 3 mm) turned away a prompt 3 mm
    from one side of a 14 mm cavity."""
    if array[nearest_voxel(seed, array.shape)] >= AIR_LIKE_HU:
        return None
    # the image round the prompt as far as the climb may go, smoothed as the segmenter reads
    # tissue (raw lung's noise reads as tissue)
    box = make_roi(array, spacing, seed, CLIMB_MM)
    middle, clearance = deepest_air(box.smooth, box.spacing, box.seed)
    if clearance < clearance_mm:
        return None
    centre = box.to_image(middle)
    # raw samples: a cavity's air stays far below AIR_LIKE_HU; lung's noise only makes rays meet
    # "tissue" at scattered distances, which the smoothness test turns away
    values = ray_profiles(array, centre, spacing, CAVITY_REACH_MM, order=1, step_mm=RAY_STEP_MM)
    radii = RAY_STEP_MM * np.arange(values.shape[1], dtype=float)
    tissue = values >= AIR_LIKE_HU
    hit = tissue.any(axis=1)
    meets = tissue.argmax(axis=1)  # each ray's first tissue sample
    if np.mean(hit & (radii[meets] <= MAX_ASPECT * clearance)) < CAVITY_ENCLOSED:
        return None  # not closed round its middle: lung, or an airway running on
    # a ray that found no wall (a gap, a draining bronchus) counts as reaching past the search
    first = np.where(hit, radii[meets], CAVITY_REACH_MM + 1.0)
    if first.min() < RAY_STEP_MM:
        return None  # the middle's own sample reads tissue: noise
    jump = np.abs(first[:, None] - first[NEIGHBOURS]) / np.minimum(first[:, None], first[NEIGHBOURS])
    if np.percentile(jump.max(axis=1), 90) > CAVITY_SMOOTH:
        return None
    reach = np.minimum(first, float(np.percentile(first[hit], 95)))  # no wall: the farthest one's
    # the prompt lies in the cavity found (a ray's reach is its first tissue sample, the nearest
    # ray a few degrees off the prompt's direction: a step of slack), not beyond a thin wall that
    # the smoothing let the climb cross into another's air
    offset = (np.asarray(seed, float) - centre) * spacing
    if np.linalg.norm(offset) >= reach[int(np.argmax(DIRECTIONS @ offset))] + RAY_STEP_MM:
        return None
    # the wall's level: the tissue samples from 1 mm (past the partial volume where each ray meets
    # the wall) to WALL_DEPTH_MM into it (a thin wall's far side is lung again), their median over
    # all rays. A fill lighter or denser than the wall would stand out from it as a lesion of its own
    depth = np.arange(1, int(round(WALL_DEPTH_MM / RAY_STEP_MM)) + 1)
    span = np.minimum(meets[hit][:, None] + depth[None, :], len(radii) - 1)
    samples = values[hit][np.arange(hit.sum())[:, None], span]
    # tissue from where each ray meets the wall (that sample and the run after it) to air again
    run = 1 + np.cumprod(samples >= AIR_LIKE_HU, axis=1).sum(axis=1)
    thickness = float(np.median(run)) * RAY_STEP_MM
    samples = samples[samples >= AIR_LIKE_HU]
    if samples.size == 0:
        return None  # a wall thinner than a millimetre: nothing to read the lesion by
    k = int(np.argmin(first))  # the nearest wall, a millimetre in (inside the image: a ray may meet its edge)
    wall = np.clip(centre + DIRECTIONS[k] * (first[k] + 1.0) / spacing, 0, np.array(array.shape) - 1)
    return Cavity(centre, reach, float(np.median(samples)), wall, thickness)


def cavity_beside(array: np.ndarray, spacing: np.ndarray, seed: np.ndarray,
                  clearance_mm: float) -> Cavity | None:
    """The cavity whose wall holds a prompt in tissue, or None. The pockets of air the rays from
    the prompt meet within BESIDE_MM (the lung, a cavity), nearest first, are asked
    :func:`find_cavity` from their middles, up to MAX_POCKETS of them; a cavity found must have a
    wall that reads tissue all the depth read along most rays (MIN_WALL_MM): a lesion's wall, not
    a bulla's membrane (a nodule against an 18 mm bulla with a 2 mm wall came out 17x). The
    nearest air alone is not enough: a click near a lesion's outer surface has the lung nearer
    than the cavity, which still passed for lung."""
    if array[nearest_voxel(seed, array.shape)] < AIR_LIKE_HU:
        return None
    box = make_roi(array, spacing, seed, BESIDE_MM)
    air = box.smooth < AIR_LIKE_HU
    if not air.any():
        return None
    labels = cc3d.connected_components(air, connectivity=6)
    values = ray_profiles(labels, box.seed, box.spacing, BESIDE_MM, order=0, step_mm=0.5 * RAY_STEP_MM)
    met = values > 0
    first = np.where(met.any(axis=1), met.argmax(axis=1), values.shape[1])
    hit = values[np.arange(len(values)), np.minimum(first, values.shape[1] - 1)]
    order = np.argsort(first)
    pockets = list(dict.fromkeys(int(hit[k]) for k in order if first[k] < values.shape[1]))
    clear = clearance(air, box.spacing)
    for label in pockets[:MAX_POCKETS]:
        middle = np.unravel_index(int(np.argmax(np.where(labels == label, clear, 0.0))), air.shape)
        cavity = find_cavity(array, spacing, box.to_image(np.array(middle, float)), clearance_mm)
        if cavity is not None and cavity.thickness >= MIN_WALL_MM:
            return cavity
    return None


def fill(array: np.ndarray, spacing: np.ndarray, cavity: Cavity) -> np.ndarray:
    """A copy of ``array`` whose cavity reads the wall's level: every air voxel nearer the cavity's
    middle than the wall along its own direction (the nearest ray's reach)."""
    half = np.ceil(float(cavity.reach.max()) / spacing).astype(int) + 1
    lo = np.maximum(np.floor(cavity.centre).astype(int) - half, 0)
    hi = np.minimum(np.ceil(cavity.centre).astype(int) + half + 1, array.shape)
    out = np.array(array)
    yx = np.stack(np.meshgrid(np.arange(lo[1], hi[1]), np.arange(lo[2], hi[2]), indexing="ij"), axis=-1)
    for z in range(lo[0], hi[0]):  # a plane at a time: voxels x rays stays small
        offset = np.concatenate([np.full(yx.shape[:2] + (1,), z), yx], axis=-1) - cavity.centre
        offset = (offset * spacing).astype(np.float32)
        ray = np.argmax(offset @ DIRECTIONS.T.astype(np.float32), axis=-1)
        plane = out[z, lo[1]:hi[1], lo[2]:hi[2]]
        plane[(np.linalg.norm(offset, axis=-1) < cavity.reach[ray]) & (plane < AIR_LIKE_HU)] = cavity.level
    return out
