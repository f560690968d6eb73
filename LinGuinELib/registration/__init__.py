"""Registration backends: map lesion centres from one scan to another."""

from .base import PointMapper, Registration, TransformMapper

__all__ = ["PointMapper", "Registration", "TransformMapper"]
