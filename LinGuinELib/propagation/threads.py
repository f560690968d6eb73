"""How the engine runs its work on threads: the pool size, a serial stand-in for the pool, the
SimpleITK thread pin for concurrent registrations, and the clock that times each stage."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

import SimpleITK as sitk

MAX_WORKERS = 8


def default_workers() -> int:
    """Threads for reading and registering: one per core this process may use (at most 8)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_WORKERS))


class Inline:
    """An executor that runs each task when it is submitted: the serial reference."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args))
        except Exception as exc:  # re-raised by future.result(), as from a thread
            future.set_exception(exc)
        return future

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        pass


_pin_lock = threading.Lock()
_pin_count = 0
_pin_saved = 0


def pin_sitk_threads(on: bool) -> None:
    """Hold SimpleITK's process-wide default thread count at 1 while registrations run concurrently.

    A backend that sets and restores that global around its own work (the classical one does,
    for bit-for-bit reproducibility) would otherwise restore it under a registration still
    running in another thread; with the global held at 1, every interleaving leaves it at 1.
    Concurrency comes from running pairs side by side, one thread each.
    """
    global _pin_count, _pin_saved
    with _pin_lock:
        if on:
            if _pin_count == 0:
                _pin_saved = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
                sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
            _pin_count += 1
        else:
            _pin_count -= 1
            if _pin_count == 0:
                sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(_pin_saved)


class StageClock:
    """Seconds per stage summed over threads, and the wall time during which stages ran."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.spans: list[tuple[str, float, float]] = []

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            with self._lock:
                self.spans.append((stage, start, time.perf_counter()))

    def totals(self, since: float) -> dict[str, float]:
        out: dict[str, float] = {}
        with self._lock:
            for stage, start, end in self.spans:
                if end > since:
                    out[stage] = out.get(stage, 0.0) + end - max(start, since)
        return out

    def covered(self, stages: tuple[str, ...], since: float) -> float:
        """Wall seconds after ``since`` during which at least one of ``stages`` ran."""
        with self._lock:
            spans = sorted((max(a, since), b) for st, a, b in self.spans if st in stages and b > since)
        total, reach = 0.0, since
        for a, b in spans:
            if b > reach:
                total += b - max(a, reach)
                reach = b
        return total
