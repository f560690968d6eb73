"""The outputs stage: labelmaps, Slicer segmentations, trajectory table and plot, run record."""

from .writer import TRACKING_TAG, write_outputs

__all__ = ["TRACKING_TAG", "write_outputs"]
