"""File names derived from user text (scan, lesion, patient ids): the only way LinGuinE turns an id
into a name on disk (data-safety policy: ``safety``). Readable, no separators, no leading dots, no
NUL or control characters, length-capped, no reserved device names, unique within a run even on
case-insensitive filesystems. The original ids stay in the files' contents.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable

NAME_MAX_BYTES = 100  # leaves room for suffixes and collision tags under the usual 255-byte limit
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}
_FORBIDDEN = set('/\\:*?"<>|')


def safe_name(text: str, fallback: str = "unnamed") -> str:
    """A readable file or folder name for a user id that cannot escape its folder.

    Letters of any script are kept; separators, control characters and characters Windows
    forbids become ``_``; leading/trailing dots and spaces are removed (no ``..``, no hidden
    files); reserved device names get a ``_`` prefix; long names are cut (UTF-8 bytes) and
    tagged with a hash of the full id so that two long ids stay distinct.
    """
    text = unicodedata.normalize("NFC", str(text))
    chars = ["_" if (c in _FORBIDDEN or not c.isprintable() or c.isspace() and c != " ") else c
             for c in text]
    name = "".join(chars).strip(" .")
    if not name:
        name = fallback
    if name.split(".")[0].lower() in _RESERVED:
        name = "_" + name
    raw = name.encode("utf-8")
    if len(raw) > NAME_MAX_BYTES:
        cut = raw[: NAME_MAX_BYTES - 9].decode("utf-8", "ignore").rstrip(" .")
        name = f"{cut}~{_digest(text)}"
    return name


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]


def unique_names(ids: Iterable[str]) -> dict[str, str]:
    """``safe_name`` of each id, made unique ignoring case (macOS/Windows filesystems).

    Deterministic: the first id (in the given order) keeps the plain name, later ones whose
    name collides get ``~<hash of the id>`` appended, which does not depend on the other ids.
    """
    out: dict[str, str] = {}
    taken: set[str] = set()
    for i in ids:
        if i in out:
            continue
        name = safe_name(i)
        if name.casefold() in taken:
            name = f"{name}~{_digest(i)}"
        k = 2
        while name.casefold() in taken:  # hash collision: practically never
            name = f"{safe_name(i)}~{_digest(i)}-{k}"
            k += 1
        taken.add(name.casefold())
        out[i] = name
    return out
