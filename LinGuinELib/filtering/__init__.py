"""Post-processing of predicted masks: which component belongs to the prompt, and mask
operations in physical units (mm) shared by the segmenters."""

from .components import (
    box_around,
    coarse_opening_mm,
    components_touching,
    dilate_mm,
    edt_mm,
    erode_mm,
    fill_holes,
    keep_nearest_component,
    labels_touching,
    opening_mm,
)

__all__ = [
    "box_around",
    "coarse_opening_mm",
    "components_touching",
    "dilate_mm",
    "edt_mm",
    "erode_mm",
    "fill_holes",
    "keep_nearest_component",
    "labels_touching",
    "opening_mm",
]
