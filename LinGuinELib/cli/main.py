"""Entry point: `linguine <command> ...`.

Every failure is one line on stderr: exit 2 for bad input (``InputError``), 1 for the machine
(``EnvironmentProblem``, an OS error such as a full disk, or an unexpected error), 130 for
Ctrl-C and 143 for SIGTERM; the traceback only with ``--debug``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import signal
import sys
import threading
import traceback

from .. import __version__
from ..errors import Cancelled, EnvironmentProblem, InputError
from ..logsetup import log_to_stderr

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


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that cleanup runs as for Ctrl-C."""


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
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
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


def _on_sigterm(signum, frame) -> None:
    raise Terminated()


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # ids in any script print even on an ASCII terminal
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    level = logging.ERROR if args.quiet else [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    log_to_stderr(level)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if in_main_thread else None
    try:
        return int(args.func(args) or 0)
    except (InputError, EnvironmentProblem, KeyboardInterrupt, Cancelled, Terminated, Exception) as exc:
        code, message = _describe(exc)
        if args.debug:
            traceback.print_exception(exc)
        print(f"linguine: {message}", file=sys.stderr)
        return code
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


def _describe(exc: BaseException) -> tuple[int, str]:
    """Exit code and one-line message for an exception that ended a command."""
    if isinstance(exc, InputError):
        return 2, f"error: {_one_line(exc)}"
    if isinstance(exc, EnvironmentProblem):
        return 1, f"error: {_one_line(exc)}"
    if isinstance(exc, (KeyboardInterrupt, Cancelled)):
        return 130, "interrupted; nothing half-written was kept (a previous OUT is intact)"
    if isinstance(exc, Terminated):
        return 143, "terminated (SIGTERM); nothing half-written was kept (a previous OUT is intact)"
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        return 1, f"error: {exc.strerror or _one_line(exc)}{where}"
    return 1, f"internal error: {type(exc).__name__}: {_one_line(exc)} (rerun with --debug for details)"

if __name__ == "__main__":
    sys.exit(main())
