"""Coordinate helpers. Library convention: physical LPS mm, points as (N, 3) xyz arrays.

RAS <-> LPS flips the sign of x and y. Image arrays from SimpleITK are indexed (z, y, x);
ITK indices and physical points are (x, y, z). The helpers below say which they take.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

_RAS_LPS = np.array([-1.0, -1.0, 1.0])
# the same flip as a matrix, for direction cosines and 4x4 transforms (its own inverse too)
RAS_LPS_MATRIX = np.diag(_RAS_LPS)


@dataclass(frozen=True)
class ImageGeometry:
    """A voxel grid without voxels; answers the same getters as ``sitk.Image``.

    Every helper here accepts either, so a header read or a result can carry geometry
    without holding hundreds of MB of pixels.
    """

    size: tuple[int, int, int]  # voxels along x, y, z (ITK order)
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: tuple[float, ...]  # 9 cosines, row-major

    @classmethod
    def of(cls, image) -> ImageGeometry:
        return cls(tuple(image.GetSize()), tuple(image.GetSpacing()), tuple(image.GetOrigin()),
                   tuple(image.GetDirection()))

    def GetSize(self):  # noqa: N802 - mirrors SimpleITK
        return self.size

    def GetSpacing(self):  # noqa: N802
        return self.spacing

    def GetOrigin(self):  # noqa: N802
        return self.origin

    def GetDirection(self):  # noqa: N802
        return self.direction

    def ijk_to_lps(self) -> np.ndarray:
        """4x4 matrix from (i, j, k) index to LPS mm."""
        m = np.eye(4)
        m[:3, :3] = np.array(self.direction).reshape(3, 3) @ np.diag(self.spacing)
        m[:3, 3] = self.origin
        return m


def ras_to_lps(points: np.ndarray) -> np.ndarray:
    return np.asarray(points, dtype=float) * _RAS_LPS


lps_to_ras = ras_to_lps  # the flip is its own inverse


def physical_to_continuous_index_zyx(image: sitk.Image, points_lps: np.ndarray) -> np.ndarray:
    """(N, 3) LPS mm -> (N, 3) continuous array indices in (z, y, x) order."""
    pts = np.asarray(points_lps, dtype=float).reshape(-1, 3)
    origin = np.array(image.GetOrigin())
    spacing = np.array(image.GetSpacing())
    direction = np.array(image.GetDirection()).reshape(3, 3)
    ijk = (np.linalg.solve(direction, (pts - origin).T).T) / spacing
    return ijk[:, ::-1]


def index_zyx_to_physical(image: sitk.Image, index_zyx: np.ndarray) -> np.ndarray:
    """(N, 3) array indices (z, y, x), integer or continuous -> (N, 3) LPS mm."""
    idx = np.asarray(index_zyx, dtype=float).reshape(-1, 3)[:, ::-1]
    origin = np.array(image.GetOrigin())
    spacing = np.array(image.GetSpacing())
    direction = np.array(image.GetDirection()).reshape(3, 3)
    return origin + (direction @ (idx * spacing).T).T


def inside_grid(index: np.ndarray, size: np.ndarray | tuple[int, ...]) -> np.ndarray:
    """Bool per continuous voxel index (last axis, in the axis order of ``size``): does it fall
    within the voxel grid, half a voxel of margin? The one rule of "inside the image"."""
    index = np.asarray(index, dtype=float)
    return np.all((index >= -0.5) & (index <= np.asarray(size) - 0.5), axis=-1)


def nearest_voxel(index: np.ndarray, size: np.ndarray | tuple[int, ...]) -> tuple[int, ...]:
    """The voxel nearest a continuous voxel index (in the axis order of ``size``), clipped into the
    grid: a point within half a voxel outside it reads its edge voxel."""
    return tuple(int(i) for i in np.clip(np.round(index).astype(int), 0, np.asarray(size) - 1))


def inside_image(image: sitk.Image, points_lps: np.ndarray) -> np.ndarray:
    """Bool per physical point (LPS mm): does it fall within the image's voxel grid?"""
    return inside_grid(physical_to_continuous_index_zyx(image, points_lps), np.array(image.GetSize())[::-1])


def equivalent_radius_mm(volume_ml: float) -> float:
    """Radius of the sphere of that volume (mm)."""
    return (3.0 * volume_ml * 1000.0 / (4.0 * np.pi)) ** (1.0 / 3.0) if volume_ml > 0 else 0.0


def fit_sphere(points: np.ndarray) -> tuple[np.ndarray, float] | None:
    """Least-squares circle or sphere (centre, radius) through points (n, d) in mm (Kasa's
    algebraic fit); None when the points do not pin one down (fewer than d + 1 independent ones:
    collinear, or coplanar in 3D, where the least-squares answer is arbitrary)."""
    origin = points.mean(axis=0)
    local = points - origin  # centred: the fit's conditioning does not depend on where the grid starts
    a = np.column_stack([local, np.ones(len(local))])
    sol, _, rank, _ = np.linalg.lstsq(a, (local**2).sum(axis=1), rcond=None)
    if rank < a.shape[1]:
        return None
    centre = sol[:-1] / 2.0
    r2 = sol[-1] + (centre**2).sum()
    return (centre + origin, float(np.sqrt(r2))) if r2 > 0 else None


def voxel_volume_ml(image: sitk.Image) -> float:
    return float(np.prod(image.GetSpacing())) / 1000.0


def same_grid(a: sitk.Image, b: sitk.Image, tol: float = 1e-3) -> bool:
    """Same size, spacing, origin and direction (tolerance in mm / cosines)."""
    return (
        a.GetSize() == b.GetSize()
        and np.allclose(a.GetSpacing(), b.GetSpacing(), atol=tol)
        and np.allclose(a.GetOrigin(), b.GetOrigin(), atol=tol)
        and np.allclose(a.GetDirection(), b.GetDirection(), atol=tol)
    )


def mask_to_image(mask_zyx: np.ndarray, reference, dtype=np.uint8) -> sitk.Image:
    """Wrap a (z, y, x) array as an image on the reference grid (no resampling)."""
    arr = np.asarray(mask_zyx).astype(dtype, copy=False)
    if arr.shape != tuple(reference.GetSize())[::-1]:
        raise ValueError(f"array shape {arr.shape} does not match grid {reference.GetSize()[::-1]}")
    img = sitk.GetImageFromArray(arr)
    img.SetOrigin(reference.GetOrigin())
    img.SetSpacing(reference.GetSpacing())
    img.SetDirection(reference.GetDirection())
    return img
