"""The segmentation stage: a point-prompted segmenter on one scan.

``segment`` returns a boolean mask on the image's own grid, numpy array axis order (z, y, x)
as ``sitk.GetArrayFromImage`` gives it. Prompts are physical LPS mm, shape (N, 3).
The engine calls it repeatedly on the same image object for several lesions, so a backend
may keep per-image state (``image is self._last_image``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
import SimpleITK as sitk

from ..errors import InputError


def prompt_points(points: np.ndarray | None, field: str) -> np.ndarray:
    """Prompt points as a finite (N, 3) LPS array (N may be 0); InputError naming the field."""
    if points is None:
        return np.zeros((0, 3))
    pts = np.asarray(points, dtype=float)
    if pts.size == 0:
        return np.zeros((0, 3))
    if pts.ndim > 2 or pts.shape[-1] != 3 or not np.all(np.isfinite(pts)):
        raise InputError(f"{field} must be finite (N, 3) LPS points, got shape {pts.shape}")
    return pts.reshape(-1, 3)


class Segmenter(ABC):
    """A segmentation backend. Subclasses are registered with ``register_segmentation``."""

    name: ClassVar[str] = ""

    def __init__(self, device: str = "cpu", **options: Any) -> None:
        self.device = device
        self.options = options

    @classmethod
    def unavailable_reason(cls, **options: Any) -> str | None:
        """None when usable here, else what is missing and how to get it (one line)."""
        return None

    @abstractmethod
    def segment(
        self,
        image: sitk.Image,
        positive_lps: np.ndarray,
        negative_lps: np.ndarray | None = None,
    ) -> np.ndarray:
        """Bool mask, zyx, same shape as the image; may be empty (nothing found)."""

    def release(self) -> None:
        """Free per-image state (GPU memory) between scans; default: nothing to free."""

    def close(self) -> None:
        """End of a run (also on error or cancel): free sessions, server slots; default: nothing."""

    def settings(self) -> dict[str, Any]:
        return {"name": self.name, "device": self.device, **self.options}
