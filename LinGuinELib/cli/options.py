"""Tracking options shared by `track`, `demo` and `batch`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..config import MODES, TrackingConfig
from ..errors import InputError
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
    g = parser.add_argument_group("tracking")
    g.add_argument("--registration", default="classical", help="registration backend (default: classical)")
    g.add_argument("--segmentation", default="classical", help="segmentation backend (default: classical)")
    g.add_argument("--mode", choices=MODES, default="direct",
                   help="direct: source to every scan; chain: scan to scan in time order")
    g.add_argument("--boost", action="store_true", help="re-prompt at the centre of the first mask")
    g.add_argument("--device", default="cpu", help="cpu or cuda (learned backends)")
    g.add_argument("--search-radius-mm", type=float, default=10.0,
                   help="keep a component only if it lies within this distance of the mapped point")
    g.add_argument("--registration-option", type=_key_value, action="append", default=[],
                   metavar="KEY=VALUE", help="backend option, e.g. weights=/path/unigradicon.pth")
    g.add_argument("--segmentation-option", type=_key_value, action="append", default=[],
                   metavar="KEY=VALUE", help="backend option, e.g. model_dir=/path/nnInteractive_v1.0")


def config_from_args(args: argparse.Namespace) -> TrackingConfig:
    if args.search_radius_mm <= 0:
        raise InputError(f"--search-radius-mm must be positive, got {args.search_radius_mm}")
    return TrackingConfig(
        registration=args.registration, segmentation=args.segmentation, mode=args.mode,
        boost=args.boost, device=args.device, search_radius_mm=args.search_radius_mm,
        registration_options=dict(args.registration_option),
        segmentation_options=dict(args.segmentation_option),
    )


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
