"""TID 1500 Measurement Report (Comprehensive 3D SR) of one timepoint, and the DICOM output folder.

One Volumetric ROI measurement group per lesion: its tracking identifier and UID (the same as in
the SEG and on every timepoint), the SEG segment it measures, the timepoint, volume (mL), longest
axial diameter (SCT Long axis, mm), short axis (mm) and the volumetric response (DCM Current
Response: Target Lesion at Baseline / Complete / Partial Response / Stable / Progressive Disease,
SCT Not evaluated). Values are the trajectory table's, stored exactly (FloatingPointValue).
A lesion not measured on the scan (outside it, or a click that gave nothing) gets no measurements,
only its response; the review flags stay in trajectory.csv (the template has no place for them).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from .. import __version__
from ..errors import InputError
from ..propagation.result import TrackingResult
from .dicom_seg import (
    MANUFACTURER,
    SR_SERIES_NUMBER,
    build_seg,
    read_headers,
    tracking_identifier,
    tracking_uid,
)
from .names import unique_names

log = logging.getLogger(__name__)

MEASURES = (("volume_ml", "Volume", "mL", "milliliter"),
            ("longest_axial_diameter_mm", "LongAxis", "mm", "millimeter"),
            ("short_axis_mm", "ShortAxis", "mm", "millimeter"))
_RESPONSE_CODES = {"baseline": "TargetLesionAtBaseline", "CR": "TargetLesionCompleteResponse",
                   "PR": "TargetLesionPartialResponse", "SD": "TargetLesionStableDisease",
                   "PD": "TargetLesionProgressiveDisease"}


def _response_code(response: str):
    from pydicom.sr.codedict import codes

    name = _RESPONSE_CODES.get(response)
    return getattr(codes.DCM, name) if name else codes.SCT.NotEvaluated


def _group(result: TrackingResult, row: dict, seg, ct_series_uid: str, uid: str, order: int):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    lesion_id = row["lesion"]
    measurements = []
    if row["volume_ml"] is not None:  # measured (not outside the scan, not an empty prompt)
        for key, code, unit, meaning in MEASURES:
            measurements.append(hd.sr.Measurement(
                name=getattr(codes.SCT, code), value=float(row[key]),
                unit=hd.sr.CodedConcept(unit, "UCUM", meaning)))
    number = [les.id for les in result.study.lesions].index(lesion_id) + 1
    return hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=uid, identifier=tracking_identifier(result.study.patient_id, lesion_id)[:64]),
        referenced_segment=hd.sr.ReferencedSegment(
            sop_class_uid=seg.SOPClassUID, sop_instance_uid=seg.SOPInstanceUID, segment_number=number,
            source_series=hd.sr.SourceSeriesForSegmentation(ct_series_uid)),
        time_point_context=hd.sr.TimePointContext(time_point=row["scan"][:64], time_point_order=order),
        finding_type=codes.SCT.Lesion,
        measurements=measurements or None,
        qualitative_evaluations=[hd.sr.QualitativeEvaluation(codes.DCM.CurrentResponse,
                                                             _response_code(row["response"]))])


def build_sr(result: TrackingResult, scan_id: str, rows: list[dict], seg, headers: list,
             uids: dict[str, str], order: int):
    """The Comprehensive 3D SR (TID 1500) of one scan, referencing its SEG and CT series."""
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    device = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=tracking_uid("device", "LinGuinE", __version__), name="LinGuinE",
            manufacturer_name=MANUFACTURER, model_name="LinGuinE"))
    ct_series = str(headers[0].SeriesInstanceUID)
    groups = [_group(result, r, seg, ct_series, uids[r["lesion"]], order) for r in rows if r["scan"] == scan_id]
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=device),
        procedure_reported=codes.LN.CTUnspecifiedBodyRegion,
        imaging_measurements=groups)
    return hd.sr.Comprehensive3DSR(
        evidence=[seg, *headers], content=report[0], series_instance_uid=generate_uid(),
        series_number=SR_SERIES_NUMBER, sop_instance_uid=generate_uid(), instance_number=1,
        manufacturer=MANUFACTURER, is_complete=True, is_final=False, is_verified=False,
        series_description=f"LinGuinE measurements {scan_id}"[:64])


def lesion_tracking_uids(result: TrackingResult) -> dict[str, str]:
    """Lesion id -> Tracking UID, from the patient, the lesion and the study it was prompted on."""
    out = {}
    for lesion in result.study.lesions:
        prompt = result.study.scan(lesion.scan_id)
        key = lesion.scan_id
        if prompt.dicom_files:
            key = str(read_headers(prompt.dicom_files[:1])[0].StudyInstanceUID)
        out[lesion.id] = tracking_uid(result.study.patient_id, lesion.id, key)
    return out


def write_dicom(result: TrackingResult, rows: list[dict], folder: Path) -> dict:
    """``folder/<scan>.seg.dcm`` and ``<scan>.sr.dcm`` per scan read from DICOM; what was written.

    Scans not read from DICOM, or whose CT instances don't lie on the tracked grid, get nothing
    (a SEG must reference the CT instances it was made on); ``skipped`` says why, per scan.
    """
    start = time.perf_counter()
    folder = Path(folder)
    uids = lesion_tracking_uids(result)
    names = unique_names([s.id for s in result.study.scans])  # ids never become paths unchecked
    info: dict = {"tracking_uids": uids, "written": [], "skipped": {}}
    not_dicom = [s.id for s in result.study.scans if not s.dicom_files]
    for scan_id in not_dicom:
        info["skipped"][scan_id] = "not read from DICOM (a SEG must reference its CT instances)"
    if not_dicom:  # all of them: the caller said so before tracking, so only a mix is a warning
        level = logging.INFO if len(not_dicom) == len(result.study.scans) else logging.WARNING
        log.log(level, "no DICOM SEG/SR for %s: not read from DICOM", ", ".join(not_dicom))
    for order, scan in enumerate(result.study.scans, start=1):
        if not scan.dicom_files:
            continue
        headers = read_headers(scan.dicom_files)
        try:
            seg = build_seg(result, scan.id, headers, uids)
        except InputError as exc:  # the CT doesn't lie on the tracked grid: keep every other output
            info["skipped"][scan.id] = str(exc)
            log.warning("no DICOM SEG/SR for scan '%s': %s", scan.id, exc)
            continue
        sr = build_sr(result, scan.id, rows, seg, headers, uids, order)
        folder.mkdir(parents=True, exist_ok=True)
        seg.save_as(folder / f"{names[scan.id]}.seg.dcm", enforce_file_format=True)
        sr.save_as(folder / f"{names[scan.id]}.sr.dcm", enforce_file_format=True)
        info["written"].append(scan.id)
    info["seconds"] = round(time.perf_counter() - start, 3)
    return info


def read_measurement_report(path: Path) -> list[dict]:
    """One dict per lesion group of a report written by ``build_sr`` (tests, checks, other tools)."""
    import highdicom as hd

    sr = hd.sr.srread(str(path))
    names = {code: key for key, code, _, _ in MEASURES}
    responses = {v: k for k, v in _RESPONSE_CODES.items()}
    from pydicom.sr.codedict import codes

    out = []
    for group in sr.content.get_volumetric_roi_measurement_groups():
        row = {"tracking_uid": str(group.tracking_uid), "tracking_identifier": group.tracking_identifier,
               "segment_number": int(group.referenced_segment.referenced_segment_numbers[0]),
               "seg_sop_instance_uid": str(group.referenced_segment.referenced_sop_instance_uid),
               "response": "NE"}
        for key, *_ in MEASURES:
            row[key] = None
        for m in group.get_measurements():
            key = next((k for c, k in names.items() if m.name == getattr(codes.SCT, c)), None)
            if key is not None:
                row[key] = float(m.value)  # FloatingPointValue when present (exact), else NumericValue
        for q in group.get_qualitative_evaluations():
            if q.name == codes.DCM.CurrentResponse:
                row["response"] = next((responses[n] for n in responses if q.value == getattr(codes.DCM, n)), "NE")
        out.append(row)
    return out
