"""What a longitudinal study is: scans ordered in time, and lesions prompted on one of them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk


@dataclass
class Scan:
    """One CT of the study. Either ``path`` (read lazily) or ``image`` (in memory) is set."""

    id: str
    path: Path | None = None  # NIfTI/NRRD/MHA file or a DICOM series folder
    image: sitk.Image | None = None  # in-memory image (Slicer, tests); wins over path
    date: dt.date | None = None  # acquisition date, when known
    timepoint: str | None = None  # label such as "baseline", "week_12"
    truth_path: Path | None = None  # optional ground-truth labelmap (evaluation only)
    series_uid: str | None = None  # the DICOM series to read when ``path`` is a folder holding several
    dicom_files: list[str] | None = None  # the CT series' files, slice order, when read from DICOM

    @property
    def when(self) -> str:
        """The date (ISO) or the timepoint label, for tables."""
        return self.date.isoformat() if self.date else (self.timepoint or "")


@dataclass
class Lesion:
    """A lesion prompt on one scan: points (LPS mm, (N, 3)) or a mask on that scan's grid."""

    id: str
    scan_id: str
    points_lps: np.ndarray | None = None
    mask_path: Path | None = None
    mask: sitk.Image | None = None  # in-memory mask, same grid as the scan
    negative_points_lps: np.ndarray | None = None
    truth_label: int | None = None  # value of this lesion in the scans' truth labelmaps
    mask_label: int | None = None  # value picked from a multi-label prompt mask

    @property
    def prompt_kind(self) -> str:
        return "mask" if (self.mask is not None or self.mask_path is not None) else "points"


@dataclass
class Study:
    """Scans sorted in time (earliest first) and the lesions to track."""

    patient_id: str
    scans: list[Scan]
    lesions: list[Lesion] = field(default_factory=list)
    source: Path | None = None  # manifest file or folder the study came from
    # Scans that preflight left for the engine to read: their voxels are checked when read.
    unchecked_scans: set[str] = field(default_factory=set)
    # [(scan id, weak reference to its image)] of the scans read so far, so that the same image given
    # twice is refused (``duplicates.check_distinct_voxels``).
    seen_voxels: list[tuple] = field(default_factory=list)

    def scan(self, scan_id: str) -> Scan:
        for s in self.scans:
            if s.id == scan_id:
                return s
        raise KeyError(scan_id)

    def index(self, scan_id: str) -> int:
        return [s.id for s in self.scans].index(scan_id)
