"""Lesion prompts: "Add lesion" places one markups point per lesion, named and tied to its volume."""

from __future__ import annotations

from collections.abc import Callable

import qt
import slicer
from slicer.util import VTKObservationMixin

_POINT_EVENTS = ("PointPositionDefinedEvent", "PointRemovedEvent", "PointModifiedEvent")


class LesionPanel(VTKObservationMixin):
    """Keeps ``ui.lesionTable`` in step with the prompt point list."""

    def __init__(self, ui, parameterNode: Callable[[], object]) -> None:
        VTKObservationMixin.__init__(self)
        self.ui, self.parameterNode = ui, parameterNode
        self._observed = None
        ui.lesionTable.setColumnCount(2)
        ui.lesionTable.setHorizontalHeaderLabels(["Lesion", "Volume"])
        ui.addLesionButton.clicked.connect(self.onAddLesion)
        ui.removeLesionButton.clicked.connect(self.onRemoveLesion)
        ui.lesionTable.itemChanged.connect(self.onItemChanged)

    def promptNode(self):
        """The point list for lesion prompts, created on first use."""
        parameters = self.parameterNode()
        if parameters.promptNode is None:
            parameters.promptNode = slicer.mrmlScene.AddNewNodeByClass(
                "vtkMRMLMarkupsFiducialNode", "LinGuinE lesions")
        return parameters.promptNode

    def observe(self, node) -> None:
        if node is self._observed:
            return
        if self._observed is not None:
            for event in _POINT_EVENTS:
                self.removeObserver(self._observed, getattr(slicer.vtkMRMLMarkupsNode, event), self.onPointsChanged)
        self._observed = node
        if node is not None:
            for event in _POINT_EVENTS:
                self.addObserver(node, getattr(slicer.vtkMRMLMarkupsNode, event), self.onPointsChanged)

    def onAddLesion(self) -> None:
        """Enter point placement: the next click in a view is the next lesion."""
        node = self.promptNode()
        self.observe(node)
        appLogic = slicer.app.applicationLogic()
        selection = appLogic.GetSelectionNode()
        selection.SetReferenceActivePlaceNodeClassName("vtkMRMLMarkupsFiducialNode")
        selection.SetActivePlaceNodeID(node.GetID())
        interaction = appLogic.GetInteractionNode()
        interaction.SetPlaceModePersistence(0)
        interaction.SetCurrentInteractionMode(interaction.Place)

    def onRemoveLesion(self) -> None:
        node = self.parameterNode().promptNode
        row = self.ui.lesionTable.currentRow()
        if node is not None and 0 <= row < node.GetNumberOfControlPoints():
            node.RemoveNthControlPoint(row)

    def onPointsChanged(self, caller, event) -> None:
        """Name points that still carry Markups' default label, and tie each to its volume."""
        node = caller
        names = [node.GetNthControlPointLabel(i) for i in range(node.GetNumberOfControlPoints())]
        defaultPrefix = f"{node.GetName()}-"  # Markups' own "%N-%d" labels
        for i in range(node.GetNumberOfControlPoints()):
            if node.GetNthControlPointPositionStatus(i) != node.PositionDefined:
                continue
            label = node.GetNthControlPointLabel(i)
            if not node.GetNthControlPointDescription(i) and (not label or label.startswith(defaultPrefix)):
                wanted = self.ui.lesionNameLineEdit.text.strip()
                node.SetNthControlPointLabel(i, wanted if wanted and wanted not in names else f"Lesion {i + 1}")
                node.SetNthControlPointDescription(i, "LinGuinE lesion prompt")
                self.ui.lesionNameLineEdit.text = ""
            if not node.GetNthControlPointAssociatedNodeID(i):
                volume = backgroundVolumeAt(node, i)
                if volume is not None:
                    node.SetNthControlPointAssociatedNodeID(i, volume.GetID())
                    rememberSequenceItem(node, i, volume)
        self.update()

    def update(self) -> None:
        parameters = self.parameterNode()
        node = parameters.promptNode if parameters else None
        self.observe(node)
        table = self.ui.lesionTable
        table.blockSignals(True)
        count = node.GetNumberOfControlPoints() if node is not None else 0
        table.setRowCount(count)
        for i in range(count):
            volume = slicer.mrmlScene.GetNodeByID(node.GetNthControlPointAssociatedNodeID(i) or "")
            table.setItem(i, 0, qt.QTableWidgetItem(node.GetNthControlPointLabel(i)))
            where = qt.QTableWidgetItem(volume.GetName() if volume is not None else "(by position)")
            where.setFlags(qt.Qt.ItemIsEnabled)
            table.setItem(i, 1, where)
        table.blockSignals(False)

    def onItemChanged(self, item) -> None:
        node = self.parameterNode().promptNode
        if node is not None and item.column() == 0 and item.row() < node.GetNumberOfControlPoints():
            node.SetNthControlPointLabel(item.row(), item.text())


def rememberSequenceItem(node, index: int, volume) -> None:
    """On a sequence's proxy volume, note which item was shown when the point was placed."""
    from LinGuinELogic.scene import SEQUENCE_ITEM_ATTRIBUTE

    browser = slicer.modules.sequences.logic().GetFirstBrowserNodeForProxyNode(volume)
    if browser is not None:
        key = f"{SEQUENCE_ITEM_ATTRIBUTE}.{node.GetNthControlPointID(index)}"
        node.SetAttribute(key, str(browser.GetSelectedItemNumber()))


def backgroundVolumeAt(node, index: int):
    """The slice views' background volume that contains the point: the one it was placed on
    (world position against each volume's world grid, so a volume under a transform counts).

    A sequence's proxy node counts too; the logic maps it to the sequence item shown.
    """
    from LinGuinELogic.volumes import volume_at

    position = [0.0, 0.0, 0.0]
    node.GetNthControlPointPositionWorld(index, position)
    candidates = []
    for composite in slicer.util.getNodesByClass("vtkMRMLSliceCompositeNode"):
        volume = slicer.mrmlScene.GetNodeByID(composite.GetBackgroundVolumeID() or "")
        if volume is not None and volume not in candidates:
            candidates.append(volume)
    return volume_at(candidates, position)
