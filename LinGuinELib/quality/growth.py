"""Is a lesion's volume trajectory physically plausible? Bounds from tumour growth kinetics.

Lung cancers double their volume in 30-400+ days (small-cell and the fastest non-small-cell
cancers sit at the 20-40 day end: e.g. Mehta et al., Ann Oncol 2002; Henschke et al., Clin Lung
Cancer 2012), so a measured change faster than a 30-day doubling time between two scans is more
likely a segmentation error than biology. Responding tumours shrink, at most, with a halving time
of about 10 days (early response of small-cell cancers and lymphomas); vanishing outright is
allowed (complete response). Volumetry itself varies by ~25-30% between repeat scans of the
same nodule, more for small nodules on coarse voxels (a partial-volume rim of half a voxel is
3 * half-voxel / radius of the volume), so each bound is widened by that measurement tolerance.
Undated scans (labels without time units) get a fixed bound per scan-to-scan step.
"""

from __future__ import annotations

import math

from ..geometry import equivalent_radius_mm
from .reasons import Finding, Reason

FASTEST_DOUBLING_DAYS = 30.0
FASTEST_HALVING_DAYS = 10.0
UNDATED_STEP_GROWTH = 4.0  # max volume ratio between neighbouring undated scans (~ 2 doublings)
UNDATED_STEP_SHRINK = 10.0
MIN_MEASUREMENT_ERROR = 0.3  # relative; repeat-scan volumetry of solid nodules


def measurement_tolerance(volume_ml: float, voxel_mm: float) -> float:
    """Factor by which a measured volume may differ from the truth on its own (>= 1.3)."""
    r = equivalent_radius_mm(volume_ml)
    rim = 3.0 * 0.5 * voxel_mm / r if r > 0 else math.inf
    return 1.0 + max(MIN_MEASUREMENT_ERROR, min(rim, 3.0))


def max_growth(days: float | None, steps: int = 1) -> float:
    """Largest plausible volume ratio (later / earlier) over ``days`` (None: undated steps)."""
    if days is None:
        return UNDATED_STEP_GROWTH ** max(steps, 1)
    return 2.0 ** (abs(days) / FASTEST_DOUBLING_DAYS)


def max_shrinkage(days: float | None, steps: int = 1) -> float:
    """Largest plausible volume ratio (earlier / later) over ``days``, for a lesion still seen."""
    if days is None:
        return UNDATED_STEP_SHRINK ** max(steps, 1)
    return 2.0 ** (abs(days) / FASTEST_HALVING_DAYS)


def _span(days: list[float | None], i: int, j: int) -> float | None:
    return None if days[i] is None or days[j] is None else float(days[j]) - float(days[i])


def _check_pair(volumes, days, voxels, i: int, j: int) -> Finding | None:
    """A finding when scan j's volume is implausible against scan i's (i earlier than j)."""
    vi, vj = volumes[i], volumes[j]
    span = _span(days, i, j)
    steps = j - i
    small = i if vi < vj else j
    tol = measurement_tolerance(volumes[small], voxels[small])
    when = f"{span:.0f} d" if span is not None else f"{steps} scan(s)"
    if vj > vi:
        bound = max_growth(span, steps) * tol
        if vj / vi > bound:
            return Finding(Reason.GROWTH_TOO_FAST, f"x{vj / vi:.1f} in {when}, plausible up to x{bound:.1f}")
    else:
        bound = max_shrinkage(span, steps) * tol
        if vi / vj > bound:
            return Finding(Reason.SHRINKAGE_TOO_FAST, f"/{vi / vj:.1f} in {when}, plausible down to /{bound:.1f}")
    return None


def assess_volumes(volumes: list[float | None], days: list[float | None], found: list[bool],
                   prompt_index: int, voxel_mm: list[float]) -> list[list[Finding]]:
    """Findings per scan (time order) from the volume trajectory of one lesion.

    ``volumes``: mL, None when not measured; ``found``: a non-empty segment on that scan;
    ``voxel_mm``: each scan's largest voxel size. A change between neighbouring measured scans
    beyond the bounds flags the scan that is out of line with both its neighbours (a spike),
    else the one that is not the prompt (the user's own click), else the one further from the
    prompt's volume. Every scan is also
    checked against the prompt scan, and a scan with no lesion between two that have one.
    """
    n = len(volumes)
    out: list[list[Finding]] = [[] for _ in range(n)]
    seen = [k for k in range(n) if found[k] and volumes[k] is not None and volumes[k] > 0]
    pair = {}
    for a, b in zip(seen, seen[1:]):
        finding = _check_pair(volumes, days, voxel_mm, a, b)
        if finding is not None:
            pair[(a, b)] = finding
    bad_left = {b: f for (a, b), f in pair.items()}
    bad_right = {a: f for (a, b), f in pair.items()}
    vp = volumes[prompt_index] if prompt_index in seen else None
    for (a, b), finding in pair.items():
        spikes = [k for k in (a, b) if k in bad_left and k in bad_right]
        culprits = spikes or [k for k in (a, b) if k != prompt_index]
        if len(culprits) == 2 and vp:  # neither stands out: the one further from the prompt's volume
            culprits = [max(culprits, key=lambda k: abs(math.log(volumes[k] / vp)))]
        for k in culprits:
            other = b if k == a else a
            out[k].append(Finding(finding.reason, f"{finding.detail}, against scan {other + 1}"))
    if vp:
        for k in seen:
            if k == prompt_index or volumes[k] <= vp:
                continue
            span = _span(days, prompt_index, k)
            steps = abs(k - prompt_index)
            bound = (max_growth(span, steps) if k > prompt_index else max_shrinkage(span, steps))
            bound *= measurement_tolerance(vp, voxel_mm[prompt_index])
            if volumes[k] / vp > bound:
                out[k].append(Finding(Reason.LARGER_THAN_PROMPT, f"x{volumes[k] / vp:.1f} the prompt's volume, "
                                                                 f"plausible up to x{bound:.1f}"))
    for k in range(n):
        if volumes[k] is not None and not found[k] and any(s < k for s in seen) and any(s > k for s in seen):
            out[k].append(Finding(Reason.MISSING_BETWEEN))
    return out
