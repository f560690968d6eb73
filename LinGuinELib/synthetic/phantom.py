"""CT-like chest phantom (HU) with lesions that grow, shrink or vanish: a study with known truth.

The anatomy is drawn once, analytically in physical coordinates, on a *reference* grid; each
scan of the study is that reference (with the lesions present at that time) pulled through its
own pose + smooth warp + per-lesion growth warps onto its own grid (see :mod:`.deform` for the
transform directions), then given its own noise. Truth labels follow the same transforms.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from ..errors import InputError
from .manifest import SynthLesion, prompt_index_of, synthesize_study

log = logging.getLogger(__name__)

SMALL_SHAPE_ZYX = (64, 128, 128)
SMALL_SPACING_XYZ = (2.0, 2.0, 2.5)
REALISTIC_SHAPE_ZYX = (160, 512, 512)
REALISTIC_SPACING_XYZ = (0.7, 0.7, 2.0)

HU_AIR, HU_FAT, HU_SOFT, HU_LUNG, HU_VESSEL = -1000.0, -100.0, 40.0, -850.0, 40.0


@dataclass
class _Grid:
    """Physical coordinates relative to the volume centre, as broadcastable 1-D arrays."""

    shape_zyx: tuple[int, int, int]
    spacing_xyz: tuple[float, float, float]
    origin_xyz: np.ndarray
    center_xyz: np.ndarray

    def axes(self, box: tuple[slice, slice, slice] | None = None):
        sl = box or tuple(slice(0, n) for n in self.shape_zyx)
        out = []
        for axis_zyx, s in enumerate(sl):
            a = 2 - axis_zyx  # xyz index
            v = self.origin_xyz[a] + self.spacing_xyz[a] * np.arange(s.start, s.stop)
            shape = [1, 1, 1]
            shape[axis_zyx] = len(v)
            out.append((v - self.center_xyz[a]).reshape(shape).astype(np.float32))
        return out[2], out[1], out[0]  # X, Y, Z (relative mm)

    def box(self, center_rel: np.ndarray, half_mm: float) -> tuple[slice, slice, slice]:
        """Index box (z, y, x slices) around a centre given relative to the volume centre."""
        sl = []
        for axis_zyx in range(3):
            a = 2 - axis_zyx
            c = (center_rel[a] + self.center_xyz[a] - self.origin_xyz[a]) / self.spacing_xyz[a]
            r = half_mm / self.spacing_xyz[a]
            lo = int(max(np.floor(c - r), 0))
            hi = int(min(np.ceil(c + r) + 1, self.shape_zyx[axis_zyx]))
            sl.append(slice(lo, max(hi, lo)))
        return tuple(sl)


@dataclass
class _Anatomy:
    hu: np.ndarray
    lung_centers: list[np.ndarray]
    lung_axes: np.ndarray
    vessels: list[tuple[np.ndarray, np.ndarray, float]]  # (start, end, radius) relative mm


def _soft(sdf: np.ndarray, h: float) -> np.ndarray:
    """Partial-volume occupancy from a signed distance (mm, negative inside)."""
    return np.clip(0.5 - sdf / h, 0.0, 1.0)


def _in_lung(p: np.ndarray, anat: _Anatomy, shrink: float = 1.0) -> bool:
    return any(np.sum(((p - c) / (anat.lung_axes * shrink)) ** 2) <= 1.0 for c in anat.lung_centers)


def _smooth_texture(rng: np.random.Generator, shape: tuple[int, ...],
                    spacing_zyx: np.ndarray, corr_mm: float) -> np.ndarray:
    """Zero-mean unit-sd noise correlated over ~``corr_mm``; drawn on a grid of ~corr/2 mm
    and upsampled linearly (smooth enough at that sampling, and fast at 512x512)."""
    factor = np.maximum(np.floor(corr_mm / 2.0 / np.asarray(spacing_zyx)), 1).astype(int)
    coarse = tuple(max(int(np.ceil(n / f)), 2) for n, f in zip(shape, factor, strict=True))
    sigma = corr_mm / (np.asarray(spacing_zyx) * factor)
    t = ndimage.gaussian_filter(rng.standard_normal(coarse).astype(np.float32), sigma / 2)
    if np.any(factor > 1):
        t = ndimage.zoom(t, [n / c for n, c in zip(shape, coarse, strict=True)], order=1,
                         grid_mode=True, mode="nearest")
    t = t[: shape[0], : shape[1], : shape[2]]
    t = np.pad(t, [(0, n - m) for n, m in zip(shape, t.shape, strict=True)], mode="edge")
    return (t - t.mean()) / (t.std() + 1e-6)


def _segment_sdf(X, Y, Z, a: np.ndarray, b: np.ndarray, r: float) -> np.ndarray:
    ab = b - a
    t = ((X - a[0]) * ab[0] + (Y - a[1]) * ab[1] + (Z - a[2]) * ab[2]) / max(float(ab @ ab), 1e-9)
    t = np.clip(t, 0.0, 1.0)
    d2 = (X - a[0] - t * ab[0]) ** 2 + (Y - a[1] - t * ab[1]) ** 2 + (Z - a[2] - t * ab[2]) ** 2
    return np.sqrt(d2) - r


def _grow_tree(rng, anat: _Anatomy, start, direction, radius, depth, out) -> None:
    """Random branching vessel tree, clipped to the lungs (2-5 mm diameter tubes)."""
    length = rng.uniform(25.0, 45.0) * (0.8**(3 - depth) if depth < 3 else 1.0)
    end = start + direction * length
    if not _in_lung(end, anat, 0.95):
        for f in (0.66, 0.4):
            if _in_lung(start + direction * length * f, anat, 0.95):
                end = start + direction * length * f
                break
        else:
            return
    out.append((start, end, radius))
    if depth == 0:
        return
    for _ in range(2):
        d = direction + rng.normal(0.0, 0.55, 3)
        d /= np.linalg.norm(d)
        _grow_tree(rng, anat, end, d, max(radius * 0.8, 1.0), depth - 1, out)


def _render_anatomy(rng: np.random.Generator, g: _Grid) -> _Anatomy:
    X, Y, Z = g.axes()
    fov = np.array(g.shape_zyx[::-1]) * np.array(g.spacing_xyz)
    A, B = 0.44 * fov[0], 0.32 * fov[1]
    hu = np.full(g.shape_zyx, HU_AIR, np.float32)
    rho = np.sqrt((X / A) ** 2 + (Y / B) ** 2)
    rho_fat = np.sqrt((X / (A - 12)) ** 2 + (Y / (B - 12)) ** 2)
    body2d = rho <= 1.0
    hu[...] = np.where(body2d, np.where(rho_fat <= 1.0, HU_SOFT, HU_FAT), HU_AIR)
    # ribs: tilted elliptic rings under the fat layer, gap at the sternum
    z_min = float(Z.min())
    for zk in np.arange(z_min + 10.0, float(Z.max()), 22.0):
        zc = zk + 10.0 * (Y / B)
        ring = (np.abs(Z - zc) < 4.0) & (np.abs(rho_fat - 0.93) < 0.03)
        ring &= ~((np.abs(X) < 0.2 * A) & (Y < 0))
        hu[ring] = 550.0
    # spine: vertebral bodies (cancellous + cortex) with discs, spinal canal behind
    r_vb = 0.16 * B
    dv = np.sqrt(X**2 + (Y - 0.62 * B) ** 2)
    disc = (np.mod(Z - z_min, 26.0) < 5.0)
    spine = np.broadcast_to(dv <= r_vb, hu.shape)
    hu[spine] = np.broadcast_to(np.where(disc, 80.0, np.where(dv > r_vb - 3, 700.0, 300.0)),
                                hu.shape)[spine]
    canal = np.broadcast_to(np.sqrt(X**2 + (Y - (0.62 * B + r_vb + 7)) ** 2) < 7.0, hu.shape)
    hu[canal] = 15.0
    # heart and aorta (blood ~ soft tissue, slightly brighter)
    heart = ((X - 0.08 * A) / (0.28 * A)) ** 2 + ((Y + 0.25 * B) / (0.4 * B)) ** 2 \
        + ((Z + 0.25 * fov[2]) / (0.35 * fov[2])) ** 2 <= 1.0
    hu[heart] = 50.0
    aorta = np.broadcast_to(np.sqrt((X + 0.12 * A) ** 2 + (Y - 0.3 * B) ** 2) < 12.0, hu.shape)
    hu[aorta] = 55.0
    # lungs: two ellipsoids, apex inside the field of view, base cut
    axes = np.array([0.36 * A, 0.62 * B, 0.6 * fov[2]])
    centers = [np.array([s * 0.5 * A, -0.03 * B, -0.12 * fov[2]]) for s in (-1.0, 1.0)]
    h = min(g.spacing_xyz)
    lung = np.zeros(g.shape_zyx, np.float32)
    for c in centers:
        q = np.sqrt(((X - c[0]) / axes[0]) ** 2 + ((Y - c[1]) / axes[1]) ** 2
                    + ((Z - c[2]) / axes[2]) ** 2)
        lung = np.maximum(lung, _soft((q - 1.0) * axes[0], h))
    sp_zyx = np.array(g.spacing_xyz)[::-1]
    lung_hu = HU_LUNG + 25.0 * _smooth_texture(rng, g.shape_zyx, sp_zyx, 5.0)
    anat = _Anatomy(hu, centers, axes, [])
    for c, side in zip(centers, (-1.0, 1.0), strict=True):
        hilum = c + np.array([-side * 0.55 * axes[0], 0.1 * axes[1], 0.1 * axes[2]])
        for d in ([side, 0.0, 1.0], [side, -0.5, 0.0], [side, 0.3, -1.0], [side * 0.6, 0.8, -0.3],
                  [side, -0.6, 0.8], [side, 0.5, 0.5]):
            dv_ = np.asarray(d, float) / np.linalg.norm(d)
            _grow_tree(rng, anat, hilum, dv_, 2.5, 4, anat.vessels)
    vessel_occ = np.zeros(g.shape_zyx, np.float32)
    for a, b, r in anat.vessels:
        mid = (a + b) / 2
        box = g.box(mid, np.linalg.norm(b - a) / 2 + r + 2 * h)
        Xb, Yb, Zb = g.axes(box)
        occ = _soft(_segment_sdf(Xb, Yb, Zb, a, b, r), h)
        np.maximum(vessel_occ[box], occ, out=vessel_occ[box])
    parenchyma = lung_hu * (1 - vessel_occ) + HU_VESSEL * vessel_occ
    hu[...] = hu * (1 - lung) + parenchyma * lung
    log.debug("phantom anatomy: %d vessel segments", len(anat.vessels))
    return anat


def _place_lesions(rng, anat: _Anatomy, n: int, max_scale: np.ndarray,
                   half_fov: np.ndarray) -> list[dict]:
    """Lesion centres and shapes: #0 touches a vessel, #1 the pleura, the rest free in the lung."""
    out: list[dict] = []
    for k in range(n):
        for _attempt in range(400):
            diam = rng.uniform(10.0, 26.0) if _attempt < 200 else rng.uniform(8.0, 14.0)
            r = diam / 2
            kind = ("vessel", "pleura", "free")[min(k, 2)] if _attempt < 300 else "free"
            if kind == "vessel":
                a, b, vr = anat.vessels[rng.integers(len(anat.vessels))]
                axis = (b - a) / max(np.linalg.norm(b - a), 1e-6)
                perp = np.cross(axis, rng.normal(size=3))
                perp /= max(np.linalg.norm(perp), 1e-6)
                c = a + rng.uniform(0.3, 0.7) * (b - a) + perp * (r + 0.3 * vr)
            elif kind == "pleura":
                lc = anat.lung_centers[rng.integers(2)]
                u = rng.normal(size=3) * np.array([1.0, 1.0, 0.3])
                u /= np.linalg.norm(u)
                surf = lc + u / np.sqrt(np.sum((u / anat.lung_axes) ** 2))
                c = surf - u * 0.9 * r
            else:
                lc = anat.lung_centers[rng.integers(2)]
                c = lc + rng.uniform(-0.6, 0.6, 3) * anat.lung_axes
            clear = 0.0 if kind == "pleura" else 1.5 * r
            if np.any(np.abs(c) > half_fov - r * max_scale[k] - 12.0):
                continue
            if not _in_lung(c, anat, 0.92) or not _in_lung(
                    c + np.sign(c) * clear * np.array([1, 0, 0]), anat, 1.0):
                continue
            far = all(np.linalg.norm(c - o["center"]) > 2.6 * (r * max_scale[k] + o["r"] * o["s"])
                      for o in out)
            if far:
                break
        else:
            raise InputError(f"phantom: could not place lesion {k + 1}; use fewer lesions")
        ax = r * rng.uniform(0.8, 1.15, 3)
        rot, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        lobes = [(c + rng.normal(size=3) * 0.35 * r, r * rng.uniform(0.45, 0.6)) for _ in range(2)]
        out.append({"center": c, "r": r, "axes": ax, "rot": rot, "lobes": lobes, "s": max_scale[k],
                    "hu": rng.uniform(10.0, 50.0), "kind": kind})
    return out


def _render_lesion(g: _Grid, les: dict) -> tuple[tuple[slice, ...], np.ndarray]:
    """Soft occupancy of one lesion (rotated ellipsoid + two lobules) in its index box."""
    h = min(g.spacing_xyz)
    box = g.box(les["center"], 1.6 * les["r"] + 2 * h)
    X, Y, Z = g.axes(box)
    d = [X - les["center"][0], Y - les["center"][1], Z - les["center"][2]]
    loc = [sum(les["rot"][i, j] * d[j] for j in range(3)) for i in range(3)]
    q = np.sqrt(sum((loc[i] / les["axes"][i]) ** 2 for i in range(3)))
    sdf = (q - 1.0) * float(np.mean(les["axes"]))
    for lc, lr in les["lobes"]:
        sdf = np.minimum(sdf, np.sqrt((X - lc[0]) ** 2 + (Y - lc[1]) ** 2 + (Z - lc[2]) ** 2) - lr)
    return box, _soft(sdf, h)


def volume_schedule(rng: np.random.Generator, n_scans: int, n_lesions: int,
                    prompt_index: int) -> np.ndarray:
    """(n_lesions, n_scans) volume factors relative to the first scan; 0 = vanished.

    Patterns cycle grow / shrink-then-vanish / shrink / stable; a lesion never vanishes on the
    prompt scan, nor on the first two scans.
    """
    f = np.ones((n_lesions, n_scans))
    t = np.arange(n_scans)
    for k in range(n_lesions):
        kind = k % 4
        if kind == 0:
            f[k] = rng.uniform(1.25, 1.45) ** t
        elif kind in (1, 2):
            f[k] = rng.uniform(0.65, 0.8) ** t
            if kind == 1 and n_scans >= 3 and prompt_index < n_scans - 1:
                f[k, -1] = 0.0
        f[k] = np.minimum(f[k], 2.6)
    return f


def make_study(
    out_dir: Path,
    n_scans: int = 4,
    n_lesions: int = 2,
    seed: int = 0,
    shape_zyx: tuple[int, int, int] = SMALL_SHAPE_ZYX,
    spacing: tuple[float, float, float] = SMALL_SPACING_XYZ,
    prompt_scan: str | int = 0,
    prompt_kind: str = "point",
    patient_id: str | None = None,
    deform_mm: float = 2.0,
    inplane_jitter: float = 0.0,
) -> Path:
    """Write a synthetic longitudinal study (scans, truth labels, prompts) and return its manifest.

    ``spacing`` is (x, y, z) mm of the reference grid; each scan gets its own slice spacing
    (1.25-3 mm), pose, smooth warp (``deform_mm`` sd at the control points) and noise.
    ``inplane_jitter`` (e.g. 0.1) also varies the pixel spacing per scan.
    Use REALISTIC_SHAPE_ZYX / REALISTIC_SPACING_XYZ for a 512x512 benchmark-sized study.
    """
    t0 = time.perf_counter()
    if n_scans < 1 or n_lesions < 1:
        raise InputError("make_study: n_scans and n_lesions must be >= 1")
    if len(shape_zyx) != 3 or min(shape_zyx) < 16:
        raise InputError("make_study: shape_zyx must be 3 sizes >= 16")
    rng = np.random.default_rng(seed)
    spacing_xyz = tuple(float(s) for s in spacing)
    shape = tuple(int(n) for n in shape_zyx)
    fov = np.array(shape[::-1]) * np.array(spacing_xyz)
    origin = np.array([-fov[0] / 2, -fov[1] / 2, -150.0 - fov[2] / 2])
    g = _Grid(shape, spacing_xyz, origin, origin + (np.array(shape[::-1]) - 1) / 2 * spacing_xyz)
    scan_ids = [f"T{i}" for i in range(n_scans)]
    prompt_index = prompt_index_of(prompt_scan, scan_ids)

    anat = _render_anatomy(rng, g)
    factors = volume_schedule(rng, n_scans, n_lesions, prompt_index)
    lesions = _place_lesions(rng, anat, n_lesions, np.cbrt(factors.max(axis=1)), fov / 2)
    ref = sitk.GetImageFromArray(anat.hu)
    ref.SetSpacing(spacing_xyz)
    ref.SetOrigin([float(v) for v in origin])
    tex = _smooth_texture(rng, shape, np.array(spacing_xyz)[::-1], 3.0)
    synth: list[SynthLesion] = []
    for k, les in enumerate(lesions, start=1):
        box, occ = _render_lesion(g, les)
        synth.append(SynthLesion(id=f"L{k}", truth_label=k, box=box, occupancy=occ,
                                 hu=les["hu"] + 12.0 * tex[box], volume_factors=factors[k - 1],
                                 kind=les["kind"]))
    manifest = synthesize_study(
        out_dir, reference=ref, lesions=synth, scan_ids=scan_ids, rng=rng,
        prompt_index=prompt_index, prompt_kind=prompt_kind,
        patient_id=patient_id or f"P{seed + 1:03d}", generator="phantom", seed=seed,
        deform_mm=deform_mm, identity_first=False, inplane_jitter=inplane_jitter,
    )
    log.info("phantom study %s: %d scans in %.1f s", manifest, n_scans, time.perf_counter() - t0)
    return manifest
