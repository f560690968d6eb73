"""What tracking produces: per (lesion, scan) a status, a mask and the points that led to it.

Masks are stored cropped to their bounding box (a full 512x512x260 bool grid is 68 MB per lesion
per scan); ``MaskCrop.to_full`` restores the scan's own grid without resampling.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import SimpleITK as sitk

from ..config import TrackingConfig
from ..geometry import ImageGeometry, mask_to_image
from ..study.model import Study

STATUSES = ("prompt", "found", "not_found", "outside_image")


@dataclass
class MaskCrop:
    """A boolean (z, y, x) mask stored as its bounding box within the full grid."""

    shape_zyx: tuple[int, int, int]
    offset_zyx: tuple[int, int, int] = (0, 0, 0)
    array: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0), bool))

    @classmethod
    def from_full(cls, mask_zyx: np.ndarray) -> MaskCrop:
        mask = np.asarray(mask_zyx, dtype=bool)
        # Bounding box from per-axis projections: a few passes over the grid instead of
        # np.nonzero, which materialises every voxel's index (seconds on a 512x512 scan).
        z_hits = np.flatnonzero(mask.any(axis=(1, 2)))
        if z_hits.size == 0:
            return cls(tuple(mask.shape))
        slab = mask[z_hits[0] : z_hits[-1] + 1]
        y_hits = np.flatnonzero(slab.any(axis=(0, 2)))
        x_hits = np.flatnonzero(slab.any(axis=(0, 1)))
        lo = (int(z_hits[0]), int(y_hits[0]), int(x_hits[0]))
        hi = (int(z_hits[-1]) + 1, int(y_hits[-1]) + 1, int(x_hits[-1]) + 1)
        crop = mask[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]].copy()
        return cls(tuple(mask.shape), lo, crop)

    @property
    def empty(self) -> bool:
        return not self.array.any()

    @property
    def voxel_count(self) -> int:
        return int(self.array.sum())

    def slices(self) -> tuple[slice, slice, slice]:
        return tuple(slice(o, o + n) for o, n in zip(self.offset_zyx, self.array.shape))

    def to_full(self) -> np.ndarray:
        full = np.zeros(self.shape_zyx, dtype=bool)
        if self.array.size:
            full[self.slices()] = self.array
        return full

    def to_image(self, reference: sitk.Image) -> sitk.Image:
        """The box as a uint8 image in ``reference``'s physical space (its grid, cropped)."""
        img = sitk.GetImageFromArray(self.array.astype(np.uint8))
        img.SetSpacing(reference.GetSpacing())
        img.SetDirection(reference.GetDirection())
        img.SetOrigin(reference.TransformIndexToPhysicalPoint([int(v) for v in self.offset_zyx[::-1]]))
        return img

    def nonzero_zyx(self) -> np.ndarray:
        """(N, 3) integer indices of the mask voxels in the full grid, (z, y, x) order."""
        return np.argwhere(self.array) + np.array(self.offset_zyx)


@dataclass
class LesionScanResult:
    lesion_id: str
    scan_id: str
    status: str  # one of STATUSES
    mask: MaskCrop
    # Where registration put the lesion centre on this scan (LPS mm); None on the prompt scan.
    propagated_point_lps: np.ndarray | None = None
    # The mask's deepest interior point (LPS mm); None when the mask is empty.
    centre_lps: np.ndarray | None = None
    # The scan the point was propagated from (direct: the source; chain: the previous scan).
    from_scan_id: str | None = None
    # Quality signals measured on this scan (name -> number, see LinGuinELib.quality) and the
    # per-scan review findings (quality.Finding); trajectory-level findings are added by measures.
    signals: dict[str, float] = field(default_factory=dict)
    findings: list = field(default_factory=list)

    @property
    def empty_prompt(self) -> bool:
        """The prompt scan's result of a click that gave nothing: no baseline for the lesion."""
        return self.status == "prompt" and self.mask.empty


@dataclass
class TrackingResult:
    study: Study
    config: TrackingConfig
    # (lesion_id, scan_id) -> result, for every lesion and every scan of the study.
    results: dict[tuple[str, str], LesionScanResult]
    # Geometry of each scan, to rebuild images on the scan's own grid without the voxels.
    references: dict[str, ImageGeometry]
    # Seconds per stage ("load", "registration", "segmentation", ...), summed over the engine's
    # threads: with pairs registered side by side, "registration" can exceed the elapsed time.
    timings: dict[str, float] = field(default_factory=dict)
    # Backend settings, as recorded in run.json.
    backends: dict[str, Any] = field(default_factory=dict)
    # Elapsed seconds: "track" (the whole call) and "registration_or_segmentation" (while at
    # least one registration, segmentation or filtering task ran).
    walls: dict[str, float] = field(default_factory=dict)

    def get(self, lesion_id: str, scan_id: str) -> LesionScanResult:
        return self.results[(lesion_id, scan_id)]

    def label_array(self, scan_id: str) -> np.ndarray:
        """uint16 (z, y, x) labels on the scan's own grid; value k = k-th lesion of the study (1-based).

        Where two lesions overlap, the later lesion in the study's order wins.
        """
        label = np.zeros(self.references[scan_id].GetSize()[::-1], dtype=np.uint16)
        for k, lesion in enumerate(self.study.lesions, start=1):
            crop = self.results[(lesion.id, scan_id)].mask
            if not crop.empty:
                label[crop.slices()][crop.array] = k
        return label

    def labelmap(self, scan_id: str) -> sitk.Image:
        """``label_array`` as an image on the scan's grid."""
        return mask_to_image(self.label_array(scan_id), self.references[scan_id], np.uint16)
