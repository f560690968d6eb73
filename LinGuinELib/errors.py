"""Errors that the CLI turns into a one-line message and exit code 2."""


class InputError(Exception):
    """Bad user input: the message names the file or field and what is wrong."""


class BackendUnavailableError(InputError):
    """A backend was asked for but its package, weights or device is missing."""


class Cancelled(Exception):
    """The caller asked the engine to stop (Slicer's Cancel button, Ctrl-C)."""
