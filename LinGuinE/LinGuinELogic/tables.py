"""The trajectory as a table node and a plot chart (volume over time, one series per lesion).

Column names are the library's ``TRAJECTORY_COLUMNS`` so the table, the CSV export and the CLI
agree. Text columns are strings; the rest are doubles with NaN for "not measured".

Rows that need review read "review" in the Review column, and every cell of such a row shows
why in its tooltip. A table node has no per-cell tooltip: Slicer's table model (qMRMLTableModel)
gives each cell its column's tooltip (title, unit, description, column properties) and sets it
again whenever it reloads the node. So the reasons are added to the cells of each table view
showing the table, after every reload of its model (see ``_watch_views``); the column
descriptions say what the review columns mean.
"""

from __future__ import annotations

import html
import math
from typing import Any

import vtk

from LinGuinELib.outputs.plot import scan_positions

TEXT_COLUMNS = ("lesion", "scan", "when", "status", "response", "review", "review_reasons", "review_details")
# Column name -> (title shown in Slicer, unit); names stay the CSV's, titles are for people.
TITLES = {
    "lesion": ("Lesion", ""), "scan": ("Scan", ""), "when": ("Timepoint", ""),
    "days_from_first": ("Days", "d"), "status": ("Status", ""), "volume_ml": ("Volume", "mL"),
    "longest_axial_diameter_mm": ("Longest axial diameter", "mm"), "short_axis_mm": ("Short axis", "mm"),
    "centroid_r": ("Centroid R", "mm"), "centroid_a": ("Centroid A", "mm"), "centroid_s": ("Centroid S", "mm"),
    "point_r": ("Mapped point R", "mm"), "point_a": ("Mapped point A", "mm"), "point_s": ("Mapped point S", "mm"),
    "change_from_baseline_pct": ("Change from baseline", "%"), "change_from_nadir_pct": ("Change from nadir", "%"),
    "response": ("Response", ""),
    "review": ("Review", ""), "review_reasons": ("Review reasons", ""), "review_details": ("Why review", ""),
}
# Column tooltips (Slicer shows a column's description in the tooltip of each of its cells).
DESCRIPTIONS = {
    "review": "'review' when this result needs a look before it is used; hover the row to see why",
    "review_reasons": "codes of the reasons for review (LinGuinELib.quality.reasons)",
    "review_details": "why this result needs review, with the numbers behind each reason",
}
REVIEW_TIP = "Needs review"
TIP_PROPERTY = "LinGuinEReviewTips"  # a view already watched
PENDING_PROPERTY = "LinGuinEReviewTipsPending"  # its tooltips are due on the next event-loop turn
PLOT_X = "days_from_first"
PLOT_Y = "volume_ml"


def _number(value: Any) -> float:
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def trajectory_columns() -> tuple[str, ...]:
    # Imported here: LinGuinELib.measures needs scipy, installed at first use inside Slicer.
    from LinGuinELib.measures.trajectory import TRAJECTORY_COLUMNS

    return TRAJECTORY_COLUMNS


def fill_table(table_node: Any, rows: list[dict], columns: tuple[str, ...] | None = None) -> None:
    """Replace the table's content with ``rows`` (one dict per row)."""
    columns = columns or trajectory_columns()
    table = vtk.vtkTable()
    for name in columns:
        array = vtk.vtkStringArray() if name in TEXT_COLUMNS else vtk.vtkDoubleArray()
        array.SetName(name)
        array.SetNumberOfValues(len(rows))
        for r, row in enumerate(rows):
            value = row.get(name)
            if name == "review" and isinstance(value, bool):
                array.SetValue(r, "review" if value else "")  # marks the rows that need a look
            elif name in TEXT_COLUMNS:
                array.SetValue(r, "" if value is None else str(value))
            else:
                array.SetValue(r, _number(value))
        table.AddColumn(array)
    table_node.SetAndObserveTable(table)
    for name in columns:
        if name not in TEXT_COLUMNS:
            table_node.SetColumnType(name, vtk.VTK_DOUBLE)
        title, unit = TITLES.get(name, (name, ""))
        table_node.SetColumnTitle(name, title)
        if unit:
            table_node.SetColumnUnitLabel(name, unit)
        if name in DESCRIPTIONS:
            table_node.SetColumnDescription(name, DESCRIPTIONS[name])
    table_node.SetUseColumnTitleAsColumnHeader(True)
    table_node.SetLocked(True)  # edits happen on segments, then "Re-measure"
    table_node.Modified()
    if "review" in columns:
        _watch_views()


def review_tooltip(row: dict) -> str:
    """What the cells of a row show on hover when it needs review (plain text; "" when it does not)."""
    flagged = row.get("review")
    if not (flagged is True or flagged == "review"):
        return ""
    why = row.get("review_details") or row.get("review_reasons") or "see the review columns"
    return f"{REVIEW_TIP}: {why}"


def _watch_views() -> None:
    """Slicer with a GUI: make every table view add the review tooltips after each model reload.

    qMRMLTableModel rebuilds its items' tooltips in updateModelFromMRML (on every node Modified,
    and when a view is given a node), which emits dataChanged; the tooltips are then set on the
    next turn of the event loop, once however many cells changed. Headless (slicer-core, no Qt)
    this does nothing.
    """
    try:
        import qt
        import slicer
    except ImportError:
        return
    if getattr(slicer, "app", None) is None or not hasattr(slicer, "util"):
        return
    for view in slicer.util.findChildren(className="qMRMLTableView"):
        if view.property(TIP_PROPERTY):
            _set_view_tooltips(view)
            continue
        view.setProperty(TIP_PROPERTY, True)

        def later(*_args, view=view):
            if not view.property(PENDING_PROPERTY):
                view.setProperty(PENDING_PROPERTY, True)
                qt.QTimer.singleShot(0, lambda: _set_view_tooltips(view))

        view.tableModel().connect("dataChanged(QModelIndex,QModelIndex)", later)
        _set_view_tooltips(view)


def _set_view_tooltips(view: Any) -> None:
    """Put each flagged row's reasons in front of its cells' column tooltips, in one table view."""
    try:
        view.setProperty(PENDING_PROPERTY, False)
        node = view.mrmlTableNode()
    except (RuntimeError, ValueError):  # the view was deleted before the event loop came round
        return
    table = node.GetTable() if node is not None else None
    if table is None or table.GetColumnByName("review") is None:
        return
    model = view.tableModel()
    col_offset = 1 if node.GetUseFirstColumnAsRowHeader() else 0
    row_offset = 0 if node.GetUseColumnTitleAsColumnHeader() else 1
    for r, row in enumerate(table_rows(node)):
        tip = review_tooltip(row)
        if not tip:
            continue
        text = f"<b>{html.escape(tip)}</b>"
        for c in range(col_offset, table.GetNumberOfColumns()):
            at = (r + row_offset, c - col_offset)
            item = model.item(at[1], at[0]) if view.transposed() else model.item(*at)
            if item is not None and not item.toolTip().startswith(text):
                item.setToolTip(f"{text}<hr>{item.toolTip()}")


def table_rows(table_node: Any) -> list[dict]:
    """The table back as dicts (text as str, numbers as float, NaN as None)."""
    table = table_node.GetTable()
    names = [table.GetColumnName(c) for c in range(table.GetNumberOfColumns())]
    rows = []
    for r in range(table.GetNumberOfRows()):
        row = {}
        for c, name in enumerate(names):
            value = table.GetValue(r, c)
            if name in TEXT_COLUMNS:
                row[name] = value.ToString()
            else:
                number = value.ToDouble()
                row[name] = None if math.isnan(number) else number
        rows.append(row)
    return rows


def _series_column(lesion_id: str) -> str:
    return f"{lesion_id} {PLOT_Y}"


def fill_plot(
    scene: Any,
    plot_table: Any,
    chart: Any,
    rows: list[dict],
    lesions: list[tuple[str, str, tuple[float, float, float]]],
) -> None:
    """Volume (mL) against days (or scan index when undated); one series per (id, name, colour)."""
    dated, x_of = scan_positions(rows)
    rows_by = {(row["lesion"], row["scan"]): row for row in rows}
    plot_rows = []
    for scan in x_of:
        plot_row = {PLOT_X: x_of[scan], "scan": scan}
        for lesion_id, _, _ in lesions:
            plot_row[_series_column(lesion_id)] = rows_by.get((lesion_id, scan), {}).get(PLOT_Y)
        plot_rows.append(plot_row)
    columns = (PLOT_X, *(_series_column(lid) for lid, _, _ in lesions))
    fill_table(plot_table, plot_rows, columns)

    chart.RemoveAllPlotSeriesNodeIDs()
    for lesion_id, name, color in lesions:
        series = _series_node(scene, chart, name)
        series.SetAndObserveTableNodeID(plot_table.GetID())
        series.SetXColumnName(PLOT_X)
        series.SetYColumnName(_series_column(lesion_id))
        series.SetPlotType(series.PlotTypeScatter)
        series.SetMarkerStyle(series.MarkerStyleCircle)
        series.SetLineStyle(series.LineStyleSolid)
        series.SetColor(*color)
        chart.AddAndObservePlotSeriesNodeID(series.GetID())
    chart.SetXAxisTitle("days from first scan" if dated else "scan (time order)")
    chart.SetYAxisTitle("volume (mL)")
    chart.SetTitle("Lesion volume over time")
    chart.SetLegendVisibility(True)


def _series_node(scene: Any, chart: Any, name: str) -> Any:
    """Reuse this chart's earlier series of the same name, so re-measuring adds no nodes."""
    nodes = scene.GetNodesByClass("vtkMRMLPlotSeriesNode")
    tag = chart.GetID()
    for i in range(nodes.GetNumberOfItems()):
        node = nodes.GetItemAsObject(i)
        if node.GetAttribute("LinGuinE.Chart") == tag and node.GetName() == name:
            return node
    node = scene.AddNewNodeByClass("vtkMRMLPlotSeriesNode", name)
    node.SetAttribute("LinGuinE.Chart", tag)
    return node
