"""The benchmark's per-kind numbers: response agreement, its causes and the flag scores."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from bench_kinds import _group_stats, _responses, disagreement_cause, pooled_table, wilson  # noqa: E402

TRUTH = [7.0, 9.8, 13.3, 4.9, 0.0]  # the benchmark's schedule: x1.4, x1.9, x0.7, gone


def test_each_disagreement_gets_its_cause():
    # the lesion has gone and a fragment is reported; present but reported not_found
    assert disagreement_cause(TRUTH, [7.0, 9.8, 13.3, 4.9, 0.8], 4) == "vanished_kept"
    assert disagreement_cause(TRUTH, [7.0, 9.8, 0.0, 4.9, 0.0], 2).startswith("lost")
    # a baseline segmented x2.3 too big: the x0.7 scan reads PR where the truth is SD
    pred = [16.0, 9.8, 13.3, 4.9, 0.0]
    assert _responses(pred)[3] == "PR" and disagreement_cause(TRUTH, pred, 3) == "baseline"
    # this scan's segment leaked (x3): PD where the truth is SD
    pred = [7.0, 9.8, 13.3, 14.7, 0.0]
    assert _responses(pred)[3] == "PD" and disagreement_cause(TRUTH, pred, 3) == "this_scan"
    # +90% measured as +60%: PD missed, and the truth itself is near the PD threshold
    pred = [7.0, 9.8, 11.2, 4.9, 0.0]
    assert _responses(pred)[2] == "SD" and disagreement_cause(TRUTH, pred, 2) == "this_scan, near_threshold"


def _rec(truth, pred, true_resp, resp, reasons="", dice=0.9):
    return {"truth_ml": truth, "pred_ml": pred, "dice": dice, "centre_mm": 1.0, "true_response": true_resp,
            "reported_response": resp, "review": bool(reasons), "reasons": reasons, "status": "found"}


def test_agreement_where_vouched_and_flag_scores_leave_out_response_uncertain():
    recs = [_rec(7.0, 7.0, "baseline", "baseline"),
            _rec(13.3, 11.2, "PD", "SD", "response_uncertain"),  # disagrees, but says it can't vouch
            _rec(4.9, 4.8, "SD", "SD"),
            _rec(9.8, 30.0, "SD", "PD", "growth_too_fast", dice=0.3),  # bad, flagged
            _rec(9.8, 9.0, "SD", "SD", "response_uncertain")]  # good; not a segmentation flag
    s = _group_stats(recs)
    assert (s["response_agree"], s["n_response"]) == (2, 4)
    assert (s["vouched_agree"], s["n_vouched"]) == (1, 2)
    assert s["bad"] == 1 and s["recall"] == 1.0 and s["good_flagged"] == 0.0
    assert s["disagree_unreviewed"] == 0


def test_the_two_truths_are_compared():
    from bench_kinds import truth_disagreements

    recs = [dict(_rec(84.4, 92.7, "PD", "PD"), study="mass", lesion="L1", scan="T2", expected_response="SD"),
            dict(_rec(64.9, 67.0, "SD", "SD"), study="mass", lesion="L1", scan="T1", expected_response="SD"),
            dict(_rec(48.4, 50.4, "baseline", "baseline"), study="mass", lesion="L1", scan="T0",
                 expected_response="baseline")]
    assert truth_disagreements(recs) == "1 of 2 categories differ between the two truths (mass L1 T2: PD / SD)"


def test_pooled_rates_come_with_wilson_intervals_per_seed_and_pooled():
    lo, hi = wilson(1, 3)
    assert 0.05 < lo < 0.07 and 0.78 < hi < 0.80  # 1/3: 6-79%, not a rate yet
    lo, hi = wilson(27, 30)
    assert 0.73 < lo < 0.75 and hi < 0.97
    assert wilson(0, 10)[0] == 0.0 and wilson(10, 10)[1] == 1.0
    recs = []
    for seed in (0, 1):
        recs += [{**_rec(1.0, 0.3, "SD", "PR", "weak_edge", dice=0.3), "seed": seed, "is_source": False},
                 {**_rec(1.0, 1.0, "SD", "SD"), "seed": seed, "is_source": False},
                 {**_rec(0.0, 0.0, "CR", "CR"), "seed": seed, "is_source": False, "status": "not_found"}]
    rows = pooled_table(recs).splitlines()
    assert rows[2].startswith("| seed 0 | 1/1 (100%") and rows[-1].startswith("| pooled | 2/2 (100%")
    cells = rows[-1].split("|")
    assert cells[3].startswith(" 0/4 (0%") and cells[4].startswith(" 2/2 (100%") and cells[5].startswith(" 4/6")
