"""Reading scans fast without changing what is read: the ISA-L NIfTI path gives ITK's voxels and
grid exactly (or steps aside), and preflight reads only the prompted scans while the engine still
refuses a bad scan it reads later, before anything is written."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import SimpleITK as sitk
from isal import igzip
from safety_fixtures import scan_image, write_study

from LinGuinELib.errors import InputError
from LinGuinELib.propagation.engine import track
from LinGuinELib.study import nifti_fast
from LinGuinELib.study.images import read_image
from LinGuinELib.study.manifest import load_manifest
from LinGuinELib.study.preflight import preflight


def _image(pixel: int) -> sitk.Image:
    rng = np.random.default_rng(pixel)
    arr = rng.integers(-1000, 1000, size=(7, 11, 13))
    image = sitk.Cast(sitk.GetImageFromArray(arr.astype(np.int32)), pixel)
    image.SetSpacing((0.7, 0.8, 2.5))
    image.SetOrigin((-120.5, 33.25, -410.0))
    c, s = np.cos(0.3), np.sin(0.3)
    image.SetDirection((c, -s, 0.0, s, c, 0.0, 0.0, 0.0, -1.0))  # rotated, z flipped
    return image


def _same(a: sitk.Image, b: sitk.Image) -> bool:
    return (a.GetPixelID() == b.GetPixelID() and a.GetSize() == b.GetSize() and a.GetOrigin() == b.GetOrigin()
            and a.GetSpacing() == b.GetSpacing() and a.GetDirection() == b.GetDirection()
            and np.array_equal(sitk.GetArrayViewFromImage(a), sitk.GetArrayViewFromImage(b)))


@pytest.mark.parametrize("pixel", [sitk.sitkInt16, sitk.sitkUInt8, sitk.sitkFloat32, sitk.sitkUInt16])
def test_fast_nifti_read_is_itks_read(tmp_path, pixel):
    path = tmp_path / "scan.nii.gz"
    sitk.WriteImage(_image(pixel), str(path), True)
    fast = nifti_fast.read_nifti_gz(path)
    assert fast is not None, "this plain NIfTI should take the fast path"
    assert _same(fast, sitk.ReadImage(str(path)))
    assert _same(read_image(path), sitk.ReadImage(str(path)))


def test_scaled_nifti_is_left_to_itk(tmp_path):
    """An intensity scale (scl_slope 2) is ITK's to apply: the fast path steps aside."""
    path = tmp_path / "scaled.nii.gz"
    sitk.WriteImage(_image(sitk.sitkInt16), str(path), True)
    with igzip.open(path, "rb") as f:
        data = bytearray(f.read())
    data[112:120] = struct.pack("<2f", 2.0, 10.0)
    with igzip.open(path, "wb") as f:
        f.write(bytes(data))
    assert nifti_fast.read_nifti_gz(path) is None
    itk = sitk.ReadImage(str(path))
    assert _same(read_image(path), itk)
    assert sitk.GetArrayViewFromImage(itk).min() < -1000  # ITK did apply the scale


def test_fast_path_refuses_a_cut_stream(tmp_path):
    path = tmp_path / "cut.nii.gz"
    sitk.WriteImage(_image(sitk.sitkInt16), str(path), True)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated|corrupt"):
        nifti_fast.read_nifti_gz(path)


def test_preflight_reads_only_prompted_scans_and_the_engine_still_refuses_an_empty_one(tmp_path):
    empty = sitk.Image(scan_image(2, "T2").GetSize(), sitk.sitkInt16)
    empty.CopyInformation(scan_image(2, "T2"))
    study = load_manifest(write_study(tmp_path / "S", images={2: empty}))
    preflight(study, tmp_path / "out")
    assert [s.image is not None for s in study.scans] == [True, False, False]  # T0 holds the prompt
    with pytest.raises(InputError, match="every voxel is 0"):
        track(study)
    assert not (tmp_path / "out").exists()
    study = load_manifest(study.source)
    with pytest.raises(InputError, match="every voxel is 0"):
        preflight(study, tmp_path / "out", read_all=True)  # the old order still exists on request
