"""The CLI imports only the command it runs: `linguine --help` and `track` start fast."""

import argparse
import importlib
import json
import subprocess
import sys
from pathlib import Path

from LinGuinELib.cli.main import SUBCOMMANDS, SUMMARIES, build_parser

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("matplotlib", "torch", "dask", "distributed", "monai", "pandas")


def _imported_after(argv: list[str]) -> list[str]:
    code = ("import sys, json\nfrom LinGuinELib.cli.main import build_parser\n"
            f"build_parser({argv!r})\nprint(json.dumps(sorted(sys.modules)))")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(res.stdout)


def test_help_imports_no_command():
    modules = _imported_after(["--help"])
    assert not [m for m in modules if m.split(".")[0] in HEAVY + ("SimpleITK", "scipy", "numpy")]
    assert not [m for m in modules if m.startswith("LinGuinELib.cli.") and m != "LinGuinELib.cli.main"]


def test_track_imports_only_track():
    modules = _imported_after(["-q", "track", "study.json", "--out", "o"])
    assert "LinGuinELib.cli.track" in modules
    # Not even scipy or the pipeline: they load after the study and OUT are checked.
    assert not [m for m in modules if m.split(".")[0] in HEAVY + ("scipy", "slicerio", "cc3d")]
    assert "LinGuinELib.pipeline" not in modules
    others = {f"LinGuinELib.cli.{n}" for n in SUBCOMMANDS} - {"LinGuinELib.cli.track", "LinGuinELib.cli.options"}
    assert not others & set(modules)


def test_summaries_are_the_commands_own_help():
    """The listing's one-liners must say what each command module says of itself."""
    for name in SUBCOMMANDS:
        sub = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(f"LinGuinELib.cli.{name}").add_parser(sub)
        helps = {a.dest: a.help for a in sub._choices_actions}
        assert helps[name] == SUMMARIES[name], name


def test_every_command_listed_and_each_parses_its_own_options():
    help_text = build_parser(["--help"]).format_help()
    for name in SUBCOMMANDS:
        assert name in help_text
    args = build_parser(["track", "s.json", "--out", "o"]).parse_args(["track", "s.json", "--out", "o"])
    assert args.command == "track" and args.out == Path("o")


def test_track_reports_a_bad_option_before_a_bad_study(tmp_path, capsys):
    """Option errors first, then the study's; neither imports the pipeline."""
    from LinGuinELib.cli.main import main

    out = tmp_path / "o"
    assert main(["track", str(tmp_path / "missing.json"), "--out", str(out), "--segmentation-option", "nope=1"]) == 2
    assert "--segmentation-option nope" in capsys.readouterr().err
    assert main(["track", str(tmp_path / "missing.json"), "--out", str(out)]) == 2
    assert "missing.json" in capsys.readouterr().err
    assert not out.exists()


def test_a_native_crash_leaves_a_python_stack(tmp_path):
    """A segfault in a child the CLI or the panel starts prints where it was (faulthandler), not nothing."""
    import subprocess
    import sys

    code = ("import ctypes, logging\nfrom LinGuinELib.logsetup import log_to_stderr\nlog_to_stderr(logging.INFO)\n"
            "def in_native_code():\n    ctypes.string_at(0)\nin_native_code()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "Fatal Python error" in proc.stderr and "in_native_code" in proc.stderr, proc.stderr
