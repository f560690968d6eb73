"""VISTA3D (MONAI): point-prompted CT segmentation from local weights.

Preprocessing follows the MONAI VISTA3D bundle: the image is resampled to an isotropic grid
(1.5 mm) in RAS orientation, HU scaled from [-963.8, 1053.7] to [0, 1] with clipping, and the
network runs in 128^3 windows centred on the prompts (``point_based_window_inferer``). The
logits are resampled back to the image's own grid (linear) and thresholded at 0.

Weights: the bundle's ``models/model.pt``, passed as ``weights`` or found in the model folder
(``vista3d/models/model.pt``); loaded with ``weights_only=True``, never downloaded. The file may
hold the state dict itself or ``{"model": state_dict}`` (what the bundle's CheckpointLoader reads
and its trainer writes), with or without DistributedDataParallel's ``module.`` prefix.
The weights are under NVIDIA's non-commercial licence (the bundle's ``LICENSE.weights``; its
``LICENSE`` covers the code): it is logged and recorded in ``settings()``.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from .. import model_dir
from ..errors import BackendUnavailableError, InputError
from ..geometry import inside_grid, nearest_voxel
from ..registry import register_segmentation
from ..voxels import voxels
from .base import Segmenter, prompt_points
from .torch_utils import load_weights, weights_backend_problem

log = logging.getLogger(__name__)

HU_RANGE = (-963.8, 1053.7)
# Classes whose point prompts use labels 2/3 (lesions: MONAI's apps.vista3d SPECIAL_INDEX).
SPECIAL_CLASSES = (23, 24, 25, 26, 27, 57, 128)
WEIGHTS_LICENCE = ("NVIDIA License, non-commercial (research or evaluation only): the VISTA3D "
                   "bundle's LICENSE.weights")
WEIGHTS_HINT = (
    "get models/model.pt of the MONAI 'vista3d' bundle (python -m monai.bundle download "
    "vista3d, on a machine with internet) and put the bundle in $LINGUINE_MODEL_DIR as "
    "vista3d/models/model.pt or pass weights=PATH"
)
RAS_DIRECTION = (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)  # LPS cosines of RAS axes


def ras_grid(image: sitk.Image, spacing_mm: float) -> sitk.Image:
    """Empty isotropic RAS-oriented grid covering the physical box of ``image``."""
    size = np.array(image.GetSize())
    corners = np.array([[i, j, k] for i in (0, size[0] - 1) for j in (0, size[1] - 1)
                        for k in (0, size[2] - 1)], dtype=float)
    phys = np.array([image.TransformContinuousIndexToPhysicalPoint(c.tolist()) for c in corners])
    ras_axes = np.array(RAS_DIRECTION).reshape(3, 3)
    coords = phys @ ras_axes  # coordinates along each RAS axis (columns)
    lo, hi = coords.min(0), coords.max(0)
    n = np.maximum(np.ceil((hi - lo) / spacing_mm).astype(int) + 1, 1)
    grid = sitk.Image([int(v) for v in n], sitk.sitkFloat32)
    grid.SetSpacing([spacing_mm] * 3)
    grid.SetDirection(RAS_DIRECTION)
    grid.SetOrigin((ras_axes @ lo).tolist())
    return grid


@register_segmentation("vista3d")
class Vista3D(Segmenter):
    """VISTA3D via MONAI. Options: weights, spacing_mm, roi, prompt_class, encoder_embed_dim."""

    def __init__(
        self,
        device: str = "cpu",
        weights: str | None = None,
        spacing_mm: float = 1.5,
        roi: int = 128,
        prompt_class: int | None = None,
        encoder_embed_dim: int = 48,
        **options: Any,
    ) -> None:
        weights = model_dir.found(self.name, weights)
        super().__init__(device=device, weights=weights, spacing_mm=spacing_mm, roi=roi,
                         prompt_class=prompt_class, encoder_embed_dim=encoder_embed_dim,
                         **options)
        if prompt_class is not None and int(prompt_class) < 1:
            raise InputError(f"vista3d: prompt_class must be a VISTA3D class index >= 1 "
                             f"(> 132: zero-shot), got {prompt_class}")
        if float(spacing_mm) <= 0 or int(roi) < 16:
            raise InputError(f"vista3d: spacing_mm must be > 0 and roi >= 16 (got {spacing_mm}, "
                             f"{roi})")
        self.weights = weights
        self.spacing_mm = float(spacing_mm)
        self.roi = int(roi)
        self.prompt_class = None if prompt_class is None else int(prompt_class)
        self.encoder_embed_dim = int(encoder_embed_dim)
        # The network; tests may set any module with VISTA3D's forward signature.
        self.network: Any = None
        self._cache: tuple[sitk.Image, sitk.Image, Any] | None = None  # image, grid, input

    def _network_input(self, image: sitk.Image) -> tuple[sitk.Image, Any]:
        """RAS grid and (1, 1, i, j, k) scaled tensor; kept while the engine reuses the image."""
        import torch

        if self._cache is not None and self._cache[0] is image:
            return self._cache[1], self._cache[2]
        grid = ras_grid(image, self.spacing_mm)
        resampled = sitk.Resample(sitk.Cast(image, sitk.sitkFloat32), grid, sitk.Transform(),
                                  sitk.sitkLinear, HU_RANGE[0])
        lo, hi = HU_RANGE
        arr = np.clip((voxels(resampled) - lo) / (hi - lo), 0.0, 1.0)
        x = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 1, 0), np.float32))[None, None]
        self._cache = (image, grid, x)
        return grid, x

    def release(self) -> None:
        self._cache = None

    @classmethod
    def unavailable_reason(cls, **options: Any) -> str | None:
        options = model_dir.fill_options(cls.name, options)
        return weights_backend_problem(("torch", "monai"), options, WEIGHTS_HINT)

    def load(self) -> Any:
        """Build VISTA3D and load the weights once; one-line errors."""
        if self.network is not None:
            return self.network
        reason = self.unavailable_reason(device=self.device, **self.options)
        if reason:
            raise BackendUnavailableError(f"segmentation backend 'vista3d' cannot run: {reason}")
        import torch
        from monai.networks.nets import vista3d132

        state = unwrap_state(load_weights(self.weights, "segmentation backend 'vista3d'",
                                          WEIGHTS_HINT))
        net = vista3d132(encoder_embed_dim=self.encoder_embed_dim)
        try:
            net.load_state_dict(state)
        except (RuntimeError, TypeError, AttributeError) as exc:
            first = str(exc).strip().splitlines()[0]
            raise BackendUnavailableError(
                f"segmentation backend 'vista3d': weights do not fit VISTA3D "
                f"(encoder_embed_dim={self.encoder_embed_dim}): {first[:160]}; {WEIGHTS_HINT}"
            ) from None
        self.network = net.to(torch.device(self.device)).eval()
        log.info("vista3d: loaded %s on %s", self.weights, self.device)
        log.warning("vista3d: weights licence: %s", weights_license(self.weights))
        return self.network

    def segment(
        self,
        image: sitk.Image,
        positive_lps: np.ndarray,
        negative_lps: np.ndarray | None = None,
    ) -> np.ndarray:
        import torch
        from monai.apps.vista3d.inferer import point_based_window_inferer

        pos = prompt_points(positive_lps, "positive_lps")
        neg = prompt_points(negative_lps, "negative_lps")
        if len(pos) == 0:
            raise InputError("vista3d: at least one positive point is needed")
        shape = tuple(image.GetSize()[::-1])
        grid, x = self._network_input(image)
        size = np.array(grid.GetSize())
        pts, labels = [], []
        for group, label in ((pos, 1), (neg, 0)):
            for p in group:
                ijk = np.array(grid.TransformPhysicalPointToContinuousIndex(p.tolist()))
                if inside_grid(ijk, size):
                    pts.append(nearest_voxel(ijk, size))
                    labels.append(label)
        if 1 not in labels:
            log.warning("vista3d: every positive point is outside the image; empty mask")
            return np.zeros(shape, dtype=bool)
        if self.prompt_class in SPECIAL_CLASSES:
            labels = [lab + 2 for lab in labels]
        net = self.load()
        dev = torch.device(self.device)
        coords = torch.tensor(np.array(pts)[None], dtype=torch.float32, device=dev)
        point_labels = torch.tensor([labels], dtype=torch.long, device=dev)
        prompt = None
        if self.prompt_class is not None:
            prompt = torch.tensor([[self.prompt_class]], dtype=torch.long, device=dev)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Setting affine")
            logits = point_based_window_inferer(
                x.to(dev), roi_size=(self.roi,) * 3, predictor=net, point_coords=coords,
                point_labels=point_labels, class_vector=None, prompt_class=prompt,
                transpose=True,
            )
        out = np.nan_to_num(np.asarray(logits.detach().cpu())[0, 0], nan=-1e4)
        logit_img = sitk.GetImageFromArray(out.transpose(2, 1, 0).astype(np.float32))
        logit_img.CopyInformation(grid)
        back = sitk.Resample(logit_img, image, sitk.Transform(), sitk.sitkLinear, -1e4)
        return voxels(back) > 0

    def settings(self) -> dict[str, Any]:
        out = super().settings()
        out["license"] = weights_license(self.weights)
        return out


def unwrap_state(state: Any) -> Any:
    """The network's state dict out of the layouts a VISTA3D ``model.pt`` comes in."""
    for key in ("model", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if isinstance(state, dict) and state and all(str(k).startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def weights_license(weights: str | None) -> str:
    """The weights' licence as the MONAI bundle states it, with the first line of the bundle's
    LICENSE.weights when it sits next to the weights (bundle/models/model.pt)."""
    if weights:
        here = Path(weights).expanduser().parent
        for folder in (here, here.parent):
            lic = folder / "LICENSE.weights"
            if lic.is_file():
                lines = [ln.strip() for ln in lic.read_text(errors="replace").splitlines()]
                first = next((ln for ln in lines if ln), None)
                if first:
                    return f"{WEIGHTS_LICENCE}; {lic}: {first}"
    return WEIGHTS_LICENCE
