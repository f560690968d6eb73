"""Every follow-up is read against the prompt scan's segment: when that baseline does not look
like a lesion, the follow-ups' volumes and responses need a look too.

The segmenter that erred on the prompt scan meets the same lesion, beside the same structure,
on every follow-up, and errs alike: a cut or a leak repeated on every scan gives a plausible
trajectory that no check of one scan against another can catch (the volume checks in
``growth`` compare scans with each other; each follow-up's own image checks may pass where the
error is milder there). Only findings that say the baseline's *shape* is not a lesion's are
carried over: an open boundary alone is what a large tumour on the wall shows when segmented
right (measured on the development studies: 60 good follow-ups under such prompts, no bad one).
A baseline cut to fewer slices than its width needs (``shallow``: the slice it shares with the
dome left out on 5 mm slices) is carried too: the follow-ups may be right, but their change is
read against half the lesion. So is a baseline drawn out along an axis (``elongated``: a stretch
of vessel taken in with the lesion is taken in again on each follow-up).
A baseline the user drew (a mask prompt) is the user's answer, not the segmenter's: nothing is
carried from it.
"""

from __future__ import annotations

from .reasons import Finding, Reason

# Findings on the prompt scan's own segment that make its follow-ups doubtful.
BASELINE_SHAPE_REASONS = (Reason.TINY_SEGMENT, Reason.NOT_COMPACT, Reason.THIN_PART,
                          Reason.ATTACHED_AS_THICK, Reason.OUTSIDE_LUNG, Reason.REGION_BORDER, Reason.SHALLOW,
                          Reason.ELONGATED)


def baseline_doubt(prompt_findings: list[Finding]) -> Finding | None:
    """``baseline_doubtful`` (naming the prompt's own reasons) for the follow-ups of a prompt
    whose segment carries one of ``BASELINE_SHAPE_REASONS``; None otherwise."""
    carried = [r.value for r in BASELINE_SHAPE_REASONS if any(f.reason is r for f in prompt_findings)]
    return Finding(Reason.BASELINE_DOUBTFUL, "prompt scan: " + ", ".join(carried)) if carried else None
