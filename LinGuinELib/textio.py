"""Text files in and out: always UTF-8, JSON errors as one-line InputErrors, atomic writes."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .errors import InputError


def read_json(path: Path, what: str = "JSON file") -> Any:
    """Parse a UTF-8 JSON file; a missing, unreadable or malformed file is an InputError naming it."""
    path = Path(path)
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
