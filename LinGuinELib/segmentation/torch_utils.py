"""Small helpers shared by the learned backends; torch is imported inside functions only.

Kept free of heavy imports so that the backend modules that use it still import (and can
report what is missing) on a machine without torch.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from ..errors import BackendUnavailableError

INSTALL_HINT = "run scripts/install_learned.sh (after: pip install torch==2.13.0)"


def missing_packages(*modules: str) -> list[str]:
    """Top-level import names among ``modules`` that cannot be found here."""
    missing = []
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    return missing


def device_problem(device: str) -> str | None:
    """None when torch can use ``device`` here, else a one-line reason."""
    dev = str(device or "cpu").lower()
    if dev == "cpu":
        return None
    if not dev.startswith("cuda"):
        return f"device '{device}' is not supported (use 'cpu' or 'cuda')"
    import torch

    if not torch.cuda.is_available():
        return (
            f"device '{device}' was asked for but torch {torch.__version__} sees no CUDA GPU "
            "(use device='cpu', or install a CUDA build of torch on a GPU machine)"
        )
    return None


def resolve_device(device: str) -> Any:
    """torch.device for ``device`` (``"cuda"`` means the current GPU)."""
    import torch

    return torch.device(str(device or "cpu"))


def weights_backend_problem(packages: tuple[str, ...], options: dict[str, Any], how_to_get: str,
                            allow_download: bool = False) -> str | None:
    """Why a weights-file backend can't run here (packages, device, weights), or None."""
    missing = missing_packages(*packages)
    if missing:
        return f"Python package(s) {', '.join(missing)} not installed; {INSTALL_HINT}"
    problem = device_problem(options.get("device", "cpu"))
    if problem:
        return problem
    weights = options.get("weights")
    if not weights:
        return f"no weights given; {how_to_get}"
    if not Path(weights).expanduser().is_file() and not (allow_download and options.get("download")):
        return f"weights file {weights} not found; {how_to_get}"
    return None


def numpy_scalar_globals() -> list[Any]:
    """The numpy types that nnU-Net trainer checkpoints pickle, and nothing more.

    ``nnUNetTrainer.save_checkpoint`` stores the training ``logging`` lists and ``_best_ema``,
    which hold numpy float32/float64 scalars. Unpickling one needs numpy's scalar constructor
    (named ``numpy.core.multiarray.scalar`` in files written under numpy 1.x), ``numpy.dtype``
    and, for files written under numpy 2, the dtype's class. None of these can run code.
    """
    import numpy as np

    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import scalar  # type: ignore[no-redef]
    allowed: list[Any] = [scalar, (scalar, "numpy.core.multiarray.scalar"), np.dtype]
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        allowed += [dtypes.Float32DType, dtypes.Float64DType]
    return allowed


def load_weights(path: str | Path, what: str, how_to_get: str, numpy_scalars: bool = False) -> Any:
    """``torch.load`` with ``weights_only=True``: a weights file can never run code.

    ``numpy_scalars`` also admits the numpy scalar types of ``numpy_scalar_globals`` (nnU-Net
    checkpoints). Any failure (missing, truncated, other pickled objects) becomes one
    BackendUnavailableError line.
    """
    import torch

    p = Path(path).expanduser()
    if not p.is_file():
        raise BackendUnavailableError(f"{what}: weights file {p} not found ({how_to_get})")
    try:
        allowed = numpy_scalar_globals() if numpy_scalars else []
        with torch.serialization.safe_globals(allowed):
            return torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a bad file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BackendUnavailableError(
            f"{what}: cannot read weights {p} safely ({first[:200]}); {how_to_get}"
        ) from None


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MB (Linux ru_maxrss is in kB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
