"""A study kept open: scans loaded, pair registrations cached, one more lesion in seconds.

A radiologist who adds a lesion should not wait for the whole study again. A ``StudySession``
reads the scans and starts the global registration of each pair in background threads as
soon as it starts; a lesion then costs only its prompt segmentation, one local refinement
per scan and one segmentation per scan. Results are those of ``track`` on the same lesions
(same engine, same order of work; only timings differ).

Lifecycle (explicit, as nnInteractive's session):

    session = StudySession(study, config)   # nothing runs yet
    session.start()                         # returns at once; reading and registering run behind
    result = session.track()                # the study's own lesions
    result = session.add_lesion(lesion)     # every lesion so far, the new one included
    result = session.track_lesions(lesions) # exactly these; unchanged prompts are not redone
    session.reconfigure(other_config)       # redoes only what the changed settings feed
    session.close()                         # waits for a registration in progress, frees it all

or ``with StudySession(study, config) as session: ...`` (start and close). Until ``close``
the session holds the scans in memory and keeps SimpleITK's process-wide default thread count
at 1 (pairs run side by side, one thread each). One caller thread at a time; a long-lived
process (the Slicer module's worker) keeps one session per open study.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import wait as wait_futures

import numpy as np

from .config import TrackingConfig, first_changed_stage
from .errors import InputError
from .geometry import ImageGeometry
from .propagation.engine import _Run
from .propagation.plan import plan_steps
from .propagation.progress import CancelCheck, ProgressCallback
from .propagation.result import TrackingResult
from .propagation.threads import default_workers
from .registry import backend_class
from .study.model import Lesion, Study
from .voxels import voxels

log = logging.getLogger(__name__)


def _same_array(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    return (a is None) == (b is None) and (a is None or np.array_equal(a, b))


def same_prompt(a: Lesion, b: Lesion) -> bool:
    """Whether two prompts give the same tracking (same scan, points, mask voxels and grid)."""
    if (a.scan_id, a.mask_path, a.mask_label) != (b.scan_id, b.mask_path, b.mask_label):
        return False
    if not (_same_array(a.points_lps, b.points_lps) and _same_array(a.negative_points_lps, b.negative_points_lps)):
        return False
    if (a.mask is None) != (b.mask is None):
        return False
    if a.mask is None:
        return True
    return (ImageGeometry.of(a.mask) == ImageGeometry.of(b.mask)
            and np.array_equal(voxels(a.mask), voxels(b.mask)))


class StudySession:
    """Scans and registered pairs of one study, kept for any number of lesions.

    ``warm_from``: scans from which new lesions are expected (their pairs are registered in
    the background at ``start``); default: the scans of the study's lesions, else the first
    scan. In chain mode every pair of neighbouring scans is warmed whatever the source.
    ``workers``: background threads (default: one per core, or one for a backend that registers
    a pair on every core itself; 0 = no background work).
    """

    def __init__(self, study: Study, config: TrackingConfig | None = None,
                 warm_from: list[str] | None = None, workers: int | None = None) -> None:
        self.study = study
        self.config = config or TrackingConfig()
        ids = [s.id for s in study.scans]
        self.warm_from = list(warm_from) if warm_from else (
            list(dict.fromkeys(les.scan_id for les in study.lesions)) or ids[:1])
        unknown = [sid for sid in self.warm_from if sid not in ids]
        if unknown:
            raise InputError(f"warm_from: scan(s) {', '.join(unknown)} not in the study")
        self.workers = workers
        self.lesions: list[Lesion] = []  # tracked so far, in the order they were added
        self._run: _Run | None = None
        self.last_reused: list[str] = []  # lesions the last ``track_lesions`` took from earlier work

    # Lifecycle
    def start(self, scans_from: _Run | None = None) -> StudySession:
        """Create the backends and start reading and registering in the background (the scans
        ``scans_from`` has read are taken from it)."""
        if self._run is None:
            workers = self.workers
            if workers is None:  # a backend that takes every core per pair still warms up behind
                concurrent = backend_class("registration", self.config.registration).concurrent_pairs
                workers = default_workers() if concurrent else 1
            self._run = _Run(self.study, self.config, workers=workers)
            if scans_from is not None:
                self._run.adopt_scans(scans_from)
            self._run.warm(self.warm_pairs())
        return self

    def reconfigure(self, config: TrackingConfig) -> str | None:
        """Other settings for the open study; returns the first stage they change (None: none).

        What a stage before it computed is kept (``config.STAGES``): the scans always; the
        registered pairs and mapped points unless a registration setting changed; the lesions'
        results only when nothing but output settings changed (else the next ``track_lesions``
        tracks every lesion again, on the kept pairs). Results equal a fresh session's.
        """
        stage = first_changed_stage(self.config, config)
        self.config = config
        if stage is None or self._run is None:
            return stage
        if stage == "registration":
            old, self._run = self._run, None
            old.close()  # waits for a registration in progress; its scans stay loaded
            self.start(scans_from=old)
        else:
            self._run.retune(config, keep_results=stage == "output")
            self._run.warm(self.warm_pairs())  # another mode may need other pairs
        if stage != "output":
            self.lesions = []
        log.info("session %s: settings changed from the %s stage on", self.study.patient_id, stage)
        return stage

    def close(self) -> None:
        """Free scans, registrations and backends (waits for a registration in progress); the
        lesions tracked go with their results (a later ``start`` tracks them anew)."""
        self.lesions = []
        if self._run is not None:
            run, self._run = self._run, None
            run.close()

    def __enter__(self) -> StudySession:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Work
    def warm_pairs(self) -> list[tuple[str, str]]:
        """The (source, target) pairs that ``start`` registers ahead of any lesion, in the order
        ``_Run.plan`` would need them (by depth, then target)."""
        ids = [s.id for s in self.study.scans]
        sources = ids if self.config.mode == "chain" else self.warm_from
        steps = [step for sid in sources for step in plan_steps(ids, sid, "", self.config.mode)]
        steps.sort(key=lambda step: (step.depth, ids.index(step.to_scan)))
        return list(dict.fromkeys((step.from_scan, step.to_scan) for step in steps))

    def wait_warm(self, timeout: float | None = None) -> bool:
        """Block until the warm-up registrations are done (True) or ``timeout`` s passed (False)."""
        run = self._started()
        futures = [run.pair_future(*pair) for pair in self.warm_pairs()]
        return not wait_futures(futures, timeout=timeout).not_done

    def track(self, progress: ProgressCallback | None = None, cancel: CancelCheck | None = None
              ) -> TrackingResult:
        """Track the study's lesions not tracked yet; the result holds every lesion so far."""
        done = {les.id for les in self.lesions}
        return self._add([les for les in self.study.lesions if les.id not in done], progress, cancel)

    def add_lesion(self, lesion: Lesion, progress: ProgressCallback | None = None,
                   cancel: CancelCheck | None = None) -> TrackingResult:
        """Track one more lesion (a lesion with the id of an earlier one replaces it). The request
        is this lesion alone: a click that gives nothing is refused (``track_lesions`` counts the
        other lesions it is sent with)."""
        return self._add([lesion], progress, cancel)

    def track_lesions(self, lesions: list[Lesion], progress: ProgressCallback | None = None,
                      cancel: CancelCheck | None = None) -> TrackingResult:
        """Exactly these lesions: one tracked before with the same prompt is reused as it was
        (a panel sends every lesion of its prompt list each time; only new or moved ones cost)."""
        known = {les.id: les for les in self.lesions}
        reused = {les.id for les in lesions if les.id in known and same_prompt(known[les.id], les)}
        todo = [les for les in lesions if les.id not in reused]
        self.last_reused = sorted(reused)
        since = time.perf_counter()
        self._add(todo, progress, cancel, others=[les for les in lesions if les.id in reused])
        return self._started().result_for(list(lesions), since)

    def result(self) -> TrackingResult:
        """Every lesion tracked so far (timings: none, no work is done)."""
        return self._started().result_for(self.lesions, time.perf_counter())

    @property
    def register_calls(self) -> int:
        """Pair registrations run so far (warm-up included)."""
        return self._run.register_calls if self._run is not None else 0

    def _started(self) -> _Run:
        if self._run is None:
            raise RuntimeError("StudySession: call start() first (or use it as a context manager)")
        return self._run

    def _add(self, lesions: list[Lesion], progress: ProgressCallback | None,
             cancel: CancelCheck | None, others: Sequence[Lesion] = ()) -> TrackingResult:
        run = self._started()
        ids = [s.id for s in self.study.scans]
        for lesion in lesions:
            if lesion.scan_id not in ids:
                raise InputError(f"lesion '{lesion.id}': scan '{lesion.scan_id}' is not in the study")
        since = time.perf_counter()
        run.progress, run.cancel = progress, cancel
        new = {les.id for les in lesions}
        try:
            run.execute(lesions, others)
        except BaseException:  # a lesion the engine dropped (it failed half-way) is tracked no more
            self.lesions = [les for les in self.lesions if (les.id, les.scan_id) in run.results]
            raise
        finally:
            run.progress = run.cancel = None
        self.lesions = [les for les in self.lesions if les.id not in new] + lesions
        log.info("session %s: %d lesion(s) tracked in %.1f s", self.study.patient_id, len(lesions),
                 time.perf_counter() - since)
        return run.result_for(self.lesions, since)
