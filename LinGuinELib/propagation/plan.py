"""Which scan each lesion is propagated from, for every other scan of the study.

One plan drives both modes, so there is a single propagation loop:
- direct: source -> every other scan (depth 1 for all);
- chain: source -> nearest scan in time -> onward, in both directions (depth = steps from source).
The engine runs steps in order of depth, so a chain step always finds its predecessor done.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    lesion_id: str
    from_scan: str
    to_scan: str
    depth: int  # 1 = propagated from the prompt scan itself


def plan_steps(scan_ids: list[str], source: str, lesion_id: str, mode: str) -> list[Step]:
    """Steps for one lesion; ``scan_ids`` is the study's time order."""
    k = scan_ids.index(source)
    if mode == "direct":
        return [Step(lesion_id, source, t, 1) for t in scan_ids if t != source]
    steps = []
    for direction in (1, -1):
        prev, i = source, k + direction
        while 0 <= i < len(scan_ids):
            steps.append(Step(lesion_id, prev, scan_ids[i], abs(i - k)))
            prev, i = scan_ids[i], i + direction
    return steps
