"""Juxta-pleural fallback: keep a lesion on the lung side of the pleura.

A nodule on the chest wall has the wall's density. The classical segmenter tells them apart by
rolling a ball larger than the lesion inside the region (the wall holds it, the lesion doesn't);
where the wall is thinner than that ball, the region spreads along the wall instead. The lesion
bulges into the lung, though: closing the adjacent lung with a ball wider than the lesion takes
the lesion's dent in and leaves the wall out. Used only after the plain method has leaked.
"""

from __future__ import annotations

import cc3d
import numpy as np

from ..filtering.components import dilate_mm, erode_mm

ENVELOPE_FACTOR = 1.5  # closing ball radius / lesion radius: the ball must span the lesion's dent


def lung_envelope(smooth: np.ndarray, dist_mm: np.ndarray, spacing_zyx: np.ndarray, radius_mm: float,
                  air_hu: float) -> np.ndarray | None:
    """The air region nearest the seed (its lung), closed with a ball of ENVELOPE_FACTOR * radius.

    ``smooth`` is the ROI's smoothed HU, ``dist_mm`` each voxel's distance to the seed; arrays
    (z, y, x). None when there is no air in the ROI (not a lung lesion: nothing to constrain).
    """
    air = smooth < air_hu
    if not air.any():
        return None
    labels = cc3d.connected_components(air, connectivity=26)
    nearest = int(np.argmin(np.where(air, dist_mm, np.inf)))
    lung = labels == labels.ravel()[nearest]
    r = ENVELOPE_FACTOR * max(radius_mm, float(spacing_zyx.max()))
    return erode_mm(dilate_mm(lung, r, spacing_zyx), r - 1e-3, spacing_zyx)
