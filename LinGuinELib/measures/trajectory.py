"""The per-(lesion, scan) table that the CLI writes as CSV and Slicer shows as a table node."""

from __future__ import annotations

from ..geometry import lps_to_ras
from ..propagation.result import TrackingResult
from ..quality import Finding, Reason, assess_volumes, codes, details
from ..quality.baseline import baseline_doubt
from ..quality.growth import measurement_tolerance
from ..quality.shared_registration import shared_doubts
from ..study.timepoints import days_from_first
from .response import not_evaluable, response_uncertainty, trajectory_changes
from .shape import lesion_measures

TRAJECTORY_COLUMNS = (
    "lesion", "scan", "when", "days_from_first", "status", "volume_ml",
    "longest_axial_diameter_mm", "short_axis_mm", "centroid_r", "centroid_a", "centroid_s",
    "point_r", "point_a", "point_s", "change_from_baseline_pct", "change_from_nadir_pct", "response",
    "review", "review_reasons", "review_details",
)


def _xyz(prefix: str, point_lps) -> dict:
    ras = lps_to_ras(point_lps) if point_lps is not None else [None] * 3
    return {f"{prefix}_{axis}": (None if v is None else float(v)) for axis, v in zip("ras", ras)}


def trajectory_rows(result: TrackingResult) -> list[dict]:
    """One dict per (lesion, scan), lesions in study order, scans in time order."""
    scans = result.study.scans
    days = days_from_first(scans)
    rows: list[dict] = []
    shared = shared_doubts([(lesion.id, res.from_scan_id, scan.id, res.status, res.findings)
                            for lesion in result.study.lesions
                            for scan in scans if (res := result.get(lesion.id, scan.id)).status != "prompt"])
    for lesion in result.study.lesions:
        lesion_rows = []
        for scan, day in zip(scans, days):
            res = result.get(lesion.id, scan.id)
            ref = result.references[scan.id]
            # a click that gave nothing is not a measurement of 0 mL: it would read as the lesion gone
            measured = res.status != "outside_image" and not res.empty_prompt
            m = lesion_measures(res.mask, ref) if measured else {}
            row = {"lesion": lesion.id, "scan": scan.id, "when": scan.when, "days_from_first": day,
                   "status": res.status,
                   "volume_ml": m.get("volume_ml"),
                   "longest_axial_diameter_mm": m.get("longest_axial_diameter_mm"),
                   "short_axis_mm": m.get("short_axis_mm")}
            row.update(_xyz("centroid", m.get("centroid_lps")))
            row.update(_xyz("point", res.propagated_point_lps))
            lesion_rows.append(row)
        # an empty click (the study's other lesions tracked, this one carried from the click): no
        # row is vouched for, so none is a baseline (a follow-up not found there would read 0 mL,
        # then PD wherever anything was found)
        no_baseline = result.get(lesion.id, lesion.scan_id).empty_prompt
        changes = ([not_evaluable() for _ in lesion_rows] if no_baseline
                   else trajectory_changes([r["volume_ml"] for r in lesion_rows]))
        for row, change in zip(lesion_rows, changes):
            row.update(change)
        _add_review(result, lesion, lesion_rows, days, shared, no_baseline)
        rows.extend(lesion_rows)
    return rows


def _add_review(result: TrackingResult, lesion, rows: list[dict], days: list, shared: dict,
                no_baseline: bool) -> None:
    """``review`` (bool), ``review_reasons`` (codes) and ``review_details`` (text) per row:
    the engine's per-scan findings, those of the volume trajectory, a registration the other
    lesions of the scan doubt (``shared``: from ``shared_doubts``), a baseline that does not look
    like a lesion (``baseline_doubt``) or is missing (``no_baseline``: decided here, so a table
    rebuilt from edited segments without the engine's findings says it too), and a response
    category decided within the measurement's uncertainty."""
    scans = result.study.scans
    found = [r["status"] in ("prompt", "found") and bool(r["volume_ml"]) for r in rows]
    voxel = [max(result.references[s.id].GetSpacing()) for s in scans]
    prompt = [s.id for s in scans].index(lesion.scan_id)
    volumes = [r["volume_ml"] for r in rows]
    temporal = assess_volumes(volumes, days, found, prompt, voxel)
    tolerance = [measurement_tolerance(v or 0.0, s) for v, s in zip(volumes, voxel)]
    for extra, note in zip(temporal, response_uncertainty(volumes, tolerance)):
        if note and not no_baseline:
            extra.append(Finding(Reason.RESPONSE_UNCERTAIN, note))
    drawn = lesion.prompt_kind == "mask"
    if no_baseline:
        baseline = Finding(Reason.NO_BASELINE)
    else:
        baseline = None if drawn else baseline_doubt(result.get(lesion.id, lesion.scan_id).findings)
    for row, scan, extra in zip(rows, scans, temporal):
        on_prompt = scan.id == lesion.scan_id
        doubts = [shared.get((lesion.id, scan.id)), baseline if not on_prompt else None,
                  Finding(Reason.EMPTY_PROMPT) if no_baseline and on_prompt else None]
        # each once (the engine's own empty_prompt and the one decided here are the same finding)
        findings = list(dict.fromkeys(list(result.get(lesion.id, scan.id).findings) + extra + [d for d in doubts if d]))
        row.update(review=bool(findings), review_reasons=codes(findings), review_details=details(findings))
