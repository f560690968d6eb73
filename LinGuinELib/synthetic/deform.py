"""Known transforms for synthetic longitudinal studies: pose, smooth warp, local growth, resampling.

Direction convention (ITK's): every transform here is a **pull map**. It takes a physical point
(LPS mm) of the *output* scan and returns the point of the *reference* volume whose intensity
lands there, i.e. ``I_out(y) = I_ref(M(y))``. Resampling needs exactly that map. To carry a
point the other way (a lesion centre known in the reference, wanted on the new scan) use
:func:`push_points`, which solves ``M(y) = x`` numerically.

A synthetic scan is typically ``M = compose(pose, smooth, growth_1, growth_2, ...)``: the pose
is applied first to the output point, the growth warps last (they live in reference space,
centred on the lesions).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk
from scipy import ndimage
from scipy.interpolate import CubicSpline

from ..geometry import index_zyx_to_physical, physical_to_continuous_index_zyx
from ..voxels import voxel_copy, voxels

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- building blocks


def random_pose(
    rng: np.random.Generator,
    center_lps: Sequence[float],
    max_rotation_deg: float = 4.0,
    max_translation_mm: float = 8.0,
) -> sitk.Euler3DTransform:
    """Rigid pull map (new scan -> reference): small rotation about ``center_lps`` + a shift.

    Angles are uniform in +-max_rotation_deg about each axis, the shift uniform per axis.
    """
    ang = np.deg2rad(rng.uniform(-max_rotation_deg, max_rotation_deg, 3))
    shift = rng.uniform(-max_translation_mm, max_translation_mm, 3)
    t = sitk.Euler3DTransform()
    t.SetCenter([float(v) for v in center_lps])
    t.SetRotation(*[float(a) for a in ang])
    t.SetTranslation([float(v) for v in shift])
    return t


def image_bounds_lps(image: sitk.Image) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned physical box (min, max) covering the voxel centres of ``image``."""
    size_zyx = np.array(image.GetSize())[::-1] - 1
    corners = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)]) * size_zyx
    pts = index_zyx_to_physical(image, corners)
    return pts.min(axis=0), pts.max(axis=0)


def _field_transform(disp_zyx3: np.ndarray, origin: Sequence[float], spacing: float):
    """Wrap a (z, y, x, 3) displacement array (mm, xyz components) as an ITK field transform.

    ITK returns the identity outside the field's buffer, so fields must fade to zero at their border.
    """
    img = sitk.GetImageFromArray(np.ascontiguousarray(disp_zyx3, dtype=np.float64), isVector=True)
    img.SetOrigin([float(v) for v in origin])
    img.SetSpacing([float(spacing)] * 3)
    return sitk.DisplacementFieldTransform(img)


def random_smooth_field(
    rng: np.random.Generator,
    domain: sitk.Image,
    amplitude_mm: float = 3.0,
    control_spacing_mm: float = 70.0,
    field_spacing_mm: float = 5.0,
    margin_mm: float = 40.0,
) -> sitk.DisplacementFieldTransform:
    """Smooth random pull warp over ``domain`` (+ margin): Gaussian control values every
    ``control_spacing_mm`` (sd ``amplitude_mm`` per component), cubic-spline interpolated.

    Evaluated on a dense coarse grid because ITK's B-spline transform is ~10x slower to resample.
    """
    lo, hi = image_bounds_lps(domain)
    lo, hi = lo - margin_mm, hi + margin_mm
    n_fine = np.ceil((hi - lo) / field_spacing_mm).astype(int) + 1  # xyz
    n_ctrl = np.maximum(np.ceil((hi - lo) / control_spacing_mm).astype(int) + 1, 3)
    ctrl = rng.normal(0.0, amplitude_mm, (*n_ctrl[::-1], 3))  # z, y, x, component
    # separable natural cubic spline: one (fine x control) matrix per axis
    w = [CubicSpline(np.arange(n_ctrl[a]), np.eye(n_ctrl[a]), bc_type="natural")(
        np.linspace(0, n_ctrl[a] - 1, n_fine[a])) for a in (2, 1, 0)]
    disp = np.einsum("zi,yj,xk,ijkc->zyxc", w[0], w[1], w[2], ctrl, optimize=True)
    return _field_transform(disp, lo, field_spacing_mm)


def radial_profile(d: np.ndarray, scale: float, inner_mm: float, outer_mm: float) -> np.ndarray:
    """Pull factor k(d) for the growth warp: q -> c + (q - c) * k(|q - c|).

    k = 1/scale for d <= inner (uniform scaling of the lesion), 1 for d >= outer, and a smoothstep
    in log(d) between. That blend keeps the radial map monotone (no folding) whenever
    ln(outer/inner) > 1.5 |ln scale|, which :func:`growth_warp` guarantees.
    """
    d = np.maximum(np.asarray(d, dtype=float), 1e-9)
    u = np.clip((np.log(outer_mm) - np.log(d)) / (np.log(outer_mm) - np.log(inner_mm)), 0.0, 1.0)
    w = u * u * (3.0 - 2.0 * u)
    return np.power(scale, -w)


def growth_outer_radius(radius_mm: float, scale: float) -> float:
    """Radius (output side) beyond which the growth warp of a lesion is the identity."""
    inner = scale * radius_mm
    return inner * max(2.5, 1.5 * scale**-1.5)


def growth_warp(
    center_lps: Sequence[float],
    radius_mm: float,
    scale: float,
    field_spacing_mm: float | None = None,
) -> sitk.DisplacementFieldTransform | None:
    """Local radial pull warp that makes a lesion ``scale`` times larger (volume ~ scale**3).

    ``radius_mm`` must enclose the whole lesion in the reference (measured from ``center_lps``),
    so the lesion is scaled uniformly; tissue up to :func:`growth_outer_radius` is pushed
    (scale > 1) or pulled in (scale < 1) smoothly. Returns None for scale == 1.
    """
    if scale <= 0:
        raise ValueError("growth scale must be > 0 (a vanished lesion is removed, not warped)")
    if abs(scale - 1.0) < 1e-6:
        return None
    inner = scale * radius_mm
    outer = growth_outer_radius(radius_mm, scale)
    h = field_spacing_mm or max(0.4, outer / 32.0)
    half = outer + 2 * h
    n = int(math.ceil(2 * half / h)) + 1
    ax = -half + h * np.arange(n)
    zz, yy, xx = np.meshgrid(ax, ax, ax, indexing="ij")
    d = np.sqrt(xx * xx + yy * yy + zz * zz)
    k1 = radial_profile(d, scale, inner, outer) - 1.0
    disp = np.stack([xx * k1, yy * k1, zz * k1], axis=-1)
    origin = np.asarray(center_lps, dtype=float) - half
    return _field_transform(disp, origin, h)


def compose(*transforms: sitk.Transform | None) -> sitk.CompositeTransform:
    """Chain pull maps **in the order they act on an output point**: compose(A, B)(y) = B(A(y)).

    (ITK's CompositeTransform applies the last added first, hence the reversal.) None is skipped.
    """
    comp = sitk.CompositeTransform(3)
    for t in reversed([t for t in transforms if t is not None]):
        comp.AddTransform(t)
    return comp


def bake(transform: sitk.Transform, domain: sitk.Image, spacing_mm: float = 4.0,
         margin_mm: float = 40.0) -> sitk.DisplacementFieldTransform:
    """The same pull map sampled as a dense field over ``domain`` (output side): one fast lookup
    instead of a chain. Use it for the smooth parts (pose, smooth warp), not the growth warps.
    """
    lo, hi = image_bounds_lps(domain)
    lo, hi = lo - margin_mm, hi + margin_mm
    size = [int(v) for v in np.ceil((hi - lo) / spacing_mm).astype(int) + 1]
    field = sitk.TransformToDisplacementField(
        transform, sitk.sitkVectorFloat64, size, [float(v) for v in lo], [spacing_mm] * 3,
        [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0],
    )
    return sitk.DisplacementFieldTransform(field)


# ---------------------------------------------------------------- points


def pull_points(transform: sitk.Transform, points_lps: np.ndarray) -> np.ndarray:
    """(N, 3) output-scan points -> reference points (the resampling direction)."""
    pts = np.asarray(points_lps, dtype=float).reshape(-1, 3)
    return np.array([transform.TransformPoint([float(v) for v in p]) for p in pts]).reshape(-1, 3)


def _jacobians(transform: sitk.Transform, pts: np.ndarray, h: float = 0.25) -> np.ndarray:
    base = pull_points(transform, pts)
    jac = np.empty((len(pts), 3, 3))
    for j in range(3):
        step = np.zeros(3)
        step[j] = h
        jac[:, :, j] = (pull_points(transform, pts + step) - base) / h
    return jac


def jacobian_determinant(transform: sitk.Transform, points_lps: np.ndarray) -> np.ndarray:
    """det of the pull map's Jacobian at output points: reference volume per output volume."""
    return np.linalg.det(_jacobians(transform, np.asarray(points_lps, float).reshape(-1, 3)))


def push_points(
    transform: sitk.Transform,
    points_lps: np.ndarray,
    tol_mm: float = 1e-3,
    max_iter: int = 50,
    strict: bool = True,
) -> np.ndarray:
    """Reference points -> output-scan points: solve pull(y) = x by Newton iterations.

    This is how a known lesion centre or landmark is carried onto each synthetic scan (the
    truth that registration is scored against). Points that do not converge (e.g. carried
    outside the warp fields' domain) raise RuntimeError, or come back as NaN when not strict.
    """
    x = np.asarray(points_lps, dtype=float).reshape(-1, 3)
    y = x.copy()
    todo = np.arange(len(x))
    for _ in range(max_iter):
        r = pull_points(transform, y[todo]) - x[todo]
        done = np.max(np.abs(r), axis=1) < tol_mm if len(todo) else np.zeros(0, bool)
        todo, r = todo[~done], r[~done]
        if not len(todo):
            return y
        try:
            step = np.linalg.solve(_jacobians(transform, y[todo]), r[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:
            break
        y[todo] -= step
    if strict:
        raise RuntimeError("push_points: Newton inversion did not converge")
    y[todo] = np.nan
    return y


# ---------------------------------------------------------------- grids and resampling


def regrid(reference: sitk.Image, spacing_xyz: Sequence[float]) -> sitk.Image:
    """Empty uint8 image covering the same physical extent as ``reference`` with a new spacing
    (same origin and direction); e.g. a different slice thickness."""
    old_sp = np.array(reference.GetSpacing())
    new_sp = np.asarray(spacing_xyz, dtype=float)
    extent = (np.array(reference.GetSize()) - 1) * old_sp
    size = [int(v) for v in np.floor(extent / new_sp + 1e-6).astype(int) + 1]
    grid = sitk.Image(size, sitk.sitkUInt8)
    grid.SetSpacing([float(v) for v in new_sp])
    grid.SetOrigin(reference.GetOrigin())
    grid.SetDirection(reference.GetDirection())
    return grid


def slice_blur(image: sitk.Image, thickness_mm: float) -> sitk.Image:
    """Approximate a thicker slice profile: Gaussian along the image z axis so the total FWHM
    matches ``thickness_mm``. Returns the input unchanged when it is already that thick."""
    current = image.GetSpacing()[2]
    extra = math.sqrt(max(thickness_mm**2 - current**2, 0.0)) / 2.355
    if extra < 0.4 * current:
        return image
    return sitk.RecursiveGaussian(image, extra, False, sitk.RecursiveGaussianImageFilter.ZeroOrder, 2)


def slice_average(image: sitk.Image, thickness_mm: float) -> sitk.Image:
    """Average along the image z axis over a slab ``thickness_mm`` thick (a box slice profile,
    fractional weights at its ends): sampled at a slice centre, it is what a scanner integrates
    over that slice. For a reference finer than the slices; unchanged when already that thick."""
    dz = image.GetSpacing()[2]
    half = 0.5 * thickness_mm / dz  # in voxels
    if half <= 0.5 + 1e-6:
        return image
    m = int(np.ceil(half - 0.5))
    offsets = np.arange(-m, m + 1)
    weights = np.clip(half + 0.5 - np.abs(offsets), 0.0, 1.0)
    arr = voxels(image).astype(np.float32, copy=False)
    out = ndimage.correlate1d(arr, weights / weights.sum(), axis=0, mode="nearest")
    img = sitk.GetImageFromArray(out)
    img.CopyInformation(image)
    return img


def resample_image(image: sitk.Image, transform: sitk.Transform, grid: sitk.Image,
                   default_hu: float = -1024.0) -> sitk.Image:
    """Linear resampling of an intensity (HU) image onto ``grid`` through a pull map; float32."""
    src = image if image.GetPixelID() == sitk.sitkFloat32 else sitk.Cast(image, sitk.sitkFloat32)
    return sitk.Resample(src, grid, transform, sitk.sitkLinear, default_hu, sitk.sitkFloat32)


def resample_label(label: sitk.Image, transform: sitk.Transform, grid: sitk.Image,
                   pad_mm: float = 6.0, smooth: bool = False) -> sitk.Image:
    """Resample a labelmap onto ``grid`` (uint16): nearest neighbour, or with ``smooth`` each
    label's mask linearly interpolated and cut at 0.5 (the boundary then follows the 50%
    partial-volume surface of the image instead of the reference voxels' staircase).

    Only the output box that can contain labels is resampled (the label box is pushed through
    the transform): labels are small, scans are large.
    """
    lab = sitk.Cast(label, sitk.sitkUInt16)
    arr = voxels(lab)
    out = np.zeros(grid.GetSize()[::-1], dtype=np.uint16)
    nz = np.nonzero(arr)
    if len(nz[0]):
        lo = np.array([a.min() for a in nz], float)
        hi = np.array([a.max() for a in nz], float)
        lattice = np.array([[a, b, c] for a in (0, 0.5, 1) for b in (0, 0.5, 1) for c in (0, 0.5, 1)])
        box_pts = index_zyx_to_physical(lab, lo + lattice * (hi - lo))
        try:
            idx = physical_to_continuous_index_zyx(grid, push_points(transform, box_pts))
        except RuntimeError:
            log.warning("label box inversion failed; resampling the whole grid")
            idx = np.array([[0, 0, 0], np.array(grid.GetSize()[::-1]) - 1], float)
        pad = pad_mm / np.array(grid.GetSpacing())[::-1] + 2
        start = np.maximum(np.floor(idx.min(axis=0) - pad), 0).astype(int)
        stop = np.minimum(np.ceil(idx.max(axis=0) + pad) + 1, out.shape).astype(int)
        if np.all(stop > start):
            sub = sitk.Image([int(v) for v in (stop - start)[::-1]], sitk.sitkUInt8)
            sub.SetSpacing(grid.GetSpacing())
            sub.SetDirection(grid.GetDirection())
            sub.SetOrigin([float(v) for v in index_zyx_to_physical(grid, start[None])[0]])
            region = tuple(slice(start[a], stop[a]) for a in range(3))
            if smooth:
                # crop the input around the labels (2 voxels of margin) before casting to float
                c0 = np.maximum(lo.astype(int) - 2, 0)
                c1 = np.minimum(hi.astype(int) + 3, arr.shape)
                crop = lab[int(c0[2]):int(c1[2]), int(c0[1]):int(c1[1]), int(c0[0]):int(c1[0])]
                crop_arr = voxels(crop)
                res_arr = np.zeros(tuple(stop - start), np.uint16)
                for value in np.unique(crop_arr[crop_arr > 0]):
                    m = sitk.GetImageFromArray((crop_arr == value).astype(np.float32))
                    m.CopyInformation(crop)
                    frac = sitk.Resample(m, sub, transform, sitk.sitkLinear, 0.0, sitk.sitkFloat32)
                    res_arr[voxels(frac) >= 0.5] = value
                out[region] = res_arr
            else:
                res = sitk.Resample(lab, sub, transform, sitk.sitkNearestNeighbor, 0,
                                    sitk.sitkUInt16)
                out[region] = voxel_copy(res)
    img = sitk.GetImageFromArray(out)
    img.CopyInformation(grid)
    return img
