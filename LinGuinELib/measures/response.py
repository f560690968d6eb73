"""Volumetric response per scan, from a lesion's volume over time.

Thresholds are RECIST 1.1's diameter rules (Eisenhauer et al., Eur J Cancer 2009;45:228-247)
converted to volume for a sphere (V ~ d^3), the usual volumetric equivalent:
- PR (partial response): volume down >= 65.7% from baseline (diameter -30% -> 0.7^3 = 0.343);
- PD (progression): volume up >= 72.8% from the nadir (diameter +20% -> 1.2^3 = 1.728), or a lesion
  seen again after it had vanished;
- CR (complete response): the lesion is no longer seen (volume 0) after a non-zero baseline;
- SD (stable disease): anything else; NE (not evaluable): no measurement (e.g. outside the scan).
RECIST's extra 5 mm absolute-growth condition for PD has no volumetric counterpart and is not
applied. Baseline is the first scan in time with a measurement; nadir is the smallest volume
before the scan in question (baseline included).
"""

from __future__ import annotations

PR_CHANGE_PCT = -65.7
PD_CHANGE_PCT = 72.8


def _pct(value: float, ref: float) -> float | None:
    return 100.0 * (value - ref) / ref if ref > 0 else None


def trajectory_changes(volumes: list[float | None]) -> list[dict]:
    """Per scan (time order): change_from_baseline_pct, change_from_nadir_pct, response.

    ``None`` means not measured (not evaluable); 0.0 means measured and absent.
    """
    out: list[dict] = []
    baseline: float | None = None
    nadir: float | None = None
    for volume in volumes:
        row: dict = {"change_from_baseline_pct": None, "change_from_nadir_pct": None, "response": "NE"}
        if volume is None:
            out.append(row)
            continue
        if baseline is None:
            baseline = nadir = volume
            row["response"] = "baseline"
            out.append(row)
            continue
        row["change_from_baseline_pct"] = _pct(volume, baseline)
        row["change_from_nadir_pct"] = _pct(volume, nadir)
        if volume == 0:
            row["response"] = "CR" if baseline > 0 else "SD"
        elif nadir == 0:
            row["response"] = "PD"  # back after it had vanished
        elif row["change_from_nadir_pct"] >= PD_CHANGE_PCT:
            row["response"] = "PD"
        elif row["change_from_baseline_pct"] is not None and row["change_from_baseline_pct"] <= PR_CHANGE_PCT:
            row["response"] = "PR"
        else:
            row["response"] = "SD"
        nadir = min(nadir, volume)
        out.append(row)
    return out
