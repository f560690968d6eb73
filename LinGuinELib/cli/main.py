"""Entry point: `linguine <command> ...`.

Every failure is one line on stderr: exit 2 for bad input (``InputError``), 1 for the machine
(``EnvironmentProblem``, an OS error such as a full disk, or an unexpected error), 130 for
Ctrl-C and 143 for SIGTERM; the traceback only with ``--debug``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
import threading
import traceback

from .. import __version__
from ..errors import Cancelled, EnvironmentProblem, InputError

SUBCOMMANDS = ("track", "study", "demo", "backends", "batch", "evaluate", "report")


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that cleanup runs as for Ctrl-C."""


def build_parser() -> argparse.ArgumentParser:
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
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.ERROR if args.quiet else [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
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
