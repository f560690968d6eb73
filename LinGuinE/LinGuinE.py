"""LinGuinE: track lesions across every scan of a longitudinal CT study from one prompt.

This file holds only Slicer's Module, Widget and Test classes. The logic (MRML <-> LinGuinELib
adapters, no Qt) is in ``LinGuinELogic/``; the algorithms are in ``LinGuinELib`` (no Slicer).
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import qt
import slicer
import vtk
from slicer import vtkMRMLMarkupsFiducialNode, vtkMRMLTableNode
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

_HERE = os.path.dirname(os.path.abspath(__file__))
# From a source checkout (module path = <repo>/LinGuinE) LinGuinELib sits one level up; an
# installed extension has it next to this file.
if not os.path.isdir(os.path.join(_HERE, "LinGuinELib")) and os.path.isdir(
    os.path.join(_HERE, "..", "LinGuinELib")
):
    sys.path.insert(0, os.path.normpath(os.path.join(_HERE, "..")))

from LinGuinELogic import LinGuinELogic  # noqa: E402  (re-exported for the Python console)

__all__ = ["LinGuinE", "LinGuinELogic", "LinGuinEWidget", "LinGuinETest"]

POLL_MS = 200
VOLUME_COLUMNS = ("Use", "Volume", "Timepoint", "From")


class LinGuinE(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "LinGuinE"
        self.parent.categories = ["Quantification"]
        self.parent.dependencies = []
        self.parent.contributors = ["LinGuinE for 3D Slicer contributors"]
        self.parent.helpText = (
            "Track lesions across every scan of a longitudinal CT study from one point (or segment) "
            "per lesion: the scan with the prompt is registered to each other scan, the lesion centre "
            "is mapped there and segmented, and the trajectory (volume, diameters, response) is "
            "tabulated and plotted. Edit results with Segment Editor, then Re-measure and Export."
        )
        self.parent.acknowledgementText = (
            "Method after LinGuinE (Garibli et al.); implementation independent. "
            "Learned backends use third-party weights under their own licenses."
        )


@parameterNodeWrapper
class LinGuinEParameterNode:
    """The module's settings, saved with the scene and bound to the .ui by SlicerParameterName."""

    promptNode: vtkMRMLMarkupsFiducialNode
    registration: str = "classical"
    segmentation: str = "classical"
    mode: Annotated[str, Choice(["direct", "chain"])] = "direct"
    boost: bool = False
    device: Annotated[str, Choice(["cpu", "cuda"])] = "cpu"
    searchRadiusMm: Annotated[float, WithinRange(1.0, 100.0)] = 10.0
    tableNode: vtkMRMLTableNode


class LinGuinEWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._job = None
        self._observedPromptNode = None
        self._updatingVolumeTable = False
        self._timer = qt.QTimer()
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._pollJob)

    # --- set-up ----------------------------------------------------------------------------
    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/LinGuinE.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = LinGuinELogic()

        self.ui.volumeTable.setColumnCount(len(VOLUME_COLUMNS))
        self.ui.volumeTable.setHorizontalHeaderLabels(VOLUME_COLUMNS)
        self.ui.lesionTable.setColumnCount(2)
        self.ui.lesionTable.setHorizontalHeaderLabels(["Lesion", "Volume"])
        self.ui.cancelButton.enabled = False
        self.ui.progressBar.hide()
        self.ui.tableSelector.addAttribute("vtkMRMLTableNode", "LinGuinE.Role", "trajectory")

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.NodeAddedEvent, self.onNodeAddedOrRemoved)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.NodeRemovedEvent, self.onNodeAddedOrRemoved)

        self.ui.refreshVolumesButton.clicked.connect(self.refreshVolumeTable)
        self.ui.sequenceSelector.currentNodeChanged.connect(self.updateGuiState)
        self.ui.volumeTable.itemChanged.connect(self.onVolumeItemChanged)
        self.ui.addLesionButton.clicked.connect(self.onAddLesion)
        self.ui.removeLesionButton.clicked.connect(self.onRemoveLesion)
        self.ui.lesionTable.itemChanged.connect(self.onLesionItemChanged)
        self.ui.pointsPromptRadioButton.toggled.connect(self.updateGuiState)
        self.ui.registrationComboBox.currentTextChanged.connect(self.onBackendChanged)
        self.ui.segmentationComboBox.currentTextChanged.connect(self.onBackendChanged)
        self.ui.installTorchButton.clicked.connect(self.onInstallTorch)
        self.ui.applyButton.clicked.connect(self.onApplyButton)
        self.ui.cancelButton.clicked.connect(self.onCancelButton)
        self.ui.remeasureButton.clicked.connect(self.onRemeasure)
        self.ui.segmentEditorButton.clicked.connect(self.onOpenSegmentEditor)
        self.ui.exportButton.clicked.connect(self.onExport)
        self.ui.resultTableView.clicked.connect(self.onResultRowClicked)

        self.fillBackendCombos()
        self.initializeParameterNode()
        self.refreshVolumeTable()

    def cleanup(self) -> None:
        if self._job is not None:
            self._job.cancel()
        self._timer.stop()
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()
        self.refreshVolumeTable()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateGuiState)

    def onSceneStartClose(self, caller, event) -> None:
        if self._job is not None:
            self._job.cancel()
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()
        self.refreshVolumeTable()

    @vtk.calldata_type(vtk.VTK_OBJECT)
    def onNodeAddedOrRemoved(self, caller, event, node) -> None:
        if node is not None and node.IsA("vtkMRMLScalarVolumeNode"):
            qt.QTimer.singleShot(0, self.refreshVolumeTable)  # after the node is fully set up

    def initializeParameterNode(self) -> None:
        self.setParameterNode(LinGuinEParameterNode(self.logic.getParameterNode()))

    def setParameterNode(self, inputParameterNode) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateGuiState)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateGuiState)
            self.ui.registrationComboBox.setCurrentText(self._parameterNode.registration)
            self.ui.segmentationComboBox.setCurrentText(self._parameterNode.segmentation)
        self.updateGuiState()

    # --- study -----------------------------------------------------------------------------
    def refreshVolumeTable(self) -> None:
        """List the scene's volumes in time order; keep the user's Use ticks."""
        table = self.ui.volumeTable
        unticked = set()
        for row in range(table.rowCount):
            item = table.item(row, 0)
            if item is not None and item.checkState() == qt.Qt.Unchecked:
                unticked.add(item.data(qt.Qt.UserRole))
        self._updatingVolumeTable = True
        try:
            volumes = self.logic.studyVolumes()
            table.setRowCount(len(volumes))
            for row, volume in enumerate(volumes):
                use = qt.QTableWidgetItem()
                use.setFlags(qt.Qt.ItemIsUserCheckable | qt.Qt.ItemIsEnabled)
                use.setData(qt.Qt.UserRole, volume.node.GetID())
                use.setCheckState(qt.Qt.Unchecked if volume.node.GetID() in unticked else qt.Qt.Checked)
                name = qt.QTableWidgetItem(volume.node.GetName())
                name.setFlags(qt.Qt.ItemIsEnabled)
                when = qt.QTableWidgetItem(volume.timepoint.text)
                when.setToolTip("Edit to set this volume's date (YYYY-MM-DD) or label (baseline, week_12)")
                source = qt.QTableWidgetItem(volume.timepoint.source)
                source.setFlags(qt.Qt.ItemIsEnabled)
                for column, item in enumerate((use, name, when, source)):
                    table.setItem(row, column, item)
            table.resizeColumnsToContents()
        finally:
            self._updatingVolumeTable = False
        self.updateGuiState()

    def onVolumeItemChanged(self, item) -> None:
        if self._updatingVolumeTable or item.column() != 2:
            return
        node = slicer.mrmlScene.GetNodeByID(self.ui.volumeTable.item(item.row(), 0).data(qt.Qt.UserRole))
        if node is not None:
            self.logic.setTimepoint(node, item.text())
            qt.QTimer.singleShot(0, self.refreshVolumeTable)  # re-order after the edit

    def selectedStudyNodes(self) -> list:
        """The sequence when one is chosen, else the ticked volumes."""
        sequence = self.ui.sequenceSelector.currentNode()
        if sequence is not None:
            return [sequence]
        table = self.ui.volumeTable
        nodes = []
        for row in range(table.rowCount):
            item = table.item(row, 0)
            if item is not None and item.checkState() == qt.Qt.Checked:
                node = slicer.mrmlScene.GetNodeByID(item.data(qt.Qt.UserRole))
                if node is not None:
                    nodes.append(node)
        return nodes

    # --- lesions ---------------------------------------------------------------------------
    def promptNode(self):
        """The point list for lesion prompts, created on first use."""
        node = self._parameterNode.promptNode
        if node is None:
            node = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "LinGuinE lesions")
            self._parameterNode.promptNode = node
        return node

    def observePromptNode(self, node) -> None:
        if node is self._observedPromptNode:
            return
        if self._observedPromptNode is not None:
            for event in (slicer.vtkMRMLMarkupsNode.PointPositionDefinedEvent,
                          slicer.vtkMRMLMarkupsNode.PointRemovedEvent,
                          slicer.vtkMRMLMarkupsNode.PointModifiedEvent):
                self.removeObserver(self._observedPromptNode, event, self.onPromptPointsChanged)
        self._observedPromptNode = node
        if node is not None:
            for event in (slicer.vtkMRMLMarkupsNode.PointPositionDefinedEvent,
                          slicer.vtkMRMLMarkupsNode.PointRemovedEvent,
                          slicer.vtkMRMLMarkupsNode.PointModifiedEvent):
                self.addObserver(node, event, self.onPromptPointsChanged)

    def onAddLesion(self) -> None:
        """Enter point placement; the point becomes the next lesion."""
        node = self.promptNode()
        self.observePromptNode(node)
        selection = slicer.app.applicationLogic().GetSelectionNode()
        selection.SetReferenceActivePlaceNodeClassName("vtkMRMLMarkupsFiducialNode")
        selection.SetActivePlaceNodeID(node.GetID())
        interaction = slicer.app.applicationLogic().GetInteractionNode()
        interaction.SetPlaceModePersistence(0)
        interaction.SetCurrentInteractionMode(interaction.Place)

    def onRemoveLesion(self) -> None:
        node = self._parameterNode.promptNode
        row = self.ui.lesionTable.currentRow()
        if node is not None and 0 <= row < node.GetNumberOfControlPoints():
            node.RemoveNthControlPoint(row)

    def onPromptPointsChanged(self, caller, event) -> None:
        """Name new points "Lesion N" and tie each to the volume it was placed on."""
        node = caller
        names = [node.GetNthControlPointLabel(i) for i in range(node.GetNumberOfControlPoints())]
        defaultPrefix = f"{node.GetName()}-"  # Markups' own "%N-%d" labels
        for i in range(node.GetNumberOfControlPoints()):
            if node.GetNthControlPointPositionStatus(i) != node.PositionDefined:
                continue
            label = node.GetNthControlPointLabel(i)
            if not node.GetNthControlPointDescription(i) and (not label or label.startswith(defaultPrefix)):
                wanted = self.ui.lesionNameLineEdit.text.strip()
                label = wanted if wanted and wanted not in names else f"Lesion {i + 1}"
                node.SetNthControlPointLabel(i, label)
                node.SetNthControlPointDescription(i, "LinGuinE lesion prompt")
                self.ui.lesionNameLineEdit.text = ""
            if not node.GetNthControlPointAssociatedNodeID(i):
                volume = self._backgroundVolumeAt(node, i)
                if volume is not None:
                    node.SetNthControlPointAssociatedNodeID(i, volume.GetID())
        self.updateLesionTable()

    def _backgroundVolumeAt(self, node, index):
        """The slice views' background volume that contains the point (placement's volume)."""
        position = [0.0, 0.0, 0.0]
        node.GetNthControlPointPositionWorld(index, position)
        candidates = []
        for composite in slicer.util.getNodesByClass("vtkMRMLSliceCompositeNode"):
            volume = slicer.mrmlScene.GetNodeByID(composite.GetBackgroundVolumeID() or "")
            if volume is not None and volume not in candidates:
                candidates.append(volume)
        for volume in candidates:
            ijk = vtk.vtkMatrix4x4()
            volume.GetRASToIJKMatrix(ijk)
            point = ijk.MultiplyPoint([*position, 1.0])
            dims = volume.GetImageData().GetDimensions() if volume.GetImageData() else (0, 0, 0)
            if all(-0.5 <= point[a] <= dims[a] - 0.5 for a in range(3)):
                return volume
        return None

    def updateLesionTable(self) -> None:
        node = self._parameterNode.promptNode if self._parameterNode else None
        self.observePromptNode(node)
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

    def onLesionItemChanged(self, item) -> None:
        node = self._parameterNode.promptNode
        if node is not None and item.column() == 0 and item.row() < node.GetNumberOfControlPoints():
            node.SetNthControlPointLabel(item.row(), item.text())

    # --- settings --------------------------------------------------------------------------
    def fillBackendCombos(self) -> None:
        """Usable backends only; the others are named with the reason below the combo boxes."""
        reasons = []
        for kind, combo in (("registration", self.ui.registrationComboBox),
                            ("segmentation", self.ui.segmentationComboBox)):
            combo.blockSignals(True)
            combo.clear()
            for name, reason in self.logic.backendChoices(kind):
                if reason is None:
                    combo.addItem(name)
                else:
                    reasons.append(f"{kind} '{name}': {reason}")
            combo.blockSignals(False)
        from LinGuinELogic.dependencies import missing_requirements

        missing = missing_requirements()
        if missing:
            reasons.insert(0, f"Installed on first Apply: {', '.join(missing)}")
        self.ui.backendStatusLabel.text = "\n".join(reasons) if reasons else "All backends are usable."
        self.ui.installTorchButton.visible = any("torch" in r for r in reasons)

    def onBackendChanged(self, _text=None) -> None:
        if self._parameterNode:
            self._parameterNode.registration = self.ui.registrationComboBox.currentText or "classical"
            self._parameterNode.segmentation = self.ui.segmentationComboBox.currentText or "classical"

    def onInstallTorch(self) -> None:
        from LinGuinELogic.dependencies import install_torch_with_extension

        with slicer.util.tryWithErrorDisplay("Could not install PyTorch.", waitCursor=True):
            if not install_torch_with_extension():
                slicer.util.warningDisplay(
                    "Install the 'PyTorch' extension from the Extensions Manager, restart Slicer, "
                    "then press this button again.")
        self.fillBackendCombos()

    def updateGuiState(self, caller=None, event=None) -> None:
        if not self._parameterNode:
            return
        usePoints = self.ui.pointsPromptRadioButton.checked
        self.ui.pointsPromptFrame.visible = usePoints
        self.ui.segmentPromptFrame.visible = not usePoints
        self.updateLesionTable()
        running = self._job is not None
        self.ui.applyButton.enabled = not running and len(self.selectedStudyNodes()) >= 1
        self.ui.cancelButton.enabled = running
        hasResult = self._parameterNode.tableNode is not None
        for button in (self.ui.remeasureButton, self.ui.exportButton, self.ui.segmentEditorButton):
            button.enabled = hasResult and not running
        self.ui.resultTableView.setMRMLTableNode(self._parameterNode.tableNode)

    # --- apply / progress / cancel ---------------------------------------------------------
    def trackingConfig(self):
        from LinGuinELib.config import TrackingConfig

        p = self._parameterNode
        return TrackingConfig(registration=p.registration, segmentation=p.segmentation, mode=p.mode,
                              boost=p.boost, device=p.device, search_radius_mm=p.searchRadiusMm)

    def onApplyButton(self) -> None:
        """Convert on the main thread, track in a worker thread, poll with a QTimer."""
        from LinGuinELogic.dependencies import ensure_requirements

        with slicer.util.tryWithErrorDisplay("LinGuinE could not start.", waitCursor=True):
            if ensure_requirements():
                self.fillBackendCombos()  # the learned backends can be checked only now
            if self.ui.pointsPromptRadioButton.checked:
                prompt, segmentIds = self.promptNode(), None
            else:
                prompt = self.ui.segmentPromptSelector.currentNode()
                segmentIds = list(self.ui.segmentPromptSelector.selectedSegmentIDs()) or None
            prepared = self.logic.prepare(self.selectedStudyNodes(), prompt, segmentIds)
            self._job = self.logic.startTracking(prepared, self.trackingConfig())
            self.ui.progressBar.show()
            self.ui.progressBar.setRange(0, 0)
            self.ui.statusLabel.text = "Starting..."
            self._timer.start()
        self.updateGuiState()

    def onCancelButton(self) -> None:
        if self._job is not None:
            self._job.cancel()
            self.ui.statusLabel.text = "Cancelling after the current step..."

    def _pollJob(self) -> None:
        job = self._job
        if job is None:
            self._timer.stop()
            return
        events = job.poll()
        if events:
            last = events[-1]
            self.ui.progressBar.setRange(0, max(last.total, 1))
            self.ui.progressBar.setValue(last.done)
            self.ui.statusLabel.text = f"{last.stage}: {last.message} ({job.elapsed_s:.0f} s)"
        if not job.finished:
            return
        self._timer.stop()
        self._job = None
        self.ui.progressBar.hide()
        if job.cancelled:
            self.ui.statusLabel.text = "Cancelled: nothing was added to the scene."
        elif job.error is not None:
            self.ui.statusLabel.text = f"Failed: {job.error}"
            slicer.util.errorDisplay(f"Tracking failed: {job.error}")
        else:
            with slicer.util.tryWithErrorDisplay("Could not add the results to the scene."):
                output = self.logic.finishTracking(job)
                self._parameterNode.tableNode = output.tableNode
                self.showResults(output.tableNode, output.chartNode)
                self.ui.statusLabel.text = f"Done in {job.elapsed_s:.0f} s."
        self.updateGuiState()

    # --- results ---------------------------------------------------------------------------
    def showResults(self, tableNode, chartNode) -> None:
        layoutManager = slicer.app.layoutManager()
        layoutManager.setLayout(slicer.vtkMRMLLayoutNode.SlicerLayoutFourUpPlotTableView)
        appLogic = slicer.app.applicationLogic()
        appLogic.GetSelectionNode().SetActiveTableID(tableNode.GetID())
        appLogic.PropagateTableSelection()
        if chartNode is not None:
            slicer.modules.plots.logic().ShowChartInLayout(chartNode)
        if tableNode.GetTable().GetNumberOfRows():
            self.showRow(0)

    def onResultRowClicked(self, index) -> None:
        self.showRow(index.row())

    def showRow(self, row: int) -> None:
        """Show that lesion on that volume: background volume, its segment, slices centred."""
        tableNode = self._parameterNode.tableNode
        if tableNode is None:
            return
        with slicer.util.tryWithErrorDisplay("Cannot show this row."):
            volume, segmentation, segmentId = self.logic.rowTarget(tableNode, row)
            if volume.GetScene() is slicer.mrmlScene:
                slicer.util.setSliceViewerLayers(background=volume, fit=False)
            else:  # a sequence item: move its browser to that item
                from LinGuinELogic.record import run_scans

                self._showSequenceItem(tableNode, [s.volume for s in run_scans(tableNode)].index(volume))
            for other in slicer.util.getNodesByClass("vtkMRMLSegmentationNode"):
                if other.GetDisplayNode() is not None:
                    other.GetDisplayNode().SetVisibility(other is segmentation)
            display = segmentation.GetDisplayNode()
            if display is not None and segmentId:
                display.SetAllSegmentsVisibility(False)
                display.SetSegmentVisibility(segmentId, True)
            centre = self.logic.rowFocusRAS(tableNode, row)
            if centre is not None:
                slicer.modules.markups.logic().JumpSlicesToLocation(*centre, True)

    def _showSequenceItem(self, tableNode, index: int) -> None:
        sequence = self.ui.sequenceSelector.currentNode()
        if sequence is None:
            return
        browser = slicer.modules.sequences.logic().GetFirstBrowserNodeForSequenceNode(sequence)
        if browser is not None:
            browser.SetSelectedItemNumber(index)

    def onRemeasure(self) -> None:
        with slicer.util.tryWithErrorDisplay("Re-measure failed.", waitCursor=True):
            rows = self.logic.remeasure(self._parameterNode.tableNode)
            self.ui.statusLabel.text = f"Re-measured {len(rows)} rows from the current segments."

    def onOpenSegmentEditor(self) -> None:
        tableNode = self._parameterNode.tableNode
        row = max(self.ui.resultTableView.currentIndex().row(), 0)
        volume, segmentation, segmentId = self.logic.rowTarget(tableNode, row)
        slicer.util.selectModule("SegmentEditor")
        editor = slicer.modules.segmenteditor.widgetRepresentation().self().editor
        editor.setSegmentationNode(segmentation)
        if volume.GetScene() is slicer.mrmlScene:
            editor.setSourceVolumeNode(volume)
        if segmentId:
            editor.setCurrentSegmentID(segmentId)

    def onExport(self) -> None:
        directory = self.ui.exportDirectoryPathLineEdit.currentPath
        if not directory:
            slicer.util.warningDisplay("Choose an output folder first.")
            return
        with slicer.util.tryWithErrorDisplay("Export failed.", waitCursor=True):
            out = self.logic.export(self._parameterNode.tableNode, directory)
            self.ui.statusLabel.text = f"Exported to {out}"


class LinGuinETest(ScriptedLoadableModuleTest):
    """Runs the generated demo study through the widget: Apply, wait, check, re-measure, export."""

    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        self.setUp()
        self.test_LinGuinE_demo_through_widget()

    def _loadDemoStudy(self, folder: str):
        from LinGuinELib.geometry import lps_to_ras
        from LinGuinELib.prompt import mask_centre_lps
        from LinGuinELib.study.images import read_image
        from LinGuinELib.study.manifest import load_manifest
        from LinGuinELib.synthetic import make_study

        study = load_manifest(make_study(folder, n_scans=3, n_lesions=2, seed=0))
        volumes = {}
        for scan in study.scans:
            node = slicer.util.loadVolume(str(scan.path), {"name": scan.id, "show": False})
            self.logic.setTimepoint(node, scan.when)
            volumes[scan.id] = node
        points = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "demo prompts")
        for lesion in study.lesions:
            if lesion.points_lps is not None:
                lps = lesion.points_lps[0]
            else:
                mask = read_image(lesion.mask_path)
                lps = mask_centre_lps(slicer.util.sitkUtils.GetArrayFromImage(mask) > 0, mask)
            index = points.AddControlPoint(*lps_to_ras(lps), lesion.id)
            points.SetNthControlPointAssociatedNodeID(index, volumes[lesion.scan_id].GetID())
        return study, volumes, points

    def test_LinGuinE_demo_through_widget(self) -> None:
        import tempfile
        import time

        self.delayDisplay("Generating the synthetic demo study")
        self.logic = LinGuinELogic()
        folder = tempfile.mkdtemp(prefix="LinGuinE-selftest-")
        study, volumes, points = self._loadDemoStudy(folder)

        widget = slicer.modules.linguine.widgetRepresentation().self()
        widget.initializeParameterNode()
        widget._parameterNode.promptNode = points
        widget.ui.pointsPromptRadioButton.checked = True
        widget.refreshVolumeTable()
        self.assertEqual(widget.ui.volumeTable.rowCount, len(volumes))

        self.delayDisplay("Tracking (worker thread)")
        widget.onApplyButton()
        self.assertIsNotNone(widget._job, "Apply did not start a job")
        deadline = time.time() + 900
        while widget._job is not None and time.time() < deadline:
            slicer.app.processEvents()
            time.sleep(0.05)
        self.assertIsNone(widget._job, "tracking did not finish in 15 minutes")

        table = widget._parameterNode.tableNode
        self.assertIsNotNone(table, widget.ui.statusLabel.text)
        self.assertEqual(table.GetTable().GetNumberOfRows(), len(study.lesions) * len(volumes))
        segmentations = slicer.util.getNodesByClass("vtkMRMLSegmentationNode")
        self.assertEqual(len(segmentations), len(volumes))
        for node in segmentations:
            self.assertEqual(node.GetSegmentation().GetNumberOfSegments(), len(study.lesions))

        widget.showRow(1)
        rows = self.logic.remeasure(table)
        self.assertEqual(len(rows), len(study.lesions) * len(volumes))
        out = self.logic.export(table, os.path.join(folder, "export"))
        for name in ("trajectory.csv", "trajectory.png", "run.json"):
            self.assertTrue(os.path.isfile(os.path.join(out, name)), name)
        self.delayDisplay("LinGuinE self-test passed")
