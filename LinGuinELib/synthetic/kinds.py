"""Lung lesions of every kind users bring, with exact truth: single scans and longitudinal studies.

A kind is a size (4 mm to 10 cm), an attachment (isolated, on a vessel, on the chest wall, the
mediastinum, the diaphragm, the corner where diaphragm and chest wall meet, or a fissure), a density
(solid, part-solid, ground glass) and a shape (round, flat, spiculated, cavitating: :mod:`.shapes`),
seen on slices 0.6-5 mm thick. Lesions are drawn analytically into :class:`.chest.Chest` and sampled on
fine sub-slices that are then averaged into each thick slice (partial volume, as a scanner
integrates its slice profile); the truth is the lesion's averaged occupancy >= 0.5 and its exact
volume the occupancy's sum. Large pleural-based tumours (``invade_mm`` > 0) extend a few mm into
the chest wall: that part belongs to the truth too.

``render_case`` makes one scan (segmenter tests and evaluation); ``make_kind_study`` a
longitudinal study through :func:`.manifest.synthesize_study` (pose, warp, growth, vanishing),
whose ``truth.json`` carries each lesion's ``kind`` label and ``kind_detail`` descriptor.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from ..errors import InputError
from .chest import Chest, segment_sdf, soft
from .manifest import SynthLesion, lesion_centre_zyx, prompt_index_of, synthesize_study
from .phantom import _smooth_texture
from .shapes import CAVITY_HU, SHAPES, cavity, flat_axes, frame_with_normal, normal_half_axis, spicules

log = logging.getLogger(__name__)

ATTACHMENTS = ("isolated", "vessel", "chest_wall", "mediastinum", "diaphragm", "fissure", "costophrenic")
DENSITIES = ("solid", "part_solid", "ground_glass")
SIZE_CLASSES = ((4.0, "4-10mm"), (10.0, "10-30mm"), (30.0, "30-60mm"), (60.0, "60-100mm"))
MIN_VESSEL_MM = 0.99  # a lesion's vessel is one of at least 1 mm radius (float slack below)
FINE_Z_MM = 1.0  # sub-slice spacing at most: thick slices are averages of these
NOISE_SD_1MM = 30.0  # HU of scanner noise on a 1 mm slice; it falls as 1/sqrt(thickness)
PSF_MM = 0.45  # in-plane blur (reconstruction kernel), Gaussian sigma


@dataclass(frozen=True)
class LesionKind:
    """What a lesion is, for generating it and grouping results by it."""

    diameter_mm: float
    attachment: str = "isolated"
    density: str = "solid"
    slice_mm: float = 1.0
    invade_mm: float = 0.0  # how far a pleural-based tumour extends into the wall
    shape: str = "round"

    def __post_init__(self) -> None:
        if self.attachment not in ATTACHMENTS:
            raise InputError(f"attachment must be one of {ATTACHMENTS}, not {self.attachment!r}")
        if self.density not in DENSITIES:
            raise InputError(f"density must be one of {DENSITIES}, not {self.density!r}")
        if self.shape not in SHAPES:
            raise InputError(f"shape must be one of {SHAPES}, not {self.shape!r}")
        if not 3.0 <= self.diameter_mm <= 110.0 or not 0.5 <= self.slice_mm <= 6.0:
            raise InputError("diameter_mm must be 3-110 and slice_mm 0.5-6")

    @property
    def size_class(self) -> str:
        return [name for lo, name in SIZE_CLASSES if self.diameter_mm >= lo][-1] \
            if self.diameter_mm >= 4.0 else "4-10mm"

    @property
    def slice_class(self) -> str:
        return "thin" if self.slice_mm <= 1.5 else ("thick" if self.slice_mm >= 3.0 else "medium")

    @property
    def label(self) -> str:
        """``size/attachment/density`` (``/shape`` unless round): the grouping key of the per-kind tables."""
        base = f"{self.size_class}/{self.attachment}/{self.density}"
        return base if self.shape == "round" else f"{base}/{self.shape}"

    def detail(self) -> dict:
        return {**asdict(self), "size_class": self.size_class, "slice_class": self.slice_class,
                "label": self.label}


@dataclass
class _Lesion:
    kind: LesionKind
    centre: np.ndarray
    axes: np.ndarray
    rot: np.ndarray
    lobes: list[tuple[np.ndarray, float]]
    waves: np.ndarray  # (k, 4): direction frequency (3) and phase of the surface's undulation
    hu: float
    core: tuple[np.ndarray, float] | None  # solid core of a part-solid lesion
    spikes: tuple = ()  # (start, end, radius) capsules of a spiculated lesion
    cavity: tuple[np.ndarray, float] | None = None  # air cavity of a cavitating lesion

    @property
    def radius(self) -> float:
        return 0.5 * self.kind.diameter_mm

    def sdf(self, X, Y, Z):
        d = [X - self.centre[0], Y - self.centre[1], Z - self.centre[2]]
        loc = [sum(self.rot[i, j] * d[j] for j in range(3)) for i in range(3)]
        q = np.sqrt(sum((loc[i] / self.axes[i]) ** 2 for i in range(3))) + 1e-6
        norm = np.sqrt(d[0] ** 2 + d[1] ** 2 + d[2] ** 2) + 1e-6
        wave = sum(np.cos(w[0] * d[0] / norm + w[1] * d[1] / norm + w[2] * d[2] / norm + w[3])
                   for w in self.waves) / np.sqrt(len(self.waves))
        sdf = (q - 1.0) * float(np.mean(self.axes)) - 0.07 * self.radius * wave
        for c, r in self.lobes:
            sdf = np.minimum(sdf, np.sqrt((X - c[0]) ** 2 + (Y - c[1]) ** 2 + (Z - c[2]) ** 2) - r)
        for a, b, r in self.spikes:
            sdf = np.minimum(sdf, segment_sdf(X, Y, Z, a, b, r))
        return sdf

    def box_mm(self) -> tuple[np.ndarray, np.ndarray]:
        extent = max([1.35 * float(self.axes.max())] + [float(np.linalg.norm(b - self.centre)) + r
                                                         for _, b, r in self.spikes]) + 2.0
        return self.centre - extent, self.centre + extent


def _active_boundary(chest: Chest, p: np.ndarray) -> str:
    wall = float(chest.inner_wall(p[1]) - chest.wall_depth(p[0], p[1]))
    med = float(-chest.mediastinum_sdf(*p))
    dia = float(chest.diaphragm_sdf(p[0], p[2]))
    return ("chest_wall", "mediastinum", "diaphragm")[int(np.argmax([wall, med, dia]))]


def _site(chest: Chest, kind: LesionKind, rng: np.random.Generator) -> np.ndarray | None:
    """A lesion centre for ``kind`` (None: try again)."""
    r = 0.5 * kind.diameter_mm
    rn = normal_half_axis(kind.shape, r)  # the lesion's reach along the surface's normal
    s = float(rng.choice([-1.0, 1.0]))
    z_lo = max(chest.dome) + 10.0
    if kind.attachment == "costophrenic":
        return _corner_site(chest, r, rn, s, rng)
    if kind.attachment in ("chest_wall", "mediastinum", "diaphragm"):
        if kind.attachment == "diaphragm":
            start = np.array([s * rng.uniform(75, 110), rng.uniform(-40, 40), z_lo + 30.0])
            direction = np.array([rng.normal(0, 0.2), rng.normal(0, 0.2), -1.0])
        else:
            start = np.array([s * 90.0, rng.uniform(-30, 20), rng.uniform(z_lo + r, 70.0)])
            if kind.attachment == "chest_wall":
                t = rng.uniform(-1.3, 1.3)
                direction = np.array([s * np.cos(t), np.sin(t), rng.normal(0, 0.1)])
            else:
                direction = np.array([-s, rng.normal(0, 0.3), 0.0])
        b = chest.boundary_point(start, direction)
        if b is None or _active_boundary(chest, b + chest.lung_normal(b)) != kind.attachment:
            return None
        inset = rng.uniform(0.4, 0.6) if kind.diameter_mm >= 30 else rng.uniform(0.6, 0.85)
        return b - chest.lung_normal(b) * inset * rn
    if kind.attachment == "fissure":
        point, normal = chest.fissure[int(s > 0)]
        x, y = s * rng.uniform(75, 105), rng.uniform(-40, 50)
        z = point[2] - (normal[0] * (x - point[0]) + normal[1] * (y - point[1])) / normal[2]
        c = np.array([x, y, z]) + normal * rng.uniform(-0.3, 0.3) * rn
        return c if float(chest.lung_sdf(*c)) < -(r + 4.0) and _clear_of_vessels(chest, c, r) else None
    if kind.attachment == "vessel":
        # a vessel thinner than the lesion (at most half its radius, at least the tree's thinnest
        # branches: 1 mm, stored as 1.35 x 0.74 = 0.999): as thick as the lesion, nothing but its
        # shape tells them apart
        options = [v for v in chest.vessels if MIN_VESSEL_MM <= v[2] <= max(MIN_VESSEL_MM, 0.5 * r)]
        if not options:
            raise InputError(f"no vessel thin enough for a {kind.label} lesion in this chest; try another seed")
        a, b, vr = options[int(rng.integers(len(options)))]
        axis = (b - a) / max(float(np.linalg.norm(b - a)), 1e-6)
        perp = np.cross(axis, rng.normal(size=3))
        c = a + rng.uniform(0.3, 0.7) * (b - a) + perp / np.linalg.norm(perp) * (r + 0.2 * vr)
        return c if float(chest.lung_sdf(*c)) < -(r + 4.0) else None
    c = np.array([s * rng.uniform(60, 115), rng.uniform(-60, 70), rng.uniform(z_lo + r, 80.0)])
    if float(chest.lung_sdf(*c)) > -(r + 6.0):
        return None
    return c if _clear_of_vessels(chest, c, r) else None


def _corner_site(chest: Chest, r: float, rn: float, s: float, rng: np.random.Generator) -> np.ndarray | None:
    """A centre in the costophrenic angle: the lesion touches both the diaphragm and the chest wall."""
    start = np.array([s * rng.uniform(95, 125), rng.uniform(-40, 30), max(chest.dome) + 5.0])
    b = chest.boundary_point(start, np.array([s, rng.normal(0, 0.2), -1.0]))
    if b is None:
        return None
    c = b - chest.lung_normal(b) * rng.uniform(0.6, 0.85) * rn
    wall = -float(chest.inner_wall(c[1]) - chest.wall_depth(c[0], c[1]))
    dome = -float(chest.diaphragm_sdf(c[0], c[2]))
    ok = float(chest.lung_sdf(*c)) < 0 and wall < 0.9 * rn and dome < 0.9 * rn
    return c if ok else None


def _clear_of_vessels(chest: Chest, c: np.ndarray, r: float) -> bool:
    """No vessel of 1.2 mm radius or more within 1.5 mm of a lesion of radius r at c."""
    return min(float(segment_sdf(*c, a, b, vr)) for a, b, vr in chest.vessels if vr >= 1.2) > r + 1.5


def place_lesion(chest: Chest, kind: LesionKind, rng: np.random.Generator) -> _Lesion:
    """Draw a lesion of ``kind`` at a site that fits it; InputError if none is found."""
    for _ in range(300):
        c = _site(chest, kind, rng)
        if c is not None:
            break
    else:
        raise InputError(f"no site for a {kind.label} lesion in this chest; try another seed")
    r = 0.5 * kind.diameter_mm
    axes = r * rng.uniform(0.85, 1.15, 3)
    axes *= r / np.cbrt(np.prod(axes))
    rot, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    lobes = [(c + rng.normal(size=3) * 0.35 * r, r * rng.uniform(0.4, 0.55)) for _ in range(2)]
    waves = np.column_stack([rng.normal(0, 2.0, (6, 3)), rng.uniform(0, 2 * np.pi, 6)])
    if kind.density == "solid":
        hu = rng.uniform(15.0, 50.0)
    else:
        hu = rng.uniform(-650.0, -400.0)
    core = None
    if kind.density == "part_solid":
        rc = r * rng.uniform(0.35, 0.55)
        core = (c + rng.normal(size=3) * 0.15 * r, rc)
    les = _Lesion(kind, c, axes, rot, lobes, waves, hu, core)
    if kind.shape == "flat":  # a plate on its surface: short axis along the surface's normal
        les.axes = flat_axes(r) * rng.uniform(0.9, 1.1, 3)
        les.axes *= r / np.cbrt(np.prod(les.axes))
        les.rot = frame_with_normal(_surface_normal(chest, kind, c, rng), rng)
        les.lobes = []
    elif kind.shape == "spiculated":
        les.spikes = tuple(spicules(c, r, rng))
    elif kind.shape == "cavitating":
        les.cavity = cavity(c, r, rng)
    return les


def _surface_normal(chest: Chest, kind: LesionKind, c: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The normal of the surface a lesion at c lies on (a random one for a free lesion)."""
    if kind.attachment == "fissure":
        return chest.fissure[int(c[0] > 0)][1]
    if kind.attachment in ("isolated", "vessel"):
        return rng.normal(size=3)
    return chest.lung_normal(c)


def _lesion_layers(les: _Lesion, X, Y, Z, h: float, lung, chest: Chest, background, texture):
    """(occupancy, HU) of the lesion on a box: clipped to the lung (plus its wall invasion)."""
    occ = soft(les.sdf(X, Y, Z), h)
    room = lung if les.kind.invade_mm <= 0 else np.maximum(
        lung, soft(chest.lung_sdf(X, Y, Z) - les.kind.invade_mm, h))
    occ = occ * room
    if les.kind.density == "solid":
        hu = les.hu + 10.0 * texture
        if les.radius >= 15.0:  # large tumours: a darker, necrotic-looking centre
            d = np.sqrt((X - les.centre[0]) ** 2 + (Y - les.centre[1]) ** 2 + (Z - les.centre[2]) ** 2)
            hu = hu - 25.0 * np.exp(-((d / (0.45 * les.radius)) ** 2))
        if les.cavity is not None:
            cc, rc = les.cavity
            air = soft(np.sqrt((X - cc[0]) ** 2 + (Y - cc[1]) ** 2 + (Z - cc[2]) ** 2) - rc, h)
            hu = hu * (1 - air) + CAVITY_HU * air
    else:
        # ground glass: hazy tissue with texture that keeps the vessels crossing it
        hu = np.maximum(les.hu + 45.0 * texture, background)
        if les.core is not None:
            cc, rc = les.core
            core = soft(np.sqrt((X - cc[0]) ** 2 + (Y - cc[1]) ** 2 + (Z - cc[2]) ** 2) - rc, h)
            hu = hu * (1 - core) + (25.0 + 10.0 * texture) * core
    return occ.astype(np.float32), hu.astype(np.float32)


@dataclass
class Case:
    """One scan with one lesion: image, truth (bool zyx), exact volume, click and kind."""

    image: sitk.Image
    truth: np.ndarray
    volume_ml: float
    centre_lps: np.ndarray  # deepest truth voxel, the benchmark's click
    kind: LesionKind


def _axes(lo: np.ndarray, n: np.ndarray, step: np.ndarray):
    """Separable coordinate axes X (1,1,nx), Y (1,ny,1), Z (nz,1,1) from xyz start/count/step."""
    x = (lo[0] + step[0] * np.arange(n[0])).astype(np.float32).reshape(1, 1, -1)
    y = (lo[1] + step[1] * np.arange(n[1])).astype(np.float32).reshape(1, -1, 1)
    z = (lo[2] + step[2] * np.arange(n[2])).astype(np.float32).reshape(-1, 1, 1)
    return x, y, z


def _render_volume(chest: Chest, lesions: list[_Lesion], lo: np.ndarray, n: np.ndarray,
                   pixel: float, slice_mm: float, rng: np.random.Generator, background: bool = False):
    """HU, per-lesion occupancy and (optionally) the HU without lesions, each averaged over the
    slices' sub-slices: (hu, [occ], background or None), zyx."""
    k = max(1, int(np.ceil(slice_mm / FINE_Z_MM - 1e-6)))
    dz = slice_mm / k
    fine_n = np.array([n[0], n[1], n[2] * k])
    fine_lo = np.array([lo[0], lo[1], lo[2] - 0.5 * slice_mm + 0.5 * dz])
    sp_zyx = np.array([dz, pixel, pixel])
    tex = _smooth_texture(rng, tuple(fine_n[::-1]), sp_zyx, 3.0)
    les_tex = _smooth_texture(rng, tuple(fine_n[::-1]), sp_zyx, 1.5)
    X, Y, Z = _axes(fine_lo, fine_n, np.array([pixel, pixel, dz]))
    h = max(pixel, dz)
    hu = np.empty((n[2], n[1], n[0]), np.float32)
    bg = np.empty_like(hu) if background else None
    occs = [np.zeros_like(hu) for _ in lesions]
    chunk = max(1, 24 // k) * k  # sub-slices per pass (bounded memory)
    for z0 in range(0, fine_n[2], chunk):
        zs = slice(z0, min(z0 + chunk, fine_n[2]))
        part, lung = chest.render(X, Y, Z[zs], h, tex[zs])
        out = slice(z0 // k, (zs.stop + k - 1) // k)
        if bg is not None:
            bg[out] = part.reshape(-1, k, n[1], n[0]).mean(axis=1)
        for i, les in enumerate(lesions):
            blo, bhi = les.box_mm()
            sel = [np.flatnonzero((np.ravel(a) >= blo[j]) & (np.ravel(a) <= bhi[j]))
                   for j, a in enumerate((X, Y, Z[zs]))]
            if any(s.size == 0 for s in sel):
                continue
            box = tuple(slice(int(s.min()), int(s.max()) + 1) for s in sel[::-1])
            occ, les_hu = _lesion_layers(les, X[..., box[2]], Y[:, box[1]], Z[zs][box[0]], h,
                                         lung[box], chest, part[box], les_tex[zs][box])
            part[box] = part[box] * (1 - occ) + les_hu * occ
            full = np.zeros(part.shape, np.float32)
            full[box] = occ
            occs[i][out] = full.reshape(-1, k, n[1], n[0]).mean(axis=1)
        hu[out] = part.reshape(-1, k, n[1], n[0]).mean(axis=1)
    return hu, occs, bg


def _scanner(hu: np.ndarray, pixel: float, slice_mm: float, rng: np.random.Generator) -> np.ndarray:
    """In-plane blur and correlated noise whose level falls with slice thickness; int16 HU."""
    out = ndimage.gaussian_filter(hu, (0.0, PSF_MM / pixel, PSF_MM / pixel))
    noise = ndimage.gaussian_filter(rng.standard_normal(hu.shape).astype(np.float32),
                                    (0.0, 0.6, 0.6))
    noise /= noise.std() + 1e-6
    sd = NOISE_SD_1MM * rng.uniform(0.8, 1.25) / np.sqrt(slice_mm)
    return np.clip(np.rint(out + sd * noise), -1024, 3071).astype(np.int16)


def render_case(kind: LesionKind, seed: int = 0, pixel_mm: float = 0.7, half_mm: float | None = None,
                contrast: bool | None = None) -> Case:
    """One scan of a chest with one lesion of ``kind``, centred in a box of ``half_mm`` (default:
    large enough that a 70 mm region of interest never meets the box)."""
    rng = np.random.default_rng(seed)
    chest = Chest(rng, contrast=bool(rng.random() < 0.3) if contrast is None else contrast)
    les = place_lesion(chest, kind, rng)
    half = half_mm if half_mm is not None else max(75.0, 1.3 * les.radius + 45.0)
    n = np.array([int(2 * half / pixel_mm), int(2 * half / pixel_mm), int(2 * half / kind.slice_mm)])
    lo = les.centre - np.array([pixel_mm, pixel_mm, kind.slice_mm]) * (n - 1) / 2
    hu, (occ,), _ = _render_volume(chest, [les], lo, n, pixel_mm, kind.slice_mm, rng)
    image = sitk.GetImageFromArray(_scanner(hu, pixel_mm, kind.slice_mm, rng))
    image.SetSpacing((pixel_mm, pixel_mm, kind.slice_mm))
    image.SetOrigin(tuple(float(v) for v in lo))
    # a nodule thinner than the slice may fill no voxel half-way (it straddles two slices): its
    # truth is then the voxels at least half as full as the fullest
    truth = occ >= min(0.5, 0.5 * float(occ.max()))
    if not truth.any():
        raise InputError(f"{kind.label}: lesion vanished at this resolution; try another seed")
    volume = float(occ.sum()) * pixel_mm * pixel_mm * kind.slice_mm / 1000.0
    centre = lesion_centre_zyx(truth, np.array([kind.slice_mm, pixel_mm, pixel_mm]))
    centre_lps = np.array(image.TransformContinuousIndexToPhysicalPoint(
        [float(v) for v in centre[::-1]]))
    return Case(image, truth, volume, centre_lps, kind)


def make_kind_study(
    out_dir: Path,
    kinds: list[LesionKind],
    n_scans: int = 4,
    seed: int = 0,
    growth=None,
    prompt_scan: str | int = 0,
    pixel_mm: float = 0.8,
    slice_spacings_mm: tuple[float, ...] | None = None,
    patient_id: str | None = None,
    deform_mm: float = 2.0,
) -> Path:
    """A longitudinal study of one chest holding one lesion per kind; returns the manifest.

    ``growth``: volume factors per scan (one sequence for all lesions or one per lesion; 0 =
    vanished); default 1, 1.4, 0.7, 0 ... (the last scan without them). Scans are resampled from a
    fine reference (``pixel_mm`` in-plane, 1 mm slices) at ``slice_spacings_mm`` (default: the
    first kind's slice), averaging sub-slices into each slice.
    """
    if not kinds:
        raise InputError("make_kind_study: at least one lesion kind")
    rng = np.random.default_rng(seed)
    chest = Chest(rng, contrast=bool(rng.random() < 0.3))
    scan_ids = [f"T{i}" for i in range(n_scans)]
    prompt_index = prompt_index_of(prompt_scan, scan_ids)
    factors = _growth(growth, len(kinds), n_scans, prompt_index)
    lesions: list[_Lesion] = []
    for kind in kinds:
        for _ in range(50):
            les = place_lesion(chest, kind, rng)
            reach = les.radius * np.cbrt(factors.max()) + 8.0
            if all(np.linalg.norm(les.centre - o.centre) > reach + o.radius * np.cbrt(factors.max())
                   for o in lesions):
                lesions.append(les)
                break
        else:
            raise InputError(f"make_kind_study: no room for a {kind.label} lesion; use fewer")
    zc = np.array([les.centre[2] for les in lesions])
    reach = max(les.radius for les in lesions) * np.cbrt(factors.max()) + 45.0
    lo = np.array([-chest.a - 6.0, -chest.b - 6.0, zc.min() - reach])
    n = np.array([int(2 * (chest.a + 6.0) / pixel_mm), int(2 * (chest.b + 6.0) / pixel_mm),
                  int((zc.max() - zc.min() + 2 * reach) / FINE_Z_MM)])
    with_lesions, occs, background = _render_volume(chest, lesions, lo, n, pixel_mm, FINE_Z_MM, rng,
                                                    background=True)
    ref = sitk.GetImageFromArray(background)
    ref.SetSpacing((pixel_mm, pixel_mm, FINE_Z_MM))
    ref.SetOrigin(tuple(float(v) for v in lo))
    synth = []
    for k, (les, occ) in enumerate(zip(lesions, occs, strict=True), start=1):
        box = ndimage.find_objects((occ > 0.01).astype(np.uint8))[0]
        occ_box = occ[box]
        # the lesion's own HU where it is: invert the blend rendered above
        hu = np.where(occ_box > 1e-3, (with_lesions[box] - background[box] * (1 - occ_box))
                      / np.maximum(occ_box, 1e-3), background[box])
        synth.append(SynthLesion(id=f"L{k}", truth_label=k, box=box, occupancy=occ_box,
                                 hu=hu.astype(np.float32), volume_factors=factors[k - 1],
                                 kind=les.kind.label, kind_detail=les.kind.detail()))
    del with_lesions, occs
    slices = slice_spacings_mm or (kinds[0].slice_mm,)
    sd = NOISE_SD_1MM / np.sqrt(float(np.mean(slices)))
    return synthesize_study(
        out_dir, reference=ref, lesions=synth, scan_ids=scan_ids, rng=rng,
        prompt_index=prompt_index, patient_id=patient_id or f"K{seed:03d}",
        generator="kinds", seed=seed, deform_mm=deform_mm, noise_sd=(0.8 * sd, 1.2 * sd),
        slice_spacings_mm=tuple(slices), slice_profile="box", noise_corr_mm=0.6 * pixel_mm,
        psf_mm=PSF_MM,
    )


def _growth(growth, n_lesions: int, n_scans: int, prompt_index: int) -> np.ndarray:
    """(n_lesions, n_scans) volume factors; default grows, shrinks, then vanishes last."""
    if growth is None:
        seq = np.array([1.0, 1.4, 0.7, 0.0, 1.2][:n_scans] + [0.7] * max(0, n_scans - 5))
        if n_scans < 4 or prompt_index == n_scans - 1:
            seq[seq == 0.0] = 0.5
        return np.tile(seq, (n_lesions, 1))
    arr = np.asarray(growth, float)
    arr = np.tile(arr, (n_lesions, 1)) if arr.ndim == 1 else arr
    if arr.shape != (n_lesions, n_scans) or np.any(arr < 0) or arr[:, prompt_index].min() <= 0:
        raise InputError("growth: one factor >= 0 per scan (and lesion), > 0 on the prompt scan")
    return arr


__all__ = ["ATTACHMENTS", "DENSITIES", "Case", "LesionKind", "make_kind_study", "place_lesion",
           "render_case"]
