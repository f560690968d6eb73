"""Exhaustive translation search for the classical registration's starting pose (masked NCC by FFT).

Two scans of one patient can differ by tens of centimetres in field of view: a whole-body
scan against a chest scan, a half-thorax reconstruction circle against a full one. Centroids
of the body then point the wrong way, and a local optimiser started from them ends on the
wrong anatomy. Here every integer voxel shift of two coarse (~8 mm) images is scored at once
with the masked normalised cross-correlation of Padfield (IEEE TIP 2012), computed with six
FFTs: the correlation only counts voxels inside both masks (source body, target's
reconstructed region), so padding, air around a cut body and the table do not decide it.
Each shift is scored by its NCC times the square root of its overlap's share of the largest
overlap: a correlation over half the voxels is weaker evidence, and on anatomy that repeats
along z (similar slices over a long lung) a shift leaving half the scan out can otherwise
correlate better than the true one. Deterministic: no sampling, and ties go to the first index
in array order.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ..voxels import voxel_copy, voxels

AXES = (0, 1, 2)
MIN_OVERLAP = 0.5  # shifts overlapping less than this share of the best possible overlap are not judged


def _corners(image: sitk.Image) -> np.ndarray:
    size = image.GetSize()
    return np.array([image.TransformContinuousIndexToPhysicalPoint((i, j, k))
                     for i in (-0.5, size[0] - 0.5) for j in (-0.5, size[1] - 0.5) for k in (-0.5, size[2] - 0.5)])


def _on_axes_of(reference: sitk.Image, image: sitk.Image, valid: sitk.Image | None,
                outside: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``image`` resampled on a grid with ``reference``'s spacing and axes covering all of it.

    Returns (values, mask of reconstructed voxels, grid origin) with arrays in (z, y, x)."""
    direction = np.array(reference.GetDirection()).reshape(3, 3)
    spacing = np.array(reference.GetSpacing())
    idx = np.linalg.solve(direction, (_corners(image) - np.array(reference.GetOrigin())).T).T / spacing
    lo = np.floor(idx.min(axis=0))
    size = (np.ceil(idx.max(axis=0)) - lo + 1).astype(int)
    origin = np.array(reference.GetOrigin()) + direction @ (lo * spacing)
    grid = sitk.Image([int(s) for s in size], sitk.sitkFloat32)
    grid.SetSpacing(reference.GetSpacing())
    grid.SetDirection(reference.GetDirection())
    grid.SetOrigin(tuple(map(float, origin)))
    values = voxel_copy(sitk.Resample(image, grid, sitk.Transform(), sitk.sitkLinear, outside,
                                                  sitk.sitkFloat32))
    mask = values > outside / 2
    if valid is not None:
        inside = sitk.Resample(sitk.Cast(valid, sitk.sitkFloat32), grid, sitk.Transform(), sitk.sitkLinear, 0.0)
        mask &= voxels(inside) > 0.5
    return values, mask, origin


def _correlate(a_hat: np.ndarray, b_hat: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """sum_i a[i] b[i + k] for every shift k (indices modulo ``shape``), given rfftn(a) and rfftn(b)."""
    return np.fft.irfftn(np.conj(a_hat) * b_hat, shape, axes=AXES)


def best_translation(fixed: sitk.Image, fixed_mask: sitk.Image, moving: sitk.Image,
                     moving_valid: sitk.Image | None, outside: float) -> tuple[np.ndarray, float]:
    """(t, NCC): the translation t (LPS mm) maximising the overlap-weighted masked NCC of fixed(x) and moving(x + t).

    ``fixed`` and ``moving`` are coarse clamped images (any grids, any axes); the search runs
    on ``fixed``'s grid at its voxel size over every shift with a fair overlap.
    """
    f = voxels(fixed).astype(np.float64) / 1000.0
    mf = (voxels(fixed_mask) > 0).astype(np.float64)
    g, mg, g_origin = _on_axes_of(fixed, moving, moving_valid, outside)
    g = np.where(mg, g, 0.0).astype(np.float64) / 1000.0
    mg = mg.astype(np.float64)
    f *= mf
    shape = tuple(int(a + b - 1) for a, b in zip(f.shape, g.shape))
    # each image's transform once (twelve FFTs, not fifteen: the same values, bit for bit)
    f_hat, f2_hat, mf_hat, g_hat, g2_hat, mg_hat = (np.fft.rfftn(x, shape, axes=AXES)
                                                    for x in (f, f * f, mf, g, g * g, mg))
    n = _correlate(mf_hat, mg_hat, shape)
    s_f = _correlate(f_hat, mg_hat, shape)
    s_g = _correlate(mf_hat, g_hat, shape)
    s_ff = _correlate(f2_hat, mg_hat, shape)
    s_gg = _correlate(mf_hat, g2_hat, shape)
    s_fg = _correlate(f_hat, g_hat, shape)
    fair = n >= max(MIN_OVERLAP * float(n.max()), 50.0)
    n_safe = np.where(fair, n, 1.0)
    var = (s_ff - s_f**2 / n_safe) * (s_gg - s_g**2 / n_safe)
    ncc = np.where(fair & (var > 1e-12), (s_fg - s_f * s_g / n_safe) / np.sqrt(np.maximum(var, 1e-12)), -np.inf)
    best = int(np.argmax(ncc * np.sqrt(n_safe / float(n.max()))))
    k = np.array(np.unravel_index(best, shape))
    k = np.where(k >= np.array(g.shape), k - np.array(shape), k)  # wrapped index -> negative shift
    direction = np.array(fixed.GetDirection()).reshape(3, 3)
    spacing = np.array(fixed.GetSpacing())
    # fixed voxel i (x, y, z order) meets moving-grid voxel i + k
    shift_xyz = k[::-1].astype(float)
    t = g_origin - np.array(fixed.GetOrigin()) + direction @ (shift_xyz * spacing)
    return t, float(ncc.ravel()[best])
