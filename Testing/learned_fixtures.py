"""Tiny models and images for the learned-backend tests (no downloaded weights anywhere).

Everything here imports torch & co. lazily, so importing this module never fails; the tests
call ``pytest.importorskip`` first.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk


def blob_image(
    size_xyz: tuple[int, int, int],
    spacing: tuple[float, float, float],
    origin: tuple[float, float, float],
    centre_lps: tuple[float, float, float],
    radius_mm: float = 8.0,
    direction: tuple[float, ...] | None = None,
) -> sitk.Image:
    """CT-like image: -1000 HU air with a soft +200 HU ball at ``centre_lps``."""
    img = sitk.Image(list(size_xyz), sitk.sitkFloat32)
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    if direction is not None:
        img.SetDirection(direction)
    zz, yy, xx = np.meshgrid(*[np.arange(n) for n in size_xyz[::-1]], indexing="ij")
    idx = np.stack([xx.ravel(), yy.ravel(), zz.ravel()], axis=1).astype(float)
    dirm = np.array(img.GetDirection()).reshape(3, 3)
    phys = np.array(origin) + (dirm @ (idx * np.array(spacing)).T).T
    d2 = ((phys - np.array(centre_lps)) ** 2).sum(1).reshape(zz.shape)
    arr = -1000.0 + 1200.0 * np.exp(-d2 / (2 * (radius_mm / 2) ** 2))
    out = sitk.GetImageFromArray(arr.astype(np.float32))
    out.CopyInformation(img)
    return out


# -- registration: deterministic icon_registration modules ----------------------------------
def shift_module(shift_unit_zyx: tuple[float, float, float], scale: float = 1.0) -> Any:
    """phi(x) = scale * x + shift, in the network's [0, 1] coordinates (channels z, y, x)."""
    import torch
    from icon_registration import network_wrappers

    class AffineUnitMap(network_wrappers.RegistrationModule):
        def __init__(self) -> None:
            super().__init__()
            self.shift = torch.nn.Parameter(torch.tensor(shift_unit_zyx).view(1, 3, 1, 1, 1))

        def forward(self, image_a: Any, image_b: Any) -> Any:
            return lambda coords: scale * coords + self.shift

    return AffineUnitMap()


def centroid_module(threshold: float = 0.5) -> Any:
    """Aligns the bright-blob centroids: phi_AB(x) = x + c_A - c_B, so I_A(phi_AB(x)) ~ I_B(x)."""
    from icon_registration import network_wrappers

    class CentroidMap(network_wrappers.RegistrationModule):
        def _centroid(self, image: Any) -> Any:
            w = (image > threshold).float() * image
            total = w.sum()
            return (self.identity_map * w).sum(dim=(2, 3, 4), keepdim=True) / total

        def forward(self, image_a: Any, image_b: Any) -> Any:
            delta = self._centroid(image_a) - self._centroid(image_b)
            return lambda coords: coords + delta

    return CentroidMap()


def batchnorm_module(seed: int = 0) -> Any:
    """A small displacement network with a BatchNorm layer, like the steps of uniGradICON."""
    import torch
    from icon_registration import network_wrappers

    torch.manual_seed(seed)

    class Field(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv3d(2, 3, 3, padding=1)
            self.norm = torch.nn.BatchNorm3d(3)
            self.norm.running_mean.fill_(0.3)  # stored statistics unlike any one pair's
            self.norm.running_var.fill_(2.0)

        def forward(self, image_a: Any, image_b: Any) -> Any:
            return 0.05 * self.norm(self.conv(torch.cat([image_a, image_b], 1)))

    return network_wrappers.FunctionFromVectorField(Field())


def wrap_icon(module: Any, grid: int) -> Any:
    """The package's GradICON wrapper around ``module``, identity map assigned, eval mode."""
    from icon_registration import losses

    net = losses.GradientICONSparse(module, similarity=losses.LNCC(sigma=2), lmbda=1.5)
    net.assign_identity_map([1, 1, grid, grid, grid])
    return net.eval()


# -- nnInteractive: a tiny model folder in the official layout ----------------------------
NNI_TRAINER = "nnInteractiveTrainer_stub"


def tiny_plans(patch: int = 64) -> dict:
    """plans.json for a 3-stage ResidualEncoderUNet with 4/8/16 features."""
    arch = {
        "network_class_name": (
            "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet"
        ),
        "arch_kwargs": {
            "n_stages": 3,
            "features_per_stage": [4, 8, 16],
            "conv_op": "torch.nn.modules.conv.Conv3d",
            "kernel_sizes": [[3, 3, 3]] * 3,
            "strides": [[1, 1, 1], [2, 2, 2], [2, 2, 2]],
            "n_blocks_per_stage": [1, 1, 1],
            "n_conv_per_stage_decoder": [1, 1],
            "conv_bias": True,
            "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d",
            "norm_op_kwargs": {"eps": 1e-05, "affine": True},
            "dropout_op": None,
            "dropout_op_kwargs": None,
            "nonlin": "torch.nn.LeakyReLU",
            "nonlin_kwargs": {"inplace": True},
        },
        "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"],
    }
    config = {
        "data_identifier": "tiny",
        "preprocessor_name": "DefaultPreprocessor",
        "batch_size": 1,
        "patch_size": [patch] * 3,
        "median_image_size_in_voxels": [patch] * 3,
        "spacing": [1.0, 1.0, 1.0],
        "normalization_schemes": ["CTNormalization"],
        "use_mask_for_norm": [False],
        "resampling_fn_data": "resample_data_or_seg_to_shape",
        "resampling_fn_seg": "resample_data_or_seg_to_shape",
        "resampling_fn_data_kwargs": {"is_seg": False, "order": 3, "order_z": 0},
        "resampling_fn_seg_kwargs": {"is_seg": True, "order": 1, "order_z": 0},
        "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
        "resampling_fn_probabilities_kwargs": {"is_seg": False, "order": 1, "order_z": 0},
        "architecture": arch,
        "batch_dice": False,
    }
    return {
        "dataset_name": "Dataset999_Tiny",
        "plans_name": "nnUNetPlans",
        "original_median_spacing_after_transp": [1.0, 1.0, 1.0],
        "original_median_shape_after_transp": [patch] * 3,
        "image_reader_writer": "SimpleITKIO",
        "transpose_forward": [0, 1, 2],
        "transpose_backward": [0, 1, 2],
        "configurations": {"3d_tiny": config},
        "experiment_planner_used": "hand-written test fixture",
        "label_manager": "LabelManager",
        "foreground_intensity_properties_per_channel": {
            "0": {
                "max": 1000.0, "mean": 0.0, "median": 0.0, "min": -1000.0,
                "percentile_00_5": -1000.0, "percentile_99_5": 1000.0, "std": 500.0,
            }
        },
    }


def write_tiny_nninteractive(
    folder: Path,
    patch: int = 64,
    license_text: str | None = None,
    plans: dict | None = None,
) -> Path:
    """An nnInteractive model folder (official layout) with random weights; returns the folder.

    ``plans`` replaces the tiny 3-stage plans (same configuration name, "3d_tiny").
    """
    import torch
    from nnInteractive.trainer.nnInteractiveTrainer import nnInteractiveTrainer_stub
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    folder.mkdir(parents=True, exist_ok=True)
    plans = plans or tiny_plans(patch)
    dataset = {
        "channel_names": {"0": "CT"},
        "labels": {"background": 0, "foreground": 1},
        "numTraining": 1,
        "file_ending": ".nii.gz",
    }
    info = {"point_radius": 4, "interaction_decay": 0.98}
    (folder / "plans.json").write_text(json.dumps(plans))
    (folder / "dataset.json").write_text(json.dumps(dataset))
    (folder / "inference_session_class.json").write_text(json.dumps(info))
    if license_text is not None:
        (folder / "LICENSE").write_text(license_text)
    pm = PlansManager(plans)
    net = nnInteractiveTrainer_stub.build_network_architecture(
        pm, pm.get_configuration("3d_tiny"), 1 + 7, 2, enable_deep_supervision=False
    )
    (folder / "fold_0").mkdir(exist_ok=True)
    torch.save(trainer_checkpoint(net, NNI_TRAINER, plans, dataset, "3d_tiny"),
               folder / "fold_0" / "checkpoint_final.pth")
    return folder


def trainer_checkpoint(net: Any, trainer_name: str, plans: dict, dataset: dict,
                       configuration: str, fold: int = 0) -> dict:
    """What ``nnUNetTrainer.save_checkpoint`` (nnunetv2 2.x) writes after one epoch.

    Same keys and value types: SGD state with momentum buffers, the grad scaler's state, the
    LocalLogger lists (numpy float32 losses, numpy float64 Dice values, Python float timestamps
    and learning rates), ``_best_ema`` (numpy float64), the init args (plans, configuration,
    fold, dataset.json, a torch.device) and the mirroring axes tuple.
    """
    import torch

    opt = torch.optim.SGD(net.parameters(), lr=1e-2, momentum=0.99, nesterov=True,
                          weight_decay=3e-5)
    for p in net.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()  # creates the momentum buffers a real checkpoint holds
    for p in net.parameters():
        p.grad = None
    dice = np.float64(0.8125)
    logging = {
        "mean_fg_dice": [dice],
        "ema_fg_dice": [dice],
        "dice_per_class_or_region": [[dice]],
        "train_losses": [np.mean([np.float32(-0.5), np.float32(-0.75)])],
        "val_losses": [np.mean([np.float32(-0.25)])],
        "lrs": [0.01],
        "epoch_start_timestamps": [1.7e9],
        "epoch_end_timestamps": [1.7e9 + 240.5],
    }
    assert type(logging["train_losses"][0]) is np.float32 and type(dice) is np.float64
    return {
        "network_weights": net.state_dict(),
        "optimizer_state": opt.state_dict(),
        "grad_scaler_state": {"scale": 65536.0, "growth_factor": 2.0, "backoff_factor": 0.5,
                              "growth_interval": 2000, "_growth_tracker": 17},
        "logging": logging,
        "_best_ema": dice,
        "current_epoch": 1,
        "init_args": {"plans": plans, "configuration": configuration, "fold": fold,
                      "dataset_json": dataset, "device": torch.device("cuda")},
        "trainer_name": trainer_name,
        "inference_allowed_mirroring_axes": (0, 1, 2),
    }


# -- LesionLocator: a tiny LesionLocatorCheckpoint in the released layout --------------------
LL_TRAINER = "LesionLocatorTrainerSegment"


def write_tiny_lesionlocator(root: Path, folds: tuple[int, ...] = (0, 1), patch: int = 32,
                             license_text: str | None = None, plans: dict | None = None) -> Path:
    """``root``/LesionLocatorSeg/point_optimized with random weights per fold; returns ``root``.

    The network is the plans' (default: 3-stage ResidualEncoderUNet) with image + prompt input
    channels and background/lesion outputs, saved in nnU-Net trainer checkpoints. ``plans``
    replaces the tiny plans (same configuration name, "3d_tiny").
    """
    import torch
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    folder = root / "LesionLocatorSeg" / "point_optimized"
    folder.mkdir(parents=True, exist_ok=True)
    plans = plans or tiny_plans(patch)
    dataset = {"channel_names": {"0": "CT"}, "labels": {"background": 0, "lesion": 1},
               "numTraining": 1, "file_ending": ".nii.gz"}
    (folder / "plans.json").write_text(json.dumps(plans))
    (folder / "dataset.json").write_text(json.dumps(dataset))
    if license_text is not None:
        (root / "LICENSE").write_text(license_text)
    config = PlansManager(plans).get_configuration("3d_tiny")
    for fold in folds:
        torch.manual_seed(100 + fold)
        net = get_network_from_plans(config.network_arch_class_name,
                                     config.network_arch_init_kwargs,
                                     config.network_arch_init_kwargs_req_import, 2, 2,
                                     deep_supervision=False)
        (folder / f"fold_{fold}").mkdir(exist_ok=True)
        torch.save(trainer_checkpoint(net, LL_TRAINER, plans, dataset, "3d_tiny", fold),
                   folder / f"fold_{fold}" / "checkpoint_final.pth")
    return root
