"""The device combo box: ``cuda`` is offered only once torch, asked in a child process, has seen a
GPU (torch is never imported into Slicer's process for that); *Install PyTorch* installs it."""

from __future__ import annotations

from collections.abc import Callable

import qt
import slicer

PROBE_POLL_MS = 500


class DevicePanel:
    """Keeps the device combo box, the GPU probe and the parameter node's ``device`` in step."""

    def __init__(self, ui, parameterNode: Callable[[], object], backendPanel) -> None:
        self.ui, self.parameterNode, self.backendPanel = ui, parameterNode, backendPanel
        self._probe = None
        self._offered = ["cpu"]  # what the combo box lists: cpu until the probe has seen a GPU
        ui.deviceComboBox.currentTextChanged.connect(self.onDeviceChanged)
        ui.installTorchButton.clicked.connect(self.onInstallTorch)

    def startProbe(self) -> None:
        """Ask a child process whether torch sees a GPU; the answer fills the combo box when it comes."""
        from LinGuinELogic.process import DeviceProbe

        try:
            self._probe = DeviceProbe()
        except (OSError, RuntimeError) as exc:
            self.ui.deviceComboBox.toolTip = f"GPU check failed: {exc}"
            return
        self._checkProbe()

    def _checkProbe(self) -> None:
        devices = self._probe.devices() if self._probe is not None else ["cpu"]
        if devices is None:
            qt.QTimer.singleShot(PROBE_POLL_MS, self._checkProbe)
            return
        self.fill(devices)

    def showParameter(self) -> None:
        """A parameter node came (scene loaded, module entered): show its device. Once the probe has
        answered, a device it does not offer (a scene saved on a GPU machine) becomes the one shown
        (cpu) in the node too, so the run uses what the panel shows; while it asks, the answer decides."""
        if self._probe is not None and self._probe.devices() is None:
            return  # _checkProbe fills the combo box, selecting the node's device when offered
        self.fill(self._offered)

    def fill(self, devices) -> None:
        self._offered = list(devices)
        combo = self.ui.deviceComboBox
        combo.blockSignals(True)
        combo.clear()
        for device in devices:
            combo.addItem(device)
        node = self.parameterNode()
        wanted = node.device if node else "cpu"
        combo.setCurrentText(wanted if wanted in devices else "cpu")
        combo.blockSignals(False)
        self.onDeviceChanged()

    def onDeviceChanged(self, _text=None) -> None:
        node = self.parameterNode()
        if node and self.ui.deviceComboBox.currentText:
            node.device = self.ui.deviceComboBox.currentText
            self.backendPanel.updateStatus()

    def onInstallTorch(self) -> None:
        from LinGuinELogic.dependencies import install_torch_with_extension

        with slicer.util.tryWithErrorDisplay("Could not install PyTorch.", waitCursor=True):
            if not install_torch_with_extension():
                slicer.util.warningDisplay(
                    "Install the 'PyTorch' extension from the Extensions Manager, restart Slicer, "
                    "then press this button again.")
        self.backendPanel.fill()
        self.startProbe()
