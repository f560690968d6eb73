"""The tracking engine: one loop that carries every lesion to every scan.

For each lesion: segment (or read) the prompt on its own scan and reduce it to its centre; then
for each planned step (see ``plan``): map the centre from the step's origin scan to its target
through the pair's registration (computed once per pair, shared by all lesions), segment at the
mapped point, keep the component nearest the point, optionally boost, and record the centre
for chained steps. Masks stay on each scan's own grid: nothing is resampled.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import SimpleITK as sitk

from ..config import TrackingConfig
from ..errors import Cancelled, InputError
from ..filtering import keep_nearest_component
from ..geometry import ImageGeometry, inside_image
from ..prompt import mask_centre_lps
from ..quality import scan_checks
from ..quality.match import LesionReference, candidate_match
from ..registration.base import PointMapper, Registration
from ..registry import create_backend
from ..segmentation.base import Segmenter
from ..study.images import read_image
from ..study.model import Lesion, Study
from ..study.timepoints import days_from_first
from .plan import Step, plan_steps
from .progress import CancelCheck, ProgressCallback, ProgressEvent
from .result import LesionScanResult, MaskCrop, TrackingResult

log = logging.getLogger(__name__)


class _Run:
    """State of one call to ``track``: loaded images, registered pairs, timings."""

    def __init__(self, study: Study, config: TrackingConfig, progress: ProgressCallback | None,
                 cancel: CancelCheck | None) -> None:
        self.study, self.config = study, config
        self.progress, self.cancel = progress, cancel
        self.timings: dict[str, float] = defaultdict(float)
        self.images: dict[str, sitk.Image] = {}
        self.mappers: dict[tuple[str, str], PointMapper] = {}
        self.results: dict[tuple[str, str], LesionScanResult] = {}
        self.lesion_refs: dict[str, LesionReference | None] = {}
        self.days = dict(zip([s.id for s in study.scans], days_from_first(study.scans)))
        self.done = 0
        self.total = 1
        with self.timed("backends"):
            self.registration: Registration = create_backend(
                "registration", config.registration, device=config.device, **config.registration_options)
            self.segmenter: Segmenter = create_backend(
                "segmentation", config.segmentation, device=config.device, **config.segmentation_options)

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] += time.perf_counter() - start

    def report(self, stage: str, message: str, advance: bool = True, lesion: str | None = None,
               scan: str | None = None) -> None:
        if self.cancel is not None and self.cancel():
            raise Cancelled("tracking cancelled")
        self.done += int(advance)
        if self.progress is not None:
            self.progress(ProgressEvent(stage, message, self.done, self.total, lesion, scan))

    def image(self, scan_id: str) -> sitk.Image:
        if scan_id not in self.images:
            scan = self.study.scan(scan_id)
            with self.timed("load"):
                self.images[scan_id] = scan.image if scan.image is not None else read_image(scan.path)
        return self.images[scan_id]

    def mapper(self, source: str, target: str) -> PointMapper:
        if (source, target) not in self.mappers:
            self.report("register", f"registering {source} -> {target}", advance=False, scan=target)
            with self.timed("registration"):
                self.mappers[(source, target)] = self.registration.register(
                    self.image(source), self.image(target))
            self.report("register", f"registered {source} -> {target}", scan=target)
        return self.mappers[(source, target)]

    def segment_at(self, image: sitk.Image, points_lps: np.ndarray,
                   negatives: np.ndarray | None = None) -> np.ndarray:
        """Segmenter output restricted to the components nearest the prompt point(s)."""
        with self.timed("segmentation"):
            raw = self.segmenter.segment(image, points_lps, negatives)
        with self.timed("filtering"):
            keep = np.zeros(raw.shape, dtype=bool)
            for point in points_lps:
                keep |= keep_nearest_component(raw, image, point, self.config.search_radius_mm)
        return keep

    def prompt(self, lesion: Lesion) -> LesionScanResult:
        """The lesion on its own scan: the user's mask, or the segmentation of the user's click."""
        image = self.image(lesion.scan_id)
        if lesion.prompt_kind == "mask":
            from ..prompt.masks import read_prompt_mask

            mask_img = lesion.mask if lesion.mask is not None else read_prompt_mask(lesion.mask_path, image)
            mask = sitk.GetArrayFromImage(mask_img).astype(bool)
        else:
            mask = self.segment_at(image, lesion.points_lps, lesion.negative_points_lps)
            if not mask.any():  # a click in air or beside the lesion: no baseline to track
                p = np.round(lesion.points_lps[0] * [-1, -1, 1], 1).tolist()
                raise InputError(f"lesion '{lesion.id}': nothing could be segmented at its prompt (RAS {p}) "
                                 f"on scan '{lesion.scan_id}'; click inside the lesion")
        centre = mask_centre_lps(mask, image) if mask.any() else None
        self.report("segment", f"{lesion.id}: prompt on {lesion.scan_id}", lesion=lesion.id, scan=lesion.scan_id)
        result = LesionScanResult(lesion.id, lesion.scan_id, "prompt", MaskCrop.from_full(mask),
                                  centre_lps=centre)
        self.check(result, image, segmented=lesion.prompt_kind != "mask")
        with self.timed("quality"):
            self.lesion_refs[lesion.id] = LesionReference.from_prompt(image, result.mask, centre)
        return result

    def plausible(self, lesion: Lesion, image: sitk.Image, mask: MaskCrop, mapped: np.ndarray,
                  to_scan: str) -> tuple[bool, dict[str, float]]:
        """Whether a found segment can be the lesion of the prompt scan (see quality.match)."""
        reference = self.lesion_refs.get(lesion.id)
        if reference is None or mask.empty:
            return True, {}
        a, b = self.days.get(lesion.scan_id), self.days.get(to_scan)
        with self.timed("quality"):
            match = candidate_match(reference, image, mask, mapped, None if a is None or b is None else b - a)
        return bool(match.pop("plausible")), match
    def check(self, result: LesionScanResult, image: sitk.Image, confidence: float = float("nan"),
              segmented: bool = True) -> None:
        """Quality signals and review findings of one result, from its own image."""
        with self.timed("quality"):
            diagnostics = getattr(self.segmenter, "last_diagnostics", None) if segmented else None
            reference = self.lesion_refs.get(result.lesion_id)
            result.signals, result.findings = scan_checks(
                image, result.mask, is_prompt=result.status == "prompt", point_lps=result.propagated_point_lps,
                confidence=confidence, diagnostics=diagnostics if isinstance(diagnostics, dict) else None,
                lesion_radius_mm=reference.radius_mm if reference is not None else None)

    def anchor(self, lesion: Lesion, scan_id: str) -> np.ndarray:
        """The point a step starts from: the mask centre there, else the point that reached it."""
        res = self.results[(lesion.id, scan_id)]
        if res.centre_lps is not None:
            return res.centre_lps
        if res.propagated_point_lps is not None:
            return res.propagated_point_lps
        return lesion.points_lps.mean(axis=0)

    def step(self, lesion: Lesion, step: Step) -> LesionScanResult:
        point = self.anchor(lesion, step.from_scan)
        mapper = self.mapper(step.from_scan, step.to_scan)
        with self.timed("registration"):
            mapped = mapper.map_points(point[None])[0]
        image = self.image(step.to_scan)
        result = LesionScanResult(lesion.id, step.to_scan, "outside_image", MaskCrop.from_full(
            np.zeros(image.GetSize()[::-1], bool)), propagated_point_lps=mapped, from_scan_id=step.from_scan)
        if inside_image(image, mapped[None])[0]:
            mask = self.segment_at(image, mapped[None])
            if self.config.boost and mask.any():
                boosted = self.segment_at(image, mask_centre_lps(mask, image)[None])
                mask = boosted if boosted.any() else mask
            crop = MaskCrop.from_full(mask)
            ok, match = self.plausible(lesion, image, crop, mapped, step.to_scan)
            if not ok:
                log.info("lesion %s on %s: the segment at the mapped point (%d voxels) is not the lesion "
                         "(inside %.2f, coverage %.2f): not found", lesion.id, step.to_scan, crop.voxel_count,
                         match["candidate_inside"], match["candidate_coverage"])
                crop = MaskCrop(crop.shape_zyx)
            result.status = "found" if not crop.empty else "not_found"
            result.mask = crop
            result.centre_lps = mask_centre_lps(mask, image) if not crop.empty else None
            with self.timed("registration"):
                confidence = float(mapper.confidence(point[None])[0])
            self.check(result, image, confidence)
            result.signals.update(match)
        self.report("segment", f"{lesion.id}: {step.from_scan} -> {step.to_scan}: {result.status}",
                    lesion=lesion.id, scan=step.to_scan)
        return result

    def execute(self) -> TrackingResult:
        scan_ids = [s.id for s in self.study.scans]
        order = {sid: k for k, sid in enumerate(scan_ids)}
        lesions = {lesion.id: lesion for lesion in self.study.lesions}
        steps = [s for lesion in self.study.lesions
                 for s in plan_steps(scan_ids, lesion.scan_id, lesion.id, self.config.mode)]
        # Depth first keeps chains causal; grouping by target lets a backend reuse per-image state.
        lesion_rank = {lid: k for k, lid in enumerate(lesions)}
        steps.sort(key=lambda s: (s.depth, order[s.to_scan], lesion_rank[s.lesion_id]))
        pairs = {(s.from_scan, s.to_scan) for s in steps}
        self.total = len(lesions) + len(steps) + len(pairs)
        self.report("load", f"tracking {len(lesions)} lesion(s) over {len(scan_ids)} scans", advance=False)
        for lesion in self.study.lesions:
            self.results[(lesion.id, lesion.scan_id)] = self.prompt(lesion)
        current_target = None
        for step in steps:
            if step.to_scan != current_target:
                self.segmenter.release()
                current_target = step.to_scan
            self.results[(step.lesion_id, step.to_scan)] = self.step(lesions[step.lesion_id], step)
        self.segmenter.release()
        for sid in scan_ids:
            self.image(sid)  # every scan has a geometry in the result, even with no step
        references = {sid: ImageGeometry.of(img) for sid, img in self.images.items()}
        self.report("done", "tracking finished", advance=False)
        return TrackingResult(self.study, self.config, self.results, references, dict(self.timings),
                              {"registration": self.registration.settings(),
                               "segmentation": self.segmenter.settings()})


def track(study: Study, config: TrackingConfig | None = None, progress: ProgressCallback | None = None,
          cancel: CancelCheck | None = None) -> TrackingResult:
    """Track every lesion of ``study`` on every scan. Raises ``Cancelled`` if ``cancel()`` turns True."""
    run = _Run(study, config or TrackingConfig(), progress, cancel)
    try:
        return run.execute()
    finally:
        run.segmenter.close()
