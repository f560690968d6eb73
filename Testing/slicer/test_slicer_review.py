"""The quality flag in the Slicer trajectory table: flagged rows marked, reasons as text."""

from __future__ import annotations

import sys

import pytest

if not hasattr(sys.modules.get("slicer"), "vtkMRMLScene"):  # conftest imported it if it could
    pytest.skip("slicer-core is not installed (bash scripts/install_slicer_core.sh)", allow_module_level=True)

import slicer  # noqa: E402

from LinGuinELib.measures.trajectory import TRAJECTORY_COLUMNS  # noqa: E402


def test_review_rows_marked_with_reasons():
    from LinGuinELogic.tables import fill_table, table_rows

    scene = slicer.vtkMRMLScene()
    node = scene.AddNewNodeByClass("vtkMRMLTableNode")
    base = {c: None for c in TRAJECTORY_COLUMNS}
    rows = [dict(base, lesion="L1", scan="T0", volume_ml=1.0, review=False, review_reasons="", review_details=""),
            dict(base, lesion="L1", scan="T1", volume_ml=9.0, review=True, review_reasons="growth_too_fast",
                 review_details="volume grew faster than a fast-growing lung cancer can (x9.0 in 30 d)")]
    fill_table(node, rows)
    back = table_rows(node)
    assert [r["review"] for r in back] == ["", "review"]
    assert back[1]["review_reasons"] == "growth_too_fast"
    assert "x9.0" in back[1]["review_details"]
    assert node.GetColumnTitle("review_details") == "Why review"
