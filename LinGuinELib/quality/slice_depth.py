"""Is the segment as deep across the slices as a lesion of its width must be?

On thick slices the lesion's extent along z is read from few slices, and a slice that holds the
lesion beside a wall crossing the slices obliquely (the diaphragm's dome on 5 mm slices) is a mix
of lesion and wall: the lung envelope decides whether it is kept, not an edge of the lesion.
When it is cut, a 14 mm dome nodule came out as one slice, 0.43-0.48x its volume (development
studies, prompt and follow-up scans), with an outline that is otherwise a lesion's.

A lesion is about as deep as it is wide: its narrowest width in its largest cross-section
(a uniform ellipse's minor axis from the second moments) bounds what a round lesion of that width
spans along z. A segment less than half as deep (slices x spacing) holds less than half of a
round lesion that wide: either the slices cut it, or the lesion is flat along them. Its volume is
then not vouched for within a factor of 2.
"""

from __future__ import annotations

import math

import numpy as np

MIN_DEPTH_SHARE = 0.5  # segment depth along z / narrowest in-plane width: below, not a round lesion's


def narrowest_width_mm(cross_section: np.ndarray, spacing_yx: np.ndarray) -> float:
    """Minor axis (mm) of the uniform ellipse with the cross-section's second moments (NaN: < 3 px)."""
    idx = np.argwhere(cross_section)
    if len(idx) < 3:
        return math.nan
    cov = np.cov((idx * spacing_yx).T) + np.diag(spacing_yx**2 / 12.0)
    return 4.0 * math.sqrt(max(float(np.linalg.eigvalsh(cov)[0]), 0.0))


def depth_share(mask: np.ndarray, spacing: np.ndarray) -> tuple[float, float]:
    """(depth along z / narrowest width of the largest cross-section, that width in mm); NaN when
    the cross-section is too small to have a width."""
    areas = mask.sum(axis=(1, 2))
    if not areas.any():
        return math.nan, math.nan
    width = narrowest_width_mm(mask[int(np.argmax(areas))], spacing[1:])
    depth = float(np.count_nonzero(areas)) * float(spacing[0])
    return (depth / width if width > 0 else math.nan), width
