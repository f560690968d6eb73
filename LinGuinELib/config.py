"""Tracking settings: one dataclass, one comment per field (what run.json records)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import InputError

MODES = ("direct", "chain")


@dataclass
class TrackingConfig:
    # Registration backend name, as listed by `linguine backends`.
    registration: str = "classical"
    # Point-prompted segmentation backend name.
    segmentation: str = "classical"
    # "direct": source scan -> every other scan (the paper's default).
    # "chain": source -> nearest scan in time -> onward, re-centred on each new mask.
    mode: str = "direct"
    # Re-prompt the segmenter at the centre of its first mask on each target scan.
    boost: bool = False
    # "cpu" or "cuda" (learned backends; the classical ones always run on the CPU).
    device: str = "cpu"
    # Filtering: a component not containing the mapped point is kept only if its nearest voxel lies
    # within this distance (mm); beyond it the lesion is reported `not_found`.
    search_radius_mm: float = 10.0
    # Extra keyword options passed to the registration backend's constructor.
    registration_options: dict[str, Any] = field(default_factory=dict)
    # Extra keyword options passed to the segmentation backend's constructor.
    segmentation_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InputError(f"mode '{self.mode}' is not one of {', '.join(MODES)}")
        if self.device not in ("cpu", "cuda") and not self.device.startswith("cuda:"):
            raise InputError(f"device '{self.device}' is not cpu or cuda")
        if not self.search_radius_mm > 0:
            raise InputError(f"search_radius_mm must be positive, got {self.search_radius_mm}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
