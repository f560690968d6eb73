"""The device combo box's rules (``LinGuinEGui.device_panel``): the parameter node's device is kept
when the probe offers it, else the panel falls back to cpu and says so to the node; a probe still
running is asked again later. Qt does not run here: stand-ins for the combo box and QTimer (the
widget's wiring is checked against the .ui by test_ui_file)."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

MODULE_DIR = Path(__file__).resolve().parents[2] / "LinGuinE"

if not hasattr(sys.modules.get("slicer"), "vtkMRMLScene"):  # conftest imported it if it could
    pytest.skip("slicer-core is not installed (bash scripts/install_slicer_core.sh)", allow_module_level=True)


class _Signal:
    def __init__(self):
        self.slots = []

    def connect(self, slot):
        self.slots.append(slot)


class _Combo:
    def __init__(self):
        self.items, self.currentText, self.toolTip, self.blocked = [], "", "", False
        self.currentTextChanged = _Signal()

    def blockSignals(self, on):  # noqa: N802 (Qt's names)
        self.blocked = on

    def clear(self):
        self.items, self.currentText = [], ""

    def addItem(self, text):  # noqa: N802
        self.items.append(text)

    def setCurrentText(self, text):  # noqa: N802
        if text in self.items:
            self.currentText = text


class _Backends:
    def __init__(self):
        self.status_updates = 0

    def updateStatus(self):  # noqa: N802
        self.status_updates += 1


class _Probe:
    def __init__(self, answers):
        self.answers = answers

    def devices(self):
        return self.answers.pop(0)


@pytest.fixture()
def panel(monkeypatch):
    later = []
    monkeypatch.setitem(sys.modules, "qt", types.SimpleNamespace(
        QTimer=types.SimpleNamespace(singleShot=lambda ms, slot: later.append(slot))))
    monkeypatch.delitem(sys.modules, "LinGuinEGui.device_panel", raising=False)
    from LinGuinEGui.device_panel import DevicePanel

    ui = types.SimpleNamespace(deviceComboBox=_Combo(), installTorchButton=types.SimpleNamespace(clicked=_Signal()))
    node = types.SimpleNamespace(device="cuda")
    made = DevicePanel(ui, lambda: node, _Backends())
    return made, ui, node, later


def test_the_nodes_device_is_kept_when_offered_else_cpu(panel):
    made, ui, node, _ = panel
    made.fill(["cpu"])  # before the probe answers: the scene's cuda is not offered
    assert ui.deviceComboBox.items == ["cpu"] and ui.deviceComboBox.currentText == "cpu"
    assert node.device == "cpu" and made.backendPanel.status_updates == 1 and not ui.deviceComboBox.blocked
    node.device = "cuda"
    made.fill(["cpu", "cuda"])
    assert ui.deviceComboBox.currentText == "cuda" and node.device == "cuda"
    assert ui.deviceComboBox.currentTextChanged.slots == [made.onDeviceChanged]


def test_a_probe_still_running_is_asked_again(panel):
    made, ui, node, later = panel
    made._probe = _Probe([None, ["cpu", "cuda"]])
    made._checkProbe()
    assert ui.deviceComboBox.items == [] and later == [made._checkProbe]
    later.pop()()
    assert ui.deviceComboBox.items == ["cpu", "cuda"] and node.device == "cuda"


def test_a_loaded_scenes_device_agrees_with_the_panel(panel):
    """A scene saved on a GPU machine says cuda; once the probe has answered without cuda, the node
    takes the cpu shown (the run uses what the panel shows). While the probe asks, cuda is kept and
    the answer selects it. The widget calls this for every parameter node, after starting the probe."""
    made, ui, node, later = panel
    made.fill(["cpu"])  # the probe answered: no GPU here
    node.device = "cuda"  # then a scene from a GPU machine is loaded
    made.showParameter()
    assert ui.deviceComboBox.currentText == "cpu" and node.device == "cpu"

    made._probe = _Probe([None, None, ["cpu", "cuda"]])  # a GPU machine, the probe still asking
    node.device = "cuda"
    made.showParameter()
    assert node.device == "cuda"  # not overwritten by the cpu shown meanwhile
    made._checkProbe()
    later.pop()()
    assert ui.deviceComboBox.currentText == "cuda" and node.device == "cuda"

    widget = (MODULE_DIR / "LinGuinE.py").read_text()
    set_node = widget[widget.index("def setParameterNode"):widget.index("def updateGuiState")]
    assert "self.devicePanel.showParameter()" in set_node and "deviceComboBox" not in set_node
    setup = widget[widget.index("def setup"):widget.index("def cleanup")]
    assert setup.index("devicePanel.startProbe()") < setup.index("self.initializeParameterNode()")
