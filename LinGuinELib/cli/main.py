"""Entry point: `linguine <command> ...`. Bad input -> one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import sys

from .. import __version__
from ..errors import Cancelled, InputError

SUBCOMMANDS = ("track", "study", "demo", "backends", "batch", "evaluate", "report")
# One line per command for `linguine --help`, so that listing the commands imports none of them
# (a test checks these against each module's own help).
SUMMARIES = {
    "track": "track lesions across the scans of one study",
    "study": "write a study manifest from a folder of DICOM files",
    "demo": "generate a synthetic study, track it, score it against the truth",
    "backends": "list backends and whether each can run here",
    "batch": "track every study of a dataset (resumable, parallel, Dask)",
    "evaluate": "score batch outputs against ground truth (Dice, distances, detection)",
    "report": "self-contained HTML summary of batch outputs (tables and plots)",
}


def _requested(argv: list[str]) -> str | None:
    """The command named on the command line (the first word that is not an option)."""
    for arg in argv:
        if arg == "--":
            return None
        if not arg.startswith("-"):
            return arg
    return None


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; only the module of the command named in ``argv`` is imported (start-up time:
    the commands pull in SimpleITK, scipy, matplotlib, Dask). The others get a stub that lists them."""
    wanted = _requested(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="linguine",
        description="Track lesions across every scan of a longitudinal CT study from one prompt.",
    )
    parser.add_argument("--version", action="version", version=f"linguine {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-v info, -vv debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        if name != wanted:
            if importlib.util.find_spec(f"{__package__}.{name}") is not None:  # finds, does not import
                sub.add_parser(name, help=SUMMARIES.get(name, ""))
            continue
        try:
            module = importlib.import_module(f"{__package__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__package__}.{name}":
                continue  # subcommand not part of this build
            raise
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    level = logging.ERROR if args.quiet else [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        print(f"linguine: error: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, Cancelled):
        print("linguine: interrupted; nothing half-written was kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
