"""The prompt stage: reduce a click or a mask to the lesion's centre point."""

from .centre import deepest_index_zyx, mask_centre_lps

__all__ = ["deepest_index_zyx", "mask_centre_lps"]
