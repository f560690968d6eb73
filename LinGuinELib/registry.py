"""Backends register themselves by name; the engine only ever looks them up here.

A backend module calls ``register_registration("name")`` or ``register_segmentation("name")``
as a class decorator. Modules are imported lazily by ``load_builtin_backends`` so that a
backend whose heavy packages (torch, monai, ...) are missing never breaks the others.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from . import model_dir
from .errors import BackendUnavailableError, InputError

log = logging.getLogger(__name__)

T = TypeVar("T")

# kind ("registration" | "segmentation") -> name -> backend class
_REGISTRY: dict[str, dict[str, type]] = {"registration": {}, "segmentation": {}}

# Modules that define the built-in backends. Each must import without torch installed.
BUILTIN_MODULES = (
    "LinGuinELib.registration.classical",
    "LinGuinELib.registration.icon",
    "LinGuinELib.segmentation.classical",
    "LinGuinELib.segmentation.nninteractive",
    "LinGuinELib.segmentation.vista3d",
    "LinGuinELib.segmentation.lesionlocator",
)


def _register(kind: str, name: str) -> Callable[[type[T]], type[T]]:
    def decorator(cls: type[T]) -> type[T]:
        cls.name = name  # type: ignore[attr-defined]
        _REGISTRY[kind][name] = cls
        return cls

    return decorator


def register_registration(name: str) -> Callable[[type[T]], type[T]]:
    return _register("registration", name)


def register_segmentation(name: str) -> Callable[[type[T]], type[T]]:
    return _register("segmentation", name)


def load_builtin_backends() -> None:
    for module in BUILTIN_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("LinGuinELib"):
                log.debug("backend module %s not present", module)
            else:
                raise


def backend_names(kind: str) -> list[str]:
    load_builtin_backends()
    return sorted(_REGISTRY[kind])


def backend_class(kind: str, name: str) -> type:
    load_builtin_backends()
    try:
        return _REGISTRY[kind][name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY[kind])) or "none"
        raise InputError(f"{kind} backend '{name}' is unknown (known: {known})") from None


def accepted_options(cls: type) -> set[str]:
    """Option names a backend takes: its constructors' named parameters (whole class hierarchy)
    plus ``extra_options``, the names a backend reads from ``self.options`` itself."""
    names = set(getattr(cls, "extra_options", ()))
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        names |= {p.name for p in inspect.signature(init).parameters.values()
                  if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return names


def check_options(kind: str, name: str, options: dict[str, Any]) -> None:
    """A typo in --registration-option/--segmentation-option is an error naming the key."""
    cls = backend_class(kind, name)
    known = accepted_options(cls)
    unknown = sorted(set(options) - known)
    if unknown:
        shown = ", ".join(sorted(known - {"device"})) or "none"
        raise InputError(f"--{kind}-option {unknown[0]}: not an option of {kind} backend '{name}' "
                         f"(its options: {shown})")


def check_config_options(config: Any) -> None:
    """Both backends of a TrackingConfig exist and know every option given (before any work)."""
    for kind in ("registration", "segmentation"):
        options = getattr(config, f"{kind}_options")
        if "device" in options:
            raise InputError(f"--{kind}-option device: use --device instead")
        check_options(kind, getattr(config, kind), options)


def backend_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The options a backend runs with: the user's, plus weights found in the model folder."""
    return model_dir.fill_options(name, options)


def unavailable_reason(kind: str, name: str, **options: Any) -> str | None:
    """Why backend ``name`` cannot run with these options (model folder included), or None."""
    return backend_class(kind, name).unavailable_reason(**backend_options(name, options))


def create_backend(kind: str, name: str, **options: Any) -> Any:
    """Instantiate a backend, failing with one line if it cannot run here or an option is unknown.

    Weights not given as options are looked up in the model folder ($LINGUINE_MODEL_DIR).
    """
    check_options(kind, name, options)
    cls = backend_class(kind, name)
    options = backend_options(name, options)
    missing = cls.unavailable_reason(**options)
    if missing:
        raise BackendUnavailableError(f"{kind} backend '{name}' cannot run: {missing}")
    return cls(**options)
