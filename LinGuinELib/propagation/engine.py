"""The tracking engine: one loop that carries every lesion to every scan.

For each lesion: segment (or read) the prompt on its own scan and reduce it to its centre; then
for each planned step (see ``plan``): map the centre from the step's origin scan to its target
through the pair's registration (computed once per pair, shared by all lesions), segment at the
mapped point, keep the component nearest the point, optionally boost, and record the centre
for chained steps. Masks stay on each scan's own grid: nothing is resampled.

Both cores work: scans are read and pairs registered on a small thread pool while the calling
thread segments. The prompts are segmented first (a call where every one is empty is an
``InputError`` while at most the first pair registers, in the background); then every global registration of the plan is
submitted; each step's point mapping (the local refinement) as soon as its starting point is
known: all at once in direct mode, depth by depth in chain mode, so a chain stays causal.
Segmentation stays on the calling thread, in the plan's order, so a run is bit-identical to a
serial one (``workers=0``) whenever the backends are deterministic. ``_Run`` keeps its scans and
registered pairs between calls: ``LinGuinELib.session.StudySession`` builds on that to add a
lesion in seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from itertools import groupby
from typing import Any

import numpy as np
import SimpleITK as sitk

from ..config import TrackingConfig
from ..errors import Cancelled, InputError
from ..filtering import keep_nearest_component
from ..geometry import ImageGeometry, inside_image, lps_to_ras, voxel_volume_ml
from ..prompt import mask_centre_lps
from ..prompt.checks import check_something_segmented
from ..quality import Finding, Reason, scan_checks
from ..quality.absence import absence_signals, settle_absence
from ..quality.match import LesionReference, candidate_match, match_findings, unlike_prompt
from ..registration.base import PointMapper, Registration
from ..registry import create_backend
from ..segmentation.base import Segmenter
from ..study.duplicates import check_distinct_voxels
from ..study.images import read_image
from ..study.model import Lesion, Study
from ..study.preflight import check_pixels
from ..study.timepoints import days_from_first
from ..voxels import voxels
from .plan import Step, plan_steps
from .progress import CancelCheck, ProgressCallback, ProgressEvent
from .result import LesionScanResult, MaskCrop, TrackingResult
from .threads import Inline, StageClock, default_workers, pin_sitk_threads

log = logging.getLogger(__name__)

# Stages whose wall time is "the method" (what the rest of the pipeline is compared with).
METHOD_STAGES = ("registration", "segmentation", "filtering")


def _segmenter(config: TrackingConfig) -> Segmenter:
    return create_backend("segmentation", config.segmentation, device=config.device, **config.segmentation_options)


class _Run:
    """Loaded scans, registered pairs and backends of one study; ``execute`` tracks lesions.

    Scans and registrations are futures on a thread pool (``workers`` threads; 0 = run each
    task at once on the calling thread). They are kept between calls until ``close``.
    """

    def __init__(self, study: Study, config: TrackingConfig, progress: ProgressCallback | None = None,
                 cancel: CancelCheck | None = None, workers: int | None = None) -> None:
        self.study, self.config = study, config
        self.progress, self.cancel = progress, cancel
        self.clock = StageClock()
        self.images: dict[str, Future] = {}
        self.mappers: dict[tuple[str, str], Future] = {}
        self.mapped: dict[tuple[str, str, str], Future] = {}  # (lesion, source, target): its mapped anchor
        self.results: dict[tuple[str, str], LesionScanResult] = {}
        self.lesion_refs: dict[str, LesionReference | None] = {}
        self.days = dict(zip([s.id for s in study.scans], days_from_first(study.scans)))
        self.register_calls = 0  # registrations run (tests check that pairs are reused)
        self._lock = threading.Lock()
        self._read_lock = threading.Lock()
        self.done = 0
        self.total = 1
        with self.timed("backends"):
            self.registration: Registration = create_backend(
                "registration", config.registration, device=config.device, **config.registration_options)
            self.segmenter: Segmenter = _segmenter(config)
        if workers is None:
            workers = default_workers() if self.registration.concurrent_pairs else 0
        self.workers = workers
        self.pool: ThreadPoolExecutor | Inline = (
            ThreadPoolExecutor(workers, thread_name_prefix="linguine") if workers > 0 else Inline())
        if workers > 0:
            pin_sitk_threads(True)
        self._closed = False

    def retune(self, config: TrackingConfig, keep_results: bool) -> None:
        """Settings that leave the registrations valid (see ``config.STAGES``): scans and pairs are
        kept; the segmenter is rebuilt and the lesions' results dropped, unless ``keep_results``."""
        self.config = config
        if not keep_results:
            self.segmenter.close()
            self.segmenter = _segmenter(config)
            self.results.clear()
            self.lesion_refs.clear()

    def adopt_scans(self, other: _Run) -> None:
        """Take the scans ``other`` has read (the same study under other registration settings)."""
        for scan_id, future in other.images.items():
            if future.done() and not future.cancelled() and future.exception() is None:
                self.images.setdefault(scan_id, future)

    def close(self) -> None:
        """Stop the pool (waits for a registration in progress), free the backends."""
        if self._closed:
            return
        self._closed = True
        try:
            self.pool.shutdown(wait=True, cancel_futures=True)
        finally:
            if self.workers > 0:
                pin_sitk_threads(False)
            self.segmenter.close()

    def timed(self, stage: str):
        return self.clock.timed(stage)

    def report(self, stage: str, message: str, advance: bool = True, lesion: str | None = None,
               scan: str | None = None) -> None:
        if self.cancel is not None and self.cancel():
            raise Cancelled("tracking cancelled")
        self.done += int(advance)
        if self.progress is not None:
            self.progress(ProgressEvent(stage, message, self.done, self.total, lesion, scan))

    def wait(self, future: Future) -> Any:
        """A future's result; keeps answering cancel while it waits."""
        while True:
            try:
                return future.result(timeout=0.2)
            except FutureTimeout:
                if self.cancel is not None and self.cancel():
                    raise Cancelled("tracking cancelled") from None

    # Scans and pairs: futures, submitted once, in the order they are first needed.
    def image_future(self, scan_id: str) -> Future:
        if scan_id not in self.images:
            self.images[scan_id] = self.pool.submit(self._load, scan_id)
        return self.images[scan_id]

    def _load(self, scan_id: str) -> sitk.Image:
        scan = self.study.scan(scan_id)
        if scan.image is not None:
            return scan.image
        # One read at a time: a reader briefly holds about twice the image (the decompressed file
        # and the image), so two at once would set the run's peak memory; the other threads register.
        with self._read_lock, self.timed("load"):
            image = read_image(scan.path)
            if scan_id in self.study.unchecked_scans:  # what preflight refuses in the scans it reads
                check_pixels(scan.id, scan.path, image)
                check_distinct_voxels(self.study, scan, image)
            return image

    def image(self, scan_id: str) -> sitk.Image:
        return self.wait(self.image_future(scan_id))

    def pair_future(self, source: str, target: str) -> Future:
        """The pair's registration; its scans are submitted first so that no task waits on a
        task queued behind it."""
        if (source, target) not in self.mappers:
            src, tgt = self.image_future(source), self.image_future(target)
            self.mappers[(source, target)] = self.pool.submit(self._register, src, tgt)
        return self.mappers[(source, target)]

    def _register(self, source: Future, target: Future) -> PointMapper:
        src, tgt = source.result(), target.result()
        with self.timed("registration"):
            mapper = self.registration.register(src, tgt)
            mapper.prepare()  # per-pair set-up now, on the pool, not on the first lesion's step
        with self._lock:
            self.register_calls += 1
        return mapper

    def mapper(self, source: str, target: str) -> PointMapper:
        future = self.pair_future(source, target)
        if not future.done():
            self.report("register", f"registering {source} -> {target}", advance=False, scan=target)
        return self.wait(future)

    def prefetch(self, lesion: Lesion, source: str, target: str) -> None:
        """Map the lesion's anchor on the pool (local refinement) ahead of the step that needs it."""
        key = (lesion.id, source, target)
        if key not in self.mapped:
            pair, point = self.pair_future(source, target), self.anchor(lesion, source)
            self.mapped[key] = self.pool.submit(self._map, pair, point, self.results[(lesion.id, source)].mask,
                                                self.image_future(source))

    def _map(self, pair: Future, point: np.ndarray, region: MaskCrop, source: Future) -> tuple[np.ndarray, float]:
        """The point in the target scan and the backend's confidence in it; ``region``: the
        lesion on the source scan (the backend places it by its surroundings)."""
        mapper = pair.result()
        with self.timed("registration"):
            return mapper.map_lesion(point, None if region.empty else region.to_image(source.result()))

    def map_point(self, lesion: Lesion, source: str, target: str) -> tuple[np.ndarray, float]:
        """The lesion's anchor on ``source`` mapped to ``target`` (prefetched or now)."""
        future = self.mapped.pop((lesion.id, source, target), None)
        if future is None:
            self.prefetch(lesion, source, target)
            future = self.mapped.pop((lesion.id, source, target))
        return self.wait(future)

    def segment_at(self, image: sitk.Image, points_lps: np.ndarray,
                   negatives: np.ndarray | None = None) -> np.ndarray:
        """Segmenter output restricted to the components nearest the prompt point(s)."""
        with self.timed("segmentation"):
            raw = self.segmenter.segment(image, points_lps, negatives)
        with self.timed("filtering"):
            keep = None
            for point in points_lps:
                part = keep_nearest_component(raw, image, point, self.config.search_radius_mm)
                keep = part if keep is None else keep | part
        return keep if keep is not None else np.zeros(raw.shape, dtype=bool)

    def prompt(self, lesion: Lesion) -> tuple[LesionScanResult, LesionReference | None]:
        """The lesion on its own scan (the user's mask, or the segmentation of the user's click)
        and its reference for the follow-ups (None for an empty one); stored by ``execute``."""
        image = self.image(lesion.scan_id)
        if lesion.prompt_kind == "mask":
            from ..prompt.masks import read_prompt_mask

            mask_img = lesion.mask if lesion.mask is not None else read_prompt_mask(lesion.mask_path, image)
            mask = voxels(mask_img).astype(bool)
            if not mask.any():  # files and Slicer segments are refused earlier; an in-memory mask here
                raise InputError(f"lesion '{lesion.id}': its mask prompt is empty on scan '{lesion.scan_id}'")
        else:
            mask = self.segment_at(image, lesion.points_lps, lesion.negative_points_lps)
        crop = MaskCrop.from_full(mask)
        centre = mask_centre_lps(crop, image) if not crop.empty else None
        self.report("segment", f"{lesion.id}: prompt on {lesion.scan_id}", lesion=lesion.id, scan=lesion.scan_id)
        click = lesion.points_lps.mean(axis=0) if lesion.prompt_kind != "mask" else None
        # a click that gave nothing keeps its place in the table (the Slicer row still leads to it)
        result = LesionScanResult(lesion.id, lesion.scan_id, "prompt", crop, centre_lps=centre,
                                  propagated_point_lps=click if crop.empty else None)
        self.check(result, image, segmented=lesion.prompt_kind != "mask", point=click)
        with self.timed("quality"):
            reference = LesionReference.from_prompt(
                image, result.mask, centre, result.signals.get("inscribed_mm", float("nan")))
        return result, reference

    def forget(self, lesion_ids: set[str]) -> None:
        """Drop these lesions' results (a call that failed after storing some of them)."""
        for key in [k for k in self.results if k[0] in lesion_ids]:
            del self.results[key]
        for lesion_id in lesion_ids:
            self.lesion_refs.pop(lesion_id, None)

    def plausible(self, lesion: Lesion, image: sitk.Image, result: LesionScanResult,
                  prompt: LesionScanResult | None) -> tuple[bool, dict[str, float], list[str]]:
        """Whether a found segment (``result``, its checks done) can be the lesion of the prompt
        scan, the match signals, and how it looks unlike the prompt's lesion (see quality.match)."""
        reference = self.lesion_refs.get(lesion.id)
        if reference is None or result.mask.empty or prompt is None:
            return True, {}, []
        a, b = self.days.get(lesion.scan_id), self.days.get(result.scan_id)
        with self.timed("quality"):
            unlike = unlike_prompt(result.findings, result.signals, prompt.findings, prompt.signals,
                                   max(image.GetSpacing()), max(self.image(lesion.scan_id).GetSpacing()))
            match = candidate_match(reference, image, result.mask, result.signals["inscribed_mm"],
                                    result.propagated_point_lps,
                                    None if a is None or b is None else b - a, unlike)
        result.findings.extend(match_findings(match))
        return bool(match.pop("plausible")), match, unlike

    def check(self, result: LesionScanResult, image: sitk.Image, confidence: float = float("nan"),
              segmented: bool = True, point: np.ndarray | None = None,
              prompt: LesionScanResult | None = None) -> None:
        """Quality signals and review findings of one result, from its own image; ``point``: the
        point the segment should surround (default: the propagated point); ``prompt``: the
        lesion's result on its prompt scan, to compare with."""
        with self.timed("quality"):
            diagnostics = getattr(self.segmenter, "last_diagnostics", None) if segmented else None
            result.signals, result.findings = scan_checks(
                image, result.mask, is_prompt=result.status == "prompt",
                point_lps=point if point is not None else result.propagated_point_lps,
                confidence=confidence, diagnostics=diagnostics if isinstance(diagnostics, dict) else None,
                prompt_signals=prompt.signals if prompt is not None else None)

    def _set_mask(self, result: LesionScanResult, crop: MaskCrop, image: sitk.Image, confidence: float,
                  prompt: LesionScanResult | None) -> None:
        """Give a propagated result its mask, status, centre and checks."""
        result.mask = crop
        result.status = "found" if not crop.empty else "not_found"
        result.centre_lps = mask_centre_lps(crop, image) if not crop.empty else None
        self.check(result, image, confidence, prompt=prompt)

    def anchor(self, lesion: Lesion, scan_id: str) -> np.ndarray:
        """The point a step starts from: the mask centre there, else the point that reached it."""
        res = self.results[(lesion.id, scan_id)]
        if res.centre_lps is not None:
            return res.centre_lps
        if res.propagated_point_lps is not None:
            return res.propagated_point_lps
        return lesion.points_lps.mean(axis=0)

    def step(self, lesion: Lesion, step: Step) -> LesionScanResult:
        self.mapper(step.from_scan, step.to_scan)
        mapped, confidence = self.map_point(lesion, step.from_scan, step.to_scan)
        image = self.image(step.to_scan)
        result = LesionScanResult(lesion.id, step.to_scan, "outside_image", MaskCrop(image.GetSize()[::-1]),
                                  propagated_point_lps=mapped, from_scan_id=step.from_scan,
                                  signals={"registration_confidence": confidence})
        if not inside_image(image, mapped[None])[0]:
            result.findings.append(Finding(Reason.POINT_OUTSIDE_IMAGE,
                                           "at RAS " + ", ".join(f"{v:.0f}" for v in lps_to_ras(mapped))))
        else:
            mask = self.segment_at(image, mapped[None])
            if self.config.boost and mask.any():
                boosted = self.segment_at(image, mask_centre_lps(mask, image)[None])
                mask = boosted if boosted.any() else mask
            crop = MaskCrop.from_full(mask)
            prompt = self.results.get((lesion.id, lesion.scan_id))
            self._set_mask(result, crop, image, confidence, prompt)
            ok, match, unlike = self.plausible(lesion, image, result, prompt)
            if not ok:
                log.info("lesion %s on %s: the segment at the mapped point (%d voxels) is not the lesion "
                         "(inside %.2f, coverage %.2f, unlike %s): not found", lesion.id, step.to_scan,
                         crop.voxel_count, match["candidate_inside"], match["candidate_coverage"], unlike or "-")
                seen = {f"candidate_{k}": v for k, v in result.signals.items() if k != "registration_confidence"}
                self._set_mask(result, MaskCrop(crop.shape_zyx), image, confidence, prompt)
                result.signals.update(seen, candidate_ml=crop.voxel_count * voxel_volume_ml(image))
                result.findings.append(Finding(Reason.CANDIDATE_REJECTED, (
                    f"{100 * match['candidate_inside']:.0f}% of it where the lesion can be, "
                    f"{100 * match['candidate_coverage']:.0f}% of the lesion's place covered"
                    + (f", unlike the lesion: {', '.join(unlike)}" if unlike else "")
                    + (f", off its place: the lesion shrunk to its size would reach {match['candidate_misfit_mm']:.1f} "
                       "mm out of it" if match.get("candidate_off") else ""))))
            result.signals.update(match)
            if result.status == "not_found" and prompt is not None and self.lesion_refs.get(lesion.id) is not None:
                with self.timed("quality"):  # a confident disappearance, or one to confirm (quality.absence)
                    levels = [prompt.signals.get(k, float("nan")) for k in ("level_hu", "lung_level_hu")]
                    result.signals.update(absence_signals(self.lesion_refs[lesion.id], self.image(lesion.scan_id),
                                                          image, mapped, *levels))
                    result.findings = settle_absence(result.findings, result.signals)
        self.report("segment", f"{lesion.id}: {step.from_scan} -> {step.to_scan}: {result.status}",
                    lesion=lesion.id, scan=step.to_scan)
        return result

    def plan(self, lesions: list[Lesion]) -> list[Step]:
        """Every step of these lesions: by depth (causal chains), then target (a backend may
        keep per-image state), then lesion order."""
        scan_ids = [s.id for s in self.study.scans]
        order = {sid: k for k, sid in enumerate(scan_ids)}
        rank = {lesion.id: k for k, lesion in enumerate(lesions)}
        steps = [s for lesion in lesions for s in plan_steps(scan_ids, lesion.scan_id, lesion.id, self.config.mode)]
        steps.sort(key=lambda s: (s.depth, order[s.to_scan], rank[s.lesion_id]))
        return steps

    def warm(self, pairs: list[tuple[str, str]]) -> None:
        """Start reading these pairs' scans and registering them in the background: every
        registration, each queued after the next pair's scans, so no worker waits for a scan
        another one reads (one read at a time, ``_load``)."""
        for k, pair in enumerate(pairs):
            for scan_id in pair + (pairs[k + 1] if k + 1 < len(pairs) else ()):
                self.image_future(scan_id)
            self.pair_future(*pair)

    def execute(self, lesions: list[Lesion] | None = None, others: Sequence[Lesion] = ()) -> TrackingResult:
        """Track ``lesions`` (default: the study's) on every scan; earlier results are kept.
        ``others``: lesions of the same request tracked before (``prompt.checks.check_something_segmented``)."""
        since = time.perf_counter()
        lesions = list(self.study.lesions if lesions is None else lesions)
        by_id = {lesion.id: lesion for lesion in lesions}
        steps = self.plan(lesions)
        pairs = list(dict.fromkeys((s.from_scan, s.to_scan) for s in steps))
        self.done = 0
        # the registrations this call waits for: each is a progress step, however fast it ends
        pending = {p for p in pairs if p not in self.mappers or not self.mappers[p].done()}
        self.total = len(lesions) + len(steps) + len(pending)
        self.report("load", f"tracking {len(lesions)} lesion(s) over {len(self.study.scans)} scans",
                    advance=False)
        # Scans are read behind (prompted ones first; every scan has a geometry in the result, even
        # with no step) while the prompts are segmented, and the first pair is registered on the
        # core the segmentation leaves idle; the others wait until every prompt is segmented: a call
        # whose clicks all fall on nothing is refused within one registration, not after all of them.
        for scan_id in dict.fromkeys([les.scan_id for les in lesions] + [sid for pair in pairs for sid in pair]
                                     + [scan.id for scan in self.study.scans]):
            self.image_future(scan_id)
        if self.workers > 0:
            self.warm(pairs[:1])
        prompts = {lesion.id: self.prompt(lesion) for lesion in lesions}
        # refused before anything is stored (a refused call leaves a session as it was); the
        # request's lesions tracked before count with their earlier prompts
        answers = [(les, prompts[les.id][0].empty_prompt) for les in lesions] + [
            (les, r.empty_prompt) for les in others if (r := self.results.get((les.id, les.scan_id))) is not None]
        for lesion in check_something_segmented(answers):
            if lesion.id in by_id:
                log.warning("lesion '%s': nothing could be segmented at its prompt on scan '%s'; tracked from "
                            "the click and flagged for review", lesion.id, lesion.scan_id)
        for lesion in lesions:
            self.results[(lesion.id, lesion.scan_id)], self.lesion_refs[lesion.id] = prompts[lesion.id]
        try:
            self.warm(pairs)
            self.run_steps(steps, by_id, pending)
        except BaseException:  # cancelled or failed half-way: no lesion of the call is left half-tracked
            self.forget(set(by_id))
            raise
        result = self.result_for(lesions, since)
        self.report("done", "tracking finished", advance=False)
        return result

    def run_steps(self, steps: list[Step], by_id: dict[str, Lesion], pending: set[tuple[str, str]]) -> None:
        """Segment every step, depth by depth (``plan``); ``pending``: the registrations still to
        report as they are first used."""
        current_target = None
        for _, level in groupby(steps, key=lambda s: s.depth):
            level = list(level)
            for step in level:  # starting points of this depth are known: refine them in the background
                self.prefetch(by_id[step.lesion_id], step.from_scan, step.to_scan)
            for step in level:
                if step.to_scan != current_target:
                    self.segmenter.release()
                    current_target = step.to_scan
                self.results[(step.lesion_id, step.to_scan)] = self.step(by_id[step.lesion_id], step)
                pair = (step.from_scan, step.to_scan)
                if pair in pending:
                    pending.discard(pair)
                    self.report("register", f"registered {pair[0]} -> {pair[1]}", scan=pair[1])
        self.segmenter.release()

    def result_for(self, lesions: list[Lesion], since: float) -> TrackingResult:
        """The result of these (tracked) lesions; timings count the work done after ``since``."""
        references = {s.id: ImageGeometry.of(self.image(s.id)) for s in self.study.scans}
        walls = {"track": time.perf_counter() - since,
                 "registration_or_segmentation": self.clock.covered(METHOD_STAGES, since)}
        study = Study(self.study.patient_id, self.study.scans, list(lesions), self.study.source)
        results = {(lesion.id, s.id): self.results[(lesion.id, s.id)] for lesion in lesions for s in study.scans}
        return TrackingResult(study, self.config, results, references, self.clock.totals(since),
                              {"registration": self.registration.settings(),
                               "segmentation": self.segmenter.settings()}, walls)


def track(study: Study, config: TrackingConfig | None = None, progress: ProgressCallback | None = None,
          cancel: CancelCheck | None = None, workers: int | None = None) -> TrackingResult:
    """Track every lesion of ``study`` on every scan. Raises ``Cancelled`` if ``cancel()`` turns True.

    ``workers``: threads that read scans and register pairs while this thread segments (default:
    one per core; 0 runs everything here, in the same order: the serial reference).
    """
    run = _Run(study, config or TrackingConfig(), progress, cancel, workers)
    try:
        return run.execute()
    finally:
        run.close()
