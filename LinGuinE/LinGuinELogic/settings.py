"""The module's settings, derived from ``TrackingConfig`` (scene) and kept in application settings (paths).

Tracking options live in the scene's parameter node under camelCase names derived from the
config's fields (``search_radius_mm`` -> ``searchRadiusMm``); the widget builds its
parameterNodeWrapper class from ``parameter_fields()``. Backend options that name files, folders
or servers are per user, not per scene: they are kept in Slicer's application settings
(``slicer.app.settings()``, a QSettings) under ``LinGuinE/<kind>/<backend>/<option>``, and the
model folder under ``LinGuinE/ModelDir``. An API key is never stored: it stays in memory and
reaches the child process through its environment only.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass
from typing import Any

from LinGuinELib.config import TrackingConfig, option_specs
from LinGuinELib.errors import InputError
from LinGuinELib.model_dir import ENV_VAR as MODEL_DIR_ENV  # where LinGuinELib looks for weights

MODEL_DIR_KEY = "LinGuinE/ModelDir"
API_KEY_ENV = "LINGUINE_API_KEY"  # read by the child process only (LinGuinELib/child.py)
# Backend constructor options the panel offers, in display order: option -> (widget kind, label).
PANEL_OPTIONS = {
    "weights": ("file", "Weights file:"),
    "model_dir": ("folder", "Model folder:"),
    "server_url": ("text", "Server URL:"),
    "api_key": ("secret", "API key:"),
}
SECRET_OPTIONS = ("api_key",)


@dataclass(frozen=True)
class ParameterField:
    """One tracking option as the parameter node holds it."""

    parameter: str  # camelCase name in the parameter node (and SlicerParameterName in the .ui)
    option: str  # the TrackingConfig field
    kind: type
    default: Any
    choices: tuple[str, ...] | None
    minimum: float | None
    maximum: float | None
    help: str


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def parameter_fields() -> list:
    """Every scalar ``TrackingConfig`` option (backend option dicts are not scene settings)."""
    return [ParameterField(camel(s.name), s.name, s.kind, s.default, s.choices, s.minimum, s.maximum, s.help)
            for s in option_specs() if s.kind is not dict]


def config_from_parameters(values: dict[str, Any], backend_options: dict[str, dict] | None = None
                           ) -> TrackingConfig:
    """A validated config from parameter-node values (camelCase names) and backend options by kind."""
    known = {f.parameter: f.option for f in parameter_fields()}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise InputError(f"unknown module setting(s) {', '.join(unknown)}")
    kwargs: dict[str, Any] = {known[name]: value for name, value in values.items()}
    for kind, options in (backend_options or {}).items():
        kwargs[f"{kind}_options"] = dict(options)
    return TrackingConfig(**kwargs)


def parameters_from_config(config: TrackingConfig) -> dict[str, Any]:
    return {f.parameter: getattr(config, f.option) for f in parameter_fields()}


def backend_panel_options(cls: type) -> list:
    """The panel options (``PANEL_OPTIONS`` keys) a backend class's constructor accepts."""
    try:
        accepted = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return []
    return [name for name in PANEL_OPTIONS if name in accepted]


def settings_key(kind: str, backend: str, option: str) -> str:
    return f"LinGuinE/{kind}/{backend}/{option}"


def _text(value: Any) -> str:
    return "" if value is None else str(value)


class ModuleSettings:
    """Backend paths in application settings; the API key in memory only.

    ``store`` is anything with QSettings' ``value(key, default)`` and ``setValue(key, value)``:
    ``slicer.app.settings()`` in Slicer.
    """

    def __init__(self, store: Any) -> None:
        self.store = store
        self._secrets: dict[tuple[str, str, str], str] = {}

    def model_dir(self) -> str:
        return _text(self.store.value(MODEL_DIR_KEY, ""))

    def set_model_dir(self, path: str) -> None:
        self.store.setValue(MODEL_DIR_KEY, path or "")
        # The availability checks made in this process look the folder up like the child will.
        if path:
            os.environ[MODEL_DIR_ENV] = path
        else:
            os.environ.pop(MODEL_DIR_ENV, None)

    def option(self, kind: str, backend: str, option: str) -> str:
        if option in SECRET_OPTIONS:
            return self._secrets.get((kind, backend, option), "")
        return _text(self.store.value(settings_key(kind, backend, option), ""))

    def set_option(self, kind: str, backend: str, option: str, value: str) -> None:
        if option not in PANEL_OPTIONS:
            raise InputError(f"'{option}' is not a backend option the panel keeps")
        if option in SECRET_OPTIONS:
            self._secrets[(kind, backend, option)] = value or ""
        else:
            self.store.setValue(settings_key(kind, backend, option), value or "")

    def backend_options(self, kind: str, backend: str, cls: type) -> dict[str, str]:
        """The non-empty, non-secret options stored for this backend (what goes into the config)."""
        out = {}
        for option in backend_panel_options(cls):
            value = self.option(kind, backend, option)
            if value and option not in SECRET_OPTIONS:
                out[option] = value
        return out

    def check_options(self, kind: str, backend: str, cls: type) -> dict[str, str]:
        """Options for an availability check in this process, secrets included (never stored)."""
        out = self.backend_options(kind, backend, cls)
        for option in SECRET_OPTIONS:
            if option in backend_panel_options(cls) and self.option(kind, backend, option):
                out[option] = self.option(kind, backend, option)
        return out

    def child_environment(self, config: TrackingConfig) -> dict[str, str]:
        """Variables the child process gets: the model folder and the API key of the chosen backend."""
        env = {}
        if self.model_dir():
            env[MODEL_DIR_ENV] = self.model_dir()
        for kind in ("registration", "segmentation"):
            key = self._secrets.get((kind, getattr(config, kind), "api_key"))
            if key:
                env[API_KEY_ENV] = key
        return env
