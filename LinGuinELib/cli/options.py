"""Tracking options shared by `track`, `demo` and `batch`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..config import TrackingConfig, option_specs
from ..propagation.progress import ProgressEvent


def _key_value(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got '{text}'")
    key, value = text.split("=", 1)
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def out_path(text: str) -> Path:
    """--out: a non-empty path (Path("") would silently mean the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return Path(text)


def add_tracking_options(parser: argparse.ArgumentParser) -> None:
    """One flag per ``TrackingConfig`` field, with the field's default, choices and help."""
    g = parser.add_argument_group("tracking")
    for spec in option_specs():
        if spec.kind is dict:
            g.add_argument(spec.flag, dest=spec.name, type=_key_value, action="append", default=[],
                           metavar="KEY=VALUE", help=spec.help)
        elif spec.kind is bool:
            g.add_argument(spec.flag, dest=spec.name, action=argparse.BooleanOptionalAction,
                           default=spec.default, help=spec.help)
        else:
            bounds = f" [{spec.minimum:g}, {spec.maximum:g}]" if spec.minimum is not None else ""
            g.add_argument(spec.flag, dest=spec.name, type=spec.kind, choices=spec.choices,
                           default=spec.default, help=f"{spec.help}{bounds} (default: {spec.default})")


def config_from_args(args: argparse.Namespace) -> TrackingConfig:
    """The ``TrackingConfig`` the tracking flags describe (validated by the config itself)."""
    values = {spec.name: getattr(args, spec.name) for spec in option_specs()}
    for spec in option_specs():
        if spec.kind is dict:
            values[spec.name] = dict(values[spec.name])
    return TrackingConfig(**values)


class TqdmProgress:
    """Engine progress events shown as a tqdm bar on stderr."""

    def __init__(self, desc: str = "tracking", disable: bool = False) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=1, desc=desc, unit="step", file=sys.stderr, disable=disable, leave=False)

    def __call__(self, event: ProgressEvent) -> None:
        self.bar.total = event.total
        self.bar.n = event.done
        self.bar.set_postfix_str(event.message[:48], refresh=True)

    def close(self) -> None:
        self.bar.close()
