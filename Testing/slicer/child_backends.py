"""Small exact backends for the module's tests, importable by the tracking child process too.

``KnownShiftRegistration`` knows each scan's true motion, looked up by the scan's grid, from
``KNOWN_SHIFTS_LPS`` (filled by the ``ball_study`` fixture) or, in a child process, from the JSON
file named by ``LINGUINE_TEST_SHIFTS``; it maps points through a real SimpleITK transform.
``BrightRegionSegmenter`` returns the bright connected region under the prompt. The others
misbehave on purpose: one never finishes (and starts a grandchild process), one crashes, one
raises (as a backend out of GPU memory does).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from LinGuinELib.geometry import physical_to_continuous_index_zyx
from LinGuinELib.registration.base import Registration, TransformMapper
from LinGuinELib.registry import register_registration, register_segmentation
from LinGuinELib.segmentation.base import Segmenter

SHIFTS_ENV = "LINGUINE_TEST_SHIFTS"
SLEEPER_PID_ENV = "LINGUINE_TEST_SLEEPER_PID_FILE"
OUT_OF_MEMORY = "CUDA out of memory. Tried to allocate 2.00 GiB; choose the cpu device"
# Grid key -> true motion of that scan (LPS mm).
KNOWN_SHIFTS_LPS: dict[tuple, np.ndarray] = {}


def grid_key(image) -> tuple:
    return tuple(np.round([*image.GetOrigin(), *image.GetDirection(), *image.GetSpacing()], 3))


def _shift(image) -> np.ndarray:
    key = grid_key(image)
    if key not in KNOWN_SHIFTS_LPS and os.environ.get(SHIFTS_ENV):
        with open(os.environ[SHIFTS_ENV]) as f:
            for text, shift in json.load(f).items():
                KNOWN_SHIFTS_LPS[tuple(json.loads(text))] = np.array(shift)
    return KNOWN_SHIFTS_LPS[key]


def write_shifts(path) -> None:
    """The known shifts as JSON, for a child process (point ``LINGUINE_TEST_SHIFTS`` at it)."""
    with open(path, "w") as f:
        json.dump({json.dumps([float(v) for v in k]): v.tolist() for k, v in KNOWN_SHIFTS_LPS.items()}, f)


@register_registration("slicer-test-known-shift")
class KnownShiftRegistration(Registration):
    def register(self, source, target):
        shift = _shift(target) - _shift(source)
        return TransformMapper(sitk.TranslationTransform(3, tuple(float(v) for v in shift)))


@register_segmentation("slicer-test-bright")
class BrightRegionSegmenter(Segmenter):
    def segment(self, image, positive_lps, negative_lps=None):
        arr = sitk.GetArrayViewFromImage(image)
        labels, _ = ndimage.label(arr > 0)
        out = np.zeros(arr.shape, bool)
        for p in np.asarray(positive_lps).reshape(-1, 3):
            z, y, x = np.round(physical_to_continuous_index_zyx(image, p[None])[0]).astype(int)
            inside = all(0 <= v < n for v, n in zip((z, y, x), arr.shape))
            if inside and labels[z, y, x]:
                out |= labels == labels[z, y, x]
        return out


@register_registration("slicer-test-never-ends")
class NeverEndingRegistration(Registration):
    """Starts a grandchild process (its pid written to a file) and never returns."""

    def register(self, source, target):
        sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        with open(os.environ[SLEEPER_PID_ENV], "w") as f:
            f.write(str(sleeper.pid))
        while True:
            time.sleep(0.1)


@register_registration("slicer-test-crash")
class CrashingRegistration(Registration):
    """Dies like a native crash would: a last message on stderr, then abort()."""

    def register(self, source, target):
        sys.stderr.write("simulated backend crash: CUDA error: an illegal memory access\n")
        sys.stderr.flush()
        os.abort()


@register_segmentation("slicer-test-raises")
class RaisingSegmenter(Segmenter):
    """Fails as a learned backend does when the GPU has no memory left: a Python exception."""

    def segment(self, image, positive_lps, negative_lps=None):
        raise RuntimeError(OUT_OF_MEMORY)
