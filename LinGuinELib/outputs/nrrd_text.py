"""Write a Slicer .seg.nrrd whose header keeps non-ASCII ids (segment names, tags) as UTF-8.

pynrrd (under slicerio) encodes the header as ASCII and fails on ``Läsion``; Slicer reads the
header's key/value pairs as UTF-8. Non-ASCII strings are swapped for ASCII placeholders for the
write, then the placeholders are replaced by the UTF-8 text in the header bytes only (the
voxel data after the header's blank line is never touched).
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import slicerio


def _escape(value: Any, table: dict[str, str], tag: str) -> Any:
    if isinstance(value, str):
        if value.isascii():
            return value
        token = f"@u8{tag}n{len(table)}@"
        table[token] = value
        return token
    if isinstance(value, dict):
        return {_escape(k, table, tag): _escape(v, table, tag) for k, v in value.items()}
    if isinstance(value, list):
        return [_escape(v, table, tag) for v in value]
    return value


def write_segmentation_file(segmentation: dict, path: Path, compression_level: int = 9) -> None:
    """``slicerio.write_segmentation`` with UTF-8 text allowed in segment ids, names and tags."""
    table: dict[str, str] = {}
    seg = dict(segmentation)
    seg["segments"] = _escape(segmentation.get("segments", []), table, secrets.token_hex(4))
    slicerio.write_segmentation(str(path), seg, compression_level=compression_level)
    if not table:
        return
    data = Path(path).read_bytes()
    end = data.index(b"\n\n") + 2
    header = data[:end]
    for token, text in table.items():
        header = header.replace(token.encode("ascii"), text.encode("utf-8"))
    Path(path).write_bytes(header + data[end:])
