"""`linguine backends`: every registration and segmentation backend, and whether it runs here.

For each one that cannot run, the line says exactly what is missing (package, weights, GPU) and
how to get it. It shows what the model folder ($LINGUINE_MODEL_DIR) holds. The same backend
options as `track` can be given, so a user can check a weights path before a long run.
``--check`` loads every learned backend that can run and runs it once on a generated image
(loaded / ran / output plausible, with timings); the exit code is 1 when one of them fails.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
from typing import Any

from .. import model_dir
from ..registry import accepted_options, backend_class, backend_names, backend_options, create_backend
from .options import _key_value

KINDS = ("registration", "segmentation")
PACKAGES = ("torch", "icon_registration", "nninteractive", "nninteractive-client", "monai")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "backends", help="list backends and whether each can run here",
        description="List every registration and segmentation backend, whether it can run on "
                    "this machine with the given options, and if not what is missing and how "
                    "to get it.")
    p.add_argument("--device", default="cpu", help="device to check (cpu or cuda)")
    p.add_argument("--registration-option", type=_key_value, action="append", default=[],
                   metavar="KEY=VALUE", help="option for registration backends, e.g. weights=PATH")
    p.add_argument("--segmentation-option", type=_key_value, action="append", default=[],
                   metavar="KEY=VALUE", help="option for segmentation backends, e.g. model_dir=PATH")
    p.add_argument("--check", action="store_true",
                   help="load each learned backend that can run here and run it once on a "
                        "generated image: loaded / ran / output plausible, with timings "
                        "(exit code 1 when one fails)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def backend_status(kind: str, options: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per backend of ``kind``: name, usable, reason (None when usable), summary."""
    rows = []
    for name in backend_names(kind):
        cls = backend_class(kind, name)
        try:
            reason = cls.unavailable_reason(**backend_options(name, options))
        except Exception as exc:  # a broken backend must not hide the others
            reason = f"check failed: {type(exc).__name__}: {exc}"
        doc = (cls.__doc__ or "").strip().splitlines()
        rows.append({"kind": kind, "name": name, "usable": reason is None, "reason": reason,
                     "summary": doc[0] if doc else ""})
    return rows


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages the learned backends use (None: not installed)."""
    out: dict[str, str | None] = {}
    for pkg in PACKAGES:
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def run_checks(rows: list[dict[str, Any]], options: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """``backend_check`` on every usable learned backend (the classical ones need no check)."""
    from ..backend_check import check_backend

    results = []
    for row in rows:
        if not row["usable"] or row["name"] == "classical":
            continue
        kind, name = row["kind"], row["name"]
        print(f"checking {kind} backend {name} ...", flush=True)
        accepted = accepted_options(backend_class(kind, name))  # options are given per kind, not per backend
        backend = create_backend(kind, name, **{k: v for k, v in options[kind].items() if k in accepted})
        results.append(check_backend(kind, name, backend).as_dict())
    return results


def run(args: argparse.Namespace) -> int:
    options = {
        "registration": {"device": args.device, **dict(args.registration_option)},
        "segmentation": {"device": args.device, **dict(args.segmentation_option)},
    }
    rows = [row for kind in KINDS for row in backend_status(kind, options[kind])]
    versions = package_versions()
    folder = model_dir.configured_dir()
    found = model_dir.scan()
    checks = run_checks(rows, options) if args.check else None
    failed = bool(checks) and not all(c["ok"] for c in checks)
    if args.json:
        print(json.dumps({"device": args.device, "backends": rows, "packages": versions,
                          "model_dir": {"path": str(folder) if folder else None, "backends": found},
                          "checks": checks}, indent=2))
        return 1 if failed else 0
    width = max(len(r["name"]) for r in rows) if rows else 10
    for kind in KINDS:
        print(f"{kind} backends (device {args.device}):")
        for r in (r for r in rows if r["kind"] == kind):
            state = "usable" if r["usable"] else f"NOT usable: {r['reason']}"
            print(f"  {r['name']:<{width}}  {state}")
    print("packages: " + ", ".join(f"{k} {v or '(not installed)'}" for k, v in versions.items()))
    print(model_folder_text(folder, found))
    if checks is not None:
        print(check_text(checks))
    return 1 if failed else 0


def model_folder_text(folder: Any, found: list[dict[str, Any]]) -> str:
    if folder is None:
        return (f"model folder: not set (set {model_dir.ENV_VAR} to a folder holding the weights "
                "under their upstream names; explicit options still override)")
    lines = [f"model folder ({model_dir.ENV_VAR}): {folder}" + ("" if folder.is_dir() else
                                                                "  (NOT FOUND)")]
    for row in found:
        where = row["found"] or "not there (expected " + " or ".join(row["expected"]) + ")"
        lines.append(f"  {row['name']:<14} {row['option']}: {where}")
    return "\n".join(lines)


def check_text(checks: list[dict[str, Any]]) -> str:
    if not checks:
        return "check: no learned backend can run here (weights absent?); nothing checked"
    lines = ["check (generated phantom):"]
    for c in checks:
        verdict = "OK" if c["ok"] else "FAILED"
        steps = (f"loaded {'yes' if c['loaded'] else 'no'} ({c['load_s']} s), "
                 f"ran {'yes' if c['ran'] else 'no'}"
                 + (f" ({c['run_s']} s)" if c["run_s"] is not None and c["loaded"] else "")
                 + f", plausible {'yes' if c['plausible'] else 'no'}")
        lines.append(f"  {c['name']:<14} {verdict}: {steps}; {c['detail']}")
    return "\n".join(lines)
