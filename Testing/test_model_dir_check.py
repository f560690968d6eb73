"""The model folder ($LINGUINE_MODEL_DIR) and `linguine backends --check`.

The check is exercised on the real loaders with tiny networks of the real architectures saved in
the upstream layouts (random weights: they load and run but must fail the plausibility test), on
deterministic networks with a known answer, and on the classical backends (a real method that
must pass).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from LinGuinELib import backend_check, model_dir
from LinGuinELib.registry import create_backend

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*argv: str, env_dir: Path | None, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in __import__("os").environ.items() if k != model_dir.ENV_VAR}
    env["PYTHONPATH"] = str(ROOT)
    env["OMP_NUM_THREADS"] = "1"
    if env_dir is not None:
        env[model_dir.ENV_VAR] = str(env_dir)
    return subprocess.run([sys.executable, "-m", "LinGuinELib.cli.main", "backends", *argv],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def test_lookup_upstream_names_and_explicit_option_wins(tmp_path, monkeypatch):
    monkeypatch.setenv(model_dir.ENV_VAR, str(tmp_path))
    assert model_dir.find("unigradicon") is None
    uni = tmp_path / "network_weights" / "unigradicon1.0" / "Step_2_final.trch"
    uni.parent.mkdir(parents=True)
    uni.write_bytes(b"x")
    lung = tmp_path / "lung_model_weights_step_2.trch"
    lung.write_bytes(b"x")
    (tmp_path / "nnInteractive_v1.0").mkdir()
    (tmp_path / "LesionLocatorCheckpoint").write_text("a file, not the folder")
    assert model_dir.find("unigradicon") == uni
    assert model_dir.find("lunggradicon") == lung
    assert model_dir.find("multigradicon") is None
    assert model_dir.find("nninteractive") == tmp_path / "nnInteractive_v1.0"
    assert model_dir.find("lesionlocator") is None  # a file where a folder belongs
    assert model_dir.find("classical") is None
    assert model_dir.fill_options("unigradicon", {"device": "cpu"}) == {"device": "cpu",
                                                                        "weights": str(uni)}
    assert model_dir.fill_options("unigradicon", {"weights": "/mine.trch"}) == {"weights": "/mine.trch"}
    # A direct-level file wins over the network_weights/ one.
    direct = tmp_path / "unigradicon1.0" / "Step_2_final.trch"
    direct.parent.mkdir()
    direct.write_bytes(b"x")
    assert model_dir.find("unigradicon") == direct
    # The backend classes themselves see the folder (the Slicer panel asks them directly).
    from LinGuinELib.registry import backend_class

    uni_cls = backend_class("registration", "unigradicon")
    assert uni_cls(grid=32).weights == str(direct)
    assert uni_cls(grid=32, weights="/mine.trch").weights == "/mine.trch"
    reason = uni_cls.unavailable_reason()
    assert reason is None or "weights" not in reason  # found (only a package may be missing)
    nni_cls = backend_class("segmentation", "nninteractive")
    assert nni_cls().model_dir == str(tmp_path / "nnInteractive_v1.0")
    monkeypatch.setenv(model_dir.ENV_VAR, "")
    assert model_dir.configured_dir() is None and model_dir.find("unigradicon") is None
    assert "no weights given" in uni_cls.unavailable_reason()


def test_backends_command_shows_the_folder(tmp_path):
    (tmp_path / "vista3d" / "models").mkdir(parents=True)
    (tmp_path / "vista3d" / "models" / "model.pt").write_bytes(b"x")
    res = run_cli(env_dir=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert f"model folder (LINGUINE_MODEL_DIR): {tmp_path}" in res.stdout
    line = next(ln for ln in res.stdout.splitlines() if ln.strip().startswith("vista3d ") and
                "weights:" in ln)
    assert str(tmp_path / "vista3d" / "models" / "model.pt") in line
    uni = next(ln for ln in res.stdout.splitlines() if ln.strip().startswith("unigradicon ") and
               "weights:" in ln)
    assert "not there" in uni and "unigradicon1.0/Step_2_final.trch" in uni
    res = run_cli("--json", env_dir=None)
    data = json.loads(res.stdout)
    assert data["model_dir"]["path"] is None and data["checks"] is None
    assert "LINGUINE_MODEL_DIR" in run_cli(env_dir=None).stdout


def test_check_with_nothing_present_exits_zero(tmp_path):
    res = run_cli("--check", env_dir=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "nothing checked" in res.stdout


def test_check_verdicts_of_real_methods_and_known_failures():
    """Classical backends pass; a network that maps nothing fails the shift test."""
    reg = backend_check.check_backend("registration", "classical",
                                      create_backend("registration", "classical"))
    seg = backend_check.check_backend("segmentation", "classical",
                                      create_backend("segmentation", "classical"))
    assert reg.ok and seg.ok, (reg, seg)

    class Still:
        def register(self, source, target):
            class Identity:
                def map_points(self, pts):
                    return np.asarray(pts, float)
            return Identity()

    class Everything:
        def segment(self, image, pos, neg=None):
            return np.ones(image.GetSize()[::-1], bool)

    class Broken:
        def load(self):
            raise RuntimeError("weights do not fit\nsecond line")

    still = backend_check.check_backend("registration", "still", Still())
    assert still.loaded and still.ran and not still.plausible and not still.ok
    assert "within 14.14 mm" in still.detail
    everything = backend_check.check_backend("segmentation", "everything", Everything())
    assert everything.ran and not everything.plausible
    broken = backend_check.check_backend("segmentation", "broken", Broken())
    assert not broken.loaded and broken.detail == "load failed: weights do not fit"


def test_check_recovers_a_known_network_shift():
    """uniGradICON's real point mapping with a network that shifts by exactly SHIFT_MM."""
    pytest.importorskip("torch")
    pytest.importorskip("icon_registration")
    from learned_fixtures import shift_module, wrap_icon

    from LinGuinELib.registration import icon

    grid = 32
    extent_zyx = (np.array(backend_check.SIZE_XYZ) * np.array(backend_check.SPACING_MM))[::-1]
    for shift_mm, want in ((backend_check.SHIFT_MM, True), (np.zeros(3), False)):
        unit = shift_mm[::-1] / extent_zyx * grid / (grid - 1)
        reg = icon.UniGradICON(grid=grid)
        reg.network = wrap_icon(shift_module(tuple(unit)), grid)
        result = backend_check.check_backend("registration", "unigradicon", reg)
        assert result.ran and result.plausible is want, result


@pytest.mark.slow
def test_cli_check_on_tiny_real_networks_in_the_model_folder(tmp_path):
    """nnInteractive and VISTA3D (random weights, upstream layouts) load and run from the model
    folder; random weights are implausible, so the exit code is 1. A garbage file: not loaded."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("monai")
    pytest.importorskip("nnInteractive.inference.inference_session")
    from learned_fixtures import write_tiny_nninteractive
    from monai.networks.nets import vista3d132

    torch.manual_seed(0)
    write_tiny_nninteractive(tmp_path / "nnInteractive_v1.0", license_text="TEST licence")
    weights = tmp_path / "vista3d" / "models" / "model.pt"
    weights.parent.mkdir(parents=True)
    torch.save({"model": vista3d132(encoder_embed_dim=8).state_dict()}, weights)
    (tmp_path / "lung_model_weights_step_2.trch").write_bytes(b"not a torch file")
    res = run_cli("--check", "--json", "--segmentation-option", "autozoom=false",
                  "--segmentation-option", "encoder_embed_dim=8", "--segmentation-option", "roi=32",
                  "--segmentation-option", "spacing_mm=5", env_dir=tmp_path)
    assert res.returncode == 1, res.stderr[-3000:]
    checks = {c["name"]: c for c in json.loads(res.stdout[res.stdout.index("{"):])["checks"]}
    assert set(checks) == {"nninteractive", "vista3d", "lunggradicon"}, checks
    for name in ("nninteractive", "vista3d"):
        c = checks[name]
        assert c["loaded"] and c["ran"] and c["load_s"] >= 0 and c["run_s"] > 0, c
        assert not c["plausible"] and not c["ok"] and "Dice" in c["detail"], c
    lung = checks["lunggradicon"]
    assert not lung["loaded"] and "cannot read weights" in lung["detail"], lung
