"""The propagation stage: carry each lesion from its prompt scan to every other scan."""

from .result import LesionScanResult, MaskCrop, TrackingResult

__all__ = ["LesionScanResult", "MaskCrop", "TrackingResult"]
