"""One colour per lesion, the same on every scan (Slicer segments, plots)."""

from __future__ import annotations

# Distinct, colour-blind-friendly hues (Okabe-Ito order, then extras), RGB in [0, 1].
PALETTE = (
    (0.902, 0.624, 0.0), (0.337, 0.706, 0.914), (0.0, 0.620, 0.451), (0.941, 0.894, 0.259),
    (0.0, 0.447, 0.698), (0.835, 0.369, 0.0), (0.800, 0.475, 0.655), (0.6, 0.6, 0.6),
    (0.55, 0.35, 0.2), (0.4, 0.8, 0.4),
)


def lesion_color(k: int) -> tuple[float, float, float]:
    """Colour of the k-th lesion (0-based)."""
    return PALETTE[k % len(PALETTE)]
