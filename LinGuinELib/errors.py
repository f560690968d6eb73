"""Errors that the CLI turns into one line: InputError -> exit 2, EnvironmentProblem -> exit 1."""


class InputError(Exception):
    """Bad user input: the message names the file or field and what is wrong."""


class BackendUnavailableError(InputError):
    """A backend was asked for but its package, weights or device is missing."""


class EnvironmentProblem(Exception):
    """The machine, not the input: disk full, scheduler unreachable (a read-only OUT is the user's
    choice of place: an ``InputError``)."""


class Cancelled(Exception):
    """The caller asked the engine to stop (Slicer's Cancel button, Ctrl-C, SIGTERM)."""
