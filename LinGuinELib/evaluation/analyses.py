"""Summaries and the paper's analyses over evaluation rows (dicts with the evaluation columns).

Rows on the source (prompt) scan are excluded everywhere: the tracking question is about the
other scans. All functions take plain lists of dicts (no pandas) and return plain dicts, so the
results go straight into JSON, CSV and the HTML report.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence

import numpy as np
from scipy import stats

log = logging.getLogger(__name__)

SUMMARY_METRICS = ("dice", "centre_distance_mm", "hd95_mm", "assd_mm")


def _finite(values: Iterable) -> np.ndarray:
    arr = np.array([to_float(v) for v in values], dtype=float)
    return arr[np.isfinite(arr)]


def to_float(value) -> float:
    """A float from a table cell; '' / None / unparsable -> NaN."""
    if value is None or value == "":
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _truthy(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


def target_rows(rows: Iterable[dict]) -> list[dict]:
    """Rows on target scans with truth (not the scan the lesion was prompted on)."""
    return [r for r in rows
            if not _truthy(r.get("is_source", False)) and r.get("outcome") != "no_truth"]


def median_iqr(values: Iterable) -> dict[str, float]:
    """Median, first and third quartile and count of the finite values (NaN when none)."""
    arr = _finite(values)
    if arr.size == 0:
        return {"median": math.nan, "q1": math.nan, "q3": math.nan, "n": 0}
    q1, med, q3 = np.percentile(arr, [25, 50, 75])
    return {"median": float(med), "q1": float(q1), "q3": float(q3), "n": int(arr.size)}


def _rate(flags: list[bool]) -> float:
    return float(np.mean(flags)) if flags else math.nan


def summary_columns(group_keys: Sequence[str] = ("dataset", "configuration")) -> tuple[str, ...]:
    """The columns of ``summarise``'s rows in table order (the summary file's header)."""
    per_metric = tuple(f"{m}_{s}" for m in SUMMARY_METRICS for s in ("median", "q1", "q3", "n"))
    return (*group_keys, "pairs", "lesions", *per_metric, "tracking_success_rate", "detection_rate",
            "disappeared_pairs", "disappearance_accuracy")


def summarise(
    rows: Iterable[dict], group_keys: Sequence[str] = ("dataset", "configuration")
) -> list[dict]:
    """One summary row per group: medians and IQR of each metric and the outcome rates.

    ``tracking_success_rate``: share of (lesion, target scan) pairs that are a hit or a correctly
    empty prediction on a disappeared lesion. ``detection_rate``: hits among present lesions.
    ``disappearance_accuracy``: correctly empty among disappeared lesions.
    """
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in target_rows(rows):
        groups[tuple(str(r.get(k, "")) for k in group_keys)].append(r)
    out = []
    for key in sorted(groups):
        rs = groups[key]
        row: dict = dict(zip(group_keys, key))
        row["pairs"] = len(rs)
        row["lesions"] = len({(r.get("patient_id"), r.get("lesion")) for r in rs})
        for metric in SUMMARY_METRICS:
            s = median_iqr(r.get(metric) for r in rs)
            row[f"{metric}_median"] = s["median"]
            row[f"{metric}_q1"] = s["q1"]
            row[f"{metric}_q3"] = s["q3"]
            row[f"{metric}_n"] = s["n"]
        present = [r for r in rs if _truthy(r.get("truth_present"))]
        absent = [r for r in rs if not _truthy(r.get("truth_present"))]
        row["tracking_success_rate"] = _rate([_truthy(r.get("success")) for r in rs])
        row["detection_rate"] = _rate([r.get("outcome") == "hit" for r in present])
        row["disappeared_pairs"] = len(absent)
        row["disappearance_accuracy"] = _rate([r.get("outcome") == "correct_absent" for r in absent])
        out.append(row)
    return out


def temporal_degradation(rows: Iterable[dict], metric: str = "dice") -> dict:
    """Does the metric drop with time from the source scan? Linear fit against |weeks|.

    Uses target rows with a present truth and a known time gap. Returns the fit (slope per week,
    intercept, r, p, stderr), the points used (for plotting) and the median per whole week.
    """
    pts = []
    for r in target_rows(rows):
        if not _truthy(r.get("truth_present")):
            continue
        w, y = to_float(r.get("weeks_from_source")), to_float(r.get(metric))
        if math.isfinite(w) and math.isfinite(y):
            pts.append((abs(w), y))
    result: dict = {"metric": metric, "n": len(pts), "points": pts}
    weeks = np.array([p[0] for p in pts])
    values = np.array([p[1] for p in pts])
    if len(pts) >= 3 and np.ptp(weeks) > 0:
        fit = stats.linregress(weeks, values)
        result.update(
            slope_per_week=float(fit.slope),
            intercept=float(fit.intercept),
            r=float(fit.rvalue),
            p_value=float(fit.pvalue),
            stderr=float(fit.stderr),
        )
    else:
        result.update(slope_per_week=math.nan, intercept=math.nan, r=math.nan, p_value=math.nan,
                      stderr=math.nan)
        result["note"] = "needs 3 or more pairs spread over at least two time gaps"
    per_week: dict[int, list[float]] = defaultdict(list)
    for w, y in pts:
        per_week[int(round(w))].append(y)
    result["per_week"] = [
        {"weeks": w, **median_iqr(per_week[w])} for w in sorted(per_week)
    ]
    return result


def _per_lesion(rows: Iterable[dict], metric: str) -> dict[tuple[str, str], float]:
    """Mean of the metric over each lesion's target scans with present truth."""
    acc: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in target_rows(rows):
        if _truthy(r.get("truth_present")):
            y = to_float(r.get(metric))
            if math.isfinite(y):
                acc[(str(r.get("patient_id")), str(r.get("lesion")))].append(y)
    return {k: float(np.mean(v)) for k, v in acc.items()}


def direction_agnosticism(rows_by_source: dict[str, list[dict]], metric: str = "dice") -> dict:
    """Same lesions tracked from different source scans (e.g. earliest, middle, latest).

    Each lesion's metric is averaged over its target scans per source choice; lesions present in
    every choice form the blocks of a Friedman test (needs 3+ choices and 2+ lesions).
    """
    names = list(rows_by_source)
    per = {name: _per_lesion(rows, metric) for name, rows in rows_by_source.items()}
    common = sorted(set.intersection(*(set(v) for v in per.values()))) if per else []
    table = [[per[name][k] for name in names] for k in common]
    result: dict = {
        "metric": metric,
        "sources": names,
        "lesions": [list(k) for k in common],
        "values": table,
        "summary": {name: median_iqr(per[name][k] for k in common) for name in names},
    }
    if len(names) >= 3 and len(common) >= 2:
        arr = np.array(table)
        if np.all(arr == arr[:, :1]):
            result.update(statistic=0.0, p_value=1.0, note="identical values in every block")
        else:
            res = stats.friedmanchisquare(*arr.T)
            result.update(statistic=float(res.statistic), p_value=float(res.pvalue))
    else:
        result.update(statistic=math.nan, p_value=math.nan,
                      note="Friedman needs 3 or more source choices and 2 or more common lesions")
    return result


def _pair_key(r: dict) -> tuple[str, str, str]:
    return (str(r.get("patient_id")), str(r.get("lesion")), str(r.get("scan")))


def compare_configurations(
    rows_a: list[dict], rows_b: list[dict], metric: str = "dice", names: tuple[str, str] = ("A", "B")
) -> dict:
    """Two configurations on the same (lesion, target scan) pairs: Wilcoxon and paired t-test.

    Pairs are matched on (patient, lesion, scan) and kept when both values are finite.
    """
    a = {_pair_key(r): to_float(r.get(metric)) for r in target_rows(rows_a)}
    b = {_pair_key(r): to_float(r.get(metric)) for r in target_rows(rows_b)}
    keys = sorted(k for k in set(a) & set(b) if math.isfinite(a[k]) and math.isfinite(b[k]))
    va = np.array([a[k] for k in keys])
    vb = np.array([b[k] for k in keys])
    result: dict = {
        "metric": metric,
        "names": list(names),
        "n": len(keys),
        "pairs": [list(k) for k in keys],
        "a": va.tolist(),
        "b": vb.tolist(),
        "summary": {names[0]: median_iqr(va), names[1]: median_iqr(vb)},
        "median_difference": float(np.median(vb - va)) if keys else math.nan,
    }
    diff = vb - va
    if len(keys) >= 2 and np.any(diff != 0):
        w = stats.wilcoxon(va, vb)
        t = stats.ttest_rel(va, vb)
        result.update(wilcoxon_statistic=float(w.statistic), wilcoxon_p=float(w.pvalue),
                      t_statistic=float(t.statistic), t_p=float(t.pvalue))
    else:
        result.update(wilcoxon_statistic=math.nan, wilcoxon_p=math.nan,
                      t_statistic=math.nan, t_p=math.nan,
                      note="needs 2 or more pairs that are not all equal")
    return result
