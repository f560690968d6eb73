"""LinGuinE: track lesions across every scan of a longitudinal CT study from one prompt.

This file holds only Slicer's Module, Widget and Test classes. The logic (MRML <-> LinGuinELib
adapters, no Qt) is in ``LinGuinELogic/``; the algorithms are in ``LinGuinELib`` (no Slicer).
"""

# No "from __future__ import annotations" here: parameterNodeWrapper reads the class annotations.
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
    """Wires the .ui to the logic; panels in LinGuinEGui do the table work."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._job = None
        self._timer = qt.QTimer()
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._pollJob)

    # --- set-up ----------------------------------------------------------------------------
    def setup(self) -> None:
        from LinGuinEGui.lesion_panel import LesionPanel
        from LinGuinEGui.study_panel import StudyPanel

        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/LinGuinE.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = LinGuinELogic()
        self.studyPanel = StudyPanel(self.ui, self.logic, self.updateGuiState)
        self.lesionPanel = LesionPanel(self.ui, lambda: self._parameterNode)

        self.ui.cancelButton.enabled = False
        self.ui.progressBar.hide()
        self.ui.tableSelector.addAttribute("vtkMRMLTableNode", "LinGuinE.Role", "trajectory")

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.NodeAddedEvent, self.onNodeAddedOrRemoved)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.NodeRemovedEvent, self.onNodeAddedOrRemoved)

        self.ui.pointsPromptRadioButton.toggled.connect(self.updateGuiState)
        self.ui.registrationComboBox.currentTextChanged.connect(self.onBackendChanged)
        self.ui.segmentationComboBox.currentTextChanged.connect(self.onBackendChanged)
        self.ui.installTorchButton.clicked.connect(self.onInstallTorch)
        self.ui.applyButton.clicked.connect(self.onApplyButton)
        self.ui.cancelButton.clicked.connect(self.onCancelButton)
        self.ui.remeasureButton.clicked.connect(self.onRemeasure)
        self.ui.segmentEditorButton.clicked.connect(self.onOpenSegmentEditor)
        self.ui.exportButton.clicked.connect(self.onExport)
        self.ui.resultTableView.clicked.connect(lambda index: self.showRow(index.row()))

        self.fillBackendCombos()
        self.initializeParameterNode()
        self.studyPanel.refresh()

    def cleanup(self) -> None:
        if self._job is not None:
            self._job.cancel()
        self._timer.stop()
        self.removeObservers()
        self.lesionPanel.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()
        self.studyPanel.refresh()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateGuiState)

    def onSceneStartClose(self, caller, event) -> None:
        if self._job is not None:  # its volumes are going away: stop it and drop whatever it returns
            self._job.cancel()
            self._job = None
            self._timer.stop()
            self.ui.progressBar.hide()
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()
        self.studyPanel.refresh()

    @vtk.calldata_type(vtk.VTK_OBJECT)
    def onNodeAddedOrRemoved(self, caller, event, node) -> None:
        if node is not None and node.IsA("vtkMRMLScalarVolumeNode"):
            qt.QTimer.singleShot(0, self.studyPanel.refresh)  # once the node is fully set up

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

    def updateGuiState(self, caller=None, event=None) -> None:
        if not self._parameterNode:
            return
        usePoints = self.ui.pointsPromptRadioButton.checked
        self.ui.pointsPromptFrame.visible = usePoints
        self.ui.segmentPromptFrame.visible = not usePoints
        self.lesionPanel.update()
        running = self._job is not None
        self.ui.applyButton.enabled = not running and len(self.studyPanel.selectedNodes()) >= 1
        self.ui.cancelButton.enabled = running
        hasResult = self._parameterNode.tableNode is not None
        for button in (self.ui.remeasureButton, self.ui.exportButton, self.ui.segmentEditorButton):
            button.enabled = hasResult and not running
        self.ui.resultTableView.setMRMLTableNode(self._parameterNode.tableNode)

    # --- settings --------------------------------------------------------------------------
    def fillBackendCombos(self) -> None:
        """Usable backends only; the others are named with the reason below the combo boxes."""
        from LinGuinELogic.dependencies import missing_requirements

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
                prompt, segmentIds = self.lesionPanel.promptNode(), None
            else:
                prompt = self.ui.segmentPromptSelector.currentNode()
                segmentIds = list(self.ui.segmentPromptSelector.selectedSegmentIDs()) or None
            prepared = self.logic.prepare(self.studyPanel.selectedNodes(), prompt, segmentIds)
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
        """QTimer slot: show progress (stage + scan); build the nodes once the worker is done."""
        from LinGuinEGui.results_view import followLayoutTableClicks, showResults

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
                showResults(output.tableNode, output.chartNode)
                followLayoutTableClicks(self.onLayoutTableClicked)
                self.showRow(0)
                self.ui.statusLabel.text = f"Done in {job.elapsed_s:.0f} s."
        self.updateGuiState()

    # --- results and ground truth ----------------------------------------------------------
    def showRow(self, row: int) -> None:
        from LinGuinEGui.results_view import showRow

        tableNode = self._parameterNode.tableNode if self._parameterNode else None
        if tableNode is None or row < 0 or row >= tableNode.GetTable().GetNumberOfRows():
            return
        with slicer.util.tryWithErrorDisplay("Cannot show this row."):
            showRow(self.logic, tableNode, row, self.ui.sequenceSelector.currentNode())

    def onLayoutTableClicked(self, tableNode, row: int) -> None:
        """A click in the layout's table view: follow it when it shows a trajectory table."""
        if tableNode is None or tableNode.GetAttribute("LinGuinE.Role") != "trajectory":
            return
        if self._parameterNode.tableNode is not tableNode:
            self._parameterNode.tableNode = tableNode
        self.showRow(row)

    def onRemeasure(self) -> None:
        with slicer.util.tryWithErrorDisplay("Re-measure failed.", waitCursor=True):
            rows = self.logic.remeasure(self._parameterNode.tableNode)
            self.ui.statusLabel.text = f"Re-measured {len(rows)} rows from the current segments."

    def onOpenSegmentEditor(self) -> None:
        from LinGuinEGui.results_view import openSegmentEditor

        with slicer.util.tryWithErrorDisplay("Cannot open Segment Editor."):
            row = self.ui.resultTableView.currentIndex().row()
            openSegmentEditor(self.logic, self._parameterNode.tableNode, row)

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

    def test_LinGuinE_demo_through_widget(self) -> None:
        from LinGuinEGui.selftest import runDemoThroughWidget

        runDemoThroughWidget(self)
