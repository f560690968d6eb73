"""Backends in the panel: every backend listed, the fields the picked one needs, and whether it can run.

For the backend picked in each combo box, the fields its constructor accepts among weights file,
model folder, server URL and API key are shown (``LinGuinELogic.settings.PANEL_OPTIONS``); what
is typed there is kept in Slicer's application settings (the API key in memory only), and the
label below the combo box says whether the backend can run with it, or why not. The scene's
backend (parameter node) is listed and shown even when it cannot run here yet; only the user's
pick in a combo box changes it.
"""

from __future__ import annotations

from collections.abc import Callable

import slicer

# PANEL_OPTIONS key -> suffix of the .ui widget names ("<kind><Suffix>", "<kind><Label>").
WIDGETS = {"weights": ("WeightsPathLineEdit", "WeightsLabel"),
           "model_dir": ("ModelDirPathLineEdit", "ModelDirLabel"),
           "server_url": ("ServerUrlLineEdit", "ServerUrlLabel"),
           "api_key": ("ApiKeyLineEdit", "ApiKeyLabel")}
KINDS = ("registration", "segmentation")


class BackendPanel:
    """Keeps the backend combo boxes, their option fields and the parameter node in step."""

    def __init__(self, ui, logic, parameterNode: Callable[[], object]) -> None:
        from LinGuinELogic.settings import ModuleSettings

        self.ui, self.logic, self.parameterNode = ui, logic, parameterNode
        self.settings = ModuleSettings(slicer.app.settings())
        self.settings.set_model_dir(self.settings.model_dir())  # the checks here see the folder too
        self._filling = False
        self._reasons: dict = {}
        self._listed: dict = {kind: {} for kind in KINDS}  # name -> why it cannot run (None: it can)
        for kind in KINDS:
            self.combo(kind).currentTextChanged.connect(lambda _text, kind=kind: self.onBackendChanged(kind))
            for option in WIDGETS:
                widget = self.field(kind, option)
                signal = widget.currentPathChanged if hasattr(widget, "currentPath") else widget.textChanged
                signal.connect(lambda value, kind=kind, option=option: self.onFieldChanged(kind, option, value))
        ui.modelDirPathLineEdit.currentPath = self.settings.model_dir()
        ui.modelDirPathLineEdit.currentPathChanged.connect(self.onModelDirChanged)

    def combo(self, kind: str):
        return getattr(self.ui, f"{kind}ComboBox")

    def field(self, kind: str, option: str):
        return getattr(self.ui, kind + WIDGETS[option][0])

    def label(self, kind: str, option: str):
        return getattr(self.ui, kind + WIDGETS[option][1])

    def backendClass(self, kind: str, name: str):
        """The backend's class, None when it cannot be loaded here (yet)."""
        from LinGuinELib.registry import backend_class

        try:
            return backend_class(kind, name)
        except Exception:  # noqa: BLE001 - not registered, or its module needs what is not installed yet
            return None

    # --- filling -----------------------------------------------------------------------------
    def fill(self) -> None:
        """List every backend of each kind (unusable ones too: their fields may make them usable)."""
        from LinGuinELogic.dependencies import missing_requirements

        self.listBackends()
        missing = missing_requirements()
        self.ui.backendStatusLabel.text = (f"Installed on first Track: {', '.join(missing)}; the learned "
                                           "backends are listed after that." if missing else "")
        self.showParameters()

    def listBackends(self) -> None:
        """The combo boxes' items: the logic's choices, the parameter node's backends included."""
        parameters = self.parameterNode()
        self._filling = True
        try:
            for kind in KINDS:
                combo = self.combo(kind)
                combo.clear()
                choices = self.logic.backendChoices(kind, keep=getattr(parameters, kind) if parameters else "")
                self._listed[kind] = dict(choices)
                for name, _reason in choices:
                    combo.addItem(name)
        finally:
            self._filling = False

    def showParameters(self) -> None:
        """Select the parameter node's backends in the combo boxes, listed even when they cannot run
        here (yet); the node is not changed (a scene loaded before the first-use install keeps its
        learned backend: it runs once installed)."""
        parameters = self.parameterNode()
        wanted = {kind: getattr(parameters, kind) if parameters else "" for kind in KINDS}
        if any(name and name not in self._listed[kind] for kind, name in wanted.items()):
            self.listBackends()  # a scene loaded after the combo boxes were filled
        for kind in KINDS:
            self._filling = True
            self.combo(kind).setCurrentText(wanted[kind])
            self._filling = False
            self.showFields(kind)
        self.updateStatus()

    # --- reacting ----------------------------------------------------------------------------
    def onBackendChanged(self, kind: str) -> None:
        name = self.combo(kind).currentText
        parameters = self.parameterNode()
        if parameters is not None and name and not self._filling:
            setattr(parameters, kind, name)
        self.showFields(kind)
        self.updateStatus()

    def showFields(self, kind: str) -> None:
        """Only the fields the picked backend takes, filled from the application settings."""
        from LinGuinELogic.settings import backend_panel_options

        name = self.combo(kind).currentText
        cls = self.backendClass(kind, name) if name else None
        wanted = backend_panel_options(cls) if cls is not None else []
        for option in WIDGETS:
            widget, label = self.field(kind, option), self.label(kind, option)
            widget.visible = label.visible = option in wanted
            if option in wanted:
                value = self.settings.option(kind, name, option)
                widget.blockSignals(True)
                if hasattr(widget, "currentPath"):
                    widget.currentPath = value
                else:
                    widget.text = value
                widget.blockSignals(False)

    def onFieldChanged(self, kind: str, option: str, value: str) -> None:
        name = self.combo(kind).currentText
        if name:
            self.settings.set_option(kind, name, option, value)
            self.updateStatus()

    def onModelDirChanged(self, path: str) -> None:
        self.settings.set_model_dir(path)
        self.updateStatus()

    def updateStatus(self) -> None:
        """Beside each combo box: usable, or the reason it is not (checked with its fields)."""
        # Checked for the CPU: asking torch about a GPU would import it into Slicer's process; the
        # device combo offers cuda only after the GPU probe (a child process) has seen one.
        torch_missing = False
        for kind in KINDS:
            name = self.combo(kind).currentText
            if not name:
                continue
            cls = self.backendClass(kind, name)
            try:
                from LinGuinELib.registry import unavailable_reason

                if cls is None:  # the logic's listing says why (not installed yet, or unknown here)
                    reason = self._listed[kind].get(name, "it cannot be loaded here")
                else:
                    options = self.settings.check_options(kind, name, cls)
                    reason = unavailable_reason(kind, name, device="cpu", **options)  # model folder included
            except Exception as exc:  # noqa: BLE001 - a broken backend is unusable, not fatal
                reason = f"check failed: {exc}"
            self._reasons[kind] = reason
            torch_missing |= bool(reason) and "torch" in reason
            getattr(self.ui, f"{kind}StatusLabel").text = f"'{name}' can run here." if reason is None \
                else f"'{name}' cannot run: {reason}"
        self.ui.installTorchButton.visible = torch_missing

    def problems(self) -> list:
        """Why the picked backends cannot run, one line each (empty when both can)."""
        return [f"{kind} backend '{self.combo(kind).currentText}' cannot run: {self._reasons[kind]}"
                for kind in KINDS if self._reasons.get(kind)]

    def backendOptions(self) -> dict:
        """Options of the picked backends from the application settings, by kind (no secrets)."""
        out = {}
        for kind in KINDS:
            name = self.combo(kind).currentText
            cls = self.backendClass(kind, name) if name else None
            if cls is not None:
                out[kind] = self.settings.backend_options(kind, name, cls)
        return out
