"""The registration stage: map physical points from a source scan to a target scan.

A backend registers a *pair* once (``register``) and returns a ``PointMapper`` that the engine
reuses for every lesion of that pair. Points are physical LPS mm, shape (N, 3), xyz order.
Direction: ``map_points`` takes positions in the source scan and returns the positions of the
same anatomy in the target scan.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
import SimpleITK as sitk


class PointMapper(ABC):
    """Result of registering one (source, target) pair."""

    @abstractmethod
    def map_points(self, points_lps: np.ndarray) -> np.ndarray:
        """(N, 3) LPS mm in the source -> (N, 3) LPS mm in the target."""

    def confidence(self, points_lps: np.ndarray) -> np.ndarray:
        """Per point, in [0, 1], how far the backend vouches for its mapping (1: consistent
        estimates agree; 0: they disagree by a lesion's size). NaN = the backend cannot tell;
        the quality flag then relies on the other signals."""
        return np.full(len(np.asarray(points_lps, dtype=float).reshape(-1, 3)), np.nan)

    def map_lesion(self, centre_lps: np.ndarray, lesion: sitk.Image | None = None) -> tuple[np.ndarray, float]:
        """A lesion's centre (LPS mm, shape (3,)) on the target, and the confidence in it.

        ``lesion``: its mask on the source (binary, any grid in the source's physical space).
        The lesion is the one thing in the scan expected to change (grow, shrink, go), so a
        backend that can should place it by its surroundings (``classical`` does); by default
        the point is mapped alone."""
        point = np.asarray(centre_lps, dtype=float).reshape(1, 3)
        return self.map_points(point)[0], float(self.confidence(point)[0])

    def prepare(self) -> None:
        """Work the mapper would otherwise do on its first point (the engine calls this on its
        pool right after registering, so a study kept open has it done before any lesion comes)."""


class Registration(ABC):
    """A registration backend. Subclasses are registered with ``register_registration``."""

    name: ClassVar[str] = ""
    # Whether the engine may register several pairs at once in threads (each call with its own
    # images; the backend object shared). False for backends that already use every core or a
    # GPU's memory per call: their pairs then run one after the other on the calling thread.
    concurrent_pairs: ClassVar[bool] = True

    def __init__(self, device: str = "cpu", **options: Any) -> None:
        self.device = device
        self.options = options

    @classmethod
    def unavailable_reason(cls, **options: Any) -> str | None:
        """None when usable here, else what is missing and how to get it (one line)."""
        return None

    @abstractmethod
    def register(self, source: sitk.Image, target: sitk.Image) -> PointMapper:
        """Register source to target (physical space, any grids); heavy work happens here."""

    def settings(self) -> dict[str, Any]:
        """What run.json records about this backend."""
        return {"name": self.name, "device": self.device, **self.options}


class TransformMapper(PointMapper):
    """Maps points through a SimpleITK transform defined source -> target.

    Note: an ITK transform estimated with fixed=source, moving=target maps fixed (source)
    physical points to moving (target) physical points, which is the direction we need.
    """

    def __init__(self, transform: sitk.Transform) -> None:
        self.transform = transform

    def map_points(self, points_lps: np.ndarray) -> np.ndarray:
        pts = np.asarray(points_lps, dtype=float).reshape(-1, 3)
        return np.array([self.transform.TransformPoint(tuple(map(float, p))) for p in pts])
