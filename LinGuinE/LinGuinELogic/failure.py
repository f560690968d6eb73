"""Why a tracking run failed, in the words the user can act on (no Qt: the widget only shows it).

A run's process says one of three things: bad input (the library's own one line, as the command
line prints it: a click where nothing is segmented, a volume that is not CT), an exception of a
backend (a traceback whose last line names it), or nothing at all (killed, or a native crash).
``Failure.message`` is that one line; ``details`` is what the process logged, for a bug report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The line a Python traceback ends with ("torch.OutOfMemoryError: CUDA out of memory ..."); log
# lines ("INFO LinGuinELib.engine: ...") and a native crash ("Fatal Python error: ...") have a space
# before their colon.
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(: |$)")
NATIVE_CRASH = "Fatal Python error"


@dataclass(frozen=True)
class Failure:
    """``message``: one line; ``details``: the process's last log lines ('' for bad input, whose
    line says it all)."""

    message: str
    details: str = ""

    @property
    def text(self) -> str:
        """Message first, then the details: ``TrackingFailed``'s text and the jobs' ``error``."""
        return "\n".join(part for part in (self.message, self.details) if part)

    def for_user(self) -> Failure:
        """The panel's error dialog: what failed as its text, the rest in its details."""
        return Failure(f"Tracking failed: {self.message}",
                       "\n\n".join(part for part in ("Nothing was added to the scene.", self.details) if part))


def from_log(reason: str, lines: list[str]) -> Failure:
    """A process that did not end with a bad-input line: the exception its traceback ends with,
    else its native crash's first line, else ``reason`` (e.g. 'killed by signal 9')."""
    crash = next((line for line in lines if line.startswith(NATIVE_CRASH)), None)
    if lines and EXCEPTION_LINE.match(lines[-1]):
        cause = lines[-1]
    else:
        cause = reason if crash is None else f"{reason}: {crash}"
    return Failure(" ".join(cause.split()), "\n".join([reason, *lines]))
