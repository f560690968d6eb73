"""Is an image file complete and its geometry a rotation? Checked before any work.

ITK's NIfTI reader zero-fills a truncated file without an error, and silently replaces a
sheared (non-orthogonal) sform by a rotation, so labels written on the grid ITK reports would
have another orientation than the scan file; both are refused here.

The NIfTI header says how many bytes of voxels follow (``vox_offset`` + voxels x bytes per
voxel); the file (decompressed, for ``.nii.gz``) must hold at least that many. For ``.nii.gz``
the gzip trailer (uncompressed size) is compared first, which costs nothing; only when it does
not match (a cut file ends in random bytes) is the stream decompressed in full, and a stream
that ends early or has a bad checksum is an error. Other formats
(NRRD, MetaImage, DICOM) already fail loudly in ITK when short.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from ..errors import InputError

_CHUNK = 1 << 22
ORTHO_TOL = 1e-3  # |cos| between axes tolerated as rounding in headers


def _expected_nifti_bytes(header: bytes) -> int | None:
    """vox_offset + voxel bytes from a NIfTI-1 or NIfTI-2 header; None if it is neither."""
    for endian in "<>":
        if len(header) >= 348 and struct.unpack(endian + "i", header[:4])[0] == 348:
            dim = struct.unpack(endian + "8h", header[40:56])
            bitpix = struct.unpack(endian + "h", header[72:74])[0]
            offset = int(struct.unpack(endian + "f", header[108:112])[0])
            return _total(dim, bitpix, max(offset, 352))
        if len(header) >= 540 and struct.unpack(endian + "i", header[:4])[0] == 540:
            bitpix = struct.unpack(endian + "h", header[14:16])[0]
            dim = struct.unpack(endian + "8q", header[16:80])
            offset = struct.unpack(endian + "q", header[168:176])[0]
            return _total(dim, bitpix, max(offset, 544))
    return None


def _total(dim: tuple[int, ...], bitpix: int, offset: int) -> int | None:
    n = int(dim[0])
    if not 1 <= n <= 7 or bitpix <= 0:
        return None
    count = 1
    for d in dim[1:n + 1]:
        count *= max(int(d), 1)
    return offset + count * bitpix // 8


def _gzip_length(path: Path) -> int:
    """Decompressed size of a gzip file; raises InputError when the stream is cut or corrupt."""
    total = 0
    try:
        with gzip.open(path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                total += len(chunk)
    except (EOFError, OSError, zlib.error) as exc:
        raise InputError(f"{path}: file is truncated or corrupt ({exc})") from None
    return total


def _gzip_trailer_size(path: Path) -> int:
    """ISIZE, the last 4 bytes of a gzip stream: the uncompressed size modulo 2**32."""
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        if fh.tell() < 18:
            return -1
        fh.seek(-4, 2)
        return struct.unpack("<I", fh.read(4))[0]


def check_complete(path: Path) -> None:
    """Raise InputError when a NIfTI file holds fewer voxel bytes than its header promises."""
    path = Path(path)
    name = path.name.lower()
    if not (name.endswith(".nii") or name.endswith(".nii.gz")) or path.is_dir():
        return
    header = _nifti_header(path)
    expected = _expected_nifti_bytes(header)
    if name.endswith(".gz"):
        if expected is not None and _gzip_trailer_size(path) == expected % 2**32:
            return  # the stream ends where a complete file ends; a cut file ends in random bytes
        size = _gzip_length(path)  # decompress it all: a cut stream raises, a short one is measured
    else:
        size = path.stat().st_size
    if expected is not None and size < expected:
        raise InputError(f"{path}: file is truncated ({size} of {expected} bytes); re-export or re-copy it")


def _nifti_header(path: Path) -> bytes:
    try:
        opener = gzip.open if path.name.lower().endswith(".gz") else open
        with opener(path, "rb") as fh:
            return fh.read(544)
    except (EOFError, OSError, zlib.error) as exc:
        raise InputError(f"{path}: file is truncated or corrupt ({exc})") from None


def _sform_axes(header: bytes) -> np.ndarray | None:
    """The NIfTI-1 sform's 3x3 axes when the sform is in use (sform_code > 0), else None."""
    for endian in "<>":
        if len(header) >= 348 and struct.unpack(endian + "i", header[:4])[0] == 348:
            if struct.unpack(endian + "h", header[254:256])[0] <= 0:
                return None
            rows = struct.unpack(endian + "12f", header[280:328])
            return np.array(rows, float).reshape(3, 4)[:, :3]
    return None


def _orthogonal(axes: np.ndarray) -> bool:
    norms = np.linalg.norm(axes, axis=0)
    if not np.all(np.isfinite(axes)) or np.any(norms <= 0):
        return False
    unit = axes / norms
    return bool(np.allclose(unit.T @ unit, np.eye(3), atol=ORTHO_TOL))


def check_geometry(path: Path, direction) -> None:
    """Refuse an image whose axes are not orthogonal (sheared), in the file or as read."""
    path = Path(path)
    d = np.asarray(direction, float)
    if d.size == 9 and not _orthogonal(d.reshape(3, 3)):
        raise InputError(f"{path}: direction matrix is not orthogonal (sheared grid); LinGuinE writes "
                         "labels on the scan's own grid and needs a rotation: resample the scan")
    name = path.name.lower()
    if path.is_file() and (name.endswith(".nii") or name.endswith(".nii.gz")):
        axes = _sform_axes(_nifti_header(path))
        if axes is not None and not _orthogonal(axes):
            raise InputError(f"{path}: NIfTI sform is not orthogonal (sheared grid); ITK would read it "
                             "with another orientation, so LinGuinE refuses it: resample the scan")
