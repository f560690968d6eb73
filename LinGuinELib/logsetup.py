"""Logging to stderr for the processes LinGuinE starts itself (the CLI, the Slicer panel's children).

One format for all of them, and Python's fault handler: a crash in native code (ITK, scipy,
torch) then still leaves every thread's Python stack on stderr instead of a silent exit.
"""

from __future__ import annotations

import faulthandler
import io
import logging
import sys

FORMAT = "%(levelname)s %(name)s: %(message)s"


def log_to_stderr(level: int) -> None:
    """Configure the root logger to stderr at ``level`` and dump stacks there on a native crash.

    The fault handler needs a real file descriptor: a stderr replaced by a Python object (an
    embedding console, a test's capture) keeps the default behaviour."""
    logging.basicConfig(level=level, format=FORMAT, stream=sys.stderr)
    try:
        sys.stderr.fileno()
    except (AttributeError, ValueError, io.UnsupportedOperation):
        return
    faulthandler.enable(sys.stderr)
