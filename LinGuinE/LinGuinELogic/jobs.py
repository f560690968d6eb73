"""Run the engine off the main thread; hand progress back through a queue.

Only the main thread may touch MRML or Qt. The widget therefore converts volumes to SimpleITK
images first (main thread), starts a ``TrackingJob`` (worker thread runs ``track``), and polls
``job.poll()`` from a QTimer; the finished ``TrackingResult`` is turned into nodes on the main
thread again. Cancel sets an event that the engine checks between steps.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

from LinGuinELib.config import TrackingConfig
from LinGuinELib.errors import Cancelled
from LinGuinELib.propagation.progress import ProgressEvent
from LinGuinELib.propagation.result import TrackingResult
from LinGuinELib.study.model import Study

log = logging.getLogger(__name__)


class TrackingJob:
    """One call of ``LinGuinELib.propagation.engine.track`` and its progress."""

    def __init__(self, study: Study, config: TrackingConfig, context: Any = None) -> None:
        self.study = study
        self.config = config
        self.context = context  # what the main thread needs to build nodes afterwards
        self.result: TrackingResult | None = None
        self.error: BaseException | None = None
        self.cancelled = False
        self.last_event: ProgressEvent | None = None
        self.started = 0.0
        self._events: queue.Queue[ProgressEvent] = queue.Queue()
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self._finished = threading.Event()

    def _run(self, forward: Any = None, capture_errors: bool = True) -> None:
        from LinGuinELib.propagation.engine import track

        def report(event: ProgressEvent) -> None:
            self._events.put(event)
            if forward is not None:
                self.last_event = event
                forward(event)

        try:
            self.result = track(self.study, self.config, report, self._cancel.is_set)
        except Cancelled:
            self.cancelled = True
        except BaseException as exc:
            if not capture_errors:
                raise
            log.exception("tracking failed")
            self.error = exc  # reported to the main thread, not lost with the thread
        finally:
            self._finished.set()

    def start(self) -> TrackingJob:
        """Run in a daemon worker thread (the GUI path)."""
        self.started = time.perf_counter()
        self._thread = threading.Thread(target=self._run, name="LinGuinE-track", daemon=True)
        self._thread.start()
        return self

    def run_here(self, progress: Any = None) -> TrackingJob:
        """Run in the calling thread (batch, tests): errors propagate; ``progress`` sees every event."""
        self.started = time.perf_counter()
        self._run(progress, capture_errors=False)
        return self

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._finished.wait(timeout)

    def poll(self) -> list[ProgressEvent]:
        """Events reported since the last poll (call from the main thread)."""
        events = []
        while True:
            try:
                events.append(self._events.get_nowait())
            except queue.Empty:
                break
        if events:
            self.last_event = events[-1]
        return events

    @property
    def elapsed_s(self) -> float:
        return time.perf_counter() - self.started if self.started else 0.0
