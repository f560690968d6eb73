"""Write an image as a DICOM CT series with synthetic headers (tests, benchmarks, demos).

Real DICOM test data can't ship with the project, so tests and the LIDC end-to-end check turn
generated or NIfTI CTs into CT Image Storage series: one single-frame file per slice, with the
image's exact geometry (Image Position / Orientation (Patient), Pixel Spacing), int16 HU stored
as-is (slope 1, intercept 0). Identifiers are synthetic; nothing here is patient data.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..voxels import voxel_copy

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


@dataclass
class CTSeriesHeader:
    """What identifies a synthetic series; UIDs are generated when left empty."""

    patient_id: str
    study_date: dt.date
    study_time: str = "093000"
    patient_name: str = ""
    study_uid: str = ""
    series_uid: str = ""
    frame_of_reference_uid: str = ""
    series_number: int = 1
    series_description: str = "synthetic CT"
    image_type: tuple[str, ...] = ("ORIGINAL", "PRIMARY", "AXIAL")


def _ds(value: float) -> str:
    """A decimal string that fits DICOM's 16 characters and round-trips to well under a micron."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    if len(text) > 16:
        text = f"{value:.8g}"
    return "0" if text in ("-0", "") else text


def write_ct_series(image: sitk.Image, folder: Path, header: CTSeriesHeader) -> list[Path]:
    """Write ``image`` (3D, HU) as one CT Image Storage file per slice in ``folder``; return the files.

    Slice k lies at origin + k * spacing_z * direction[:, 2]; the orientation is the direction's
    first two columns, so any grid SimpleITK can hold (flipped, oblique) is written exactly.
    """
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, generate_uid

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    study_uid = header.study_uid or generate_uid()
    series_uid = header.series_uid or generate_uid()
    frame_uid = header.frame_of_reference_uid or generate_uid()
    arr = voxel_copy(image)
    arr = np.clip(np.round(arr), -32768, 32767).astype(np.int16)
    direction = np.array(image.GetDirection()).reshape(3, 3)
    spacing = np.array(image.GetSpacing(), float)
    origin = np.array(image.GetOrigin(), float)
    orientation = [_ds(v) for v in (*direction[:, 0], *direction[:, 1])]
    date = header.study_date.strftime("%Y%m%d")
    files = []
    for k in range(arr.shape[0]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        path = folder / f"CT{k + 1:05d}.dcm"
        ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.ImageType = list(header.image_type)
        ds.SOPClassUID = CT_IMAGE_STORAGE
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = date
        ds.StudyTime = ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = header.study_time
        ds.AccessionNumber = ""
        ds.Modality = "CT"
        ds.Manufacturer = "LinGuinE synthetic"
        ds.ReferringPhysicianName = ""
        ds.SeriesDescription = header.series_description
        ds.BodyPartExamined = "CHEST"
        ds.PatientName = header.patient_name or f"Synthetic^{header.patient_id}"
        ds.PatientID = header.patient_id
        ds.PatientBirthDate = ""
        ds.PatientSex = "O"
        ds.SliceThickness = _ds(spacing[2])
        ds.KVP = "120"
        ds.PatientPosition = "HFS"
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.StudyID = "1"
        ds.SeriesNumber = header.series_number
        ds.AcquisitionNumber = 1
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [_ds(v) for v in origin + k * spacing[2] * direction[:, 2]]
        ds.ImageOrientationPatient = orientation
        ds.FrameOfReferenceUID = frame_uid
        ds.PositionReferenceIndicator = ""
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = int(arr.shape[1]), int(arr.shape[2])
        ds.PixelSpacing = [_ds(spacing[1]), _ds(spacing[0])]  # row spacing (y), column spacing (x)
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.RescaleIntercept = "0"
        ds.RescaleSlope = "1"
        ds.RescaleType = "HU"
        ds.PixelData = arr[k].tobytes()
        ds.save_as(path, enforce_file_format=True)
        files.append(path)
    return files


def manifest_to_dicom(manifest: Path, folder: Path, patient_id: str | None = None) -> dict[str, Path]:
    """Write every scan of a STUDY.json as its own DICOM study and CT series in ``folder/<scan id>/``.

    Study dates are the manifest's dates (else 30 days apart from 2020-01-01). Returns scan id ->
    the series folder. Lesions, labels and prompts stay in the manifest (DICOM has no place for them).
    """
    import json

    from ..study.images import read_image

    manifest = Path(manifest)
    data = json.loads(manifest.read_text())
    patient = patient_id or str(data.get("patient_id") or "P")
    out = {}
    for k, scan in enumerate(data["scans"]):
        date = dt.date.fromisoformat(scan["date"][:10]) if scan.get("date") else (
            dt.date(2020, 1, 1) + dt.timedelta(days=30 * k))
        header = CTSeriesHeader(patient, date, series_number=k + 1,
                                series_description=f"synthetic CT {scan['id']}")
        write_ct_series(read_image(manifest.parent / scan["image"]), Path(folder) / scan["id"], header)
        out[scan["id"]] = Path(folder) / scan["id"]
    return out
