"""Showing results in Slicer's views: layout with table and chart, one row's lesion on its volume."""

from __future__ import annotations

import slicer


def showResults(tableNode, chartNode) -> None:
    """Four-up layout with the trajectory table and the volume-over-time chart.

    Without a main window (``--no-main-window``) there is no layout manager: only the selection
    node is set, so views opened later show this table.
    """
    appLogic = slicer.app.applicationLogic()
    appLogic.GetSelectionNode().SetActiveTableID(tableNode.GetID())
    layoutManager = slicer.app.layoutManager()
    if layoutManager is None:
        return
    layoutManager.setLayout(slicer.vtkMRMLLayoutNode.SlicerLayoutFourUpPlotTableView)
    appLogic.PropagateTableSelection()
    if chartNode is not None:
        slicer.modules.plots.logic().ShowChartInLayout(chartNode)


def followLayoutTableClicks(callback) -> None:
    """Clicking a row of a trajectory table in the layout's table views calls ``callback(table, row)``."""
    layoutManager = slicer.app.layoutManager()
    if layoutManager is None:
        return
    for i in range(layoutManager.tableViewCount):
        view = layoutManager.tableWidget(i).tableView()
        if view.property("LinGuinEConnected"):
            continue
        view.setProperty("LinGuinEConnected", True)
        view.clicked.connect(lambda index, view=view: callback(view.mrmlTableNode(), index.row()))


def showRow(logic, tableNode, row: int, sequenceNode=None) -> None:
    """That lesion on that volume: volume as background, only its segment shown, views centred."""
    from LinGuinELogic.record import run_scans

    volume, segmentation, segmentId = logic.rowTarget(tableNode, row)
    scans = run_scans(tableNode)
    if volume.GetScene() is slicer.mrmlScene:
        slicer.util.setSliceViewerLayers(background=volume, fit=False)
    elif sequenceNode is not None:  # a sequence item: move the sequence's browser to it
        browser = slicer.modules.sequences.logic().GetFirstBrowserNodeForSequenceNode(sequenceNode)
        if browser is not None:
            browser.SetSelectedItemNumber([s.volume for s in scans].index(volume))
    for scan in scans:  # only this run's segmentations; other segmentations are left alone
        display = scan.segmentation.GetDisplayNode()
        if display is not None:
            display.SetVisibility(scan.segmentation is segmentation)
    display = segmentation.GetDisplayNode()
    if display is not None and segmentId:
        display.SetAllSegmentsVisibility(False)
        display.SetSegmentVisibility(segmentId, True)
    centre = logic.rowFocusRAS(tableNode, row)
    if centre is not None:
        slicer.modules.markups.logic().JumpSlicesToLocation(*centre, True)


def openSegmentEditor(logic, tableNode, row: int) -> None:
    """Segment Editor on that row's segmentation, volume and segment (ground-truth editing)."""
    volume, segmentation, segmentId = logic.rowTarget(tableNode, max(row, 0))
    slicer.util.selectModule("SegmentEditor")
    editor = slicer.modules.segmenteditor.widgetRepresentation().self().editor
    editor.setSegmentationNode(segmentation)
    if volume.GetScene() is slicer.mrmlScene:
        if hasattr(editor, "setSourceVolumeNode"):
            editor.setSourceVolumeNode(volume)
        else:  # Slicer < 5.4
            editor.setMasterVolumeNode(volume)
    if segmentId:
        editor.setCurrentSegmentID(segmentId)
