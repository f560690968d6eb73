"""Segmentation backends: point-prompted lesion masks on one scan."""

from .base import Segmenter

__all__ = ["Segmenter"]
