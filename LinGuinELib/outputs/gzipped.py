"""Label files written straight from the label array: gzip by ISA-L, the header by ITK.

Writing the outputs was mostly compressing voxels that are nearly all zero, plus copies: each
labelmap was copied into an ITK image and compressed by ITK's zlib, each segmentation copied
into Fortran order and compressed by pynrrd's zlib. Here the array's own buffer is compressed
in one call (ISA-L's level 1 deflates zeros about ten times faster than zlib's, and smaller),
and the header comes from the usual writer, so the files read back exactly as before:

- ``.nii.gz``: ITK writes the NIfTI header of a 2x2x2 image with the same geometry and pixel
  type (its header differs from the full image's only in ``dim``), which is then patched.
- ``.seg.nrrd``: slicerio writes the header for a one-voxel stand-in, whose ``sizes`` line is
  then set (nothing else in a segmentation header depends on the voxel count).
"""

from __future__ import annotations

import struct
import tempfile
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np
import SimpleITK as sitk

NIFTI_HEADER_BYTES = 352  # the 348-byte header and 4 bytes of (no) extension: where voxels start
_SITK_PIXEL = {np.dtype(np.uint8): sitk.sitkUInt8, np.dtype(np.uint16): sitk.sitkUInt16}


def deflate_to(fh: BinaryIO, parts: list, level: int) -> None:
    """Append the buffers ``parts`` to ``fh`` as one gzip member (ISA-L when installed, else zlib)."""
    try:
        from isal import isal_zlib as codec
        level = min(level, codec.ISAL_BEST_COMPRESSION)
    except ImportError:  # optional (not in Slicer's Python): zlib, slower, same format
        codec = zlib
    packer = codec.compressobj(level, codec.DEFLATED, 16 + codec.MAX_WBITS)
    for part in parts:
        fh.write(packer.compress(memoryview(part).cast("B")))
    fh.write(packer.flush())


def nifti_header(geometry, dtype: np.dtype) -> bytes:
    """The 352 bytes ITK writes before the voxels of a .nii image on ``geometry`` of ``dtype``."""
    size = tuple(int(n) for n in geometry.GetSize())
    if np.dtype(dtype) not in _SITK_PIXEL:
        raise ValueError(f"no NIfTI label writer for {np.dtype(dtype)}")
    tiny = sitk.Image([2] * len(size), _SITK_PIXEL[np.dtype(dtype)])
    tiny.SetOrigin(geometry.GetOrigin())
    tiny.SetSpacing(geometry.GetSpacing())
    tiny.SetDirection(geometry.GetDirection())
    with tempfile.TemporaryDirectory(prefix="linguine-hdr-") as folder:
        path = Path(folder) / "h.nii"
        sitk.WriteImage(tiny, str(path))
        head = bytearray(path.read_bytes()[:NIFTI_HEADER_BYTES])
    endian = "<" if struct.unpack("<i", head[:4])[0] == 348 else ">"
    dim = struct.unpack(endian + "8h", head[40:56])
    if dim[0] != len(size) or dim[1:1 + len(size)] != (2,) * len(size):
        raise RuntimeError(f"unexpected NIfTI header from ITK: dim {dim}")
    head[40:56] = struct.pack(endian + "8h", len(size), *size, *dim[1 + len(size):])
    return bytes(head)


def write_nifti_gz(array_zyx: np.ndarray, geometry, path: Path, level: int) -> None:
    """``array_zyx`` (on ``geometry``'s grid) as ``path`` (.nii.gz): what ``sitk.WriteImage``
    writes, byte for byte once decompressed."""
    array_zyx = np.ascontiguousarray(array_zyx)
    if array_zyx.shape != tuple(geometry.GetSize())[::-1]:
        raise ValueError(f"array shape {array_zyx.shape} does not match grid {geometry.GetSize()[::-1]}")
    header = nifti_header(geometry, array_zyx.dtype)
    with open(path, "wb") as fh:
        deflate_to(fh, [header, array_zyx], level)  # one gzip member, as ITK writes it
