"""What a tracking run leaves in the scene, and how to read it back after edits or a reload.

The trajectory table node is the anchor: node references (kept valid by Slicer when a scene is
loaded, unlike raw IDs) point at each scan's volume or sequence and segmentation node, in time
order, plus the chart; a JSON attribute holds the rest (scan ids and dates, lesion names,
colours, tracking ids, config). From that, ``rebuild_result`` re-creates a ``TrackingResult``
whose masks are the segments as they are now, so re-measure and export see the user's edits.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, fields
from typing import Any

from LinGuinELib.config import TrackingConfig
from LinGuinELib.errors import InputError
from LinGuinELib.propagation.result import LesionScanResult, TrackingResult
from LinGuinELib.study.model import Lesion, Scan, Study

from .segmentations import edited_mask, find_segment, segment_point_lps, segment_status
from .volumes import volume_geometry

RUN_ATTRIBUTE = "LinGuinE.Run"
ROLE_ATTRIBUTE = "LinGuinE.Role"
VOLUME_ROLE = "linguineVolume"  # volume node, or the sequence node for sequence items
SEGMENTATION_ROLE = "linguineSegmentation"
CHART_ROLE = "linguineChart"
PLOT_TABLE_ROLE = "linguinePlotTable"


@dataclass
class RunScan:
    scan_id: str
    volume: Any  # the volume node (a sequence's data node for sequence items)
    segmentation: Any


def write_record(table: Any, result: TrackingResult, volumes: list[Any], segmentations: list[Any],
                 lesions: list[dict], chart: Any, plot_table: Any) -> None:
    """Store the run on the table node. ``volumes`` are ``StudyVolume`` in scan order."""
    table.SetAttribute(ROLE_ATTRIBUTE, "trajectory")
    for role in (VOLUME_ROLE, SEGMENTATION_ROLE):
        table.RemoveNodeReferenceIDs(role)
    for volume, segmentation in zip(volumes, segmentations):
        table.AddNodeReferenceID(VOLUME_ROLE, (volume.sequence or volume.node).GetID())
        table.AddNodeReferenceID(SEGMENTATION_ROLE, segmentation.GetID())
    table.SetNodeReferenceID(CHART_ROLE, chart.GetID())
    table.SetNodeReferenceID(PLOT_TABLE_ROLE, plot_table.GetID())
    record = {
        "patient_id": result.study.patient_id,
        "config": result.config.to_dict(),
        "backends": result.backends,
        "scans": [
            {"id": s.id, "date": s.date.isoformat() if s.date else None, "timepoint": s.timepoint,
             "item": v.item}
            for s, v in zip(result.study.scans, volumes)
        ],
        "lesions": lesions,
    }
    table.SetAttribute(RUN_ATTRIBUTE, json.dumps(record))


def read_record(table: Any) -> dict:
    text = table.GetAttribute(RUN_ATTRIBUTE) if table is not None else None
    if not text:
        name = table.GetName() if table is not None else "None"
        raise InputError(f"table '{name}' is not a LinGuinE trajectory table")
    return json.loads(text)


def run_scans(table: Any) -> list[RunScan]:
    """Each scan's volume and segmentation node, in time order."""
    record = read_record(table)
    out = []
    for k, scan in enumerate(record["scans"]):
        holder = table.GetNthNodeReference(VOLUME_ROLE, k)
        segmentation = table.GetNthNodeReference(SEGMENTATION_ROLE, k)
        if holder is None or segmentation is None:
            raise InputError(f"scan '{scan['id']}': its volume or segmentation node was deleted")
        volume = holder.GetNthDataNode(scan["item"]) if scan.get("item") is not None else holder
        out.append(RunScan(scan["id"], volume, segmentation))
    return out


def rebuild_result(scene: Any, table: Any) -> TrackingResult:
    """A ``TrackingResult`` whose masks are the segments' current content."""
    record = read_record(table)
    scans_info = run_scans(table)
    scans = [
        Scan(id=s["id"], date=dt.date.fromisoformat(s["date"]) if s["date"] else None,
             timepoint=s["timepoint"])
        for s in record["scans"]
    ]
    lesions = [Lesion(id=les["id"], scan_id=les["scan"]) for les in record["lesions"]]
    study = Study(record["patient_id"], scans, lesions)
    references = {info.scan_id: volume_geometry(info.volume) for info in scans_info}
    results: dict[tuple[str, str], LesionScanResult] = {}
    for les in record["lesions"]:
        for info in scans_info:
            segment_id = find_segment(info.segmentation, les["tracking_id"])
            mask = edited_mask(scene, info.segmentation, segment_id, info.volume)
            stored = segment_status(info.segmentation, segment_id)
            if info.scan_id == les["scan"]:
                status = "prompt"
            elif not mask.empty:
                status = "found"
            elif stored == "outside_image":
                status = stored
            else:
                status = "not_found"
            results[(les["id"], info.scan_id)] = LesionScanResult(
                les["id"], info.scan_id, status, mask,
                propagated_point_lps=segment_point_lps(info.segmentation, segment_id),
            )
    known = {f.name for f in fields(TrackingConfig)}  # a newer/older record may differ in fields
    config = TrackingConfig(**{k: v for k, v in record["config"].items() if k in known})
    return TrackingResult(study, config, results, references, {}, record.get("backends", {}))


def row_target(table: Any, row: int) -> tuple[Any, Any, str | None]:
    """(volume node, segmentation node, segment id) that a table row is about."""
    record = read_record(table)
    t = table.GetTable()
    if not 0 <= row < t.GetNumberOfRows():
        raise InputError(f"row {row} is not in table '{table.GetName()}'")
    lesion_id = t.GetValueByName(row, "lesion").ToString()
    scan_id = t.GetValueByName(row, "scan").ToString()
    info = next(s for s in run_scans(table) if s.scan_id == scan_id)
    lesion = next(les for les in record["lesions"] if les["id"] == lesion_id)
    return info.volume, info.segmentation, find_segment(info.segmentation, lesion["tracking_id"])


def row_focus_ras(table: Any, row: int) -> tuple[float, float, float] | None:
    """Where to centre the views for a row: the mask centroid, else the mapped point (RAS)."""
    t = table.GetTable()
    for prefix in ("centroid", "point"):
        try:
            values = [t.GetValueByName(row, f"{prefix}_{axis}").ToDouble() for axis in "ras"]
        except (TypeError, AttributeError):
            continue
        if all(v == v for v in values):  # no NaN
            return tuple(values)
    return None
