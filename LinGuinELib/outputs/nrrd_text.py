"""Write a Slicer .seg.nrrd: slicerio's header (UTF-8 ids kept), voxels compressed without a copy.

pynrrd (under slicerio) encodes the header as ASCII and fails on ``Läsion``; Slicer reads the
header's key/value pairs as UTF-8. Non-ASCII strings are swapped for ASCII placeholders while
slicerio builds the header, then replaced by their UTF-8 text in the header bytes.

The header is built for a one-voxel stand-in with the same number of axes, and its ``sizes``
line set to the real sizes (nothing else in the header depends on the voxel count); the voxels
follow as one gzip member of the array's own buffer (``gzipped.deflate_to``). pynrrd would first
copy them into Fortran order and compress them with zlib, several times slower.
"""

from __future__ import annotations

import io
import re
import secrets
from pathlib import Path
from typing import Any

import numpy as np
import slicerio

from .gzipped import deflate_to

_SIZES = re.compile(rb"^sizes: [0-9 ]+$", re.MULTILINE)


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


def segmentation_header(segmentation: dict) -> bytes:
    """The NRRD header (up to and including the blank line) slicerio writes for ``segmentation``."""
    voxels = segmentation["voxels"]
    table: dict[str, str] = {}
    seg = dict(segmentation)
    seg["segments"] = _escape(segmentation.get("segments", []), table, secrets.token_hex(4))
    seg["voxels"] = np.zeros((1,) * voxels.ndim, dtype=voxels.dtype)
    buffer = io.BytesIO()
    slicerio.write_segmentation(buffer, seg, compression_level=1)
    data = buffer.getvalue()
    header = data[:data.index(b"\n\n") + 2]
    if b"\nencoding: gzip\n" not in header or len(_SIZES.findall(header)) != 1:
        raise RuntimeError("slicerio wrote an unexpected .seg.nrrd header")
    header = _SIZES.sub(b"sizes: " + " ".join(str(n) for n in voxels.shape).encode("ascii"), header)
    for token, text in table.items():
        header = header.replace(token.encode("ascii"), text.encode("utf-8"))
    return header


def write_segmentation_file(segmentation: dict, path: Path, compression_level: int = 1) -> None:
    """``slicerio.write_segmentation`` with UTF-8 text allowed in segment ids, names and tags.

    ``segmentation["voxels"]`` is indexed (i, j, k[, layer first]) as slicerio wants; NRRD
    stores it in Fortran order, which for the usual transposed view of a C array is its buffer.
    """
    header = segmentation_header(segmentation)
    voxels = np.asfortranarray(segmentation["voxels"])
    with open(path, "wb") as fh:
        fh.write(header)
        deflate_to(fh, [voxels.ravel(order="F")], compression_level)
