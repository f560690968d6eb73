"""Per-scan checks of one segment against its own image, whatever segmenter drew it.

Measured from the image around the mask (learned segmenters report nothing about themselves):
- lung envelope: the air-filled lung next to the segment, closed with a ball scaled to the
  segment (so a juxtapleural lesion's dent counts as lung), and, where the segment is round, the
  ball through its outline towards the lung (a lesion filling a corner of the pleura is no dent);
  most of the segment outside it means chest wall, mediastinum or diaphragm was segmented (or the
  lesion is not a lung lesion);
- edge: the lesion level (median HU inside, off the rim) against the ring just outside; a weak
  difference (absolute, or against the same lesion on the prompt scan) means the outline is not
  an intensity edge;
- thin part: the share of the segment a ball half as wide as its thickest part cannot reach
  (a vessel or a sheet of pleura grown into a compact lesion); compactness: the radius of the
  widest ball inside against the radius of the sphere of the same volume (1 for a ball, ~0.7 for
  a 3:1 ellipsoid, ~0.35 for a vessel tree or a sheet of diaphragm);
- open boundary: the share of that ring denser than half-way from lung to lesion (the outline
  cuts through tissue like the lesion's: an attached wall or vessel, or a leak); the same share
  counted where the ring lies in the lung envelope (``open_in_lung``: a vessel or fissure the
  segment runs on into, not the wall it leans on; ``quality.match`` compares it with the prompt's);
- faint rim: the share of the segment that is its outer layer of voxels fainter (lower in HU) than
  half-way from the lung to its interior: an outline drawn off the lesion's half-way edge (a small
  nodule's partial volume taken in, or a cut through a part-solid nodule's ground glass);
- haze beyond: the lower quartile of each 0.5 mm shell 1-3 mm outside the outline, as a share of
  the lesion's contrast to the lung (the lowest such quartile within 15 mm, or as far as the crop
  reads for a small lesion, 9 mm or more; farther out a large wall tumour's shells reach the air
  outside the body): a solid lesion's blur has faded there, a part-solid nodule's ground glass has
  not (its core segmented alone);
- shape change: much flatter or longer than the same lesion's segment on the prompt scan;
- scan edge, distance from the propagated point, the registration's own confidence, and the
  segmenter's diagnostics when it offers them (``segmenter.last_diagnostics``: a dict; a truthy
  ``roi_border_contact`` means its region reached the border of its region of interest;
  ``attached_as_thick``, a structure as thick as the result cut from it).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from ..filtering.components import components_touching
from ..geometry import fit_sphere, index_zyx_to_physical, voxel_volume_ml
from ..partial_volume import edge_threshold
from ..propagation.result import MaskCrop
from ..segmentation.levels import HALO_FLOOR, LUNG_REACH_MM, MIN_SHELL_VOXELS, lowest_shell, shells_beyond
from ..segmentation.roi import distance_map
from ..voxels import voxels
from .growth import equivalent_radius_mm
from .reasons import Finding, Reason
from .slice_depth import MIN_DEPTH_SHARE, depth_share

LUNG_HU = -400.0  # aerated lung is below this (ground glass sits above it, inside the envelope)
DEFAULT_LUNG_LEVEL_HU = -850.0
ENVELOPE_BALL_FACTOR = 1.5  # closing radius / segment radius: spans a juxtapleural dent
MAX_OUTSIDE_LUNG = 0.5
MAX_OPEN_BOUNDARY = 0.5
# The outline's part in the lung envelope runs through lung round a lesion, bar its vessels' cross
# sections (a vessel through a 9 mm ball: 5% of its outline at a third of its thickness, 28% at 0.8,
# 35% at 0.9; Testing/test_runs_on_and_elongated.py); beyond this share it was cut from something
# about as thick (``runs_on``, unless ``open_boundary`` already says so of the whole outline). A large
# wall tumour's ring, where the closing ball counts the wall beside it as lung, read 0.25-0.32 on the
# benchmark runs: some are flagged.
MAX_OPEN_IN_LUNG = 0.3
WEAK_EDGE_HU = 100.0
WEAK_EDGE_NOISE = 2.0  # or this many noise SDs of the surrounding lung, if larger
MIN_VOLUME_ML = 4.0 / 3.0 * math.pi * 1.5**3 / 1000.0  # a 3 mm nodule
MIN_VOXELS = 8
POINT_FAR_MM = 5.0  # plus half the segment's radius: how far a propagated point may sit from its
# centre (the prompt's centre was mapped); plus the whole radius for the reader's click on the prompt
# scan, which may lie anywhere in the lesion (a cavitating lesion's wall is a radius from its centre)
MIN_CONFIDENCE = 0.5
# A confidence in (0, MIN_CONFIDENCE) stands for a mapping off by a few mm (the classical backend:
# its two fine estimates 2-4 mm apart). A lesion whose radius is this many times that holds such a
# point well inside, so the segment is the lesion's whatever the few mm: no flag then (the
# point-distance check still catches a point that did land off it). 0 (nothing vouches) always flags.
LOW_CONFIDENCE_ERROR_MM = 4.0
CONFIDENT_RADIUS_FACTOR = 2.5
PROMPT_CONTRAST_FRACTION = 1 / 3  # a follow-up edge weaker than this share of the prompt's is weak
MAX_THIN_PART = 0.25  # share of a segment thinner than half its thickest part (vessel, pleura)
MIN_COMPACTNESS = 0.5  # radius of the widest ball inside / radius of the sphere of its volume
MIN_SLICES_ACROSS = 2.0  # a segment less than this many slices across (its volume's sphere) is mostly
# partial volume: on 5 mm slices a nodule under 10 mm (the Fleischner Society asks for <= 1.5 mm).
# On a follow-up the lesion's size is the smaller of its segment's and the prompt's: a small nodule
# whose segment took in its neighbour's partial volume is no better measured for looking larger.
# A lesion keeps its shape between scans: a follow-up segment whose elongation (see ``elongation``)
# reaches ELONGATED and SHAPE_CHANGE times the prompt segment's was cut (one slice of a lesion on
# thick slices), grew along a vessel or sheet, or is a piece of one (round lesions measure 1.1-1.9,
# a half-ball on a wall 1.8). Any other segment that elongated is flagged too (``elongated``).
ELONGATED = 2.5
SHAPE_CHANGE = 1.75
# Haze beyond the outline (``_haze_beyond``): the shells HAZE_FROM_MM-HAZE_TO_MM outside hold at least
# HALO_FLOOR of the lesion's contrast to the lung (hazy, as the segmenter reads a halo: lung texture,
# noise and a solid edge's blur stay below it).
HAZE_FROM_MM, HAZE_TO_MM, HAZE_SHELL_MM = 1.0, 3.0, 0.5
# Faint rim (``_faint_rim``): the truth of a lesion, like the segmenter's outline, is drawn where a
# voxel is half lesion. A segment whose outer layer fainter than that (lower in HU) is more than this
# share of its volume was drawn elsewhere, and its volume rests on where: partial volume of a small
# nodule taken in (2.1x), or an outline cut through a part-solid nodule's ground glass (0.3-0.5x).
# A share of volume, so it depends on the grid: on thick slices a lesion's end slices are all rim,
# and a lesion over about 10 voxels in radius cannot reach it (a large one cut through its ground
# glass is left to haze_beyond). Random kinds 8000-8199 (development): 0.25-0.30 flag 7-8 more of 62
# bad results and 2 more good ones (0.5x, 1.7x); 0.32-0.35 only 5 more (a pair reads 0.31). Large
# lesions and cavitating ones (the inside is not counted) read <= 0.21 there.
MAX_FAINT_RIM = 0.3
ENVELOPE_GRID_DIVISOR = 6.0  # envelope computed on a grid of ball radius / this (>= native)
# A segment in a corner of the pleura counts as in the lung where it is round: it lies in the ball
# through its outline towards the lung (OWN_BALL_HOLD of it) and fills OWN_BALL_FILL of that ball.
# The truth of round lesions in the costophrenic angle fills 0.37-0.9 of it, the rest lying in the
# walls; segments that cut such a lesion in half filled 0.17-0.26, flat plates 0.11-0.27 and pieces
# of wall 0-0.09 (random kinds 2000-2199 and 4000-4199).
OWN_BALL_HOLD, OWN_BALL_FILL = 0.9, 0.3
MIN_FACING_VOXELS = 12  # fewer voxels of outline towards the lung: no ball to fit


def _grown(crop: MaskCrop, margin_vox: np.ndarray) -> tuple[tuple[slice, ...], np.ndarray]:
    """The crop's box grown by ``margin_vox`` (clipped to the grid) and the mask in it."""
    lo = np.maximum(np.array(crop.offset_zyx) - margin_vox, 0)
    hi = np.minimum(np.array(crop.offset_zyx) + crop.array.shape + margin_vox, crop.shape_zyx)
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
    sub = np.zeros(hi - lo, bool)
    sub[tuple(slice(int(o - a), int(o - a + n)) for o, a, n in zip(crop.offset_zyx, lo, crop.array.shape))] = crop.array
    return box, sub


def _outside_lung(hu: np.ndarray, mask: np.ndarray, spacing: np.ndarray,
                  radius_mm: float) -> tuple[float, np.ndarray | None]:
    """Share of the segment outside the closed lung next to it (``hu``, ``mask``: a crop), and
    that closed lung on the crop's grid (None where no lung touches the segment)."""
    ball = ENVELOPE_BALL_FACTOR * max(radius_mm, float(spacing.max()))
    step = np.maximum(1, np.floor(max(ball / ENVELOPE_GRID_DIVISOR, 1.0) / spacing)).astype(int)
    sl = tuple(slice(0, (n // k) * k) for n, k in zip(hu.shape, step))
    shape = [n // k for n, k in zip(hu.shape, step)]
    if min(shape) < 1:
        step, sl, shape = np.ones(3, int), (slice(None),) * 3, list(hu.shape)
    blocks = hu[sl].reshape(shape[0], step[0], shape[1], step[1], shape[2], step[2])
    coarse_hu = blocks.mean(axis=(1, 3, 5))
    coarse_mask = mask[sl].reshape(blocks.shape).mean(axis=(1, 3, 5)) >= 0.5
    if not coarse_mask.any():
        coarse_mask = mask[sl].reshape(blocks.shape).any(axis=(1, 3, 5))
    cs = spacing * step
    air = coarse_hu < LUNG_HU
    near = ndimage.distance_transform_edt(~coarse_mask, sampling=cs) <= max(3.0, float(cs.max()) * 1.01)
    lung = components_touching(air, near & air)
    if not lung.any():
        return 1.0, None
    pad = int(np.ceil(ball / cs.min())) + 1
    lung = np.pad(lung, pad, mode="edge")
    closed = ndimage.distance_transform_edt(~lung, sampling=cs) <= ball
    envelope = ndimage.distance_transform_edt(closed, sampling=cs) > ball - 1e-3
    envelope = envelope[pad:-pad, pad:-pad, pad:-pad] | lung[pad:-pad, pad:-pad, pad:-pad]
    fine = np.zeros(hu.shape, bool)  # the blocks' rest at the far edges of the crop stays outside
    fine[sl] = envelope.repeat(step[0], 0).repeat(step[1], 1).repeat(step[2], 2)
    return float(1.0 - envelope[coarse_mask].mean()), fine


def _own_ball(hu: np.ndarray, mask: np.ndarray, ring: np.ndarray, spacing: np.ndarray) -> np.ndarray | None:
    """The ball through the segment's outline towards the lung (on the crop's grid), where the
    segment is that round (see OWN_BALL_HOLD); else None.

    The closed lung holds a lesion that dents it, not one filling a corner where two walls meet (the
    costophrenic angle): filled, the corner is no dent, and up to 0.72 of a round one's truth lay
    outside the closing. Its outline towards the lung is its own sphere's, and the walls bound it
    there; a segment of wall or diaphragm meets the lung along the wall's own curve."""
    surface = mask & ~ndimage.binary_erosion(mask, border_value=1)
    # the ring skips the partial-volume voxel: the surface voxel is two steps from it
    facing = surface & ndimage.binary_dilation(ring & (hu < LUNG_HU), iterations=2)
    if facing.sum() < MIN_FACING_VOXELS:
        return None
    fit = fit_sphere(_outer_faces(mask, facing, spacing))
    if fit is None:
        return None
    centre, radius = fit
    ball = distance_map(mask.shape, centre / spacing, spacing) <= radius
    held = float(np.mean(ball[mask]))
    filled = float(mask.sum() * np.prod(spacing)) / (4.0 / 3.0 * math.pi * radius**3)
    return ball if held >= OWN_BALL_HOLD and filled >= OWN_BALL_FILL else None


def _outer_faces(mask: np.ndarray, voxels: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Centres (mm) of the faces of ``voxels`` (a part of ``mask``) that face out of the mask: the
    outline itself, half a voxel out from the voxel centres along each axis (on 5 mm slices a voxel
    centre lies 2.5 mm inside the outline across the slices and 0.35 mm in-plane)."""
    padded = np.pad(mask, 1)
    points = []
    for axis in range(3):
        for step in (-1, 1):
            beyond = np.roll(padded, -step, axis=axis)[1:-1, 1:-1, 1:-1]  # the neighbour at index + step
            idx = np.argwhere(voxels & ~beyond).astype(float)
            idx[:, axis] += 0.5 * step
            points.append(idx * spacing)
    return np.concatenate(points)


def _open_in_lung(hu: np.ndarray, ring: np.ndarray, envelope: np.ndarray | None, level: float,
                  lung_level: float) -> float:
    """``open_boundary`` counted on the part of the ring that lies in the lung (``envelope``):
    tissue the outline runs on into there (a vessel, a fissure), not the wall or mediastinum a
    lesion leans on. NaN when no part of the ring is lung or the segment is no denser than lung."""
    if envelope is None or not level > lung_level:
        return math.nan
    ring = ring & envelope
    return float(np.mean(hu[ring] > edge_threshold((level, lung_level)))) if ring.any() else math.nan


def _ring(mask: np.ndarray) -> np.ndarray:
    """The voxels two steps outside a mask (skipping the partial-volume voxel next to it)."""
    d1 = ndimage.binary_dilation(mask)
    return ndimage.binary_dilation(d1) & ~d1


def widest_ball(mask: np.ndarray, spacing: np.ndarray) -> tuple[float, np.ndarray]:
    """(radius in mm of the widest ball inside a segment, each voxel's depth in mm).

    A voxel's depth is its centre's distance to the nearest voxel centre outside the segment; the
    deepest voxel's is the radius. The one definition of that radius (signal ``inscribed_mm``):
    compactness and the thin part here, the prompt lesion's reference and the growth
    ``grown_beyond`` allows (``quality.beyond``) all read it from the signals. A ball of radius R
    reads within about half the largest spacing of R, mostly under it (its centre falls between
    voxel centres: R = 2-12 mm on 0.7 x 0.7 x 1.25 mm voxels read 0.13-0.66 mm under, on 5 mm
    slices 2.35 under to 0.17 over).
    """
    depth = ndimage.distance_transform_edt(np.pad(mask, 1), sampling=spacing)[1:-1, 1:-1, 1:-1]
    return float(depth.max()) if depth.size else 0.0, depth


def _thin_part(depth: np.ndarray, inscribed: float, spacing: np.ndarray) -> float:
    """Share of the segment thinner than half its thickest part (``depth``, ``inscribed``: from
    ``widest_ball``; NaN when too few voxels across). A lesion is compact: a ball half as wide as
    the largest one inside it still sweeps almost all of it. A vessel or a sheet of pleura grown
    into it is thinner than that ball."""
    ball = 0.5 * inscribed
    if ball < float(spacing.max()):
        return math.nan
    core = depth > ball
    # a quarter voxel of slack: on coarse grids the swept ball is a staircase
    swept = ndimage.distance_transform_edt(~core, sampling=spacing) <= ball + 0.25 * float(spacing.max())
    return float(1.0 - swept[depth > 0].mean())


def elongation(mask: np.ndarray, spacing: np.ndarray) -> float:
    """Spread along the segment's longest principal axis over its shortest (standard deviations,
    each voxel counted as a uniform box so that a one-slice segment is not infinitely flat):
    about 1 for a nodule, >= 3 for a piece of vessel (a tube) or of pleura or fissure (a sheet)."""
    idx = np.argwhere(mask)
    if len(idx) < 2:
        return math.nan
    cov = np.cov((idx * spacing).T) + np.diag(spacing**2 / 12.0)
    var = np.linalg.eigvalsh(cov)
    return float(np.sqrt(var[-1] / max(var[0], 1e-9)))


class Edge(NamedTuple):
    """What the ring round a segment says of its edge (HU, except the fraction)."""

    contrast: float  # interior level above the ring's median, a denser structure it leans on left out
    ring_contrast: float  # ... above the whole ring's median
    open_fraction: float  # share of the ring as dense as the segment's own edge (not lung, not a denser wall)
    noise: float  # SD of the lung in the ring
    level: float  # interior median
    lung_level: float


def _edge(hu: np.ndarray, mask: np.ndarray, ring: np.ndarray) -> Edge:
    """The segment's edge from its interior and the ring round it.

    Tissue denser than the segment by half its contrast to the lung is another structure (the
    chest wall or the diaphragm under ground glass), not the segment running on: a lesion lighter
    than the wall it leans on stands out from it as it does from the lung. Left in, such a ring
    reads open and weak, even below zero (a 40 mm ground-glass lesion in the costophrenic angle:
    -24 HU). A solid lesion on a wall of its own density still reads open there."""
    interior = ndimage.binary_erosion(mask)
    inside = hu[interior] if interior.sum() >= MIN_VOXELS else hu[mask]
    level_in = float(np.median(inside))
    out = hu[ring]
    if out.size == 0:
        return Edge(math.nan, math.nan, math.nan, math.nan, level_in, math.nan)
    lung = out[out < level_in - 200.0]
    lung = lung[lung < LUNG_HU] if (lung < LUNG_HU).sum() >= MIN_SHELL_VOXELS else lung
    lung_level = float(np.median(lung)) if lung.size >= MIN_SHELL_VOXELS else DEFAULT_LUNG_LEVEL_HU
    noise = float(1.4826 * np.median(np.abs(lung - np.median(lung)))) if lung.size >= MIN_SHELL_VOXELS else math.nan
    ring_contrast = level_in - float(np.median(out))
    if not level_in > lung_level:
        return Edge(ring_contrast, ring_contrast, 1.0, noise, level_in, lung_level)
    beside = out <= level_in + 0.5 * (level_in - lung_level)
    contrast = level_in - float(np.median(out[beside])) if beside.sum() >= MIN_SHELL_VOXELS else ring_contrast
    open_fraction = float(np.mean(beside & (out > edge_threshold((level_in, lung_level)))))
    return Edge(contrast, ring_contrast, open_fraction, noise, level_in, lung_level)


def _haze_beyond(hu: np.ndarray, mask: np.ndarray, spacing: np.ndarray, level: float, reach_mm: float) -> float:
    """Share of the lesion's contrast to the lung still held HAZE_FROM_MM-HAZE_TO_MM outside its
    outline: the mean over those shells of each one's lower quartile (what is lung-like in it: the
    wall or a vessel filling part of a shell is not haze). The lung is the lowest such quartile out
    to ``reach_mm``. NaN where the shells hold no voxels or no aerated lung is read round the
    segment, or the segment is no denser than it."""
    quartiles, counts = shells_beyond(hu, mask, spacing, HAZE_SHELL_MM, reach_mm)
    near = slice(int(HAZE_FROM_MM / HAZE_SHELL_MM), int(HAZE_TO_MM / HAZE_SHELL_MM))
    hazy = quartiles[near][counts[near] > 0]
    lung = lowest_shell(quartiles, counts)
    if not hazy.size or not (lung < LUNG_HU and level > lung):
        return math.nan
    return float(np.mean((hazy - lung) / (level - lung)))


def _faint_rim(hu: np.ndarray, mask: np.ndarray, level: float, lung_level: float) -> float:
    """Share of a segment that is its outer layer of voxels fainter than half-way from the lung to
    its level (``edge_threshold``; ``level``: the edge's, its median off the rim where it has an
    inside): partial volume it took in beyond its edge, or ground glass its outline was drawn
    through. Voxels inside (a cavity, the solid and hazy parts of the interior) are not counted.
    NaN where the segment is no denser than the lung."""
    if not level > lung_level:
        return math.nan
    rim = mask & ~ndimage.binary_erosion(mask)
    return float(np.sum(rim & (hu < edge_threshold((level, lung_level)))) / max(int(mask.sum()), 1))


def _low_confidence(confidence: float, radius_mm: float) -> bool:
    """Is the registration's own doubt about this point a doubt about the result? (see
    ``CONFIDENT_RADIUS_FACTOR``; ``radius_mm``: the smaller of this segment's and the prompt's)."""
    if not np.isfinite(confidence) or confidence >= MIN_CONFIDENCE:
        return False
    return confidence <= 0.0 or radius_mm < CONFIDENT_RADIUS_FACTOR * LOW_CONFIDENCE_ERROR_MM


def scan_checks(image: sitk.Image, mask: MaskCrop, *, is_prompt: bool,
                point_lps: np.ndarray | None = None, confidence: float = math.nan,
                diagnostics: dict[str, Any] | None = None,
                prompt_signals: dict[str, float] | None = None) -> tuple[dict[str, float], list[Finding]]:
    """Signals (numbers, for records) and findings for one (lesion, scan) segment.

    ``mask``: the segment on ``image``'s grid; ``point_lps``: where registration put the
    lesion, or on the prompt scan the reader's click (None: a mask prompt); ``confidence``:
    ``PointMapper.confidence`` there.
    """
    findings: list[Finding] = []
    signals: dict[str, float] = {"registration_confidence": float(confidence)}
    count = mask.voxel_count
    prompt_signals = prompt_signals or {}
    volume = count * voxel_volume_ml(image)
    radius = equivalent_radius_mm(volume)
    lesion_radius = min(radius, prompt_signals.get("radius_mm", radius))  # the smaller of it and the prompt's
    if _low_confidence(confidence, lesion_radius):
        findings.append(Finding(Reason.LOW_REGISTRATION_CONFIDENCE, f"confidence {confidence:.2f}"))
    if count == 0:
        if is_prompt:
            findings.append(Finding(Reason.EMPTY_PROMPT))
        return signals, findings
    signals["radius_mm"] = radius
    if volume < MIN_VOLUME_ML or count < MIN_VOXELS:
        findings.append(Finding(Reason.TINY_SEGMENT, f"{volume * 1000:.0f} mm3, {count} voxels"))
    spacing = np.array(image.GetSpacing()[::-1], float)
    if 2.0 * lesion_radius < MIN_SLICES_ACROSS * float(spacing.max()):
        whose = "" if lesion_radius == radius else " on the prompt scan"
        findings.append(Finding(Reason.FEW_SLICES, f"{2 * lesion_radius:.0f} mm across{whose}, "
                                                   f"on {spacing.max():.1f} mm slices"))
    lo, hi = np.array(mask.offset_zyx), np.array(mask.offset_zyx) + mask.array.shape
    if np.any(lo == 0) or np.any(hi == np.array(mask.shape_zyx)):
        findings.append(Finding(Reason.IMAGE_EDGE))
    margin_mm = ENVELOPE_BALL_FACTOR * max(radius, 2.0) + 6.0
    margin = np.ceil(margin_mm / spacing).astype(int) + 2
    box, sub = _grown(mask, margin)
    hu = voxels(image)[box].astype(np.float32)
    ring = _ring(sub)  # read by the edge and by open_in_lung
    edge = _edge(hu, sub, ring)
    outside, envelope = _outside_lung(hu, sub, spacing, radius)
    own_ball = _own_ball(hu, sub, ring, spacing) if envelope is not None and outside > 0 else None
    if own_ball is not None:  # a round lesion in a corner of the pleura: its ball is lung too
        outside = float(1.0 - np.mean((envelope | own_ball)[sub]))
    inscribed, depth_map = widest_ball(mask.array, spacing)
    thin = _thin_part(depth_map, inscribed, spacing)
    compact = inscribed / radius if radius > 0 else math.nan
    signals.update(edge_contrast_hu=edge.contrast, ring_contrast_hu=edge.ring_contrast,
                   open_boundary=edge.open_fraction, outside_lung=outside, thin_part=thin,
                   inscribed_mm=inscribed, compactness=compact, level_hu=edge.level, lung_level_hu=edge.lung_level,
                   open_in_lung=_open_in_lung(hu, ring, envelope, edge.level, edge.lung_level),
                   densest_tenth_hu=float(np.percentile(hu[sub], 90)),
                   haze_beyond=_haze_beyond(hu, sub, spacing, edge.level, min(margin_mm, LUNG_REACH_MM)),
                   elongation=elongation(mask.array, spacing),
                   faint_rim=_faint_rim(hu, sub, edge.level, edge.lung_level))
    if outside > MAX_OUTSIDE_LUNG:
        findings.append(Finding(Reason.OUTSIDE_LUNG, f"{100 * outside:.0f}% outside"))
    if edge.open_fraction > MAX_OPEN_BOUNDARY:
        findings.append(Finding(Reason.OPEN_BOUNDARY, f"{100 * edge.open_fraction:.0f}% of the outline"))
    if signals["open_in_lung"] > MAX_OPEN_IN_LUNG and edge.open_fraction <= MAX_OPEN_BOUNDARY:
        findings.append(Finding(Reason.RUNS_ON, f"{100 * signals['open_in_lung']:.0f}% of the outline in the lung"))
    weak = max(WEAK_EDGE_HU, WEAK_EDGE_NOISE * edge.noise) if np.isfinite(edge.noise) else WEAK_EDGE_HU
    weak = max(weak, prompt_signals.get("edge_contrast_hu", math.nan) * PROMPT_CONTRAST_FRACTION)
    if np.isfinite(edge.contrast) and edge.contrast < weak:
        findings.append(Finding(Reason.WEAK_EDGE, f"{edge.contrast:.0f} HU"))
    if signals["haze_beyond"] >= HALO_FLOOR:
        findings.append(Finding(Reason.HAZE_BEYOND, f"{100 * signals['haze_beyond']:.0f}% of its contrast to the lung "
                                                    f"{HAZE_FROM_MM:g}-{HAZE_TO_MM:g} mm out"))
    if signals["faint_rim"] > MAX_FAINT_RIM:
        findings.append(Finding(Reason.FAINT_RIM, f"{100 * signals['faint_rim']:.0f}% of the segment"))
    if np.isfinite(thin) and thin > MAX_THIN_PART:
        findings.append(Finding(Reason.THIN_PART, f"{100 * thin:.0f}% of the segment"))
    shape, was = signals["elongation"], prompt_signals.get("elongation", math.nan)
    if np.isfinite(was) and shape >= max(ELONGATED, SHAPE_CHANGE * was):
        findings.append(Finding(Reason.SHAPE_CHANGED, f"elongation {shape:.1f}, {was:.1f} on the prompt scan"))
    elif shape >= ELONGATED:
        findings.append(Finding(Reason.ELONGATED, f"elongation {shape:.1f}"))
    depth, width = depth_share(mask.array, spacing)
    signals["depth_share"] = depth
    if np.isfinite(depth) and depth < MIN_DEPTH_SHARE:
        findings.append(Finding(Reason.SHALLOW, f"{depth * width:.0f} mm deep, {width:.0f} mm wide"))
    if np.isfinite(compact) and compact < MIN_COMPACTNESS:
        findings.append(Finding(Reason.NOT_COMPACT, f"widest ball inside {2 * inscribed:.0f} mm across, "
                                                    f"{compact:.2f} of the radius of its volume"))
    if point_lps is not None:
        pts = index_zyx_to_physical(image, np.argwhere(sub) + [s.start for s in box])
        dist = float(np.sqrt(((pts - np.asarray(point_lps, float)) ** 2).sum(axis=1)).min())
        centre = float(np.linalg.norm(pts.mean(axis=0) - np.asarray(point_lps, float)))
        signals.update(point_to_segment_mm=dist, point_to_centroid_mm=centre)
        limit = POINT_FAR_MM + (radius if is_prompt else 0.5 * prompt_signals.get("radius_mm", radius))
        if centre > limit or dist > POINT_FAR_MM:
            findings.append(Finding(Reason.POINT_FAR, f"{centre:.0f} mm from its centre"))
    if diagnostics and diagnostics.get("roi_border_contact"):
        findings.append(Finding(Reason.REGION_BORDER))
    if diagnostics and diagnostics.get("attached_as_thick"):
        findings.append(Finding(Reason.ATTACHED_AS_THICK))
    return signals, findings
