"""Progress events: the engine reports, callers (tqdm, Slicer's progress bar) display."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ProgressEvent:
    stage: str  # "load", "register", "segment", "done"
    message: str  # human-readable, e.g. "L1: T0 -> T2"
    done: int  # steps finished so far
    total: int  # steps in the whole run
    lesion: str | None = None  # the lesion this step is about, if any
    scan: str | None = None  # the scan being registered to or segmented, if any

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


ProgressCallback = Callable[[ProgressEvent], None]
CancelCheck = Callable[[], bool]
