"""What a backend derives from one scan, computed once however many pairs the scan is in.

Direct mode registers the prompt scan with every other scan, so its downsampled copy and lung
masks were computed once per pair (a fifth of a 5-scan study's registration time); chain mode
uses each scan as a target and then as a source. The memo holds the scan weakly (it lives in
the engine as long as the study does) and computes each value under its own lock, so pairs
registered at once in threads wait for the first instead of repeating it.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any

import SimpleITK as sitk


class PerImage:
    """Values keyed by (scan, name); a scan's values go when the scan is freed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # (weak reference to the scan, values by name, one lock per name); sitk.Image is not hashable
        self._entries: list[tuple[weakref.ref, dict[str, Any], dict[str, threading.Lock]]] = []

    def get(self, image: sitk.Image, name: str, compute: Callable[[], Any], wait: bool = True) -> Any:
        """The value ``compute()`` gave for this scan, computing it on first use (do not mutate it).
        ``wait=False``: None at once while another thread computes it (a pair set up ahead of need
        goes on to other work instead of waiting for the pair that shares its scan)."""
        with self._lock:
            self._entries = [e for e in self._entries if e[0]() is not None]
            entry = next((e for e in self._entries if e[0]() is image), None)
            if entry is None:
                entry = (weakref.ref(image), {}, {})
                self._entries.append(entry)
            lock = entry[2].setdefault(name, threading.Lock())
        if not lock.acquire(blocking=wait):
            return None
        try:
            if name not in entry[1]:
                entry[1][name] = compute()
            return entry[1][name]
        finally:
            lock.release()
