"""nnInteractive: promptable 3D segmentation, run locally or on an nnInteractive server.

``nninteractive`` loads a model folder in the official layout (``nnInteractive_v1.0``: plans.json,
dataset.json, inference_session_class.json or inference_info.json, one fold_*/checkpoint_final.pth,
optional LICENSE) from ``model_dir``; only with ``download=true`` does it use the package's model
manager (HuggingFace download, cached under $NNINTERACTIVE_MODEL_DIR). The official weights are
CC BY-NC-SA 4.0 (non-commercial): the licence is logged and recorded in ``settings()``.

``nninteractive-remote`` sends the same prompts to a server (package ``nninteractive-client``):
the server is ``nninteractive-server`` from the ``nninteractive`` package (the older
``nninteractive-slicer-server`` speaks another protocol and does not work with this client).
nnInteractive works in voxel space: we pass the (z, y, x) array and (z, y, x) point indices.
"""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from .. import model_dir as model_dir_lookup
from ..errors import BackendUnavailableError, InputError
from ..geometry import physical_to_continuous_index_zyx
from ..registry import register_segmentation
from ..voxels import voxels
from .base import Segmenter, prompt_points
from .torch_utils import INSTALL_HINT, device_problem, load_weights, missing_packages

log = logging.getLogger(__name__)

DEFAULT_MODEL_ID = "nnInteractive_v1.0"
WEIGHTS_HINT = (
    "get the nnInteractive_v1.0 folder from HuggingFace MIC-DKFZ/nnInteractive "
    "(CC BY-NC-SA 4.0, non-commercial) and put it in $LINGUINE_MODEL_DIR or pass model_dir=PATH, "
    "or pass download=true"
)


def find_model_folder(path: str | Path) -> tuple[Path | None, str | None]:
    """(folder, None) when ``path`` (or its nnInteractive_v1.0 child) has the official layout,
    else (None, what is wrong)."""
    root = Path(path).expanduser()
    if not root.is_dir():
        return None, f"model folder {root} not found"
    for cand in (root, root / DEFAULT_MODEL_ID):
        if (cand / "plans.json").is_file():
            break
    else:
        return None, f"{root} has no plans.json (not an nnInteractive model folder)"
    missing = [f for f in ("dataset.json",) if not (cand / f).is_file()]
    if not any((cand / f).is_file() for f in ("inference_session_class.json", "inference_info.json")):
        missing.append("inference_session_class.json")
    folds = sorted(p for p in cand.glob("fold_*") if (p / "checkpoint_final.pth").is_file())
    if len(folds) != 1:
        missing.append(f"exactly one fold_*/checkpoint_final.pth (found {len(folds)})")
    if missing:
        return None, f"model folder {cand} lacks {', '.join(missing)}"
    return cand, None


def _quiet(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a package call that prints; its output goes to the debug log instead of stdout."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        result = fn(*args, **kwargs)
    for line in buf.getvalue().splitlines():
        if line.strip():
            log.debug("nnInteractive: %s", line)
    return result


class _PromptedSession(Segmenter):
    """Point prompts -> mask through any object with nnInteractive's session API."""

    def __init__(self, device: str = "cpu", autozoom: bool = True, **options: Any) -> None:
        super().__init__(device=device, autozoom=autozoom, **options)
        self.autozoom = bool(autozoom)
        self.session: Any = None
        self.license: str | None = None
        self._last_image: sitk.Image | None = None

    def _open_session(self) -> Any:
        raise NotImplementedError

    def load(self) -> Any:
        """Create the session once (model loaded / server claimed); errors are one line."""
        if self.session is None:
            reason = self.unavailable_reason(device=self.device, **self.options)
            if reason:
                raise BackendUnavailableError(
                    f"segmentation backend '{self.name}' cannot run: {reason}"
                )
            self.session = self._open_session()
            self.license = getattr(self.session, "license", None)
            if self.license:
                log.warning("%s: model licence: %s", self.name, self.license)
        return self.session

    def segment(
        self,
        image: sitk.Image,
        positive_lps: np.ndarray,
        negative_lps: np.ndarray | None = None,
    ) -> np.ndarray:
        pos = prompt_points(positive_lps, "positive_lps")
        neg = prompt_points(negative_lps, "negative_lps")
        if len(pos) == 0:
            raise InputError(f"{self.name}: at least one positive point is needed")
        shape = tuple(image.GetSize()[::-1])
        prompts = [(p, True) for p in self._voxels(image, pos)]
        prompts += [(p, False) for p in self._voxels(image, neg)]
        if not any(include for _, include in prompts):
            log.warning("%s: every positive point is outside the image; empty mask", self.name)
            return np.zeros(shape, dtype=bool)
        session = self.load()
        if image is not self._last_image:
            arr = voxels(image).astype(np.float32)
            _quiet(session.set_image, arr[None])
            self._last_image = image
        session.set_do_autozoom(self.autozoom)
        buffer = np.zeros(shape, dtype=np.uint8)
        _quiet(session.set_target_buffer, buffer)
        _quiet(session.reset_interactions)
        for i, (zyx, include) in enumerate(prompts):
            last = i == len(prompts) - 1
            _quiet(session.add_point_interaction, zyx, include_interaction=include,
                   run_prediction=last)
        target = session.target_buffer
        return np.asarray(target if target is not None else buffer).astype(bool)

    def _voxels(self, image: sitk.Image, points: np.ndarray) -> list[tuple[int, int, int]]:
        """Rounded (z, y, x) voxels of the points inside the image (others are dropped, logged)."""
        if len(points) == 0:
            return []
        zyx = np.rint(physical_to_continuous_index_zyx(image, points)).astype(int)
        size = np.array(image.GetSize()[::-1])
        inside = np.all((zyx >= 0) & (zyx < size), axis=1)
        if not inside.all():
            log.warning("%s: %d prompt point(s) outside the image ignored", self.name,
                        int((~inside).sum()))
        return [tuple(int(v) for v in p) for p in zyx[inside]]

    def release(self) -> None:
        """Drop the per-image state (the session keeps the model)."""
        self._last_image = None
        if self.session is not None and hasattr(self.session, "_reset_session"):
            self.session._reset_session()

    def settings(self) -> dict[str, Any]:
        out = super().settings()
        out["license"] = self.license
        return out


@register_segmentation("nninteractive")
class NNInteractive(_PromptedSession):
    """Local nnInteractive (CPU or CUDA). Options: model_dir, download, model, autozoom, threads."""

    def __init__(
        self,
        device: str = "cpu",
        model_dir: str | None = None,
        download: bool = False,
        model: str = DEFAULT_MODEL_ID,
        threads: int | None = None,
        **options: Any,
    ) -> None:
        model_dir = model_dir_lookup.found(self.name, model_dir)
        super().__init__(device=device, model_dir=model_dir, download=download, model=model,
                         threads=threads, **options)
        self.model_dir = model_dir
        self.download = bool(download)
        self.model = model
        self.threads = threads

    @classmethod
    def unavailable_reason(cls, **options: Any) -> str | None:
        missing = missing_packages("torch", "nnunetv2", "nnInteractive.inference.inference_session")
        if missing:
            names = ", ".join("nninteractive" if m.startswith("nnInteractive") else m for m in missing)
            return f"Python package(s) {names} not installed; {INSTALL_HINT}"
        problem = device_problem(options.get("device", "cpu"))
        if problem:
            return problem
        model_dir = model_dir_lookup.found(cls.name, options.get("model_dir"))
        if model_dir:
            return find_model_folder(model_dir)[1]
        if options.get("download"):
            return None
        return f"no model folder given; {WEIGHTS_HINT}"

    def _resolve_folder(self) -> Path:
        if self.model_dir:
            folder, problem = find_model_folder(self.model_dir)
        else:
            from nnInteractive import model_management

            log.warning("%s: fetching model %s with the package's model manager (asked "
                        "with download=true)", self.name, self.model)
            try:
                path = model_management.ensure_model_available(self.model)
            except Exception as exc:
                raise BackendUnavailableError(
                    f"segmentation backend '{self.name}': {str(exc).splitlines()[0]}"
                ) from None
            folder, problem = find_model_folder(path)
        if folder is None:
            raise BackendUnavailableError(f"segmentation backend '{self.name}': {problem}")
        return folder

    def _open_session(self) -> Any:
        import torch
        from nnInteractive.inference.inference_session import nnInteractiveInferenceSession

        folder = self._resolve_folder()
        checkpoint = next(folder.glob("fold_*/checkpoint_final.pth"))
        # The package loads with weights_only=False; refuse files that hold anything but data
        # (tensors, plain Python values and the numpy scalars of nnU-Net's training log).
        load_weights(checkpoint, f"segmentation backend '{self.name}'", WEIGHTS_HINT,
                     numpy_scalars=True)
        threads = int(self.threads or torch.get_num_threads())
        session = _quiet(
            nnInteractiveInferenceSession,
            device=torch.device(self.device),
            use_torch_compile=False,
            verbose=False,
            torch_n_threads=threads,
            do_autozoom=self.autozoom,
        )
        try:
            _quiet(session.initialize_from_trained_model_folder, str(folder))
        except Exception as exc:
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise BackendUnavailableError(
                f"segmentation backend '{self.name}': cannot load model {folder} ({first[:200]})"
            ) from None
        log.info("%s: model %s on %s", self.name, folder, self.device)
        return session


@register_segmentation("nninteractive-remote")
class NNInteractiveRemote(_PromptedSession):
    """Prompts sent to an nnInteractive server. Options: server_url, api_key, autozoom."""

    def __init__(self, device: str = "cpu", server_url: str | None = None,
                 api_key: str | None = None, **options: Any) -> None:
        super().__init__(device=device, server_url=server_url, **options)
        self.server_url = server_url
        self._api_key = api_key  # kept out of settings(): run.json must not hold secrets

    @classmethod
    def unavailable_reason(cls, **options: Any) -> str | None:
        if missing_packages("httpx", "blosc2", "nnInteractive.inference.remote"):
            return ("Python package nninteractive-client not installed; "
                    "pip install nninteractive-client==2.6.0 (no torch needed)")
        url = options.get("server_url")
        if not url:
            return ("no server_url given (e.g. server_url=http://host:1527, api_key=... if set); "
                    "the server is nninteractive-server from the nninteractive package")
        if not str(url).startswith(("http://", "https://")):
            return f"server_url {url} must start with http:// or https://"
        return None

    def _open_session(self) -> Any:
        from nnInteractive.inference.remote import nnInteractiveRemoteInferenceSession

        try:
            session = _quiet(nnInteractiveRemoteInferenceSession, self.server_url,
                             api_key=self._api_key)
        except Exception as exc:
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise BackendUnavailableError(
                f"segmentation backend '{self.name}': cannot reach {self.server_url} "
                f"({first[:200]})"
            ) from None
        return session

    def release(self) -> None:
        self._last_image = None

    def close(self) -> None:
        """Give the server slot back."""
        if self.session is not None:
            self.session.close()
            self.session = None
