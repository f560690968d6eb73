"""How well the flag picks the results that need a look, against truth (benchmarks, reports).

A result is *bad* when its segmentation is far from the truth: Dice below 0.5 on a lesion that
is there, a volume off by more than a factor 2 either way, a lesion reported where there is none,
or one missed. The flag should catch the bad ones (recall) without crying wolf on the good ones.
"""

from __future__ import annotations

import math

BAD_DICE = 0.5
BAD_VOLUME_FACTOR = 2.0


def _num(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def is_bad(truth_ml, pred_ml, dice) -> bool | None:
    """Bad result by the definition above; None when there is no truth to judge by."""
    t, p, d = _num(truth_ml), _num(pred_ml), _num(dice)
    if math.isnan(t):
        return None
    if t <= 0:
        return p > 0
    if p <= 0:
        return True
    return (not math.isnan(d) and d < BAD_DICE) or max(p / t, t / p) > BAD_VOLUME_FACTOR


def flag_scores(pairs: list[tuple[bool, bool]]) -> dict[str, float]:
    """From (bad, flagged) pairs: counts, recall (bad flagged), precision (flagged that are bad),
    and the share of good results flagged."""
    bad = sum(b for b, _ in pairs)
    good = len(pairs) - bad
    tp = sum(b and f for b, f in pairs)
    fp = sum((not b) and f for b, f in pairs)
    return {"n": len(pairs), "bad": bad, "flagged": tp + fp, "bad_flagged": tp, "good_flagged": fp,
            "recall": tp / bad if bad else math.nan,
            "precision": tp / (tp + fp) if tp + fp else math.nan,
            "good_flagged_rate": fp / good if good else math.nan}
