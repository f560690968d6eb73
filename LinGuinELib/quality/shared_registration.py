"""One registration serves every lesion carried over the same pair of scans: when it cannot vouch
for most of them, it may have failed for the others too.

A failed registration shows on each lesion's own result only where the lesion's neighbourhood
tells: an isolated lesion's point lands in lung that matches nothing (low local confidence), one
near the scan's edge lands outside it. A lesion on the chest wall can come out ``not_found``
looking confident: the wall matches itself wherever along it the point lands. Its neighbours on
the same pair are the evidence it lacks. A lesion's point is *doubtful* when it was mapped outside
the scan (``point_outside_image``), or when its lesion was found there and the registration still
cannot vouch for the point (``low_registration_confidence``). A lesion reported ``not_found`` is
no evidence either way: where a lesion has gone the local confidence falls by construction (see
``absence``), and every lesion of a complete response would otherwise doubt the others. When at
least ``MIN_DOUBTFUL`` of the pair's other lesions, and more than half of them, are doubtful, every
other result of the pair is flagged ``registration_doubtful``. With fewer lesions there is nothing
to compare: no flag.
"""

from __future__ import annotations

from collections import defaultdict

from .reasons import Finding, Reason

MIN_DOUBTFUL = 2


def doubtful(status: str, findings: list[Finding]) -> bool:
    """Whether one lesion's result doubts the registration that carried it (see module)."""
    reasons = {f.reason for f in findings}
    return Reason.POINT_OUTSIDE_IMAGE in reasons or (status == "found"
                                                      and Reason.LOW_REGISTRATION_CONFIDENCE in reasons)


def shared_doubts(results: list[tuple[str, str | None, str, str, list[Finding]]]) -> dict[tuple[str, str], Finding]:
    """From (lesion, from_scan, scan, status, findings) of propagated results: a
    ``registration_doubtful`` finding per (lesion, scan) whose pair's other lesions are mostly
    doubtful (see module)."""
    pairs: dict[tuple[str | None, str], list[tuple[str, bool]]] = defaultdict(list)
    for lesion, source, scan, status, findings in results:
        pairs[(source, scan)].append((lesion, doubtful(status, findings)))
    out: dict[tuple[str, str], Finding] = {}
    for (_, scan), members in pairs.items():
        for lesion, doubts in members:
            others = [(name, d) for name, d in members if name != lesion]
            named = [name for name, d in others if d]
            if not doubts and len(named) >= MIN_DOUBTFUL and 2 * len(named) > len(others):
                out[(lesion, scan)] = Finding(Reason.REGISTRATION_DOUBTFUL,
                                              f"{len(named)} of the {len(others)} other lesions: {', '.join(named)}")
    return out
