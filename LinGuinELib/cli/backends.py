"""`linguine backends`: every registration and segmentation backend, and whether it runs here.

For each one that cannot run, the line says exactly what is missing (package, weights, GPU) and
how to get it. The same backend options as `track` can be given, so a user can check a weights
path or a model folder before a long run.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
from typing import Any

from ..registry import backend_class, backend_names
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
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def backend_status(kind: str, options: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per backend of ``kind``: name, usable, reason (None when usable), summary."""
    rows = []
    for name in backend_names(kind):
        cls = backend_class(kind, name)
        try:
            reason = cls.unavailable_reason(**options)
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


def run(args: argparse.Namespace) -> int:
    options = {
        "registration": {"device": args.device, **dict(args.registration_option)},
        "segmentation": {"device": args.device, **dict(args.segmentation_option)},
    }
    rows = [row for kind in KINDS for row in backend_status(kind, options[kind])]
    versions = package_versions()
    if args.json:
        print(json.dumps({"device": args.device, "backends": rows, "packages": versions},
                         indent=2))
        return 0
    width = max(len(r["name"]) for r in rows) if rows else 10
    for kind in KINDS:
        print(f"{kind} backends (device {args.device}):")
        for r in (r for r in rows if r["kind"] == kind):
            state = "usable" if r["usable"] else f"NOT usable: {r['reason']}"
            print(f"  {r['name']:<{width}}  {state}")
    print("packages: " + ", ".join(f"{k} {v or '(not installed)'}" for k, v in versions.items()))
    return 0
