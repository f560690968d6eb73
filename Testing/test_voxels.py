"""A scan's voxel view stays put while another thread filters the scan (the engine segments a scan
on one thread while registrations filter it on others)."""

import threading
import time

import numpy as np
import SimpleITK as sitk

from LinGuinELib.voxels import voxel_copy, voxels


def _addresses_while_filtered(view_of, seconds: float = 1.0) -> set[int]:
    """Buffer addresses of the views ``view_of`` gives of one image while a thread filters it."""
    image = sitk.Image(128, 128, 64, sitk.sitkInt16)
    stop, running = threading.Event(), threading.Event()

    def filter_it() -> None:
        while not stop.is_set():
            running.set()
            sitk.SmoothingRecursiveGaussian(image, 1.0)

    worker = threading.Thread(target=filter_it)
    worker.start()
    running.wait()
    seen: set[int] = set()
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end and len(seen) < 3:
            seen.add(view_of(image).ctypes.data)
            time.sleep(0.001)
        return seen
    finally:
        stop.set()
        worker.join()


def test_simpleitk_moves_a_buffer_under_a_filter_and_voxels_does_not():
    # the hazard itself: a view SimpleITK gives while a filter holds the image may be of a new
    # buffer, and the filter frees the old one that the earlier views read
    assert len(_addresses_while_filtered(sitk.GetArrayViewFromImage)) > 1
    assert len(_addresses_while_filtered(voxels)) == 1


def test_voxels_is_read_only_and_its_copy_is_not():
    image = sitk.GetImageFromArray(np.arange(24, dtype=np.int16).reshape(2, 3, 4))
    view = voxels(image)
    assert view.shape == (2, 3, 4) and not view.flags.writeable and view is voxels(image)
    copy = voxel_copy(image)
    copy[0, 0, 0] = 7
    assert view[0, 0, 0] == 0 and np.array_equal(copy[1], view[1])
