"""Smoke check of the learned backends on generated images: loaded / ran / output plausible.

This is what a user runs after downloading weights (``linguine backends --check``): each backend
whose weights are present is loaded and run once on a small chest-like phantom, and its output is
judged against what the phantom makes known:

- registration: the target is the same phantom moved by ``SHIFT_MM``; the mapped points must land
  within ``SHIFT_TOLERANCE_MM`` of where the shift puts them;
- segmentation: a prompt at the centre of a soft-tissue sphere in the lung; the mask must contain
  the prompt and overlap the sphere with Dice >= ``MIN_DICE``.

A network with random or wrong weights loads and runs but fails the plausibility test.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import SimpleITK as sitk

from .geometry import index_zyx_to_physical

log = logging.getLogger(__name__)

SPACING_MM = (2.5, 2.5, 2.5)
SIZE_XYZ = (128, 112, 96)
SHIFT_MM = np.array([8.0, -6.0, 10.0])  # LPS, ~14 mm: a typical follow-up misalignment
SHIFT_TOLERANCE_MM = 4.0
SPHERE_RADIUS_MM = 10.0
MIN_DICE = 0.5


@dataclass
class CheckResult:
    """One backend's verdict."""

    kind: str
    name: str
    loaded: bool = False
    ran: bool = False
    plausible: bool = False
    detail: str = ""
    load_s: float | None = None
    run_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.loaded and self.ran and self.plausible

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def phantom(shift_mm: np.ndarray | None = None) -> tuple[sitk.Image, np.ndarray]:
    """Chest-like CT (HU) and the LPS centre of its lung nodule; everything moved by ``shift_mm``.

    Body (40 HU) in air, two lungs (-850 HU) with a few vessels (60 HU), a spine (400 HU) and a
    10 mm-radius nodule (30 HU) in the right lung. Drawn analytically, so a shifted copy is exact.
    """
    shift = np.zeros(3) if shift_mm is None else np.asarray(shift_mm, float)
    origin = -np.array(SIZE_XYZ) * np.array(SPACING_MM) / 2
    z, y, x = np.meshgrid(*[origin[i] + np.arange(n) * SPACING_MM[i] - shift[i]
                            for i, n in reversed(list(enumerate(SIZE_XYZ)))], indexing="ij")
    hu = np.full(x.shape, -1000.0, np.float32)
    hu[(x / 150) ** 2 + (y / 105) ** 2 < 1] = 40.0  # body (a cylinder along z)
    lungs = [(-60.0, -10.0), (60.0, -10.0)]
    for cx, cy in lungs:
        hu[((x - cx) / 48) ** 2 + ((y - cy) / 65) ** 2 + (z / 95) ** 2 < 1] = -850.0
    for cx, cy in lungs:  # vessels: thin tubes along z, slightly oblique
        for dx, dy in ((-15, 10), (12, -20), (5, 30)):
            hu[(x - cx - dx - 0.1 * z) ** 2 + (y - cy - dy) ** 2 < 9] = 60.0
    hu[((x) / 18) ** 2 + ((y - 70) / 18) ** 2 < 1] = 400.0  # spine
    nodule = np.array([-55.0, -20.0, 12.0])
    hu[(x - nodule[0]) ** 2 + (y - nodule[1]) ** 2 + (z - nodule[2]) ** 2
       < SPHERE_RADIUS_MM ** 2] = 30.0
    img = sitk.GetImageFromArray(hu)
    img.SetSpacing(SPACING_MM)
    img.SetOrigin(tuple(origin))
    return img, nodule + shift


def check_registration(backend: Any) -> tuple[bool, str]:
    """Register the phantom to a shifted copy; (plausible, detail)."""
    source, nodule = phantom()
    target, _ = phantom(SHIFT_MM)
    points = np.vstack([nodule, [[60.0, -10.0, 0.0], [-60.0, 20.0, -30.0], [0.0, -50.0, 20.0]]])
    mapped = backend.register(source, target).map_points(points)
    err = np.linalg.norm(mapped - (points + SHIFT_MM), axis=1)
    ok = bool(np.all(np.isfinite(err)) and err.max() <= SHIFT_TOLERANCE_MM)
    return ok, (f"shift {np.linalg.norm(SHIFT_MM):.1f} mm recovered within {err.max():.2f} mm "
                f"(tolerance {SHIFT_TOLERANCE_MM} mm)")


def check_segmentation(backend: Any) -> tuple[bool, str]:
    """Segment the phantom's nodule from a prompt at its centre; (plausible, detail)."""
    image, nodule = phantom()
    truth = sphere_mask(image, nodule, SPHERE_RADIUS_MM)
    mask = np.asarray(backend.segment(image, nodule[None]), bool)
    centre = tuple(np.argwhere(truth).mean(0).round().astype(int))
    dice = 2 * (mask & truth).sum() / max(mask.sum() + truth.sum(), 1)
    ok = bool(mask.any() and mask[centre] and dice >= MIN_DICE)
    return ok, (f"mask {int(mask.sum())} voxels, sphere {int(truth.sum())}, Dice {dice:.2f} "
                f"(needs >= {MIN_DICE} and the prompt inside)")


def sphere_mask(image: sitk.Image, centre_lps: np.ndarray, radius_mm: float) -> np.ndarray:
    """Voxels of ``image`` whose centres lie within ``radius_mm`` of ``centre_lps``."""
    idx = np.indices(image.GetSize()[::-1]).reshape(3, -1).T
    phys = index_zyx_to_physical(image, idx)
    inside = np.linalg.norm(phys - centre_lps, axis=1) < radius_mm
    return inside.reshape(image.GetSize()[::-1])


def check_backend(kind: str, name: str, backend: Any) -> CheckResult:
    """Load, run and judge one backend instance; never raises for a backend's own failure."""
    result = CheckResult(kind, name)
    start = time.perf_counter()
    try:
        if hasattr(backend, "load"):
            backend.load()
        result.loaded = True
    except Exception as exc:  # report, then go on with the other backends
        result.detail = f"load failed: {_first_line(exc)}"
        return result
    finally:
        result.load_s = round(time.perf_counter() - start, 2)
    start = time.perf_counter()
    try:
        check = check_registration if kind == "registration" else check_segmentation
        result.plausible, result.detail = check(backend)
        result.ran = True
    except Exception as exc:
        result.detail = f"run failed: {_first_line(exc)}"
    finally:
        result.run_s = round(time.perf_counter() - start, 2)
        for method in ("release", "close"):
            try:
                getattr(backend, method, lambda: None)()
            except Exception as exc:  # noqa: BLE001 - cleanup must not hide the verdict
                log.debug("%s.%s failed: %s", name, method, exc)
    return result


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]
