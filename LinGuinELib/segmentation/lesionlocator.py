"""LesionLocator's segmentation model (LLSeg, Rokuss et al., CVPR 2025) from point prompts.

LesionLocator is GPL-3 and not on the package index; nothing of it is copied here. This backend
loads its released model folder with ``nnunetv2`` / ``dynamic-network-architectures`` and
reproduces the input encoding documented and implemented in its public repository
(MIC-DKFZ/LesionLocator, read for facts only):

- model folder: ``LesionLocatorCheckpoint/LesionLocatorSeg/point_optimized/`` (``bbox_optimized``
  is the box model), an nnU-Net trained-model folder: ``plans.json``, ``dataset.json``,
  ``fold_<k>/checkpoint_final.pth`` (nnU-Net trainer checkpoints); all folds found are averaged,
  as upstream's default (folds 0-4);
- network: the plans' architecture with one input channel more than the image channels (the
  prompt), no deep supervision;
- preprocessing: nnU-Net's (transpose, crop to non-zero, the plans' normalisation, resampling to
  the configuration's spacing);
- point prompt: an extra channel, 0 everywhere and 1 in a ball of radius 5 voxels of the
  preprocessed grid (``skimage.morphology.ball(5, strict_radius=False)``: distance <= 5.5)
  around the rounded point; the image and prompt channels are padded to at least the patch size;
- inference: one patch of the configuration's patch size centred on the prompt's bounding box
  (moved inside the image), test-time mirroring over the checkpoint's
  ``inference_allowed_mirroring_axes`` (logits averaged), folds averaged, logits resampled back
  by nnU-Net's export path.

Where LinGuinE differs: points are mapped to the preprocessed grid with the same cell-centred
convention as the resampling (upstream scales indices without the half-voxel shift: at most half
a voxel apart); several positive points become balls in the same prompt channel (LLSeg was
trained with one point per lesion; the engine sends one); negative points are not supported by
LLSeg and are ignored (logged). Calling an installed ``lesionlocator`` package instead is not done.
"""

from __future__ import annotations

import logging
from itertools import combinations
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

POINT_MODEL = ("LesionLocatorSeg", "point_optimized")
BALL_RADIUS = 5.0
BALL_EXTRA = 0.5  # strict_radius=False
OUTSIDE_PATCH_LOGIT = 20.0  # background wins where the patch did not reach
WEIGHTS_HINT = (
    "download LesionLocatorCheckpoint from Zenodo record 15174217 (linked from "
    "github.com/MIC-DKFZ/LesionLocator), extract it and put it in $LINGUINE_MODEL_DIR or pass "
    "model_dir=PATH"
)
LICENCE_UNKNOWN = (
    "not stated in the LesionLocator repository (code GPL-3; its dataset CC BY-NC-SA 4.0): "
    "check Zenodo record 15174217 before use; no LICENSE file in the model folder"
)


def find_model_folder(path: str | Path) -> tuple[Path | None, str | None]:
    """(point_optimized folder, None) for the checkpoint root, its LesionLocatorSeg folder or the
    point_optimized folder itself; else (None, what is wrong)."""
    root = Path(path).expanduser()
    if not root.is_dir():
        return None, f"model folder {root} not found"
    for cand in (root / POINT_MODEL[0] / POINT_MODEL[1], root / POINT_MODEL[1], root):
        if (cand / "plans.json").is_file():
            break
    else:
        return None, (f"{root} has no {'/'.join(POINT_MODEL)}/plans.json (not a LesionLocator "
                      "checkpoint folder)")
    missing = [f for f in ("dataset.json",) if not (cand / f).is_file()]
    if not fold_checkpoints(cand):
        missing.append("fold_*/checkpoint_final.pth")
    if missing:
        return None, f"model folder {cand} lacks {', '.join(missing)}"
    return cand, None


def fold_checkpoints(folder: Path) -> dict[str, Path]:
    """fold name ("0", "1", ..., "all") -> checkpoint_final.pth present in ``folder``."""
    out = {}
    for sub in sorted(folder.glob("fold_*")):
        ckpt = sub / "checkpoint_final.pth"
        if ckpt.is_file():
            out[sub.name[len("fold_"):]] = ckpt
    return out


def model_license(folder: Path) -> str:
    """First line of a LICENSE file in the model folder or above it (up to the checkpoint root)."""
    for cand in (folder, folder.parent, folder.parent.parent):
        for name in ("LICENSE", "LICENSE.txt", "LICENCE"):
            lic = cand / name
            if lic.is_file():
                lines = [ln.strip() for ln in lic.read_text(errors="replace").splitlines()]
                first = next((ln for ln in lines if ln), None)
                if first:
                    return first
    return LICENCE_UNKNOWN


def ball_offsets() -> np.ndarray:
    """(K, 3) voxel offsets of the prompt ball (739 voxels)."""
    r = int(BALL_RADIUS)
    grid = np.stack(np.meshgrid(*[np.arange(-r, r + 1)] * 3, indexing="ij"), -1).reshape(-1, 3)
    return grid[(grid ** 2).sum(1) <= (BALL_RADIUS + BALL_EXTRA) ** 2]


def prompt_channel(shape: tuple[int, ...], centres_zyx: np.ndarray) -> np.ndarray:
    """Float32 channel: 1 in the ball around each (rounded, in-image) centre, 0 elsewhere."""
    out = np.zeros(shape, dtype=np.float32)
    offsets = ball_offsets()
    for c in np.asarray(centres_zyx, dtype=int).reshape(-1, 3):
        pts = c + offsets
        pts = pts[np.all((pts >= 0) & (pts < np.array(shape)), axis=1)]
        out[tuple(pts.T)] = 1.0
    return out


def patch_box(prompt: np.ndarray, patch: tuple[int, ...]) -> tuple[slice, ...]:
    """The patch centred on the prompt's bounding box, moved inside the (padded) image."""
    nz = np.argwhere(prompt > 0)
    lo, hi = nz.min(0), nz.max(0)
    out = []
    for axis, size in enumerate(prompt.shape):
        start = int((lo[axis] + hi[axis] - patch[axis]) / 2)
        start = min(max(start, 0), size - patch[axis])
        out.append(slice(start, start + patch[axis]))
    return tuple(out)


@register_segmentation("lesionlocator")
class LesionLocator(Segmenter):
    """LesionLocator's LLSeg (point model). Options: model_dir, folds, mirror."""

    def __init__(self, device: str = "cpu", model_dir: str | None = None, folds: Any = "all",
                 mirror: bool = True, **options: Any) -> None:
        model_dir = model_dir_lookup.found(self.name, model_dir)
        super().__init__(device=device, model_dir=model_dir, folds=folds, mirror=mirror,
                         **options)
        self.model_dir = model_dir
        self.folds = parse_folds(folds)
        self.mirror = bool(mirror)
        self.license: str | None = None
        self._model: dict[str, Any] | None = None
        self._cache: tuple[sitk.Image, Any, dict] | None = None

    @classmethod
    def unavailable_reason(cls, **options: Any) -> str | None:
        missing = missing_packages("torch", "nnunetv2", "dynamic_network_architectures")
        if missing:
            return f"Python package(s) {', '.join(missing)} not installed; {INSTALL_HINT}"
        problem = device_problem(options.get("device", "cpu"))
        if problem:
            return problem
        folder = model_dir_lookup.found(cls.name, options.get("model_dir"))
        if not folder:
            return f"no model folder given; {WEIGHTS_HINT}"
        return find_model_folder(folder)[1]

    # -- loading -----------------------------------------------------------------------
    def load(self) -> dict[str, Any]:
        """Plans, network and the folds' weights (once); one-line errors."""
        if self._model is not None:
            return self._model
        reason = self.unavailable_reason(device=self.device, **self.options)
        if reason:
            raise BackendUnavailableError(f"segmentation backend 'lesionlocator' cannot run: {reason}")
        import json

        import torch
        from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
        from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

        folder, _ = find_model_folder(self.model_dir)
        what = "segmentation backend 'lesionlocator'"
        plans = PlansManager(json.loads((folder / "plans.json").read_text()))
        dataset = json.loads((folder / "dataset.json").read_text())
        available = fold_checkpoints(folder)
        # all folds found, as upstream auto-detects them (fold_all only when alone)
        wanted = ([f for f in available if f != "all"] or list(available)) if self.folds is None \
            else self.folds
        absent = [f for f in wanted if f not in available]
        if absent:
            raise BackendUnavailableError(f"{what}: fold(s) {', '.join(absent)} not in {folder} "
                                          f"(present: {', '.join(available)})")
        states, first = [], None
        for fold in wanted:
            ckpt = load_weights(available[fold], what, WEIGHTS_HINT, numpy_scalars=True)
            if not isinstance(ckpt, dict) or "network_weights" not in ckpt:
                raise BackendUnavailableError(f"{what}: {available[fold]} is not an nnU-Net "
                                              f"checkpoint (no network_weights); {WEIGHTS_HINT}")
            first = first or ckpt
            states.append(ckpt["network_weights"])
        config = plans.get_configuration(first["init_args"]["configuration"])
        labels = plans.get_label_manager(dataset)
        if labels.has_regions:
            raise BackendUnavailableError(f"{what}: region-based model folders are not supported")
        n_channels = len(dataset.get("channel_names", dataset.get("modality", {"0": "CT"})))
        try:
            net = get_network_from_plans(
                config.network_arch_class_name, config.network_arch_init_kwargs,
                config.network_arch_init_kwargs_req_import, n_channels + 1,
                labels.num_segmentation_heads, allow_init=False, deep_supervision=False)
            net.load_state_dict(states[0])
        except Exception as exc:  # architecture/weights mismatch: one line
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise BackendUnavailableError(f"{what}: weights do not fit the plans' network "
                                          f"({first_line[:200]})") from None
        self.license = model_license(folder)
        log.warning("lesionlocator: model licence: %s", self.license)
        axes = first.get("inference_allowed_mirroring_axes")
        self._model = {
            "plans": plans, "config": config, "labels": labels, "dataset": dataset,
            "net": net.to(torch.device(self.device)).eval(), "states": states,
            "mirror_axes": tuple(axes) if (axes is not None and self.mirror) else (),
            "folder": folder, "n_channels": n_channels,
        }
        log.info("lesionlocator: %s, %d fold(s), mirroring %s, on %s", folder, len(states),
                 self._model["mirror_axes"] or "off", self.device)
        return self._model

    # -- segmentation ------------------------------------------------------------------
    def _preprocessed(self, image: sitk.Image) -> tuple[Any, dict]:
        """nnU-Net preprocessing of the image (kept while the engine reuses the image)."""
        if self._cache is not None and self._cache[0] is image:
            return self._cache[1], self._cache[2]
        from nnunetv2.preprocessing.preprocessors.default_preprocessor import DefaultPreprocessor

        m = self.load()
        if m["n_channels"] != 1:
            raise InputError(f"lesionlocator: the model expects {m['n_channels']} image channels")
        arr = voxels(image).astype(np.float32)[None]
        props = {"spacing": list(image.GetSpacing()[::-1])}
        data, _, props = DefaultPreprocessor(verbose=False).run_case_npy(
            arr, None, props, m["plans"], m["config"], m["dataset"])
        self._cache = (image, data, props)
        return data, props

    def to_preprocessed(self, image: sitk.Image, points_lps: np.ndarray, props: dict,
                        shape: tuple[int, ...]) -> np.ndarray:
        """LPS points -> continuous (transposed, cropped, resampled) voxel coordinates."""
        m = self.load()
        idx = physical_to_continuous_index_zyx(image, points_lps)[:, list(m["plans"].transpose_forward)]
        bbox = np.array(props["bbox_used_for_cropping"], dtype=float)[:, 0]
        before = np.array(props["shape_after_cropping_and_before_resampling"], dtype=float)
        return (idx - bbox + 0.5) * np.array(shape, dtype=float) / before - 0.5

    def segment(self, image: sitk.Image, positive_lps: np.ndarray,
                negative_lps: np.ndarray | None = None) -> np.ndarray:
        import torch
        from acvl_utils.cropping_and_padding.padding import pad_nd_image
        from nnunetv2.inference.export_prediction import (
            convert_predicted_logits_to_segmentation_with_correct_shape,
        )

        pos = prompt_points(positive_lps, "positive_lps")
        if len(prompt_points(negative_lps, "negative_lps")):
            log.info("lesionlocator: negative points ignored (LLSeg takes positive prompts only)")
        if len(pos) == 0:
            raise InputError("lesionlocator: at least one positive point is needed")
        shape = tuple(image.GetSize()[::-1])
        m = self.load()
        data, props = self._preprocessed(image)
        centres = np.rint(self.to_preprocessed(image, pos, props, data.shape[1:])).astype(int)
        inside = np.all((centres >= 0) & (centres < np.array(data.shape[1:])), axis=1)
        if not inside.any():
            log.warning("lesionlocator: every positive point is outside the image; empty mask")
            return np.zeros(shape, dtype=bool)
        x = np.concatenate([data, prompt_channel(data.shape[1:], centres[inside])[None]])
        patch = tuple(int(p) for p in m["config"].patch_size)
        x, unpad = pad_nd_image(torch.from_numpy(x.astype(np.float32)), patch, "constant",
                                {"value": 0}, True, None)
        box = patch_box(x[-1].numpy(), patch)
        logits = self._predict(x[(slice(None), *box)].contiguous())
        heads = logits.shape[0]
        full = torch.full((heads, *x.shape[1:]), -OUTSIDE_PATCH_LOGIT)
        full[0] = OUTSIDE_PATCH_LOGIT
        full[(slice(None), *box)] = logits
        full = full[(slice(None), *unpad[1:])]
        seg = convert_predicted_logits_to_segmentation_with_correct_shape(
            full, m["plans"], m["config"], m["labels"], props)
        return np.asarray(seg) > 0

    def _predict(self, patch: Any) -> Any:
        """Fold- and mirror-averaged logits of one (C, *patch) input, on the CPU."""
        import torch

        m = self.load()
        net, dev = m["net"], torch.device(self.device)
        x = patch[None].to(dev)
        flips = [()] + [tuple(a + 2 for a in c) for k in range(1, len(m["mirror_axes"]) + 1)
                        for c in combinations(m["mirror_axes"], k)]
        total = None
        with torch.no_grad():
            for state in m["states"]:
                if len(m["states"]) > 1:
                    net.load_state_dict(state)
                for axes in flips:
                    xi = torch.flip(x, axes) if axes else x
                    out = net(xi)
                    out = torch.flip(out, axes) if axes else out
                    total = out if total is None else total + out
        return (total / (len(m["states"]) * len(flips)))[0].float().cpu()

    def release(self) -> None:
        self._cache = None

    def settings(self) -> dict[str, Any]:
        out = super().settings()
        out["license"] = self.license
        return out


def parse_folds(folds: Any) -> list[str] | None:
    """None (all present) or fold names: "all", 0, "0,1", [0, 1]."""
    if folds is None or (isinstance(folds, str) and folds.strip().lower() in ("", "all", "*")):
        return None
    items = folds if isinstance(folds, (list, tuple)) else str(folds).split(",")
    names = [str(f).strip() for f in items if str(f).strip()]
    if not names:
        raise InputError(f"lesionlocator: folds must be 'all' or fold numbers, got {folds!r}")
    return names
