"""Breathing-like motion of a real chest CT with known truth (registration benchmark).

A target scan is synthesised from a source CT as another breathing phase of the same patient:

- the lungs and everything inside the rib cage move cranio-caudally with the diaphragm
  (``diaphragm_mm`` at the lung base, nothing at the apex), while the chest wall moves little:
  the two motions meet at the pleura, where the lung *slides* along the wall (a true
  discontinuity, rendered per voxel, not smeared by a smooth field);
- both share an antero-posterior and lateral expansion (so the wall and the lung surface stay
  in contact), smooth random non-rigid bumps, and a small pose change;
- lung density follows the local volume change (mass conservation: HU + 1000 scales with the
  Jacobian determinant of the mapping), as between inhale and exhale;
- another grid (slice thickness, pixel size), field of view (cut along z, or a half-thorax
  reconstruction circle padded with -2048), reconstruction kernel (soft or sharp), HU offset
  and noise.

``g_in`` / ``g_wall`` map target points to source points for the interior / the wall;
which one applies at a target point q is decided by whether ``g_in(q)`` falls in the
source's interior region. Source landmarks at lung vessel corners (Foerstner measure) are
carried to the target exactly through the inverse of the matching transform.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from ..voxels import voxel_copy, voxels

PADDING = -2048.0
AIR = -1024.0


@dataclass
class BreathingCase:
    target: sitk.Image
    g_in: sitk.Transform  # target -> source for the lung / rib-cage interior
    g_wall: sitk.Transform  # target -> source for the chest wall and outside
    interior: sitk.Image  # source-frame mask (coarse) of the region moving with g_in
    fov: tuple[np.ndarray, float] | None  # (centre xy, radius) of a reconstruction circle
    desc: dict = field(default_factory=dict)


def lung_regions(source: sitk.Image, grid_mm: float = 2.5) -> tuple[sitk.Image, sitk.Image]:
    """(lungs, interior) uint8 masks on a ~``grid_mm`` copy of the source grid.

    Lungs: air inside the body not connected to the outside, closed over vessels. Interior:
    per slice, the lungs closed across the mediastinum, plus everything under the interior of
    the slice above within the body eroded by 15 mm (the rib cage's content follows the
    diaphragm; the wall outside it does not).
    """
    factors = [max(1, int(round(grid_mm / s))) for s in source.GetSpacing()]
    small = sitk.BinShrink(sitk.Cast(source, sitk.sitkFloat32), factors)
    sp = np.array(small.GetSpacing())[::-1]  # (z, y, x)
    arr = voxel_copy(small)
    body = arr > -500
    labels, count = ndimage.label(body)
    if count:
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        body = labels == int(np.argmax(sizes))
    body = np.stack([ndimage.binary_fill_holes(s) for s in body])
    air = body & (arr < -400)
    labels, _ = ndimage.label(air)
    sizes = np.bincount(labels.ravel()) * float(np.prod(sp)) / 1000.0
    keep = sizes > 100.0
    keep[0] = False
    lungs = keep[labels]
    ball = np.ones((3, 3, 3), bool)
    lungs = ndimage.binary_closing(lungs, ball, iterations=2)
    lungs = np.stack([ndimage.binary_fill_holes(s) for s in lungs])
    r = max(1, int(round(30.0 / sp[1])))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    disk = (yy**2 + xx**2) <= r * r
    interior = np.zeros_like(lungs)
    zs = np.flatnonzero(lungs.any(axis=(1, 2)))
    inner_body = ndimage.binary_erosion(body, iterations=max(1, int(round(15.0 / sp[1]))))
    if len(zs):
        # From the apex down: a slice's interior is its lungs closed across the mediastinum, plus
        # whatever lies under the interior of the slice above inside the rib cage (heart, liver
        # and spleen under the diaphragm domes move with it).
        down = -1 if source.GetDirection()[8] > 0 else 1
        start = zs[-1] if down < 0 else zs[0]
        previous = np.zeros_like(lungs[0])
        for z in range(start, -1 if down < 0 else len(arr), down):
            closed = np.zeros_like(previous)
            if lungs[z].any():
                closed = ndimage.binary_closing(np.pad(lungs[z], r), disk)[r:-r, r:-r]
                closed = ndimage.binary_fill_holes(closed) & body[z]
            interior[z] = closed | (previous & inner_body[z])
            previous = interior[z]
    out = []
    for mask in (lungs, interior | lungs):
        img = sitk.GetImageFromArray(mask.astype(np.uint8))
        img.CopyInformation(small)
        out.append(img)
    return out[0], out[1]


def _mask_lookup(mask: sitk.Image, points: np.ndarray) -> np.ndarray:
    """Nearest-voxel value of ``mask`` at physical points (0 outside)."""
    arr = voxels(mask)
    out = np.zeros(len(points), dtype=bool)
    for i, p in enumerate(points):
        idx = mask.TransformPhysicalPointToIndex(tuple(map(float, p)))
        if all(0 <= idx[k] < mask.GetSize()[k] for k in range(3)):
            out[i] = bool(arr[idx[2], idx[1], idx[0]])
    return out


def _field_transform(field_xyz: np.ndarray, origin: np.ndarray, grid_mm: float) -> sitk.Transform:
    img = sitk.GetImageFromArray(np.transpose(field_xyz, (2, 1, 0, 3)).astype(np.float64), isVector=True)
    img.SetOrigin(tuple(map(float, origin)))
    img.SetSpacing((grid_mm,) * 3)
    return sitk.DisplacementFieldTransform(img)


def breathing_fields(source: sitk.Image, lungs: sitk.Image, rng: np.random.Generator,
                     diaphragm_mm: float, grid_mm: float = 4.0
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(u_in, u_wall, grid points, origin...) displacement fields (x, y, z, 3) in the source frame."""
    lo, hi = _bounds(source)
    origin = lo - 60.0
    shape = np.ceil((hi - lo + 120.0) / grid_mm).astype(int) + 1
    axes = [origin[i] + grid_mm * np.arange(shape[i]) for i in range(3)]
    pts = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
    lung_idx = np.argwhere(voxels(lungs) > 0)[::7]
    lung_pts = np.array([lungs.TransformIndexToPhysicalPoint(tuple(int(v) for v in i[::-1]))
                         for i in lung_idx]) if len(lung_idx) else pts.reshape(-1, 3)
    top, bottom = lung_pts[:, 2].max(), lung_pts[:, 2].min()
    back, front = lung_pts[:, 1].max(), lung_pts[:, 1].min()  # LPS: +y is posterior
    x_c = float(np.median(lung_pts[:, 0]))
    s = np.clip((top - pts[..., 2]) / max(top - bottom, 1.0), 0.0, 1.0) ** 1.5
    sign = rng.choice([-1.0, 1.0])  # +1: the target is the deeper inspiration
    expand = rng.uniform(0.03, 0.06)
    shared = np.zeros(pts.shape)
    shared[..., 0] = -sign * expand * s * (pts[..., 0] - x_c)
    shared[..., 1] = sign * 0.25 * diaphragm_mm * s * np.clip(
        (back - pts[..., 1]) / max(back - front, 1.0), 0.0, 1.2)
    bumps = np.zeros(pts.shape)  # regional differences (lobes, heart beat): local non-rigid motion
    for _ in range(6):
        c = lo + rng.uniform(0.2, 0.8, 3) * (hi - lo)
        sigma = rng.uniform(25.0, 45.0)
        w = np.exp(-np.sum((pts - c) ** 2, axis=-1) / (2 * sigma**2))
        bumps += w[..., None] * rng.normal(size=3)
    bumps *= rng.uniform(3.0, 6.0) / max(np.linalg.norm(bumps, axis=-1).max(), 1e-9)
    # Dependent (posterior) lung moves more than the anterior lung.
    posterior = np.clip((pts[..., 1] - front) / max(back - front, 1.0), 0.0, 1.0)
    u_wall = shared + bumps * np.array([1.0, 1.0, 0.3])
    u_wall[..., 2] += sign * 0.1 * diaphragm_mm * s
    u_in = shared + bumps
    u_in[..., 2] += sign * diaphragm_mm * s * (0.6 + 0.8 * posterior)
    return u_in, u_wall, origin, grid_mm


def _bounds(image: sitk.Image) -> tuple[np.ndarray, np.ndarray]:
    size = image.GetSize()
    corners = np.array([image.TransformIndexToPhysicalPoint((i, j, k))
                        for i in (0, size[0] - 1) for j in (0, size[1] - 1) for k in (0, size[2] - 1)])
    return corners.min(axis=0), corners.max(axis=0)


def _jacobian(u: np.ndarray, grid_mm: float) -> np.ndarray:
    """det(I + grad u) of a (x, y, z, 3) field."""
    jac = np.zeros(u.shape[:3] + (3, 3))
    for c in range(3):
        grads = np.gradient(u[..., c], grid_mm)
        for a in range(3):
            jac[..., c, a] = grads[a] + (1.0 if a == c else 0.0)
    return np.linalg.det(jac)


def make_breathing_case(source: sitk.Image, rng: np.random.Generator,
                        diaphragm_mm: tuple[float, float] = (20.0, 40.0),
                        half_fov: bool = False, regions: tuple[sitk.Image, sitk.Image] | None = None
                        ) -> BreathingCase:
    """A target scan of ``source`` at another breathing phase, grid, field of view and kernel."""
    lungs, interior = regions or lung_regions(source)
    amplitude = float(rng.uniform(*diaphragm_mm))
    u_in, u_wall, origin, grid_mm = breathing_fields(source, lungs, rng, amplitude)
    lo, hi = _bounds(source)
    centre = 0.5 * (lo + hi)
    pose = sitk.Euler3DTransform()
    pose.SetCenter(tuple(map(float, centre)))
    pose.SetRotation(*map(float, np.deg2rad(rng.uniform(-3.0, 3.0, 3))))
    trans = rng.normal(size=3)
    pose.SetTranslation(tuple(map(float, trans / np.linalg.norm(trans) * rng.uniform(3.0, 15.0))))
    jac = _jacobian(u_in, grid_mm)
    g_in = sitk.CompositeTransform([_field_transform(u_in, origin, grid_mm), pose])
    g_wall = sitk.CompositeTransform([_field_transform(u_wall, origin, grid_mm), pose])

    spacing = np.array(source.GetSpacing())
    dz = float(rng.choice([1.0, 1.25, 2.0, 2.5])) if spacing[2] < 3.0 else float(rng.choice([2.5, 5.0]))
    dxy = float(rng.uniform(0.65, 0.95))
    new_lo, new_hi = lo.copy(), hi.copy()
    new_lo[2] += rng.uniform(10.0, 40.0)
    new_hi[2] -= rng.uniform(10.0, 40.0)
    fov = None
    if half_fov:
        lung_pts = np.argwhere(voxels(lungs) > 0)[::11]
        phys = np.array([lungs.TransformIndexToPhysicalPoint(tuple(int(v) for v in i[::-1]))
                         for i in lung_pts])
        side = phys[phys[:, 0] < np.median(phys[:, 0])] if rng.random() < 0.5 else \
            phys[phys[:, 0] >= np.median(phys[:, 0])]
        c_xy = np.array([side[:, 0].mean(), 0.5 * (lo[1] + hi[1])])
        radius = float(rng.uniform(115.0, 140.0))
        fov = (c_xy, radius)
        new_lo[:2] = np.maximum(lo[:2], c_xy - radius)
        new_hi[:2] = np.minimum(hi[:2], c_xy + radius)
    size = [int((new_hi[0] - new_lo[0]) / dxy), int((new_hi[1] - new_lo[1]) / dxy),
            int((new_hi[2] - new_lo[2]) / dz)]
    grid = sitk.Image(size, sitk.sitkUInt8)
    grid.SetOrigin(tuple(map(float, new_lo)))
    grid.SetSpacing((dxy, dxy, dz))

    src = sitk.Cast(source, sitk.sitkFloat32)
    if dz > spacing[2]:
        src = sitk.RecursiveGaussian(src, sigma=0.5 * dz, direction=2)
    # One nearest-neighbour pass gives both the region (interior or wall) and the lung weight.
    # Linear interpolation of the coarse masks, thresholded at 0.5: smooth region boundaries.
    label = sitk.Cast(interior, sitk.sitkFloat32) + 2.0 * sitk.Cast(lungs, sitk.sitkFloat32)
    label = voxel_copy(sitk.Resample(label, grid, g_in, sitk.sitkLinear, 0.0, sitk.sitkFloat32))
    label = (label > 0.5).astype(np.uint8) + (label > 2.0)
    img_in = voxel_copy(sitk.Resample(src, grid, g_in, sitk.sitkLinear, AIR, sitk.sitkFloat32))
    jac_img = sitk.GetImageFromArray(np.transpose(jac, (2, 1, 0)).astype(np.float32))
    jac_img.SetOrigin(tuple(map(float, origin)))
    jac_img.SetSpacing((grid_mm,) * 3)
    jac_t = voxel_copy(sitk.Resample(jac_img, grid, pose, sitk.sitkLinear, 1.0, sitk.sitkFloat32))
    # Mass conservation in the parenchyma (air-tissue mixture), not in vessels or nodules.
    weight = (label == 2) * np.clip((-200.0 - img_in) / 300.0, 0.0, 1.0)
    img_in += weight * (img_in + 1000.0) * (jac_t - 1.0)
    del jac_t, weight
    img_wall = voxel_copy(sitk.Resample(src, grid, g_wall, sitk.sitkLinear, AIR, sitk.sitkFloat32))
    arr = np.where(label > 0, img_in, img_wall)
    del img_in, img_wall
    target = sitk.GetImageFromArray(arr)
    target.CopyInformation(grid)
    del arr
    kernel = "sharp" if rng.random() < 0.4 else "soft"
    if kernel == "soft":
        for axis in (0, 1):
            target = sitk.RecursiveGaussian(target, sigma=float(rng.uniform(0.3, 0.7)), direction=axis)
    else:
        blur = sitk.SmoothingRecursiveGaussian(target, [0.8, 0.8, 0.01])
        target = target + float(rng.uniform(0.5, 1.0)) * (target - blur)
    target = target * float(rng.uniform(0.97, 1.03)) + float(rng.uniform(-20.0, 20.0))
    noise_sd = float(rng.uniform(15.0, 40.0))
    target = sitk.AdditiveGaussianNoise(target, standardDeviation=noise_sd, seed=int(rng.integers(1e6)))
    target = sitk.Clamp(target, sitk.sitkFloat32, AIR, 3071.0)
    if fov is not None:
        out = voxel_copy(target)
        xs = new_lo[0] + dxy * np.arange(size[0])
        ys = new_lo[1] + dxy * np.arange(size[1])
        outside = (xs[None, :] - fov[0][0]) ** 2 + (ys[:, None] - fov[0][1]) ** 2 > fov[1] ** 2
        out[:, outside] = PADDING
        padded = sitk.GetImageFromArray(out)
        padded.CopyInformation(target)
        target = padded
    target = sitk.Cast(target, sitk.sitkInt16)
    desc = {"diaphragm_mm": round(amplitude, 1), "spacing": [round(dxy, 2), round(dxy, 2), dz],
            "size": size, "kernel": kernel, "noise_hu": round(noise_sd), "half_fov": bool(half_fov),
            "pose_deg": np.rad2deg(pose.GetParameters()[:3]).round(1).tolist()}
    return BreathingCase(target, g_in, g_wall, interior, fov, desc)


def invert(g: sitk.Transform, p: np.ndarray, iters: int = 40) -> np.ndarray:
    """q with g(q) = p (Newton, finite-difference Jacobian; g smooth)."""
    q = np.asarray(p, dtype=float).copy()
    for _ in range(iters):
        gq = np.array(g.TransformPoint(tuple(map(float, q))))
        r = gq - p
        if np.linalg.norm(r) < 1e-5:
            break
        jac = np.empty((3, 3))
        for k in range(3):
            dq = q.copy()
            dq[k] += 0.25
            jac[:, k] = (np.array(g.TransformPoint(tuple(map(float, dq)))) - gq) / 0.25
        q = q - np.linalg.solve(jac, r)
    return q


def carry(case: BreathingCase, points: np.ndarray, margin_mm: float = 8.0) -> np.ndarray:
    """True target positions of source points (NaN rows: outside the target's field of view)."""
    points = np.asarray(points, dtype=float).reshape(-1, 3)
    in_interior = _mask_lookup(case.interior, points)
    out = np.full(points.shape, np.nan)
    lo, hi = _bounds(case.target)
    for i, p in enumerate(points):
        q = invert(case.g_in if in_interior[i] else case.g_wall, p)
        ok = np.all(q > lo + margin_mm) and np.all(q < hi - margin_mm)
        if ok and case.fov is not None:
            ok = np.linalg.norm(q[:2] - case.fov[0]) < case.fov[1] - margin_mm
        if ok:
            out[i] = q
    return out


def lung_landmarks(source: sitk.Image, lungs: sitk.Image, n: int, rng: np.random.Generator,
                   min_dist_mm: float = 15.0, grid_mm: float = 1.5) -> np.ndarray:
    """Up to ``n`` LPS points at distinctive lung vessel structures (bifurcations, bends).

    Local maxima of the Foerstner corner measure det(T) / trace(T) of the structure tensor T
    on vessels (> -700 HU) at least 3 mm inside the lungs; the stronger 3/4 of them, then a
    random spread with ``min_dist_mm`` between points (the strongest cluster at the hilum).
    """
    lo, hi = _bounds(lungs)
    size = [int((hi[i] - lo[i]) / grid_mm) + 1 for i in range(3)]
    ref = sitk.Image(size, sitk.sitkFloat32)
    ref.SetOrigin(tuple(map(float, lo)))
    ref.SetSpacing((grid_mm,) * 3)
    img = voxel_copy(sitk.Resample(sitk.Cast(source, sitk.sitkFloat32), ref,
                                               sitk.Transform(), sitk.sitkLinear, AIR))
    mask = voxel_copy(sitk.Resample(lungs, ref, sitk.Transform(), sitk.sitkNearestNeighbor, 0)) > 0
    mask = ndimage.binary_erosion(mask, iterations=2)
    smooth = ndimage.gaussian_filter(np.clip(img, -1000.0, 200.0), 1.0 / grid_mm)
    grads = np.gradient(smooth)
    tensor = {}
    for a in range(3):
        for b in range(a, 3):
            tensor[a, b] = ndimage.gaussian_filter(grads[a] * grads[b], 2.0 / grid_mm)
    del grads
    xx, xy, xz, yy, yz, zz = (tensor[k] for k in ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)))
    det = xx * (yy * zz - yz**2) - xy * (xy * zz - yz * xz) + xz * (xy * yz - yy * xz)
    measure = det / (xx + yy + zz + 1e-3)
    del tensor, det, xx, xy, xz, yy, yz, zz
    peaks = (measure == ndimage.maximum_filter(measure, size=5)) & mask & (smooth > -700.0) & (measure > 0)
    idx = np.argwhere(peaks)
    if len(idx) == 0:
        return np.zeros((0, 3))
    strength = measure[peaks]
    idx = idx[strength >= np.percentile(strength, 25)]
    idx = idx[rng.permutation(len(idx))]
    chosen: list[np.ndarray] = []
    for zyx in idx:
        p = lo + zyx[::-1] * grid_mm
        if all(np.linalg.norm(p - c) >= min_dist_mm for c in chosen):
            chosen.append(p)
            if len(chosen) == n:
                break
    return np.array(chosen)
