"""NumPy access to a SimpleITK image's voxels that stays valid while other threads use the image.

``sitk.GetArrayViewFromImage`` (and ``GetArrayFromImage``, which copies from it) first makes the
image's buffer unique: when another thread is running a SimpleITK filter on the same image, the
filter holds a second reference, so the image gets a fresh copy of its buffer and the old one is
freed when the filter ends. Every view taken before then reads freed memory. The engine segments
a scan on one thread while the registrations filter it on others: that crashed three tracking runs
(segmentation faults in scipy and numpy calls reading a scan, 1 run in 6 on one study). Here each
image gets one read-only view, taken once and handed out again for as long as the image lives, so
nothing asks for a unique buffer a second time.
"""

from __future__ import annotations

import threading
import weakref

import numpy as np
import SimpleITK as sitk

_VIEWS: dict[int, np.ndarray] = {}
_LOCK = threading.Lock()


def voxels(image: sitk.Image) -> np.ndarray:
    """The image's voxels, (z, y, x[, component]), as a read-only view (copy it to write)."""
    key = id(image)
    with _LOCK:
        view = _VIEWS.get(key)
        if view is None:
            view = sitk.GetArrayViewFromImage(image)
            view.flags.writeable = False
            _VIEWS[key] = view
            weakref.finalize(image, _VIEWS.pop, key, None)
    return view


def voxel_copy(image: sitk.Image) -> np.ndarray:
    """A writable copy of the image's voxels (see :func:`voxels`)."""
    return np.array(voxels(image))
