"""Classical (no weights) registration: a coarse global affine plus lazy local refinement.

LinGuinE only moves lesion centres, so a dense whole-volume deformable registration is not
needed. ``register`` estimates one affine on heavily downsampled images (a few seconds,
``classical_global``); the returned mapper refines that estimate around each point it is asked
about, in shrinking boxes of a few centimetres at near-native resolution, checks the last box
from two starts, and caches the answer (``classical_local``). Every metric is evaluated
at every voxel of an image-derived lattice: the same inputs give the same mapping bit for bit,
with any thread count.

Direction: every transform here is estimated with fixed = source and moving = target, so it
maps source physical points (LPS mm) to target physical points, as ``map_points`` needs.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import SimpleITK as sitk

from ..errors import InputError
from ..registry import register_registration
from .base import Registration
from .classical_global import global_affine, lung_affine, lung_mask_of, pinned_threads, small_of, source_side
from .classical_local import LocalRefinementMapper, source_lung_masks
from .per_image import PerImage

__all__ = ["ClassicalRegistration", "LocalRefinementMapper", "global_affine"]

log = logging.getLogger(__name__)


def _positive_mm(field: str, value: Any) -> float:
    """A positive, finite length in mm (numbers or numeric strings, as from a GUI)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if isinstance(value, bool) or not math.isfinite(number) or number <= 0:
        raise InputError(f"{field} must be a positive number of mm, got {value!r}")
    return number


def _flag(field: str, value: Any) -> bool:
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        value = value.lower() in ("true", "1")
    if not isinstance(value, bool):
        raise InputError(f"{field} must be true or false, got {value!r}")
    return value


@register_registration("classical")
class ClassicalRegistration(Registration):
    """Intensity-based registration with SimpleITK; needs no weights and no GPU.

    Options:
        global_spacing_mm: voxel size of the global affine stage (default 4.0; smaller is
            slower and rarely better, as the local stage does the fine work).
        local_box_mm: side of the last (fine) box refined around each point (default 28.0):
            72 mm and 40 mm affine boxes lead to it, and it is checked by starting it twice.
        refine: run the local stage (default True); False maps through the global affine.
        lung_aware: for points in or next to a lung, align only the lung (plus 12 mm around the
            point) so that the point follows the lung sliding along the chest wall (default True).
        max_correction_mm: a local result further than this from the global estimate is
            treated as a failure and the global estimate is kept (default 25.0).
        threads: threads per registration (default 1; 0: SimpleITK's global default). Same
            inputs and same ``threads`` give bit-identical mappings (normalised correlation over
            image-derived lattices, no random sampling); another count may change the last
            digits (~1e-3 mm). SimpleITK's process-wide default thread count is held at this
            value while classical registrations run (reference-counted, thread-safe).
    """

    def __init__(
        self,
        device: str = "cpu",
        global_spacing_mm: float = 4.0,
        local_box_mm: float = 28.0,
        refine: bool = True,
        lung_aware: bool = True,
        max_correction_mm: float = 25.0,
        threads: int = 1,
        **options: Any,
    ) -> None:
        global_spacing_mm = _positive_mm("global_spacing_mm", global_spacing_mm)
        local_box_mm = _positive_mm("local_box_mm", local_box_mm)
        max_correction_mm = _positive_mm("max_correction_mm", max_correction_mm)
        refine = _flag("refine", refine)
        lung_aware = _flag("lung_aware", lung_aware)
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
            raise InputError(f"threads must be a whole number >= 0, got {threads!r}")
        if options:
            log.warning("classical registration ignores unknown option(s): %s",
                        ", ".join(sorted(options)))
        super().__init__(device=device, global_spacing_mm=global_spacing_mm,
                         local_box_mm=local_box_mm, refine=refine, lung_aware=lung_aware,
                         max_correction_mm=max_correction_mm, threads=threads, **options)
        self.global_spacing_mm = global_spacing_mm
        self.local_box_mm = local_box_mm
        self.refine = refine
        self.lung_aware = lung_aware
        self.max_correction_mm = max_correction_mm
        self.threads = threads or sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
        self._per_image = PerImage()  # a scan's downsampled copy and lung masks, once for all its pairs

    def register(self, source: sitk.Image, target: sitk.Image) -> LocalRefinementMapper:
        for field, image in (("source", source), ("target", target)):
            if not isinstance(image, sitk.Image) or image.GetDimension() != 3:
                raise InputError(f"{field} must be a 3D SimpleITK image")
            if image.GetNumberOfComponentsPerPixel() != 1:
                raise InputError(f"{field} must be a scalar (grey-level CT) image")
        start = time.perf_counter()
        spacing, memo = self.global_spacing_mm, self._per_image
        with pinned_threads(self.threads):
            small = memo.get(source, "small", lambda: small_of(source, spacing))
            prepared = small + memo.get(target, "small", lambda: small_of(target, spacing))
            side = memo.get(source, "source side", lambda: source_side(source, *small))
            transform = global_affine(source, target, spacing, threads=self.threads, prepared=prepared, side=side)
            lungs = None
            if self.refine and self.lung_aware:
                lungs = lung_affine(source, target, transform, spacing, self.threads, prepared,
                                    memo.get(source, "small lungs", lambda: lung_mask_of(*small)))
        log.info("classical registration: global affine in %.1f s", time.perf_counter() - start)

        def lung_masks(wait: bool) -> tuple[sitk.Image, sitk.Image] | None:
            return memo.get(source, "lungs", lambda: source_lung_masks(source), wait)

        return LocalRefinementMapper(source, target, transform, refine=self.refine,
                                     local_box_mm=self.local_box_mm,
                                     max_correction_mm=self.max_correction_mm,
                                     threads=self.threads, lung_aware=self.lung_aware,
                                     lung_transform=lungs, lung_masks=lung_masks)
