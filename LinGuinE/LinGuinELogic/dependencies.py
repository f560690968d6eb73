"""Python packages at first use, and which backends can run here (with the reason when not).

Nothing is installed at import time. Inside Slicer the packages of ``requirements/slicer.txt``
are installed with ``slicer.packaging.pip_ensure`` where it exists (Slicer 5.12+), else with
``slicer.util.pip_install``. torch is never pip-installed here: the PyTorch extension does it.
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import re
from collections.abc import Callable
from pathlib import Path

from LinGuinELib.errors import InputError

from .scene import in_application

log = logging.getLogger(__name__)

# pip name -> import name, for the requirements Slicer does not bundle.
IMPORT_NAMES = {
    "scipy": "scipy",
    "connected-components-3d": "cc3d",
    "edt": "edt",
    "slicerio": "slicerio",
    "matplotlib": "matplotlib",
    "tqdm": "tqdm",
}
_MODULE_DIR = Path(__file__).resolve().parent.parent
# Why a scene's saved backend is shown but cannot run: before the first-use install, and when no
# installed package registers it (a plugin's backend, or one of another LinGuinE version).
NOT_INSTALLED_YET = ("it is checked once LinGuinE's Python packages are installed (Track installs them "
                     "first); the classical backend runs now")
UNKNOWN_HERE = "no installed package provides it; install the plugin that does, or pick another backend"


def requirements_file() -> Path | None:
    """requirements/slicer.txt: in the module resources when installed, at the repo root from source."""
    for candidate in (
        _MODULE_DIR / "Resources" / "LinGuinE-requirements.txt",
        _MODULE_DIR.parent / "requirements" / "slicer.txt",
    ):
        if candidate.is_file():
            return candidate
    return None


def requirement_lines() -> list[str]:
    path = requirements_file()
    if path is None:
        return [f"{name}" for name in IMPORT_NAMES]
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    return [line for line in lines if line]


def missing_requirements() -> list[str]:
    """Requirement lines whose package cannot be imported here."""
    missing = []
    for line in requirement_lines():
        name = re.split(r"[<>=!~ \[]", line, maxsplit=1)[0]
        module = IMPORT_NAMES.get(name, name.replace("-", "_"))
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a broken or blocked package counts as missing
            found = False
        if not found:
            missing.append(line)
    return missing


def slicer_packaging():
    """``slicer.packaging`` with ``pip_ensure`` (Slicer 5.12+), else None. It must be imported:
    ``import slicer`` does not import it (Slicer's own template imports it too)."""
    try:
        import slicer.packaging as packaging
    except ImportError:
        return None
    return packaging if hasattr(packaging, "pip_ensure") else None


def ensure_requirements(requester: str = "LinGuinE", prompt: bool = True) -> bool:
    """Install what is missing (inside Slicer); elsewhere say what to pip-install.

    ``prompt=False`` installs without asking (batch mode must not wait for a click). Also in
    Slicer's ``--testing`` mode the packages are installed (``pip_ensure`` skips that by default),
    because the self-test and ctest need them. Returns True when something was installed; raises
    when a package is still missing afterwards (declined, offline, failed).
    """
    missing = missing_requirements()
    if not missing:
        return False
    if not in_application():
        raise InputError(f"missing Python packages: pip install {' '.join(missing)}")
    import slicer

    packaging = slicer_packaging()
    path = requirements_file()
    if packaging is not None and path is not None:
        wanted = {"requester": requester, "prompt_install": prompt, "prompt_restart": prompt,
                  "skip_in_testing": False}
        accepted = inspect.signature(packaging.pip_ensure).parameters
        packaging.pip_ensure(packaging.load_requirements(str(path)),
                             **{k: v for k, v in wanted.items() if k in accepted})
    else:  # Slicer 5.10-5.11: pip_install asks nothing, so the confirmation pip_ensure shows is asked here
        if prompt and not slicer.util.confirmOkCancelDisplay(
                f"{requester} needs these Python packages in Slicer's Python:\n\n" + "\n".join(missing)
                + "\n\nInstall them now?", f"{requester} - Install Python Packages"):
            raise InputError(f"Python packages not installed (declined): {', '.join(missing)}")
        log.info("installing %s", " ".join(missing))
        slicer.util.pip_install(" ".join(f'"{m}"' if " " in m else m for m in missing))
    importlib.invalidate_caches()
    still = missing_requirements()
    if still:
        raise InputError(f"required Python packages are not installed: {', '.join(still)}")
    return True


def backend_choices(kind: str, options: Callable[[str, type], dict] | None = None, keep: str = ""
                    ) -> list[tuple[str, str | None]]:
    """Every registered backend of ``kind`` with None if usable here, else the reason.

    ``options(name, cls)`` gives the options to check a backend with (weights, model folder,
    device, ...). Before the first-use install the backend modules cannot all be imported: offer
    "classical" (installed with the requirements) and let the caller ask again afterwards.
    ``keep``: the backend a scene was saved with, listed last with the reason when it cannot be
    offered here (yet), so that the panel shows the user's choice instead of replacing it.
    """
    from LinGuinELib.config import DEFAULT_BACKEND

    if missing_requirements():
        out: list[tuple[str, str | None]] = [(DEFAULT_BACKEND, None)]
        if keep and keep != DEFAULT_BACKEND:
            out.append((keep, NOT_INSTALLED_YET))
        return out
    from LinGuinELib.registry import backend_class, backend_names, unavailable_reason

    out = []
    for name in backend_names(kind):
        try:
            given = options(name, backend_class(kind, name)) if options else {}
            reason = unavailable_reason(kind, name, **given)  # weights in the model folder count
        except Exception as exc:  # noqa: BLE001 - a broken backend is unavailable, not fatal
            reason = f"check failed: {exc}"
        out.append((name, reason))
    out.sort(key=lambda item: (item[0] != DEFAULT_BACKEND, item[0]))  # the default first: it always runs
    if keep and keep not in backend_names(kind):
        out.append((keep, UNKNOWN_HERE))
    return out


def torch_install_hint() -> str | None:
    """How to get torch inside Slicer, or None when it is importable."""
    if importlib.util.find_spec("torch") is not None:
        return None
    return "install the PyTorch extension (Extensions Manager), then use its 'Install PyTorch' button"


def install_torch_with_extension() -> bool:
    """Ask the PyTorch extension to install torch; False when that extension is missing."""
    try:
        import PyTorchUtils  # the PyTorch extension's module
    except ImportError:
        return False
    torch = PyTorchUtils.PyTorchUtilsLogic().installTorch(askConfirmation=True)
    return torch is not None


# The module's own packages: Reload must re-import them, not only LinGuinE.py.
MODULE_PACKAGES = ("LinGuinELib", "LinGuinELogic", "LinGuinEGui")


def unload_module_packages() -> list[str]:
    """Forget the module's packages so the next import reads them again (Slicer's Reload)."""
    import sys

    names = [n for n in sys.modules if n.split(".")[0] in MODULE_PACKAGES]
    for name in names:
        del sys.modules[name]
    return names
