"""The backend combo boxes keep the scene's choice (``LinGuinEGui.backend_panel``): a scene saved with
a learned backend, opened where it cannot be offered yet (before the first-use install of
LinGuinE's packages, or with no package registering it), shows that backend as not runnable and
why; the parameter node keeps it, so it runs once installed. Only the user's pick changes it.

Qt does not run here: stand-ins for the combo boxes, fields and labels (Qt's rules: ``clear`` and
the first ``addItem`` signal the new text; ``setCurrentText`` on a non-editable combo box selects
a listed item, else does nothing), and for ``slicer.app.settings()``. The logic's listing is real
(``dependencies.backend_choices``, the real registry); a package not installed yet is one Python
cannot import (``sys.modules[name] = None`` blocks it, as ``missing_requirements`` reads it).
Before the fix, the panel wrote the combo box's fallback ('classical') into the node.
"""

from __future__ import annotations

import sys
import types

import pytest

if not hasattr(sys.modules.get("slicer"), "vtkMRMLScene"):  # conftest imported it if it could
    pytest.skip("slicer-core is not installed (bash scripts/install_slicer_core.sh)", allow_module_level=True)

import slicer  # noqa: E402
from test_device_panel import _Signal  # noqa: E402
from test_module_settings import FakeQSettings  # noqa: E402

from LinGuinELib.model_dir import ENV_VAR as MODEL_DIR_ENV  # noqa: E402


class _Combo:
    """QComboBox (not editable): items, current text, ``currentTextChanged`` on every change."""

    def __init__(self):
        self.items, self.currentText = [], ""
        self.currentTextChanged = _Signal()

    def _select(self, text):
        if text != self.currentText:
            self.currentText = text
            for slot in self.currentTextChanged.slots:
                slot(text)

    def clear(self):
        self.items = []
        self._select("")

    def addItem(self, text):  # noqa: N802 (Qt's names)
        self.items.append(text)
        if len(self.items) == 1:
            self._select(text)

    def setCurrentText(self, text):  # noqa: N802
        if text in self.items:
            self._select(text)

    def pick(self, text):
        """The user chooses an item."""
        self.setCurrentText(text)


class _Field:
    def __init__(self, path: bool):
        self.visible, self.text = True, ""
        if path:
            self.currentPath, self.currentPathChanged = "", _Signal()
        else:
            self.textChanged = _Signal()

    def blockSignals(self, on):  # noqa: N802
        return False


def _ui():
    ui = types.SimpleNamespace(backendStatusLabel=types.SimpleNamespace(text=""),
                               installTorchButton=types.SimpleNamespace(visible=False),
                               modelDirPathLineEdit=_Field(path=True))
    for kind in ("registration", "segmentation"):
        setattr(ui, f"{kind}ComboBox", _Combo())
        setattr(ui, f"{kind}StatusLabel", types.SimpleNamespace(text=""))
        for widget, label in (("WeightsPathLineEdit", "WeightsLabel"), ("ModelDirPathLineEdit", "ModelDirLabel"),
                              ("ServerUrlLineEdit", "ServerUrlLabel"), ("ApiKeyLineEdit", "ApiKeyLabel")):
            setattr(ui, kind + widget, _Field(path="Path" in widget))
            setattr(ui, kind + label, types.SimpleNamespace(visible=True))
    return ui


@pytest.fixture()
def panel(monkeypatch):
    """The panel as the widget's ``setup`` makes it: filled before any parameter node is set."""
    from LinGuinEGui.backend_panel import BackendPanel
    from LinGuinELogic import LinGuinELogic

    monkeypatch.setattr(slicer, "app", types.SimpleNamespace(settings=FakeQSettings), raising=False)
    monkeypatch.delenv(MODEL_DIR_ENV, raising=False)
    holder = types.SimpleNamespace(node=None)
    made = BackendPanel(_ui(), LinGuinELogic, lambda: holder.node)
    return made, holder


def _scene_node(registration="classical", segmentation="nninteractive"):
    return types.SimpleNamespace(registration=registration, segmentation=segmentation)


def test_a_saved_learned_backend_survives_until_its_packages_are_installed(panel, monkeypatch):
    made, holder = panel
    with monkeypatch.context() as before_install:
        before_install.setitem(sys.modules, "tqdm", None)  # a first-use requirement not installed yet
        made.fill()
        holder.node = _scene_node()  # the scene saved on a machine with nnInteractive is opened
        made.showParameters()
        combo = made.ui.segmentationComboBox
        assert combo.items == ["classical", "nninteractive"] and combo.currentText == "nninteractive"
        assert holder.node.segmentation == "nninteractive"
        # its own check where its module loads (here), else the listing's reason ('checked once installed')
        assert made.ui.segmentationStatusLabel.text.startswith("'nninteractive' cannot run: ")
        assert made.problems() and "tqdm" in made.ui.backendStatusLabel.text
    made.fill()  # what Track does once it has installed them
    combo = made.ui.segmentationComboBox
    assert len(combo.items) > 2 and combo.currentText == "nninteractive" and holder.node.segmentation == "nninteractive"
    assert made.ui.registrationComboBox.currentText == "classical" and holder.node.registration == "classical"


def test_a_backend_no_package_provides_is_shown_with_why_until_the_user_picks_another(panel):
    made, holder = panel
    made.fill()
    holder.node = _scene_node(registration="plugin-registration", segmentation="classical")
    made.showParameters()
    combo = made.ui.registrationComboBox
    assert combo.currentText == "plugin-registration" and combo.items[-1] == "plugin-registration"
    assert holder.node.registration == "plugin-registration"
    assert made.ui.registrationStatusLabel.text == ("'plugin-registration' cannot run: no installed package provides "
                                                    "it; install the plugin that does, or pick another backend")
    assert made.problems() == [f"registration backend 'plugin-registration' cannot run: "
                               f"{made.ui.registrationStatusLabel.text.split(': ', 1)[1]}"]
    assert made.backendOptions() == {"segmentation": {}}  # no options of a backend that is not here
    combo.pick("classical")
    assert holder.node.registration == "classical" and made.problems() == []
