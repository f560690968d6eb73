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


def test_review_reasons_reach_the_cell_tooltips():
    """Headless half of the tooltip: the text each flagged row's cells get and the column
    descriptions Slicer puts in every cell's tooltip. Setting it on the Qt items of a table view
    (``_set_view_tooltips``) needs Slicer's GUI: checked by reading qMRMLTableModel only."""
    from LinGuinELogic.tables import DESCRIPTIONS, REVIEW_TIP, fill_table, review_tooltip, table_rows

    scene = slicer.vtkMRMLScene()
    node = scene.AddNewNodeByClass("vtkMRMLTableNode")
    base = {c: None for c in TRAJECTORY_COLUMNS}
    why = "the response category rests on a volume change within the measurement's own uncertainty (+90%)"
    rows = [dict(base, lesion="L1", scan="T0", review=False, review_reasons="", review_details=""),
            dict(base, lesion="L1", scan="T2", review=True, review_reasons="response_uncertain", review_details=why)]
    fill_table(node, rows)  # headless: no table view to decorate, and no error
    back = table_rows(node)
    assert [review_tooltip(r) for r in back] == ["", f"{REVIEW_TIP}: {why}"]
    assert review_tooltip(rows[1]) == review_tooltip(back[1])
    for name, text in DESCRIPTIONS.items():
        assert node.GetColumnDescription(name) == text
    assert "hover" in node.GetColumnDescription("review")


class _Item:
    def __init__(self, tip):
        self.tip = tip

    def toolTip(self):  # noqa: N802 (Qt's name)
        return self.tip

    def setToolTip(self, tip):  # noqa: N802
        self.tip = tip


class _View:
    """Stands in for a qMRMLTableView (Qt does not run here): its model's items carry the column
    tooltip that qMRMLTableModel gives every cell; ``transposed`` swaps rows and columns."""

    def __init__(self, node, transposed=False):
        table = node.GetTable()
        self.node, self._transposed, self.props = node, transposed, {}
        rows, cols = table.GetNumberOfRows(), table.GetNumberOfColumns()
        self.items = {(c, r) if transposed else (r, c): _Item(f"<b>{table.GetColumnName(c)}</b>")
                      for r in range(rows) for c in range(cols)}

    def mrmlTableNode(self):  # noqa: N802
        return self.node

    def tableModel(self):  # noqa: N802
        return self

    def item(self, row, col):
        return self.items.get((row, col))

    def transposed(self):
        return self._transposed

    def setProperty(self, name, value):  # noqa: N802
        self.props[name] = value


def test_flagged_rows_cells_get_the_reasons_in_front_of_the_column_tooltip():
    from LinGuinELogic.tables import REVIEW_TIP, _set_view_tooltips, fill_table

    scene = slicer.vtkMRMLScene()
    node = scene.AddNewNodeByClass("vtkMRMLTableNode")
    base = {c: None for c in TRAJECTORY_COLUMNS}
    rows = [dict(base, lesion="L1", scan="T0", review=False, review_reasons="", review_details=""),
            dict(base, lesion="L1", scan="T1", review=True, review_reasons="weak_edge", review_details="edge <50> HU")]
    fill_table(node, rows)
    volume = TRAJECTORY_COLUMNS.index("volume_ml")
    for transposed in (False, True):
        view = _View(node, transposed)
        _set_view_tooltips(view)
        _set_view_tooltips(view)  # again, as after a second dataChanged: nothing doubled
        at = (lambda r, c: (c, r)) if transposed else (lambda r, c: (r, c))
        assert view.item(*at(0, volume)).toolTip() == "<b>volume_ml</b>"
        tip = view.item(*at(1, volume)).toolTip()
        assert tip == f"<b>{REVIEW_TIP}: edge &lt;50&gt; HU</b><hr><b>volume_ml</b>", tip
        assert all(REVIEW_TIP in view.item(*at(1, c)).toolTip() for c in range(len(TRAJECTORY_COLUMNS)))
