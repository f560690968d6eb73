"""`linguine backends` and the rule that backend modules import without their heavy packages."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from LinGuinELib.cli import backends as cli_backends
from LinGuinELib.registry import backend_names

ROOT = Path(__file__).resolve().parents[1]
LEARNED_MODULES = (
    "LinGuinELib.registration.icon",
    "LinGuinELib.segmentation.nninteractive",
    "LinGuinELib.segmentation.vista3d",
    "LinGuinELib.segmentation.lesionlocator",
    "LinGuinELib.backend_check",
    "LinGuinELib.model_dir",
)


def run_backends(capsys, *argv: str) -> str:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    cli_backends.add_parser(sub)
    args = parser.parse_args(["backends", *argv])
    assert args.func(args) == 0
    return capsys.readouterr().out


def test_lists_every_backend_of_both_kinds(capsys):
    out = run_backends(capsys)
    for kind in ("registration", "segmentation"):
        assert f"{kind} backends" in out
        for name in backend_names(kind):
            line = next(ln for ln in out.splitlines() if ln.strip().startswith(name + " "))
            assert "usable" in line
            if "NOT usable" in line:
                assert len(line.split("NOT usable: ", 1)[1]) > 20  # says what and how
    for name in ("unigradicon", "multigradicon", "lunggradicon", "nninteractive",
                 "nninteractive-remote", "vista3d", "lesionlocator"):
        assert name in out
    assert "packages: torch" in out


def test_json_output_and_options_change_the_verdict(capsys, tmp_path):
    rows = json.loads(run_backends(capsys, "--json"))["backends"]
    uni = next(r for r in rows if r["name"] == "unigradicon")
    assert not uni["usable"] and "weights" in uni["reason"]
    weights = tmp_path / "w.trch"
    weights.write_bytes(b"x")
    rows = json.loads(run_backends(capsys, "--json", "--registration-option",
                                   f"weights={weights}"))["backends"]
    uni = next(r for r in rows if r["name"] == "unigradicon")
    have_icon = subprocess.run([sys.executable, "-c", "import icon_registration"],
                               capture_output=True).returncode == 0
    if have_icon:
        assert uni["usable"] and uni["reason"] is None
    else:
        assert "icon_registration" in uni["reason"]


def test_learned_modules_import_without_heavy_packages():
    """Block torch & co. in a fresh interpreter: modules import, reasons name the package."""
    code = f"""
import sys
for name in ("torch", "monai", "icon_registration", "nnInteractive", "nnunetv2"):
    sys.modules[name] = None  # any import of these now fails
import importlib
for mod in {LEARNED_MODULES!r}:
    importlib.import_module(mod)
from LinGuinELib.registry import backend_class
for kind, name, pkg in (("registration", "unigradicon", "torch"),
                        ("segmentation", "nninteractive", "torch"),
                        ("segmentation", "vista3d", "torch"),
                        ("segmentation", "lesionlocator", "torch")):
    reason = backend_class(kind, name).unavailable_reason(weights="w", model_dir="m")
    assert pkg in reason and "install_learned.sh" in reason, reason
print("ok")
"""
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-2000:]


def test_cli_main_knows_the_command():
    res = subprocess.run([sys.executable, "-m", "LinGuinELib.cli.main", "backends"], cwd=ROOT,
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "segmentation backends" in res.stdout
