"""LinGuinE: track lesions across every scan of a longitudinal CT study from one prompt.

This file holds only Slicer's Module, Widget and Test classes. The logic (MRML <-> LinGuinELib
adapters, no Qt) is in ``LinGuinELogic/``; the algorithms are in ``LinGuinELib`` (no Slicer).
It must load on any Slicer 5.x (Python 3.9 included) to say clearly when this Slicer is too old.
"""

# No "from __future__ import annotations" here: parameterNodeWrapper reads the class annotations.
import logging
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

# LinGuinELib needs Python 3.10 (Slicer 5.10 and later); on an older Slicer the module only says so.
SUPPORTED = sys.version_info >= (3, 10)
TOO_OLD = (f"LinGuinE needs 3D Slicer 5.10 or newer (Python 3.10+); this Slicer runs Python "
           f"{sys.version_info[0]}.{sys.version_info[1]}.")
if SUPPORTED:
    from LinGuinELogic import LinGuinELogic  # noqa: E402  (re-exported for the Python console)
    from LinGuinELogic.settings import parameter_fields  # noqa: E402
else:
    LinGuinELogic = None

__all__ = ["LinGuinE", "LinGuinELogic", "LinGuinEWidget", "LinGuinETest"]

POLL_MS = 200
WARM_DELAY_MS = 1500  # the study worker (re)starts once the study and settings have stopped changing


class LinGuinE(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "LinGuinE"
        self.parent.categories = ["Quantification"]
        # Modules whose logics the module uses (Slicer loads them first).
        self.parent.dependencies = ["Markups", "Segmentations", "Sequences", "Plots"]
        self.parent.contributors = ["LinGuinE for 3D Slicer contributors"]
        self.parent.helpText = (
            "Track lesions across every scan of a longitudinal CT study from one point (or segment) "
            "per lesion: the scan with the prompt is registered to each other scan, the lesion centre "
            "is mapped there and segmented, and the trajectory (volume, diameters, response) is "
            "tabulated and plotted. Edit results with Segment Editor, then Re-measure and Export."
        ) + ("" if SUPPORTED else " " + TOO_OLD)
        self.parent.acknowledgementText = (
            "Method after LinGuinE (Garibli et al.); implementation independent. "
            "Learned backends use third-party weights under their own licenses."
        )


def _parameterNodeClass():
    """The parameterNodeWrapper class, derived from TrackingConfig's declared options.

    Options with choices or bounds are bound to the .ui (SlicerParameterName = the camelCase
    name); registration, segmentation and device are set by the widget, whose combo items depend
    on what can run here (the node's own backends are always listed: a scene keeps its choice).
    Backend paths are application settings, not scene content.
    """
    annotations = {"promptNode": vtkMRMLMarkupsFiducialNode, "tableNode": vtkMRMLTableNode}
    defaults = {}
    for field in parameter_fields() if SUPPORTED else []:
        kind = field.kind
        if field.choices:
            kind = Annotated[kind, Choice(list(field.choices))]
        elif field.minimum is not None:
            kind = Annotated[kind, WithinRange(field.minimum, field.maximum)]
        annotations[field.parameter] = kind
        defaults[field.parameter] = field.default
    namespace = {"__annotations__": annotations, "__module__": __name__, **defaults,
                 "__doc__": "The module's settings, saved with the scene."}
    return parameterNodeWrapper(type("LinGuinEParameterNode", (), namespace))


LinGuinEParameterNode = _parameterNodeClass()


class LinGuinEWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Wires the .ui to the logic; panels in LinGuinEGui do the table work."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._job = None
        self._studyListStale = False
        self._timer = qt.QTimer()
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._pollJob)
        self._warmTimer = qt.QTimer()
        self._warmTimer.setSingleShot(True)
        self._warmTimer.setInterval(WARM_DELAY_MS)
        self._warmTimer.timeout.connect(self.warmStudy)

    # --- set-up ----------------------------------------------------------------------------
    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        if not SUPPORTED:
            self.layout.addWidget(qt.QLabel(TOO_OLD))
            return
        from LinGuinEGui.backend_panel import BackendPanel
        from LinGuinEGui.device_panel import DevicePanel
        from LinGuinEGui.lesion_panel import LesionPanel
        from LinGuinEGui.study_panel import StudyPanel

        uiWidget = slicer.util.loadUI(self.resourcePath("UI/LinGuinE.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = LinGuinELogic()
        self.studyPanel = StudyPanel(self.ui, self.logic, self.updateGuiState)
        self.lesionPanel = LesionPanel(self.ui, lambda: self._parameterNode)
        self.backendPanel = BackendPanel(self.ui, self.logic, lambda: self._parameterNode)
        self.devicePanel = DevicePanel(self.ui, lambda: self._parameterNode, self.backendPanel)

        self.ui.cancelButton.enabled = False
        self.ui.progressBar.hide()
        self.ui.tableSelector.addAttribute("vtkMRMLTableNode", "LinGuinE.Role", "trajectory")
        radius = next(f for f in parameter_fields() if f.parameter == "searchRadiusMm")
        self.ui.searchRadiusSpinBox.minimum = radius.minimum
        self.ui.searchRadiusSpinBox.maximum = radius.maximum
        self.ui.searchRadiusSpinBox.toolTip = radius.help

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.NodeAddedEvent, self.onNodeAddedOrRemoved)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.NodeRemovedEvent, self.onNodeAddedOrRemoved)

        self.ui.pointsPromptRadioButton.toggled.connect(self.updateGuiState)
        self.ui.applyButton.clicked.connect(self.onApplyButton)
        self.ui.cancelButton.clicked.connect(self.onCancelButton)
        self.ui.remeasureButton.clicked.connect(self.onRemeasure)
        self.ui.segmentEditorButton.clicked.connect(self.onOpenSegmentEditor)
        self.ui.exportButton.clicked.connect(self.onExport)
        self.ui.resultTableView.clicked.connect(lambda index: self.showRow(index.row()))

        self.devicePanel.fill(["cpu"])
        self.backendPanel.fill()
        self.devicePanel.startProbe()  # before the parameter node: a saved cuda waits for its answer
        self.initializeParameterNode()
        self.studyPanel.refresh()

    def cleanup(self) -> None:
        """The widget goes away (Reload, application exit): no tracking process may outlive it."""
        if self._job is not None:
            self._job.close()
            self._job = None
        self._timer.stop()
        self._warmTimer.stop()
        if self.logic is not None:
            self.logic.closeStudyWorker()
        self.removeObservers()
        if SUPPORTED:
            self.lesionPanel.removeObservers()

    def onReload(self) -> None:
        """Reload LinGuinELogic, LinGuinEGui and LinGuinELib too, not only this file."""
        from LinGuinELogic.dependencies import unload_module_packages

        unload_module_packages()
        ScriptedLoadableModuleWidget.onReload(self)

    def enter(self) -> None:
        if not SUPPORTED:
            return
        self.initializeParameterNode()
        if self._studyListStale:
            self.studyPanel.refresh()
            self._studyListStale = False

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateGuiState)

    def onSceneStartClose(self, caller, event) -> None:
        if self._job is not None:  # its volumes are going away: stop it and drop whatever it returns
            self._job.close()
            self._job = None
            self._timer.stop()
            self.ui.progressBar.hide()
        self._warmTimer.stop()
        self.logic.closeStudyWorker()  # its scans are going away
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()
        self.studyPanel.refresh()

    @vtk.calldata_type(vtk.VTK_OBJECT)
    def onNodeAddedOrRemoved(self, caller, event, node) -> None:
        """A study volume came or went: refresh the list now if it is shown, else when it is."""
        from LinGuinELogic.volumes import is_study_volume

        if node is None or not node.IsA("vtkMRMLScalarVolumeNode") or not is_study_volume(node):
            return  # temporary labelmaps (Re-measure, Export) and hidden volumes do not count
        if self.parent.isEntered:
            qt.QTimer.singleShot(0, self.studyPanel.refresh)  # once the node is fully set up
        else:
            self._studyListStale = True

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
            self.backendPanel.showParameters()
            self.devicePanel.showParameter()
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
        if not running and self.parent.isEntered:
            self._warmTimer.start()  # (re)started on every change: the worker follows the settled inputs

    # --- apply / progress / cancel ---------------------------------------------------------
    def trackingConfig(self):
        """The config from the parameter node's settings and the backends' application settings."""
        from LinGuinELogic.settings import config_from_parameters

        p = self._parameterNode
        values = {f.parameter: getattr(p, f.parameter) for f in parameter_fields()}
        return config_from_parameters(values, self.backendPanel.backendOptions())

    def onApplyButton(self) -> None:
        """Convert on the main thread, track in a child process, poll it with a QTimer."""
        from LinGuinELogic.dependencies import ensure_requirements

        from LinGuinELib.errors import InputError

        try:
            with slicer.util.tryWithErrorDisplay("LinGuinE could not start.", waitCursor=True):
                if ensure_requirements():
                    self.backendPanel.fill()  # the learned backends can be checked only now
                self.backendPanel.updateStatus()
                problems = self.backendPanel.problems()
                if problems:  # said here at once, not by the tracking process after its start-up
                    raise InputError("; ".join(problems))
                config = self.trackingConfig()
                if self.ui.pointsPromptRadioButton.checked:
                    prompt, segmentIds = self.lesionPanel.promptNode(), None
                else:
                    prompt = self.ui.segmentPromptSelector.currentNode()
                    segmentIds = list(self.ui.segmentPromptSelector.selectedSegmentIDs()) or None
                prepared = self.logic.prepare(self.studyPanel.selectedNodes(), prompt, segmentIds)
                environment = self.backendPanel.settings.child_environment(config)
                self._job = self.logic.startTracking(prepared, config, environment, keepStudyOpen=True)
                self.ui.progressBar.show()
                self.ui.progressBar.setRange(0, 0)
                self.ui.statusLabel.text = "Starting the tracking process..."
                self._timer.start()
        except Exception as exc:  # shown by tryWithErrorDisplay; the panel must stay usable
            self.ui.statusLabel.text = f"Could not start: {exc}"
        finally:
            self.updateGuiState()

    def warmStudy(self) -> None:
        """Open the chosen study in the background worker, so that Apply costs only the lesions.

        Runs on the warm timer once the inputs have settled; the logic keeps a worker started for
        the same volumes and settings, and replaces one started for others. A failure here is only
        logged: Apply starts the worker itself and reports any problem.
        """
        if self._job is not None or not self._parameterNode or not self.parent.isEntered:
            return
        nodes = self.studyPanel.selectedNodes()
        if not nodes:
            self.logic.closeStudyWorker()
            return
        if self.backendPanel.problems():
            return
        try:
            config = self.trackingConfig()
            worker = self.logic.warmStudy(nodes, config, self.backendPanel.settings.child_environment(config))
        except Exception as exc:  # a background convenience: Apply says what is wrong
            logging.info("LinGuinE: the study was not opened in the background: %s", exc)
            return
        if not worker.warm:  # a new study, or other registration settings
            self.ui.statusLabel.text = "Study set: its scans are being registered in the background."

    def onCancelButton(self) -> None:
        if self._job is not None:
            self._job.cancel()  # kills the process tree; the next poll tidies up
            self.ui.statusLabel.text = "Cancelling..."

    def _pollJob(self) -> None:
        """QTimer slot: show progress (stage, lesion, scan); build the nodes once the child is done."""
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
        try:
            self._finish(job)
        finally:
            self.updateGuiState()  # whatever happened, Track is usable again

    def _finish(self, job) -> None:
        """Main thread: the child's result into the scene (all nodes or none), or say why not."""
        from LinGuinEGui.results_view import followLayoutTableClicks, showResults

        if job.cancelled:
            job.close()
            self.ui.statusLabel.text = "Cancelled: nothing was added to the scene."
            return
        failure = self.logic.trackingFailure(job)
        if failure is not None:
            job.close()
            self.ui.statusLabel.text = failure.message
            slicer.util.errorDisplay(failure.message, detailedText=failure.details)
            return
        try:
            with slicer.util.tryWithErrorDisplay("Could not add the results to the scene."):
                output = self.logic.finishTracking(job)
        except Exception:  # already shown; the logic removed any half-made nodes
            self.ui.statusLabel.text = "Failed while adding the results: nothing was added."
            return
        self._parameterNode.tableNode = output.tableNode
        self.ui.statusLabel.text = f"Done in {job.elapsed_s:.0f} s."
        try:
            with slicer.util.tryWithErrorDisplay("The results are in the scene but could not be shown."):
                showResults(output.tableNode, output.chartNode)
                followLayoutTableClicks(self.onLayoutTableClicked)
                self.showRow(0)
        except Exception:  # already shown; the results stay in the scene
            pass

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
            self.ui.exportDirectoryPathLineEdit.addCurrentPathToHistory()  # remembered (settingKey)
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
