"""VISTA3D backend: the real MONAI network (small embedding, random weights) through the real
loader, and deterministic networks swapped in for exact mask / prompt-coordinate checks."""

from __future__ import annotations

import fractions

import numpy as np
import pytest
import SimpleITK as sitk

from LinGuinELib.errors import BackendUnavailableError
from LinGuinELib.geometry import index_zyx_to_physical
from LinGuinELib.registry import backend_names, create_backend

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

from learned_fixtures import blob_image  # noqa: E402

from LinGuinELib.segmentation import vista3d  # noqa: E402

LO, HI = vista3d.HU_RANGE


class Threshold(torch.nn.Module):
    """Logit = scaled intensity - level (VISTA3D's forward signature, output [1, 1, H, W, D])."""

    def __init__(self, hu: float) -> None:
        super().__init__()
        self.level = (hu - LO) / (HI - LO)

    def forward(self, input_images, **kwargs):
        return input_images - self.level


class EchoPoints(torch.nn.Module):
    """Logit > 0 within 1.6 voxels of each point labelled ``label`` (full-image voxels)."""

    def __init__(self, label: int = 1) -> None:
        super().__init__()
        self.label = label

    def forward(self, input_images, point_coords=None, point_labels=None, patch_coords=None,
                **kwargs):
        shape = input_images.shape[-3:]
        start = torch.tensor([s.start for s in patch_coords[0][2:]], dtype=torch.float32)
        grid = torch.stack(torch.meshgrid(*[torch.arange(n) for n in shape], indexing="ij"), -1)
        out = torch.full(shape, -1.0)
        for p, lab in zip(point_coords[0], point_labels[0]):
            if int(lab) == self.label:
                d = ((grid.float() - (p.float() - start)) ** 2).sum(-1).sqrt()
                out[d <= 1.6] = 1.0
        return out[None, None]


def backend(net, **opts) -> vista3d.Vista3D:
    seg = vista3d.Vista3D(weights="unused", **opts)
    seg.network = net
    return seg


def test_special_classes_are_monais():
    """Point labels 2/3 go with MONAI's own special (lesion) classes, nothing else."""
    from monai.apps.vista3d.sampler import SPECIAL_INDEX
    from monai.networks.nets.vista3d import VISTA3D

    assert vista3d.SPECIAL_CLASSES == tuple(SPECIAL_INDEX)
    import inspect

    default = inspect.signature(VISTA3D.convert_point_label).parameters["special_index"].default
    assert vista3d.SPECIAL_CLASSES == tuple(default)


def test_licence_without_the_bundle_files_is_the_weights_one(tmp_path):
    assert vista3d.weights_license(str(tmp_path / "model.pt")) == vista3d.WEIGHTS_LICENCE
    assert vista3d.Vista3D(weights=None).settings()["license"] == vista3d.WEIGHTS_LICENCE


def test_registered_and_reasons(tmp_path):
    assert "vista3d" in backend_names("segmentation")
    assert "weights" in vista3d.Vista3D.unavailable_reason()
    assert "not found" in vista3d.Vista3D.unavailable_reason(weights=str(tmp_path / "m.pt"))
    with pytest.raises(BackendUnavailableError, match="vista3d.*weights"):
        create_backend("segmentation", "vista3d")


def test_threshold_network_exact_on_a_ras_grid():
    # Image already on the network grid (1.5 mm, RAS): the mask must be the threshold region.
    img = blob_image((40, 36, 30), (1.5, 1.5, 1.5), (10.0, 20.0, -5.0), (-20.0, -5.0, 15.0),
                     radius_mm=9.0, direction=vista3d.RAS_DIRECTION)
    seg = backend(Threshold(-500.0), roi=48)
    mask = seg.segment(img, np.array([[-20.0, -5.0, 15.0]]))
    want = sitk.GetArrayFromImage(img) > -500
    assert want.sum() > 100
    np.testing.assert_array_equal(mask, want)


def test_threshold_network_on_anisotropic_lps_image():
    img = blob_image((48, 40, 20), (0.8, 0.9, 2.5), (-20.0, -15.0, -25.0), (0.0, 3.0, 0.0),
                     radius_mm=10.0)
    seg = backend(Threshold(-500.0), roi=64)
    mask = seg.segment(img, np.array([[0.0, 3.0, 0.0]]))
    want = sitk.GetArrayFromImage(img) > -500
    dice = 2 * (mask & want).sum() / (mask.sum() + want.sum())
    assert mask.shape == want.shape and dice > 0.9, dice


def test_prompt_lands_on_its_voxel_and_negatives_are_passed():
    img = blob_image((50, 44, 24), (0.7, 0.7, 2.0), (30.0, -10.0, 5.0), (0, 0, 0),
                     direction=(0, 1, 0, -1, 0, 0, 0, 0, 1))
    target = index_zyx_to_physical(img, np.array([[12.0, 30.0, 20.0]]))
    neg = index_zyx_to_physical(img, np.array([[3.0, 5.0, 5.0]]))
    for label, where in ((1, target), (0, neg)):
        mask = backend(EchoPoints(label), roi=32).segment(img, target, neg)
        got = index_zyx_to_physical(img, np.argwhere(mask).mean(0)[None])
        assert mask.any() and np.linalg.norm(got - where) < 1.5  # within one 1.5 mm grid step
    far = np.array([[1e4, 0.0, 0.0]])
    assert not backend(EchoPoints(1), roi=32).segment(img, far).any()


def test_real_network_small_embedding_through_the_loader(tmp_path):
    torch.manual_seed(0)
    from monai.networks.nets import vista3d132

    weights = tmp_path / "models" / "model.pt"
    weights.parent.mkdir()
    net = vista3d132(encoder_embed_dim=8)
    # The bundle's CheckpointLoader reads {"model": state_dict}, as its trainer writes it.
    torch.save({"model": net.state_dict()}, weights)
    (tmp_path / "LICENSE").write_text("Apache License\n")  # the bundle's code licence
    (tmp_path / "LICENSE.weights").write_text("\nNVIDIA License\n")
    seg = create_backend("segmentation", "vista3d", weights=str(weights), encoder_embed_dim=8,
                         roi=32, spacing_mm=3.0)
    img = blob_image((40, 40, 16), (1.0, 1.0, 2.5), (0.0, 0.0, 0.0), (20, 20, 20))
    mask = seg.segment(img, np.array([[20.0, 20.0, 20.0]]), np.array([[5.0, 5.0, 5.0]]))
    assert mask.dtype == bool and mask.shape == (16, 40, 40)
    assert seg.settings()["license"] == (f"{vista3d.WEIGHTS_LICENCE}; "
                                         f"{tmp_path / 'LICENSE.weights'}: NVIDIA License")
    assert "non-commercial" in vista3d.WEIGHTS_LICENCE
    # The other layouts: a bare state dict, and DistributedDataParallel's module. prefix.
    for layout in (net.state_dict(), {"state_dict": {f"module.{k}": v for k, v in
                                                     net.state_dict().items()}}):
        torch.save(layout, weights)
        other = vista3d.Vista3D(weights=str(weights), encoder_embed_dim=8).load()
        for key, value in other.state_dict().items():
            assert torch.equal(value, net.state_dict()[key]), key
    torch.save({"model": net.state_dict()}, weights)
    for prompt_class in (23, 600):  # a "special" (tumour) class, and a zero-shot class
        other = create_backend("segmentation", "vista3d", weights=str(weights), roi=32,
                               encoder_embed_dim=8, spacing_mm=3.0, prompt_class=prompt_class)
        assert other.segment(img, np.array([[20.0, 20.0, 20.0]])).shape == (16, 40, 40)
    # Wrong architecture size and pickled objects: one-line errors.
    with pytest.raises(BackendUnavailableError, match="do not fit VISTA3D"):
        vista3d.Vista3D(weights=str(weights)).load()
    bad = tmp_path / "bad.pt"
    torch.save({"x": fractions.Fraction(1, 2)}, bad)
    with pytest.raises(BackendUnavailableError, match="safely"):
        vista3d.Vista3D(weights=str(bad)).load()
