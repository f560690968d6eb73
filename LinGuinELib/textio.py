"""Text files in and out: always UTF-8, JSON errors as one-line InputErrors, atomic writes."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from .errors import InputError


def check_input_path(path: Path, folders: bool = False) -> Path:
    """An input must be a regular file (or, with ``folders``, a folder): opening a named pipe or a
    device would block forever, deaf to Ctrl-C and SIGTERM while the C library waits."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror})") from None
    if stat.S_ISDIR(mode) and not folders:
        raise InputError(f"{path}: is a folder, not a file")
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise InputError(f"{path}: not a regular file (a pipe, device or socket); give a file")
    return path


def read_json(path: Path, what: str = "JSON file") -> Any:
    """Parse a UTF-8 JSON file; a missing, unreadable or malformed file is an InputError naming it."""
    path = check_input_path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path}: not a readable {what} ({' '.join(str(exc).split())[:160]})") from None


def write_text_atomic(path: Path, text: str) -> None:
    """Write UTF-8 text to ``path`` through a temporary sibling, so readers never see half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False))
