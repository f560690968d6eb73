"""Export from the Slicer module with volumes that came from DICOM: SEG + SR on the CT's frames.

slicer-core has no DICOM module or database, so each volume's CT series is written here (from
the volume's own voxels and geometry) and a minimal stand-in answers ``fileForInstance`` the way
Slicer's database does. What is checked is real: the module's RAS volume geometry against the
DICOM positions, and the SEG/SR content read back.
"""

from __future__ import annotations

import datetime as dt
import sys

import numpy as np
import pytest

if not hasattr(sys.modules.get("slicer"), "vtkMRMLScene"):  # conftest imported it if it could
    pytest.skip("slicer-core is not installed (bash scripts/install_slicer_core.sh)", allow_module_level=True)
pytest.importorskip("highdicom")

import SimpleITK as sitk  # noqa: E402
import slicer  # noqa: E402

from LinGuinELib.errors import InputError  # noqa: E402

FAST = {"registration": "slicer-test-known-shift", "segmentation": "slicer-test-bright"}


class _Database:
    """Stand-in for ``slicer.dicomDatabase``: instance UID -> file."""

    def __init__(self) -> None:
        self.files: dict[str, str] = {}

    def fileForInstance(self, uid: str) -> str:  # noqa: N802 - Slicer's name
        return self.files.get(uid, "")


def _as_dicom(volume, folder, database: _Database, k: int) -> list[str]:
    from LinGuinELogic.volumes import volume_array_zyx, volume_geometry

    from LinGuinELib.outputs.dicom_seg import read_headers
    from LinGuinELib.synthetic.dicom_ct import CTSeriesHeader, write_ct_series

    geom = volume_geometry(volume)
    image = sitk.GetImageFromArray(volume_array_zyx(volume))
    image.SetOrigin(geom.origin)
    image.SetSpacing(geom.spacing)
    image.SetDirection(geom.direction)
    files = [str(f) for f in write_ct_series(image, folder, CTSeriesHeader("BALL", dt.date(2024, 1 + k, 1)))]
    uids = [str(ds.SOPInstanceUID) for ds in read_headers(files)]
    database.files.update(zip(uids, files))
    volume.SetAttribute("DICOM.instanceUIDs", " ".join(uids[::-1]))  # any order: frames map by position
    return files


def test_export_writes_seg_and_sr_for_dicom_volumes(ball_study, tmp_path, monkeypatch):
    from LinGuinELogic import LinGuinELogic

    from LinGuinELib.outputs.dicom_seg import read_seg_masks
    from LinGuinELib.outputs.dicom_sr import read_measurement_report

    logic = LinGuinELogic(ball_study.scene)
    result = logic.track(volumeNodes=ball_study.volumes, promptNode=ball_study.points, **FAST)
    with pytest.raises(InputError, match="no volume was loaded from the DICOM database"):
        logic.export(result.tableNode, tmp_path / "refused", dicom=True)
    assert not (tmp_path / "refused").exists()

    database = _Database()
    monkeypatch.setattr(slicer, "dicomDatabase", database, raising=False)
    files = {name: _as_dicom(v, tmp_path / "ct" / name, database, k)
             for k, (name, v) in enumerate(zip(ball_study.names, ball_study.volumes))}
    out = logic.export(result.tableNode, tmp_path / "export")
    uids = set()
    for name in ball_study.names:
        labels = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "labels" / f"{name}.nii.gz")))
        masks = read_seg_masks(out / "dicom" / f"{name}.seg.dcm", files[name])
        assert sorted(masks) == [1, 2]
        for number, mask in masks.items():
            assert np.array_equal(mask, labels == number) and mask.any(), (name, number)
        groups = read_measurement_report(out / "dicom" / f"{name}.sr.dcm")
        uids |= {g["tracking_uid"] for g in groups}
    assert len(uids) == 2  # one per lesion, the same on every volume
