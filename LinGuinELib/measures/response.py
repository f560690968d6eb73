"""Volumetric response per scan, from a lesion's volume over time.

Thresholds are RECIST 1.1's diameter rules (Eisenhauer et al., Eur J Cancer 2009;45:228-247)
converted to volume for a sphere (V ~ d^3), the usual volumetric equivalent:
- PR (partial response): volume down >= 65.7% from baseline (diameter -30% -> 0.7^3 = 0.343);
- PD (progression): volume up >= 72.8% from the nadir (diameter +20% -> 1.2^3 = 1.728) *and* the
  diameter of the sphere of that volume up >= 5 mm from the nadir's (RECIST's absolute condition:
  a small nodule's +20% is within what its measurement varies), or a lesion seen again after it
  had vanished;
- CR (complete response): the lesion is no longer seen (volume 0) after a non-zero baseline;
- SD (stable disease): anything else; NE (not evaluable): no measurement (e.g. outside the scan).
RECIST applies its 5 mm to the sum of the target lesions' diameters; here each lesion is its own
sum. Baseline is the first scan in time with a measurement; nadir is the smallest volume
before the scan in question (baseline included).
"""

from __future__ import annotations

import math

from ..quality.growth import equivalent_radius_mm

PR_CHANGE_PCT = -65.7
PD_CHANGE_PCT = 72.8
PD_MIN_GAIN_MM = 5.0  # RECIST 1.1: and at least 5 mm more (on the equivalent sphere's diameter)


def progressed(volume: float, nadir: float) -> bool:
    """PD against the nadir by both of RECIST's conditions (volumes in mL, both > 0)."""
    gain = 2.0 * (equivalent_radius_mm(volume) - equivalent_radius_mm(nadir))
    return volume / nadir >= 1 + PD_CHANGE_PCT / 100 and gain >= PD_MIN_GAIN_MM


def _pct(value: float, ref: float) -> float | None:
    return 100.0 * (value - ref) / ref if ref > 0 else None


def not_evaluable() -> dict:
    """The response columns of a scan with nothing to read a change from or against."""
    return {"change_from_baseline_pct": None, "change_from_nadir_pct": None, "response": "NE"}


def trajectory_changes(volumes: list[float | None]) -> list[dict]:
    """Per scan (time order): change_from_baseline_pct, change_from_nadir_pct, response.

    ``None`` means not measured (not evaluable); 0.0 means measured and absent.
    """
    out: list[dict] = []
    baseline: float | None = None
    nadir: float | None = None
    for volume in volumes:
        row = not_evaluable()
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
        elif progressed(volume, nadir):
            row["response"] = "PD"
        elif row["change_from_baseline_pct"] is not None and row["change_from_baseline_pct"] <= PR_CHANGE_PCT:
            row["response"] = "PR"
        else:
            row["response"] = "SD"
        nadir = min(nadir, volume)
        out.append(row)
    return out


def _near(ratio: float, threshold: float, tolerance: float) -> bool:
    """Whether a measured ratio lies within a measurement tolerance (a factor) of a threshold."""
    return threshold / tolerance < ratio < threshold * tolerance


def response_uncertainty(volumes: list[float | None], tolerances: list[float]) -> list[str | None]:
    """Per scan (time order): why its response category cannot be vouched for, else None.

    ``tolerances``: per scan, the factor by which its volume may differ from the truth on its own
    (``quality.growth.measurement_tolerance``); a ratio between two scans is known to within the
    larger of the two. A category is uncertain when a ratio within that factor of the measured one
    decides otherwise: PD (both of its conditions) against the nadir, else the change from the
    baseline against PR. A vanished lesion (0) and a lesion seen again after it vanished are decided by
    whether it is there, not by a ratio (the candidate check and the flag speak for those).
    """
    out: list[str | None] = []
    base = nadir = None  # (index, volume)
    pr = 1 + PR_CHANGE_PCT / 100
    for k, volume in enumerate(volumes):
        note = None
        if volume is not None and base is not None and volume > 0 and nadir[1] > 0:
            tol_n = max(tolerances[k], tolerances[nadir[0]])
            tol_b = max(tolerances[k], tolerances[base[0]])
            r_n, r_b = volume / nadir[1], volume / base[1]
            half = math.sqrt(tol_n)  # the ratio's factor, split between the two volumes
            if progressed(volume * half, nadir[1] / half) != progressed(volume / half, nadir[1] * half):
                gain = 2.0 * (equivalent_radius_mm(volume) - equivalent_radius_mm(nadir[1]))
                note = (f"{100 * (r_n - 1):+.0f}% and {gain:+.1f} mm from the nadir, PD from {PD_CHANGE_PCT:+.0f}% "
                        f"and +{PD_MIN_GAIN_MM:.0f} mm, volumes known to x{tol_n:.2f}")
            elif not progressed(volume, nadir[1]) and _near(r_b, pr, tol_b):
                note = (f"{100 * (r_b - 1):+.0f}% from baseline, PR from {PR_CHANGE_PCT:+.0f}%, "
                        f"volumes known to x{tol_b:.2f}")
        out.append(note)
        if volume is not None:
            if base is None:
                base = nadir = (k, volume)
            elif volume < nadir[1]:
                nadir = (k, volume)
    return out
