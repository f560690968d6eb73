"""Results with nothing in them: an empty in-memory mask prompt is refused by name, and a lesion
measured on only some scans of an undated study is drawn at its own scans."""

from __future__ import annotations

import engine_fixtures  # noqa: F401  (registers the test backends)
import pytest
import SimpleITK as sitk
from test_safety_early import two_lesion_study

from LinGuinELib.config import TrackingConfig
from LinGuinELib.errors import InputError
from LinGuinELib.outputs.plot import scan_positions, series
from LinGuinELib.propagation.engine import track
from LinGuinELib.study.images import read_image
from LinGuinELib.study.manifest import load_manifest
from LinGuinELib.study.model import Lesion


def test_an_empty_in_memory_mask_prompt_is_refused_naming_the_lesion(tmp_path):
    """Files and Slicer segments are refused when empty before any work; a mask handed to the
    library in memory reached the engine, which raised TypeError building its message."""
    study = load_manifest(two_lesion_study(tmp_path / "S"))
    ball = next(les for les in study.lesions if les.id == "L_ball")
    scan = read_image(study.scan("T0").path)
    empty = sitk.Image(scan.GetSize(), sitk.sitkUInt8)
    empty.CopyInformation(scan)
    study.lesions = [ball, Lesion("L_drawn", "T0", mask=empty)]
    with pytest.raises(InputError, match="lesion 'L_drawn': its mask prompt is empty on scan 'T0'"):
        track(study, TrackingConfig(registration="test-shift", segmentation="classical"), workers=0)


def test_an_undated_trajectory_keeps_each_point_at_its_scan():
    """Before, x was the point's rank among the measured rows: a scan with nothing measured (an
    empty prompt, a scan that does not cover the lesion) moved every later point one scan left."""
    rows = [{"lesion": "L1", "scan": s, "days_from_first": None, "volume_ml": v}
            for s, v in (("tp1", None), ("tp2", 0.0), ("tp3", 7.8))]
    xs, pts = series(rows, "L1")
    assert xs == [1, 2] and [r["scan"] for r in pts] == ["tp2", "tp3"]
    dated = [dict(r, days_from_first=d) for r, d in zip(rows, (0, 30, 91))]
    assert series(dated, "L1")[0] == [30, 91]
    # one scan undated: days for some scans and places for others would share one axis
    partly = [dict(r, days_from_first=d) for r, d in zip(rows, (0, None, 91))]
    assert scan_positions(partly) == (False, {"tp1": 0.0, "tp2": 1.0, "tp3": 2.0})
