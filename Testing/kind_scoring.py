"""How a segmentation of a rendered lesion kind is scored in the tests."""

from __future__ import annotations


def score(case, mask) -> tuple[float, float]:
    """(Dice, volume ratio) of ``mask`` against the rendered case's truth."""
    dice = 2.0 * (mask & case.truth).sum() / (mask.sum() + case.truth.sum())
    return float(dice), float(mask.sum() / case.truth.sum())
