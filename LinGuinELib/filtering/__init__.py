"""Post-processing of predicted masks (which component belongs to the prompt)."""

from .components import keep_nearest_component

__all__ = ["keep_nearest_component"]
