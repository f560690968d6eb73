"""nnInteractive backends on a tiny model folder in the official layout (random weights).

Exact checks swap deterministic networks into the real session: one thresholds the image
channel, one echoes the positive/negative point channels, so prompts, axis order and the mask
plumbing are checked end to end. The remote backend talks to a real nnInteractive server
started on 127.0.0.1 with the same tiny model.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
import SimpleITK as sitk

from LinGuinELib.errors import BackendUnavailableError
from LinGuinELib.geometry import index_zyx_to_physical
from LinGuinELib.registry import backend_names, create_backend

torch = pytest.importorskip("torch")
pytest.importorskip("nnunetv2")
pytest.importorskip("nnInteractive.inference.inference_session")

from learned_fixtures import write_tiny_nninteractive  # noqa: E402
from scipy import ndimage  # noqa: E402

from LinGuinELib.segmentation import nninteractive as nni  # noqa: E402
from LinGuinELib.segmentation.torch_utils import load_weights  # noqa: E402

LICENCE = "TEST-ONLY licence 0.1\nsecond line is ignored"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return write_tiny_nninteractive(tmp_path_factory.mktemp("nni") / "nnInteractive_v1.0", license_text=LICENCE)


@pytest.fixture(scope="module")
def two_balls() -> sitk.Image:
    """-1000 HU with two +100 HU balls; anisotropic spacing and a rotated direction."""
    arr = np.full((40, 56, 60), -1000, np.float32)
    zz, yy, xx = np.indices(arr.shape)
    arr[((zz - 20) * 2.0) ** 2 + ((yy - 28) * 0.8) ** 2 + ((xx - 30) * 0.8) ** 2 < 64] = 100
    arr[((zz - 8) * 2.0) ** 2 + ((yy - 10) * 0.8) ** 2 + ((xx - 10) * 0.8) ** 2 < 36] = 100
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((0.8, 0.8, 2.0))
    img.SetOrigin((10.0, -20.0, 5.0))
    img.SetDirection((0, 1, 0, -1, 0, 0, 0, 0, 1))
    return img


class Threshold(torch.nn.Module):
    """Foreground where the (z-scored) image channel exceeds ``level``."""

    def __init__(self, level: float) -> None:
        super().__init__()
        self.level = level

    def forward(self, x):
        d = x[:, :1] - self.level
        return torch.cat([-d, d], 1)


class Echo(torch.nn.Module):
    """Foreground where input channel ``a`` exceeds channel ``b`` (point prompt channels)."""

    def __init__(self, a: int, b: int) -> None:
        super().__init__()
        self.a, self.b = a, b

    def forward(self, x):
        d = x[:, self.a : self.a + 1] - x[:, self.b : self.b + 1]
        return torch.cat([-d, d], 1)


def local(model_dir, **opts):
    return create_backend("segmentation", "nninteractive", model_dir=str(model_dir), threads=1,
                          **opts)


def test_registered_and_reasons(tmp_path, model_dir):
    assert {"nninteractive", "nninteractive-remote"} <= set(backend_names("segmentation"))
    reason = nni.NNInteractive.unavailable_reason()
    assert "model_dir" in reason and "MIC-DKFZ/nnInteractive" in reason
    assert "not found" in nni.NNInteractive.unavailable_reason(model_dir=str(tmp_path / "x"))
    (tmp_path / "plans.json").write_text("{}")
    assert "lacks" in nni.NNInteractive.unavailable_reason(model_dir=str(tmp_path))
    assert nni.NNInteractive.unavailable_reason(model_dir=str(model_dir)) is None
    # A parent folder holding nnInteractive_v1.0/ is accepted too.
    assert nni.find_model_folder(model_dir.parent) == (model_dir, None)
    assert "server_url" in nni.NNInteractiveRemote.unavailable_reason()
    with pytest.raises(BackendUnavailableError, match="nninteractive.*model folder"):
        create_backend("segmentation", "nninteractive")
    if not torch.cuda.is_available():
        assert "CUDA" in nni.NNInteractive.unavailable_reason(device="cuda", model_dir=model_dir)


def test_random_weights_real_network_and_licence(model_dir, two_balls, caplog):
    seg = local(model_dir, autozoom=False)
    with caplog.at_level(logging.WARNING, logger="LinGuinELib.segmentation.nninteractive"):
        mask = seg.segment(two_balls, index_zyx_to_physical(two_balls, np.array([[20, 28, 30]])))
    assert mask.dtype == bool and mask.shape == (40, 56, 60)
    assert seg.settings()["license"] == "TEST-ONLY licence 0.1"
    assert "TEST-ONLY licence 0.1" in caplog.text


def test_threshold_network_mask_equals_threshold_region(model_dir, two_balls):
    seg = local(model_dir, autozoom=True)
    seg.load()
    arr = sitk.GetArrayFromImage(two_balls)
    # nnInteractive z-scores the image with its own mean/std: put the threshold at -500 HU.
    seg.session.network = Threshold(float((-500 - arr.mean()) / arr.std(ddof=1)))
    prompt = index_zyx_to_physical(two_balls, np.array([[20.2, 28.3, 29.8]]))
    mask = seg.segment(two_balls, prompt)
    # The whole image fits in one 64^3 patch around the prompt: both balls, nothing else.
    assert ndimage.label(arr > -500)[1] == 2
    np.testing.assert_array_equal(mask, arr > -500)


def test_positive_and_negative_points_reach_their_channels(model_dir, two_balls):
    seg = local(model_dir, autozoom=False)
    seg.load()
    pos = index_zyx_to_physical(two_balls, np.array([[20.2, 28.3, 29.8]]))
    neg = index_zyx_to_physical(two_balls, np.array([[8.0, 40.0, 50.0]]))
    # Input = 1 image channel + interactions; points use interaction channels 3 (+) and 4 (-).
    seg.session.network = Echo(4, 5)
    around_pos = seg.segment(two_balls, pos, neg)
    seg.session.network = Echo(5, 4)
    around_neg = seg.segment(two_balls, pos, neg)
    np.testing.assert_allclose(np.argwhere(around_pos).mean(0), [20, 28, 30], atol=1e-6)
    np.testing.assert_allclose(np.argwhere(around_neg).mean(0), [8, 40, 50], atol=1e-6)
    # Prompts outside the image are dropped; with no positive left the mask is empty.
    far = index_zyx_to_physical(two_balls, np.array([[100.0, 0.0, 0.0]]))
    assert not seg.segment(two_balls, far).any()


class Payload:
    """Unpickling this would create ``marker``: the classic pickle code-execution payload."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


def test_trainer_checkpoint_with_numpy_scalars_loads(model_dir):
    """The fixture is saved the way nnU-Net's trainer saves one (numpy scalars in `logging`
    and `_best_ema`): it passes the safe load, with exactly the numpy types it needs."""
    import numpy as np

    ckpt = model_dir / "fold_0" / "checkpoint_final.pth"
    with pytest.raises(Exception, match="numpy"):  # plain weights_only refuses it
        torch.load(ckpt, weights_only=True)
    data = load_weights(ckpt, "test", "hint", numpy_scalars=True)
    assert type(data["_best_ema"]) is np.float64
    assert type(data["logging"]["train_losses"][0]) is np.float32
    assert data["init_args"]["configuration"] == "3d_tiny"
    assert data["inference_allowed_mirroring_axes"] == (0, 1, 2)
    assert sorted(nni_globals()) == [
        "numpy._core.multiarray.scalar", "numpy.core.multiarray.scalar", "numpy.dtype",
        "numpy.dtypes.Float32DType", "numpy.dtypes.Float64DType"]


def nni_globals():
    from LinGuinELib.segmentation.torch_utils import numpy_scalar_globals

    return [g[1] if isinstance(g, tuple) else f"{g.__module__}.{g.__qualname__}"
            for g in numpy_scalar_globals()]


def test_numpy_1_checkpoint_names_load(tmp_path):
    """A file written under numpy 1.x names the scalar constructor numpy.core.multiarray.scalar."""
    import numpy as np

    legacy = tmp_path / "legacy.pth"
    torch.save({"_best_ema": np.float64(0.5), "w": torch.ones(2)}, legacy,
               _use_new_zipfile_serialization=False)
    raw = legacy.read_bytes()
    assert b"numpy._core.multiarray\nscalar" in raw  # protocol-2 GLOBAL opcodes are text
    legacy.write_bytes(raw.replace(b"numpy._core.multiarray\nscalar",
                                   b"numpy.core.multiarray\nscalar"))
    data = load_weights(legacy, "test", "hint", numpy_scalars=True)
    assert data["_best_ema"] == 0.5 and torch.equal(data["w"], torch.ones(2))


def test_checkpoint_with_python_objects_is_refused(tmp_path, model_dir):
    import fractions
    import shutil

    for extra in (fractions.Fraction(1, 3), Payload(tmp_path / "pwned"), np_object_array()):
        bad = tmp_path / "bad"
        shutil.rmtree(bad, ignore_errors=True)
        shutil.copytree(model_dir, bad)
        ckpt = bad / "fold_0" / "checkpoint_final.pth"
        payload = load_weights(ckpt, "test", "hint", numpy_scalars=True)
        payload["logging"]["extra"] = [extra]
        torch.save(payload, ckpt)
        with pytest.raises(BackendUnavailableError, match="cannot read weights .* safely"):
            local(bad).load()
        assert not (tmp_path / "pwned").exists()


def np_object_array():
    """A numpy array (not a scalar): outside the allow-list."""
    import numpy as np

    return np.array([1.0, 2.0])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_remote_server_gives_the_local_mask(model_dir, two_balls, tmp_path):
    pytest.importorskip("uvicorn")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log_file = open(tmp_path / "server.log", "w")  # noqa: SIM115
    server = subprocess.Popen(
        [sys.executable, "-m", "nnInteractive.inference.server.main", "--model-dir",
         str(model_dir), "--fold", "0", "--device", "cpu", "--no-torch-compile", "--no-autozoom",
         "--host", "127.0.0.1", "--port", str(port), "--torch-n-threads", "1",
         "--api-key", "sesame", "--log-level", "warning"],
        stdout=log_file, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    try:
        deadline = time.time() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    pytest.fail("server did not start: " + (tmp_path / "server.log").read_text())
                time.sleep(0.5)
        prompt = index_zyx_to_physical(two_balls, np.array([[20, 28, 30]]))
        neg = index_zyx_to_physical(two_balls, np.array([[8, 40, 50]]))
        remote = create_backend("segmentation", "nninteractive-remote", server_url=url,
                                api_key="sesame", autozoom=False)
        got = remote.segment(two_balls, prompt, neg)
        assert remote.settings()["license"] == "TEST-ONLY licence 0.1"
        assert "sesame" not in str(remote.settings())
        remote.close()
        want = local(model_dir, autozoom=False).segment(two_balls, prompt, neg)
        np.testing.assert_array_equal(got, want)
        wrong = create_backend("segmentation", "nninteractive-remote", server_url=url,
                               api_key="wrong")
        with pytest.raises(BackendUnavailableError, match="nninteractive-remote"):
            wrong.segment(two_balls, prompt)
    finally:
        server.terminate()
        server.wait(timeout=30)
        log_file.close()


def test_remote_names_the_server_that_speaks_its_protocol():
    """The client's server is `nninteractive-server` of the nninteractive package (the test
    above starts that same server module); the reason shown to users says so."""
    from importlib.metadata import entry_points

    reason = nni.NNInteractiveRemote.unavailable_reason()
    assert "nninteractive-server" in reason and "nninteractive package" in reason
    assert "nninteractive-server" in (nni.__doc__ or "")
    scripts = {e.name: e.value for e in entry_points(group="console_scripts")}
    assert scripts.get("nninteractive-server") == "nnInteractive.inference.server.main:main"
