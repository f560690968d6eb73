"""Scans that cannot be what the method measures: values that are not CT in Hounsfield units, and the
same image given for two dates. One line naming the file, exit 2, nothing written. Each case failed
before the check (they were tracked as if they were CT / two timepoints).
"""

from __future__ import annotations

import gzip
import json
import struct

import engine_fixtures as fx
import numpy as np
import pytest
import SimpleITK as sitk
from safety_fixtures import TRACK, assert_refused, run, scan_image, write_study

from LinGuinELib.study.images import read_image
from LinGuinELib.study.preflight import check_pixels


def _values(k: int, scale: float, offset: float, pixel=sitk.sitkInt16) -> sitk.Image:
    """Scan k of the fixture with its values mapped to ``scale * HU + offset`` (metadata kept)."""
    ct = scan_image(k, f"T{k}")
    arr = sitk.GetArrayFromImage(ct).astype(float) * scale + offset
    out = sitk.Cast(sitk.GetImageFromArray(arr), pixel)
    out.CopyInformation(ct)
    for key in (fx.SHIFT_KEY, "id"):
        out.SetMetaData(key, ct.GetMetaData(key))
    return out


@pytest.mark.parametrize("which", [0, 2])  # the prompt scan (read before tracking), a follow-up (read while tracking)
@pytest.mark.parametrize("kind", ["mr", "ct_without_rescale", "mr_with_a_few_dark_voxels"])
def test_values_that_are_not_ct_in_hu_are_refused(tmp_path, capsys, which, kind):
    if kind == "mr":  # T1-like: 0 to a few thousand
        image = _values(which, 2.0, 1800.0)
    elif kind == "ct_without_rescale":  # unsigned storage read raw: air at 24 instead of -1000
        image = _values(which, 1.0, 1024.0, sitk.sitkUInt16)
    else:
        image = _values(which, 2.0, 1800.0)
        image[0, 0, 0] = image[1, 0, 0] = -1000  # ringing or padding: not a lung
    manifest = write_study(tmp_path / "S", images={which: image})
    assert_refused(capsys, tmp_path, "track", manifest, "--out", tmp_path / "out", *TRACK,
                   words=(f"s{which}.mha", "not a CT in Hounsfield units", "rescale"))


def test_unsigned_ct_with_its_rescale_intercept_is_read_in_hu(tmp_path):
    """Scanners that store unsigned values with intercept -1024: the reader applies it, the scan passes."""
    ct = scan_image(1, "T1")
    raw = tmp_path / "raw.nii"
    sitk.WriteImage(sitk.Cast(ct + 1024, sitk.sitkUInt16), str(raw))
    data = bytearray(raw.read_bytes())
    data[112:120] = struct.pack("<2f", 1.0, -1024.0)  # scl_slope, scl_inter
    path = tmp_path / "unsigned.nii.gz"
    path.write_bytes(gzip.compress(bytes(data)))
    image = read_image(path)
    assert np.array_equal(sitk.GetArrayViewFromImage(image), sitk.GetArrayViewFromImage(ct))  # in HU again
    check_pixels("T1", path, image)  # no error
    with pytest.raises(Exception, match="rescale"):
        check_pixels("T1", raw, read_image(raw))  # the same file without the intercept


def test_a_ct_padded_outside_its_field_of_view_passes(tmp_path, capsys):
    image = _values(1, 1.0, 0.0)
    image[0:4, :, :] = -3024  # padding value of some scanners
    manifest = write_study(tmp_path / "S", images={1: image})
    assert run(capsys, "track", manifest, "--out", tmp_path / "out", *TRACK)[0] == 0


# ----------------------------------------------------------------------------- the same image twice


def _point_ras() -> str:
    from safety_fixtures import CENTRE

    return f"--point-ras={-CENTRE[0]},{-CENTRE[1]},{CENTRE[2]}"


@pytest.mark.parametrize("how", ["same_path", "same_path_and_a_series_uid", "hard_link", "symlink"])
def test_one_file_given_for_two_dates_is_refused_before_any_read(tmp_path, capsys, how):
    manifest = write_study(tmp_path / "S")
    scans = manifest.parent / "scans"
    doc = json.loads(manifest.read_text(encoding="utf-8"))
    if how.startswith("same_path"):
        doc["scans"][2]["image"] = doc["scans"][1]["image"]
        if how.endswith("uid"):  # a series uid picks a series of a folder: it does not make a file another
            doc["scans"][2]["series_uid"] = "1.2.3"
    else:
        (scans / "s2.mha").unlink()
        link = scans / "s2.mha"
        link.hardlink_to(scans / "s1.mha") if how == "hard_link" else link.symlink_to("s1.mha")
    manifest.write_text(json.dumps(doc), encoding="utf-8")
    assert_refused(capsys, tmp_path, "track", manifest, "--out", tmp_path / "out", *TRACK,
                   words=("'T1' and 'T2'", "same image", "s1.mha"))


def test_a_folder_holding_a_link_to_another_of_its_scans_is_refused(tmp_path, capsys):
    folder = tmp_path / "scans"
    folder.mkdir()
    for k, name in enumerate(("2024-01-01", "2024-02-01")):
        sitk.WriteImage(scan_image(k, name), str(folder / f"{name}.mha"))
    (folder / "2024-03-01.mha").symlink_to("2024-02-01.mha")
    assert_refused(capsys, tmp_path, "track", folder, _point_ras(), "--source", "2024-01-01",
                   "--out", tmp_path / "out", *TRACK, words=("'2024-02-01' and '2024-03-01'", "same image"))


# with the prompt scan (read first), and two follow-ups (read while tracking)
@pytest.mark.parametrize("pair", [(0, 2), (1, 2)])
def test_identical_voxels_in_two_files_are_refused(tmp_path, capsys, pair):
    """A copy under another name, stored compressed: different files and bytes, the same image."""
    a, b = pair
    manifest = write_study(tmp_path / "S", images={b: scan_image(a, f"T{a}")})
    doc = json.loads(manifest.read_text(encoding="utf-8"))
    copy = manifest.parent / "scans" / "copy.mha"
    sitk.WriteImage(sitk.ReadImage(str(manifest.parent / doc["scans"][b]["image"])), str(copy), True)
    (manifest.parent / doc["scans"][b]["image"]).unlink()
    doc["scans"][b]["image"] = "scans/copy.mha"
    manifest.write_text(json.dumps(doc), encoding="utf-8")
    assert_refused(capsys, tmp_path, "track", manifest, "--out", tmp_path / "out", *TRACK,
                   words=(f"'T{a}'", f"'T{b}'", "identical voxels", "copy.mha"))


@pytest.mark.parametrize("pair", [(0, 2), (1, 2)])
@pytest.mark.parametrize("how", ["float", "RAS", "ILP_float"])
def test_the_same_scan_in_another_voxel_type_or_axis_order_is_refused(tmp_path, capsys, pair, how):
    """A re-export of a scan (float voxels, stored in RAS order, axes permuted): other arrays, the same
    values at the same places of the body. These were tracked as two timepoints before."""
    a, b = pair
    ct = scan_image(a, f"T{a}")
    orient = how.split("_")[0]
    copy = ct if orient == "float" else sitk.DICOMOrient(ct, orient)
    copy = sitk.Cast(copy, sitk.sitkFloat32) if "float" in how else copy
    for key in (fx.SHIFT_KEY, "id"):
        copy.SetMetaData(key, ct.GetMetaData(key))
    assert copy.GetPixelID() != ct.GetPixelID() or copy.GetDirection() != ct.GetDirection()  # not the same arrays
    manifest = write_study(tmp_path / "S", images={b: copy})
    assert_refused(capsys, tmp_path, "track", manifest, "--out", tmp_path / "out", *TRACK,
                   words=(f"'T{a}'", f"'T{b}'", "identical voxels"))


def test_physical_view_puts_a_reoriented_copy_back_in_place():
    from LinGuinELib.study.duplicates import physical_view

    ct = scan_image(1, "T1")
    arr = sitk.GetArrayViewFromImage(ct)
    for orient in ("RAS", "ILP", "PIR", "LPS"):
        copy = sitk.DICOMOrient(ct, orient)
        view = physical_view(sitk.GetArrayViewFromImage(copy), copy.GetDirection())
        assert np.array_equal(view, arr), orient
        assert np.shares_memory(view, sitk.GetArrayViewFromImage(copy))  # a view, no copy


def test_scans_that_differ_by_one_voxel_are_tracked(tmp_path, capsys):
    image = scan_image(1, "T1")
    image[3, 3, 3] = image[3, 3, 3] + 1
    manifest = write_study(tmp_path / "S", images={2: image})  # T2 = T1 but for one voxel (and the same shift)
    assert run(capsys, "track", manifest, "--out", tmp_path / "out", *TRACK)[0] == 0


@pytest.mark.parametrize("case", ["mr_follow_up", "same_voxels_two_studies"])
def test_dicom_follow_ups_are_checked_too(tmp_path, capsys, case):
    """DICOM series are read whole when the study is loaded: those not prompted were never checked."""
    pytest.importorskip("pydicom")
    import datetime as dt

    from LinGuinELib.synthetic.dicom_ct import CTSeriesHeader, write_ct_series

    dicom = tmp_path / "dcm"
    images = [scan_image(0, "T0"), scan_image(1, "T1"),
              _values(2, 2.0, 1800.0) if case == "mr_follow_up" else scan_image(1, "T1")]
    for k, image in enumerate(images):
        write_ct_series(image, dicom / f"exam{k}", CTSeriesHeader("P9", dt.date(2024, 1 + k, 2)))
    said = "not a CT in Hounsfield units" if case == "mr_follow_up" else "identical voxels"
    assert_refused(capsys, tmp_path, "track", dicom, _point_ras(), "--source", "2024-01-02", "--out", tmp_path / "out",
                   *TRACK, words=("exam2", said))
