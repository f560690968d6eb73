"""The model folder: one setting (``$LINGUINE_MODEL_DIR``) where every learned backend finds its
weights by the file names and layouts its upstream project uses.

A user downloads the weights once, in their upstream form, into one folder; runs then need no
paths. An explicit option (``weights=`` / ``model_dir=``) always wins. The Slicer module passes
its application setting ``LinGuinE/ModelDir`` to the child process as this variable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV_VAR = "LINGUINE_MODEL_DIR"


@dataclass(frozen=True)
class Layout:
    """Where a backend's weights sit inside the model folder (first match wins)."""

    option: str  # the backend option the found path fills in
    candidates: tuple[str, ...]  # paths relative to the model folder, upstream names
    is_dir: bool  # a model folder (nnU-Net style) rather than one weights file


LAYOUTS: dict[str, Layout] = {
    # uniGradICON's own cache: network_weights/unigradicon1.0/Step_2_final.trch
    "unigradicon": Layout("weights", ("unigradicon1.0/Step_2_final.trch",
                                      "network_weights/unigradicon1.0/Step_2_final.trch"), False),
    "multigradicon": Layout("weights", ("multigradicon1.0/Step_2_final.trch",
                                        "network_weights/multigradicon1.0/Step_2_final.trch"), False),
    # icon_registration's cache name, and the name of the release asset
    "lunggradicon": Layout("weights", ("lung_model/lung_model_weights.trch",
                                       "network_weights/lung_model/lung_model_weights.trch",
                                       "lung_model_weights_step_2.trch"), False),
    # HuggingFace MIC-DKFZ/nnInteractive
    "nninteractive": Layout("model_dir", ("nnInteractive_v1.0",), True),
    # the MONAI bundle as `python -m monai.bundle download vista3d` leaves it
    "vista3d": Layout("weights", ("vista3d/models/model.pt", "models/model.pt"), False),
    # the Zenodo archive (record 15174217), extracted
    "lesionlocator": Layout("model_dir", ("LesionLocatorCheckpoint",), True),
}


def configured_dir() -> Path | None:
    """The model folder named by ``$LINGUINE_MODEL_DIR`` (None when unset or empty)."""
    value = os.environ.get(ENV_VAR, "").strip()
    return Path(value).expanduser() if value else None


def find(name: str, root: Path | None = None) -> Path | None:
    """The weights of backend ``name`` in the model folder, or None."""
    layout = LAYOUTS.get(name)
    root = root if root is not None else configured_dir()
    if layout is None or root is None:
        return None
    for rel in layout.candidates:
        path = root / rel
        if path.is_dir() if layout.is_dir else path.is_file():
            return path
    return None


def fill_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` plus the weights found in the model folder, unless the user gave them."""
    layout = LAYOUTS.get(name)
    if layout is None or options.get(layout.option):
        return options
    found = find(name)
    return {**options, layout.option: str(found)} if found else options


def scan(root: Path | None = None) -> list[dict[str, Any]]:
    """What the model folder holds, per backend: option, found path (or None), expected paths."""
    root = root if root is not None else configured_dir()
    rows = []
    for name, layout in LAYOUTS.items():
        found = find(name, root) if root is not None else None
        rows.append({"name": name, "option": layout.option, "found": str(found) if found else None,
                     "expected": list(layout.candidates)})
    return rows


def placement_hint(name: str) -> str:
    """How to make backend ``name`` find its weights: the model-folder path, or the option."""
    layout = LAYOUTS[name]
    return f"put it in ${ENV_VAR} as {layout.candidates[0]} or pass {layout.option}=PATH"


def found(name: str, given: Any) -> Any:
    """``given`` when set, else the path found for backend ``name`` in the model folder (or None).

    Backends call this in their constructor and availability check, so that any caller (the
    engine, the Slicer panel, a script) sees the model folder, not only ``create_backend``.
    """
    if given:
        return given
    path = find(name)
    return str(path) if path else None
