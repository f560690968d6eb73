"""DICOM Segmentation (SEG) of every tracked lesion on one scan, on the source CT's own frames.

The masks live on the grid SimpleITK built from the CT series; a SEG frame belongs to one CT
instance. Each instance's position and orientation are mapped onto that grid and must land
exactly on one of its slices (in-plane offset and slice index within 1% of a voxel, same
orientation, same rows and columns), one instance per slice, every slice covered; else no SEG is
written for that scan: a SEG off by a slice would outline the wrong anatomy in every viewer.
One segment per lesion (number k = its label in ``labels/``), with the lesion's tracking
identifier and UID, even when it is empty on this scan, so a lesion is linked across timepoints.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import InputError
from ..propagation.result import TrackingResult
from .colors import lesion_color

MANUFACTURER = "LinGuinE"
SEG_SERIES_NUMBER = 9100
SR_SERIES_NUMBER = 9101
_TRACKING_NAMESPACE = uuid.UUID("6b1f2a52-3c0e-4e53-9a53-0c4a1d5b7e11")


def require_dicom_packages() -> None:
    """Fail before any work when pydicom / highdicom are missing (they are an optional extra)."""
    try:
        import highdicom  # noqa: F401
        import pydicom  # noqa: F401
    except ImportError as exc:
        raise InputError(f"DICOM input/output needs pydicom and highdicom ({exc.name} missing): "
                         "pip install 'linguine-slicer[dicom]'") from None


def tracking_identifier(patient_id: str, lesion_id: str) -> str:
    """Human-readable Tracking Identifier (the same as the Slicer segment tag)."""
    return f"{patient_id}/{lesion_id}"


def tracking_uid(patient_id: str, lesion_id: str, prompt_key: str) -> str:
    """Tracking Unique Identifier: a name-based UUID as a 2.25 UID, so reruns give the same one.

    ``prompt_key`` is the StudyInstanceUID of the scan the lesion was prompted on (its scan id
    when not DICOM): two patients with the same PatientID and lesion id still differ.
    """
    name = "\x1f".join(("LinGuinE lesion", patient_id, lesion_id, prompt_key))
    return f"2.25.{uuid.uuid5(_TRACKING_NAMESPACE, name).int}"


def read_headers(files: list[str]) -> list:
    """The CT instances' headers (no pixel data), in the given order."""
    import pydicom

    return [pydicom.dcmread(f, stop_before_pixels=True) for f in files]


def slice_indices(reference, headers: list, scan_id: str) -> list[int]:
    """For each CT instance, the slice (z index) of ``reference``'s grid it is; InputError unless
    every instance is one slice and every slice one instance."""
    direction = np.array(reference.GetDirection()).reshape(3, 3)
    spacing = np.array(reference.GetSpacing(), float)
    origin = np.array(reference.GetOrigin(), float)
    size = reference.GetSize()
    out = []
    for ds in headers:
        where = f"scan '{scan_id}': CT instance {ds.SOPInstanceUID}"
        iop = np.array([float(v) for v in ds.ImageOrientationPatient]).reshape(2, 3)
        if not (np.allclose(iop[0], direction[:, 0], atol=1e-3) and np.allclose(iop[1], direction[:, 1], atol=1e-3)):
            raise InputError(f"{where}: orientation differs from the tracked grid; no SEG written")
        if (int(ds.Rows), int(ds.Columns)) != (size[1], size[0]):
            raise InputError(f"{where}: {ds.Rows}x{ds.Columns} pixels, grid has {size[1]}x{size[0]}")
        ijk = np.linalg.solve(direction, np.array([float(v) for v in ds.ImagePositionPatient]) - origin) / spacing
        k = int(round(ijk[2]))
        if np.abs(ijk[:2]).max() > 0.01 or abs(ijk[2] - k) > 0.01 or not 0 <= k < size[2]:
            raise InputError(f"{where}: does not lie on a slice of the tracked grid (index {np.round(ijk, 3)})")
        out.append(k)
    if len(set(out)) != len(out):
        raise InputError(f"scan '{scan_id}': two CT instances on one slice; no SEG written")
    if len(out) != size[2]:
        raise InputError(f"scan '{scan_id}': its CT instances cover {len(out)} of the grid's {size[2]} slices")
    return out


def _algorithm(result: TrackingResult):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    seg_name = str(result.config.segmentation)
    family = codes.DCM.ImageProcessing if seg_name == "classical" else codes.DCM.ArtificialIntelligence
    return hd.AlgorithmIdentificationSequence(
        name=f"LinGuinE {result.config.registration}+{seg_name} {result.config.mode}"[:64],
        family=family, version=__version__)


def build_seg(result: TrackingResult, scan_id: str, headers: list, uids: dict[str, str]):
    """The SEG dataset of one scan (highdicom Segmentation), segments numbered like ``labels/``."""
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    ref = result.references[scan_id]
    ks = slice_indices(ref, headers, scan_id)
    lesions = result.study.lesions
    descriptions = []
    algorithm = _algorithm(result)
    for j, lesion in enumerate(lesions):
        descriptions.append(hd.seg.SegmentDescription(
            segment_number=j + 1, segment_label=lesion.id[:64],
            segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
            segmented_property_type=codes.SCT.Lesion, algorithm_type="SEMIAUTOMATIC",
            algorithm_identification=algorithm, tracking_uid=uids[lesion.id],
            tracking_id=tracking_identifier(result.study.patient_id, lesion.id)[:64],
            display_color=hd.color.CIELabColor.from_rgb(*lesion_color(j))))
    return hd.seg.Segmentation(
        source_images=headers, pixel_array=_frames(result, scan_id, ks), segmentation_type="BINARY",
        segment_descriptions=descriptions, series_instance_uid=generate_uid(),
        series_number=SEG_SERIES_NUMBER, sop_instance_uid=generate_uid(), instance_number=1,
        manufacturer=MANUFACTURER, manufacturer_model_name="LinGuinE", software_versions=__version__,
        device_serial_number="none", content_label="LINGUINE",
        content_description=f"tracked lesions, timepoint {scan_id}"[:64],
        series_description=f"LinGuinE lesions {scan_id}"[:64])


def _frames(result: TrackingResult, scan_id: str, ks: list[int]) -> np.ndarray:
    """Per CT instance, its slice of the masks: a label map (value = segment number, 2 bytes a
    voxel whatever the number of lesions) or, where lesions overlap on this scan, one bool plane
    per lesion so each segment keeps its whole mask."""
    size = result.references[scan_id].GetSize()
    label = np.zeros(size[::-1], dtype=np.uint16)
    crops = [result.get(les.id, scan_id).mask for les in result.study.lesions]
    for j, crop in enumerate(crops, start=1):
        if crop.empty:
            continue
        region = label[crop.slices()]
        if region[crop.array].any():
            break
        region[crop.array] = j
    else:
        return label[ks]
    stack = np.zeros((len(ks), size[1], size[0], len(crops)), dtype=bool)
    for j, crop in enumerate(crops):
        if not crop.empty:
            stack[..., j] = crop.to_full()[ks]
    return stack


def read_seg_masks(seg_path: Path, ct_files: list[str]) -> dict[int, np.ndarray]:
    """Segment number -> bool (z, y, x) mask on the grid SimpleITK reads from ``ct_files``.

    The inverse of ``build_seg``, through the SEG's own per-frame references (tests, checks).
    """
    import highdicom as hd

    seg = hd.seg.segread(str(seg_path))
    headers = read_headers(ct_files)
    grid = _series_grid(ct_files)
    ks = slice_indices(grid, headers, "read-back")
    numbers = [int(d.SegmentNumber) for d in seg.SegmentSequence]
    frames = seg.get_pixels_by_source_instance([str(ds.SOPInstanceUID) for ds in headers],
                                               segment_numbers=numbers, assert_missing_frames_are_empty=True)
    size = grid.GetSize()
    out = {}
    for j, n in enumerate(numbers):
        mask = np.zeros(size[::-1], dtype=bool)
        mask[ks] = frames[..., j] > 0
        out[n] = mask
    return out


def _series_grid(ct_files: list[str]):
    import SimpleITK as sitk

    from ..geometry import ImageGeometry

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(list(ct_files))
    return ImageGeometry.of(reader.Execute())
