"""uniGradICON family backend: weight loading, preprocessing grid and point mapping.

Exact checks swap in deterministic icon_registration modules (known maps in the network's
[0, 1] coordinates); one test runs the real architecture, random weights, at the smallest grid
it accepts (128^3), through the real weight-loading code.
"""

from __future__ import annotations

import fractions

import numpy as np
import pytest
import SimpleITK as sitk

from LinGuinELib.errors import BackendUnavailableError
from LinGuinELib.registry import backend_names, create_backend

torch = pytest.importorskip("torch")
pytest.importorskip("icon_registration")

from learned_fixtures import (  # noqa: E402
    batchnorm_module,
    blob_image,
    centroid_module,
    shift_module,
    wrap_icon,
)

from LinGuinELib.registration import icon  # noqa: E402

GRID = 32


def box(image: sitk.Image) -> tuple[np.ndarray, np.ndarray]:
    """Physical box of an axis-aligned image: (start corner, extent), LPS xyz."""
    spacing = np.array(image.GetSpacing())
    return np.array(image.GetOrigin()) - spacing / 2, np.array(image.GetSize()) * spacing


def expected_affine(p: np.ndarray, src: sitk.Image, tgt: sitk.Image, scale: float, shift_zyx) -> np.ndarray:
    """Where phi(u) = scale*u + shift sends p, with the network grid = GRID cells per image box."""
    s0, se = box(src)
    t0, te = box(tgt)
    cell = (p - s0) / se * GRID - 0.5  # network cell-centre index, xyz
    u = cell / (GRID - 1)
    u2 = scale * u + np.array(shift_zyx)[::-1]
    return t0 + (u2 * (GRID - 1) + 0.5) * te / GRID


def backend(module, **opts) -> icon.UniGradICON:
    """The real backend with a deterministic network swapped in (grid GRID)."""
    reg = icon.UniGradICON(grid=GRID, **opts)
    reg.network = wrap_icon(module, GRID)
    return reg


def test_backends_registered_and_unavailable_reasons(tmp_path):
    names = backend_names("registration")
    assert {"unigradicon", "multigradicon", "lunggradicon"} <= set(names)
    assert "weights" in icon.UniGradICON.unavailable_reason()
    missing = tmp_path / "nope.trch"
    reason = icon.MultiGradICON.unavailable_reason(weights=str(missing))
    assert "not found" in reason and "multigradicon_weights" in reason
    with pytest.raises(BackendUnavailableError, match="unigradicon.*weights"):
        create_backend("registration", "unigradicon")
    if not torch.cuda.is_available():
        assert "CUDA" in icon.UniGradICON.unavailable_reason(device="cuda", weights=__file__)


def test_constant_shift_exact_anisotropic_and_shifted_fov():
    # Same physical extent, different spacing and size, target FOV moved by (7, -5, 12) mm.
    src = blob_image((40, 40, 16), (1.0, 1.0, 2.5), (-20.0, -20.0, -20.0), (0, 0, 0))
    tgt = blob_image((20, 32, 40), (2.0, 1.25, 1.0), (-12.5, -24.375, -7.5), (0, 0, 0))
    s0, se = box(src)
    t0, te = box(tgt)
    assert np.allclose(se, te)
    k = np.array([1.5, -2.0, 3.0])  # network cells, zyx
    reg = backend(module=shift_module(tuple(k / (GRID - 1))))
    mapper = reg.register(src, tgt)
    pts = np.array([[0.0, 0.0, 0.0], [-7.3, 4.1, 9.9], [12.2, -15.0, -3.3]])
    want = pts + (t0 - s0) + k[::-1] * se / GRID
    np.testing.assert_allclose(mapper.map_points(pts), want, atol=1e-4)


def test_linear_field_is_interpolated_not_rounded():
    src = blob_image((30, 36, 12), (1.3, 0.9, 3.0), (5.0, -40.0, 100.0), (20, -25, 118))
    tgt = blob_image((44, 28, 20), (0.8, 1.5, 2.0), (-3.0, -31.0, 95.0), (20, -25, 118))
    reg = backend(module=shift_module((0.02, -0.03, 0.05), scale=0.9))
    mapper = reg.register(src, tgt)
    rng = np.random.default_rng(0)
    s0, se = box(src)
    pts = s0 + se * rng.uniform(0.1, 0.9, size=(20, 3))
    want = np.array([expected_affine(p, src, tgt, 0.9, (0.02, -0.03, 0.05)) for p in pts])
    np.testing.assert_allclose(mapper.map_points(pts), want, atol=1e-3)


def test_direction_source_to_target_with_flipped_axes():
    """A blob-aligning network must carry the source blob centre onto the target blob centre."""
    src_c, tgt_c = np.array([3.0, -8.0, 11.0]), np.array([-9.0, 6.0, -4.0])
    src = blob_image((64, 64, 32), (1.0, 1.0, 2.5), (-32.0, -32.0, -40.0), src_c)
    # Target stored RAS-like (x and y flipped), other spacing, other field of view.
    tgt = blob_image(
        (48, 56, 60), (1.5, 1.2, 1.4), (40.0, 30.0, -38.0), tgt_c,
        direction=(-1, 0, 0, 0, -1, 0, 0, 0, 1),
    )
    reg = backend(module=centroid_module(threshold=0.3))
    got = reg.register(src, tgt).map_points(src_c[None])[0]
    assert np.linalg.norm(got - tgt_c) < 0.75, got


def test_instance_optimisation_runs_and_restores_weights():
    src = blob_image((32, 32, 32), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), (14, 16, 16))
    tgt = blob_image((32, 32, 32), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), (18, 16, 16))
    reg = backend(module=shift_module((0.0, 0.0, 0.0)), io_steps=1, io_learning_rate=1e-2)
    before = {k: v.clone() for k, v in reg.network.state_dict().items()}
    moved = reg.register(src, tgt).map_points(np.array([[14.0, 16.0, 16.0]]))[0]
    assert np.isfinite(moved).all() and abs(moved[0] - 14.0) > 1e-3  # the optimiser moved it
    for key, value in reg.network.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_instance_optimisation_keeps_eval_mode_and_batchnorm_statistics():
    """Upstream keeps eval mode: with a zero learning rate, IO must change nothing at all."""
    src = blob_image((32, 32, 32), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), (14, 16, 16))
    tgt = blob_image((32, 32, 32), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), (18, 16, 16))
    pts = np.array([[14.0, 16.0, 16.0], [10.0, 20.0, 12.0]])
    plain = backend(module=batchnorm_module()).register(src, tgt).map_points(pts)
    reg = backend(module=batchnorm_module(), io_steps=2, io_learning_rate=0.0)
    modes = []
    reg.network.regis_net.register_forward_pre_hook(lambda mod, args: modes.append(mod.training))
    before = {k: v.clone() for k, v in reg.network.state_dict().items()}
    assert any("running_mean" in k for k in before)
    got = reg.register(src, tgt).map_points(pts)
    assert len(modes) > 2 and not any(modes)  # every forward, IO included, in eval mode
    for key, value in reg.network.state_dict().items():
        assert torch.equal(value, before[key]), key
    np.testing.assert_array_equal(got, plain)


def test_instance_optimisation_loss_warps_with_a_zero_boundary():
    """uniGradICON's loss samples zero outside the image (not the replicated border)."""
    from icon_registration.mermaidlite import compute_warped_image_multiNC

    from LinGuinELib.registration import icon_io

    net = wrap_icon(shift_module((0.5, 0.0, 0.0)), 16)
    a = torch.ones((1, 1, 16, 16, 16))
    b = torch.linspace(0, 1, 16).view(1, 1, 16, 1, 1).expand(1, 1, 16, 16, 16).contiguous()
    parts = icon_io.gradicon_loss(net, a, b)
    warped = parts["warped_a"].detach()
    assert float(warped[0, 0, :7].min()) == pytest.approx(1.0) and warped[0, 0, 9:].max() == 0.0
    field = net.identity_map + torch.tensor([0.5, 0.0, 0.0]).view(1, 3, 1, 1, 1)
    want = net.similarity(warped, b) + net.similarity(parts["warped_b"], a)
    assert torch.allclose(parts["similarity"], want)
    replicated = compute_warped_image_multiNC(a, field, net.spacing, 1)
    assert float(net.similarity(replicated, b)) != pytest.approx(float(net.similarity(warped, b)))
    # A pure translation is inverse consistent up to a constant: no gradient ICON penalty.
    assert float(parts["inverse_consistency"].detach()) < 1e-6
    assert torch.allclose(parts["total"], parts["similarity"], atol=1e-5)


def test_bad_weight_files_fail_in_one_line(tmp_path):
    pickled = tmp_path / "code.trch"
    torch.save({"x": fractions.Fraction(1, 3)}, pickled)  # any non-tensor Python object
    reg = icon.UniGradICON(weights=str(pickled), grid=128)
    with pytest.raises(BackendUnavailableError, match="cannot read weights .* safely"):
        reg.load()
    wrong = tmp_path / "wrong.trch"
    torch.save({"conv.weight": torch.zeros(2)}, wrong)
    with pytest.raises(BackendUnavailableError, match="do not fit the network"):
        icon.UniGradICON(weights=str(wrong), grid=128).load()


@pytest.mark.slow
def test_real_architecture_random_weights_small_grid(tmp_path):
    """Real network + real loader (weights_only=True), 128^3 grid: the whole register path."""
    torch.manual_seed(0)
    weights = tmp_path / "random_unigradicon.trch"
    state = icon.build_network((128, 128, 128)).regis_net.state_dict()
    for key in state:  # the package zero-initialises each step's last conv (identity map)
        if "lastConv" in key:
            state[key].normal_(0.0, 5e-4)
    torch.save(state, weights)
    reg = create_backend("registration", "lunggradicon", weights=str(weights), grid=128,
                         lung_mask=False)  # blobs in air: no lungs to mask
    src = blob_image((48, 48, 24), (2.0, 2.0, 4.0), (0.0, 0.0, 0.0), (50, 48, 46))
    tgt = blob_image((40, 40, 40), (2.5, 2.5, 2.5), (2.0, -3.0, 1.0), (52, 45, 48))
    with torch.no_grad():
        mapped = reg.register(src, tgt).map_points(np.array([[50.0, 48.0, 46.0]]))
    assert mapped.shape == (1, 3) and np.isfinite(mapped).all()
    assert 0.01 < np.linalg.norm(mapped[0] - [50.0, 48.0, 46.0]) < 60.0
    assert sum(p.numel() for p in reg.network.regis_net.parameters()) == 70_680_916


def test_window_scaling():
    assert np.allclose(icon.UniGradICON(weights="unused").intensities(np.array([-2000.0, 0.0, 3000.0])),
                       [0.0, 0.5, 1.0])
