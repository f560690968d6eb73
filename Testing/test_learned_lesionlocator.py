"""LesionLocator (LLSeg) backend on a tiny checkpoint folder in the released layout.

The real loader reads two folds of random weights (nnU-Net trainer checkpoints); exact checks
swap deterministic networks into the loaded model: one returns the prompt channel (the ball must
come back around the clicked voxel, through preprocessing and export), one thresholds the image
channel (the mask must equal the threshold region).
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from LinGuinELib import model_dir as mdir
from LinGuinELib.errors import BackendUnavailableError, InputError
from LinGuinELib.geometry import index_zyx_to_physical
from LinGuinELib.registry import backend_names, create_backend

torch = pytest.importorskip("torch")
pytest.importorskip("nnunetv2")
pytest.importorskip("dynamic_network_architectures")

from learned_fixtures import write_tiny_lesionlocator  # noqa: E402

from LinGuinELib.segmentation import lesionlocator as ll  # noqa: E402

LICENCE = "TEST-ONLY LesionLocator weights licence\nmore text"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return write_tiny_lesionlocator(tmp_path_factory.mktemp("ll") / "LesionLocatorCheckpoint",
                                    license_text=LICENCE)


def balls_image(spacing=(1.0, 1.0, 1.0)) -> sitk.Image:
    """-1000 HU with a +100 HU ball (radius 6 mm) at voxel (12, 14, 16) and a smaller one."""
    arr = np.full((28, 30, 34), -1000, np.float32)
    zz, yy, xx = np.indices(arr.shape)
    sz, sy, sx = spacing[::-1]
    arr[((zz - 12) * sz) ** 2 + ((yy - 14) * sy) ** 2 + ((xx - 16) * sx) ** 2 < 36] = 100
    arr[((zz - 5) * sz) ** 2 + ((yy - 5) * sy) ** 2 + ((xx - 5) * sx) ** 2 < 9] = 100
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(spacing)
    img.SetOrigin((-10.0, 20.0, 5.0))
    img.SetDirection((0, 1, 0, -1, 0, 0, 0, 0, 1))
    return img


class EchoPrompt(torch.nn.Module):
    """Lesion logit = prompt channel - 0.5: the mask is the prompt ball."""

    def forward(self, x):
        fg = x[:, -1:] - 0.5
        return torch.cat([torch.zeros_like(fg), fg], 1)


class Threshold(torch.nn.Module):
    def __init__(self, level: float) -> None:
        super().__init__()
        self.level = level

    def forward(self, x):
        fg = x[:, :1] - self.level
        return torch.cat([torch.zeros_like(fg), fg], 1)


def with_net(seg: ll.LesionLocator, net) -> ll.LesionLocator:
    seg.load()["net"] = net
    return seg


def test_registered_reasons_and_folder_forms(checkpoint, tmp_path, monkeypatch):
    assert "lesionlocator" in backend_names("segmentation")
    assert "Zenodo record 15174217" in ll.LesionLocator.unavailable_reason()
    assert "not found" in ll.LesionLocator.unavailable_reason(model_dir=str(tmp_path / "x"))
    assert "not a LesionLocator" in ll.LesionLocator.unavailable_reason(model_dir=str(tmp_path))
    point = checkpoint / "LesionLocatorSeg" / "point_optimized"
    for form in (checkpoint, checkpoint / "LesionLocatorSeg", point):
        assert ll.find_model_folder(form) == (point, None)
    monkeypatch.setenv(mdir.ENV_VAR, str(checkpoint.parent))
    seg = create_backend("segmentation", "lesionlocator", folds="0", mirror=False)
    assert seg.model_dir == str(checkpoint)  # found in the model folder by its upstream name
    with pytest.raises(BackendUnavailableError, match="fold.*7 not in"):
        ll.LesionLocator(model_dir=str(checkpoint), folds=[7]).load()
    with pytest.raises(InputError):
        ll.parse_folds(",")
    assert ll.parse_folds("all") is None and ll.parse_folds("0, 2") == ["0", "2"]
    assert ll.parse_folds(1) == ["1"]


def test_prompt_ball_is_upstreams():
    ball = ll.prompt_channel((11, 11, 11), np.array([[5, 5, 5]]))
    assert ball.sum() == 739 and ball[5, 5, 5] == 1 and ball[0, 5, 5] == 1 and ball[0, 0, 5] == 0
    clipped = ll.prompt_channel((8, 8, 8), np.array([[0, 0, 0]]))
    assert clipped.sum() == (ball[5:, 5:, 5:]).sum()
    box = ll.patch_box(ll.prompt_channel((40, 50, 60), np.array([[2, 25, 57]])), (32, 32, 32))
    assert box == (slice(0, 32), slice(9, 41), slice(28, 60))


def test_real_loader_two_folds_mirroring_and_licence(checkpoint, caplog):
    seg = create_backend("segmentation", "lesionlocator", model_dir=str(checkpoint))
    img = balls_image()
    calls = []
    model = seg.load()
    model["net"].register_forward_hook(lambda *a: calls.append(1))
    assert len(model["states"]) == 2 and model["mirror_axes"] == (0, 1, 2)
    mask = seg.segment(img, index_zyx_to_physical(img, np.array([[12, 14, 16]])))
    assert mask.dtype == bool and mask.shape == (28, 30, 34)
    assert len(calls) == 2 * 8  # two folds, each with the 7 mirrored copies
    assert seg.settings()["license"] == "TEST-ONLY LesionLocator weights licence"
    one = ll.LesionLocator(model_dir=str(checkpoint), folds=0, mirror=False)
    one.load()["net"].register_forward_hook(lambda *a: calls.append(2))
    one.segment(img, index_zyx_to_physical(img, np.array([[12, 14, 16]])))
    assert calls.count(2) == 1
    # The folds' weights really differ, and the average is what runs.
    a, b = (s["decoder.seg_layers.0.weight"] for s in model["states"])
    assert not torch.equal(a, b)


def test_prompt_ball_comes_back_around_the_click(checkpoint):
    img = balls_image()
    seg = with_net(ll.LesionLocator(model_dir=str(checkpoint), folds=0, mirror=False), EchoPrompt())
    click = np.array([[12.3, 13.8, 16.4]])  # rounds to voxel (12, 14, 16)
    mask = seg.segment(img, index_zyx_to_physical(img, click))
    want = ll.prompt_channel(mask.shape, np.array([[12, 14, 16]])) > 0
    np.testing.assert_array_equal(mask, want)
    # Negative points are ignored; a click outside the image gives an empty mask.
    np.testing.assert_array_equal(
        seg.segment(img, index_zyx_to_physical(img, click),
                    index_zyx_to_physical(img, np.array([[3.0, 3.0, 3.0]]))), want)
    assert not seg.segment(img, index_zyx_to_physical(img, np.array([[99.0, 0, 0]]))).any()


def test_prompt_through_resampling_lands_on_the_physical_point(checkpoint):
    """Anisotropic image (0.8, 0.8, 2 mm) resampled to the plans' 1 mm: the ball (5.5 mm) is
    drawn around the clicked physical point and comes back there."""
    img = balls_image(spacing=(0.8, 0.8, 2.0))
    seg = with_net(ll.LesionLocator(model_dir=str(checkpoint), folds=0, mirror=False), EchoPrompt())
    click = index_zyx_to_physical(img, np.array([[12.0, 14.0, 16.0]]))
    mask = seg.segment(img, click)
    centre = index_zyx_to_physical(img, np.argwhere(mask).mean(0)[None])
    assert np.linalg.norm(centre - click) < 1.0
    volume = mask.sum() * 0.8 * 0.8 * 2.0
    assert 0.7 * 739 < volume < 1.3 * 739  # the 739-voxel ball of the 1 mm grid


def test_threshold_network_gives_the_threshold_region(checkpoint):
    img = balls_image()
    # CTNormalization of the plans: clip to [-1000, 1000], (HU - 0) / 500; -500 HU -> -1.
    seg = with_net(ll.LesionLocator(model_dir=str(checkpoint), folds=0, mirror=False),
                   Threshold(-1.0))
    mask = seg.segment(img, index_zyx_to_physical(img, np.array([[12, 14, 16]])))
    np.testing.assert_array_equal(mask, sitk.GetArrayFromImage(img) > -500)


def test_licence_unknown_without_a_licence_file(tmp_path):
    root = write_tiny_lesionlocator(tmp_path / "LesionLocatorCheckpoint", folds=(0,))
    seg = ll.LesionLocator(model_dir=str(root), folds="all", mirror=False)
    seg.load()
    assert seg.settings()["license"] == ll.LICENCE_UNKNOWN
    assert "GPL-3" in ll.LICENCE_UNKNOWN and "15174217" in ll.LICENCE_UNKNOWN
