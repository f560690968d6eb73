"""Summaries and paper analyses on hand-made evaluation rows with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from LinGuinELib.evaluation.analyses import (
    compare_configurations,
    direction_agnosticism,
    median_iqr,
    summarise,
    temporal_degradation,
)
from LinGuinELib.evaluation.plots import (
    plot_comparison,
    plot_direction,
    plot_metric_boxes,
    plot_temporal,
)


def _row(pid="P", lesion="L1", scan="T1", dice=1.0, weeks=6.0, outcome="hit", **kw):
    row = {"dataset": "d", "configuration": "c", "patient_id": pid, "lesion": lesion,
           "scan": scan, "is_source": False, "weeks_from_source": weeks, "dice": dice,
           "centre_distance_mm": 1.0, "hd95_mm": 2.0, "assd_mm": 0.5, "outcome": outcome,
           "truth_present": outcome not in ("correct_absent", "false_positive", "no_truth"),
           "success": outcome in ("hit", "correct_absent")}
    row.update(kw)
    return row


def test_summary_medians_iqr_and_rates():
    rows = [_row(scan=f"T{k}", dice=d) for k, d in enumerate([0.2, 0.4, 0.6, 0.8, 1.0])]
    rows.append(_row(scan="T9", dice=0.0, outcome="miss", centre_distance_mm=math.nan))
    rows.append(_row(scan="T8", dice=math.nan, outcome="correct_absent",
                     centre_distance_mm=math.nan))
    rows.append(_row(scan="T0s", dice=1.0, is_source=True))  # prompt scan: excluded
    rows.append(_row(scan="Tn", dice=math.nan, outcome="no_truth"))  # no truth: excluded
    (s,) = summarise(rows)
    assert s["pairs"] == 7 and s["lesions"] == 1
    # Dice over present lesions: 0, .2, .4, .6, .8, 1 -> median .5, quartiles .25 / .75
    assert s["dice_median"] == pytest.approx(0.5)
    assert (s["dice_q1"], s["dice_q3"]) == (pytest.approx(0.25), pytest.approx(0.75))
    assert s["centre_distance_mm_n"] == 5  # the miss has no centre distance
    assert s["tracking_success_rate"] == pytest.approx(6 / 7)
    assert s["detection_rate"] == pytest.approx(5 / 6)
    assert s["disappearance_accuracy"] == 1.0


def test_summary_groups_by_dataset_and_configuration():
    rows = [_row(configuration="a", dice=0.5), _row(configuration="b", dice=0.7),
            _row(configuration="b", dice=0.9, scan="T2")]
    out = summarise(rows)
    assert [(s["configuration"], s["pairs"]) for s in out] == [("a", 1), ("b", 2)]
    assert out[1]["dice_median"] == pytest.approx(0.8)
    assert median_iqr([])["n"] == 0


def test_temporal_degradation_recovers_known_slope():
    rows = []
    for w in (-12, -6, 6, 12, 24, 36):  # before and after the source: |weeks| is used
        rows.append(_row(scan=f"T{w}", weeks=float(w), dice=0.9 - 0.01 * abs(w)))
    rows.append(_row(scan="Tx", weeks=math.nan, dice=0.1))  # unknown time: not used
    t = temporal_degradation(rows)
    assert t["n"] == 6
    assert t["slope_per_week"] == pytest.approx(-0.01)
    assert t["intercept"] == pytest.approx(0.9)
    assert t["r"] == pytest.approx(-1.0)
    assert [p["weeks"] for p in t["per_week"]] == [6, 12, 24, 36]
    assert t["per_week"][0]["n"] == 2


def test_temporal_degradation_too_few_points():
    t = temporal_degradation([_row(dice=0.5)])
    assert math.isnan(t["slope_per_week"]) and "note" in t


def test_direction_agnosticism_matches_scipy_friedman():
    rng = np.random.default_rng(0)
    sets = {s: [] for s in ("earliest", "middle", "latest")}
    truth = {}
    for k in range(8):
        for j, s in enumerate(sets):
            vals = rng.uniform(0.4, 0.9, size=2) - 0.1 * j * (k % 2)
            truth[(k, s)] = vals.mean()
            for t, v in enumerate(vals):
                sets[s].append(_row(pid=f"P{k}", scan=f"T{t}{s}", dice=float(v)))
    sets["latest"].append(_row(pid="only-latest", dice=0.1))  # not in every set: left out
    d = direction_agnosticism(sets)
    assert len(d["lesions"]) == 8
    expected = stats.friedmanchisquare(*[[truth[(k, s)] for k in range(8)] for s in sets])
    assert d["statistic"] == pytest.approx(expected.statistic)
    assert d["p_value"] == pytest.approx(expected.pvalue)


def test_direction_agnosticism_needs_three_sources():
    d = direction_agnosticism({"a": [_row()], "b": [_row()]})
    assert math.isnan(d["p_value"]) and "note" in d


def test_compare_configurations_pairs_by_lesion_and_scan():
    rng = np.random.default_rng(1)
    a_vals = rng.uniform(0.5, 0.9, size=10)
    b_vals = a_vals + rng.normal(0.05, 0.03, size=10)
    rows_a = [_row(pid=f"P{k}", dice=float(v)) for k, v in enumerate(a_vals)]
    rows_b = [_row(pid=f"P{k}", dice=float(v)) for k, v in enumerate(b_vals)][::-1]
    rows_b.append(_row(pid="extra", dice=0.1))  # unmatched
    rows_a.append(_row(pid="nan", dice=math.nan))
    rows_b.append(_row(pid="nan", dice=0.3))  # NaN on one side: dropped
    c = compare_configurations(rows_a, rows_b, names=("a", "b"))
    assert c["n"] == 10
    w = stats.wilcoxon(a_vals, b_vals)
    t = stats.ttest_rel(a_vals, b_vals)
    assert c["wilcoxon_p"] == pytest.approx(w.pvalue)
    assert c["t_statistic"] == pytest.approx(t.statistic)
    assert c["t_p"] == pytest.approx(t.pvalue)
    assert c["median_difference"] == pytest.approx(np.median(b_vals - a_vals))


def test_compare_identical_configurations_has_no_test():
    rows = [_row(pid=f"P{k}", dice=0.5) for k in range(4)]
    c = compare_configurations(rows, rows)
    assert c["n"] == 4 and math.isnan(c["wilcoxon_p"]) and "note" in c


def test_plots_are_png():
    rows = [_row(scan=f"T{w}", weeks=float(w), dice=0.9 - 0.01 * w) for w in (6, 12, 18)]
    sets = {s: rows for s in ("earliest", "middle", "latest")}
    for png in (plot_metric_boxes(rows), plot_temporal(temporal_degradation(rows)),
                plot_direction(direction_agnosticism(sets)),
                plot_comparison(compare_configurations(rows, rows))):
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2000
