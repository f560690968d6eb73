"""Shared fixtures. LIDC data is optional: tests that need it skip when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LIDC_DIR = REPO.parent / "shared" / "data" / "lidc"


@pytest.fixture(scope="session")
def lidc_dir() -> Path:
    if not (LIDC_DIR / "LIDC-IDRI-0001_ct.nii.gz").exists():
        pytest.skip(f"LIDC data not found at {LIDC_DIR}")
    return LIDC_DIR


@pytest.fixture(scope="session")
def seg():
    """One classical segmenter for the segmentation tests (it keeps no state between calls but
    ``last_diagnostics``)."""
    from LinGuinELib.segmentation.classical import ClassicalSegmenter

    return ClassicalSegmenter()
