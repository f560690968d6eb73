"""The study list: the scene's volumes in time order, a Use tick and an editable timepoint each."""

from __future__ import annotations

from collections.abc import Callable

import qt
import slicer

COLUMNS = ("Use", "Volume", "Timepoint", "From")
USE, NAME, WHEN, SOURCE = range(4)


class StudyPanel:
    """Fills ``ui.volumeTable`` from the logic and reads back what the user chose."""

    def __init__(self, ui, logic, changed: Callable[[], None]) -> None:
        self.ui, self.logic, self.changed = ui, logic, changed
        self._updating = False
        table = ui.volumeTable
        table.setColumnCount(len(COLUMNS))
        table.setHorizontalHeaderLabels(COLUMNS)
        table.itemChanged.connect(self.onItemChanged)
        ui.refreshVolumesButton.clicked.connect(self.refresh)
        ui.sequenceSelector.currentNodeChanged.connect(lambda _node: changed())

    def refresh(self) -> None:
        """List the scene's volumes in time order; keep the user's Use ticks."""
        table = self.ui.volumeTable
        unticked = set()
        for row in range(table.rowCount):
            item = table.item(row, USE)
            if item is not None and item.checkState() == qt.Qt.Unchecked:
                unticked.add(item.data(qt.Qt.UserRole))
        self._updating = True
        try:
            volumes = self.logic.studyVolumes()
            table.setRowCount(len(volumes))
            for row, volume in enumerate(volumes):
                node_id = volume.node.GetID()
                use = qt.QTableWidgetItem()
                use.setFlags(qt.Qt.ItemIsUserCheckable | qt.Qt.ItemIsEnabled)
                use.setData(qt.Qt.UserRole, node_id)
                use.setCheckState(qt.Qt.Unchecked if node_id in unticked else qt.Qt.Checked)
                name = qt.QTableWidgetItem(volume.node.GetName())
                name.setFlags(qt.Qt.ItemIsEnabled)
                when = qt.QTableWidgetItem(volume.timepoint.text)
                when.setToolTip("Double-click to set a date (YYYY-MM-DD) or a label (baseline, week_12)")
                source = qt.QTableWidgetItem(volume.timepoint.source)
                source.setFlags(qt.Qt.ItemIsEnabled)
                for column, item in enumerate((use, name, when, source)):
                    table.setItem(row, column, item)
            table.resizeColumnsToContents()
        finally:
            self._updating = False
        self.changed()

    def onItemChanged(self, item) -> None:
        if self._updating:
            return
        if item.column() == USE:
            self.changed()
        elif item.column() == WHEN:
            node_id = self.ui.volumeTable.item(item.row(), USE).data(qt.Qt.UserRole)
            node = slicer.mrmlScene.GetNodeByID(node_id)
            if node is not None:
                self.logic.setTimepoint(node, item.text())
                qt.QTimer.singleShot(0, self.refresh)  # re-order after the edit

    def selectedNodes(self) -> list:
        """The sequence when one is chosen, else the ticked volumes."""
        sequence = self.ui.sequenceSelector.currentNode()
        if sequence is not None:
            return [sequence]
        table = self.ui.volumeTable
        nodes = []
        for row in range(table.rowCount):
            item = table.item(row, USE)
            if item is not None and item.checkState() == qt.Qt.Checked:
                node = slicer.mrmlScene.GetNodeByID(item.data(qt.Qt.UserRole))
                if node is not None:
                    nodes.append(node)
        return nodes
