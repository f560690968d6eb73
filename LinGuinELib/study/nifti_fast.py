"""Read a ``.nii.gz`` scan about twice as fast as ITK: the same voxels and grid, decompressed by ISA-L.

Most of reading a compressed CT is inflating it, which ITK does with zlib on one thread. Here
ITK still reads the header (so origin, spacing and direction are exactly what ``sitk.ReadImage``
gives) and ``isal`` inflates the voxels straight into the array. Only plain single-file NIfTI-1
volumes take this path: 3 dimensions, one component, no intensity scaling, a voxel type equal to
the one ITK reports. Anything else (or ``isal`` not installed, as in Slicer's Python) returns None
and the caller reads with ITK.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import InputError

HEAD_CHUNK = 1 << 16  # compressed bytes inflated first: the header and the start of the voxels
CHUNK = 1 << 22
# NIfTI datatype code -> numpy type (before byte order).
NIFTI_TYPES = {2: "u1", 4: "i2", 8: "i4", 16: "f4", 64: "f8", 256: "i1", 512: "u2", 768: "u4",
               1024: "i8", 1280: "u8"}
SITK_TYPES = {"u1": sitk.sitkUInt8, "i2": sitk.sitkInt16, "i4": sitk.sitkInt32, "f4": sitk.sitkFloat32,
              "f8": sitk.sitkFloat64, "i1": sitk.sitkInt8, "u2": sitk.sitkUInt16, "u4": sitk.sitkUInt32,
              "i8": sitk.sitkInt64, "u8": sitk.sitkUInt64}


def _plain_layout(header: bytes) -> tuple[np.dtype, tuple[int, int, int], int] | None:
    """(voxel dtype, (z, y, x), voxel offset) of a plain NIfTI-1 volume, else None."""
    for endian in "<>":
        if struct.unpack(endian + "i", header[:4])[0] != 348:
            continue
        if header[344:348] != b"n+1\0":
            return None
        dim = struct.unpack(endian + "8h", header[40:56])
        datatype = struct.unpack(endian + "h", header[70:72])[0]
        offset, slope, inter = struct.unpack(endian + "3f", header[108:120])
        code = NIFTI_TYPES.get(datatype)
        if dim[0] != 3 or min(dim[1:4]) < 1 or code is None or inter != 0 or slope not in (0.0, 1.0):
            return None
        if offset != int(offset) or offset < 352:
            return None
        return np.dtype(endian + code), (dim[3], dim[2], dim[1]), int(offset)
    return None


def read_nifti_gz(path: Path) -> sitk.Image | None:
    """The scan as ``sitk.ReadImage`` would give it, or None when this path does not apply."""
    path = Path(path)
    if not path.name.lower().endswith(".nii.gz"):
        return None
    try:
        from isal import isal_zlib
    except ImportError:  # optional (not in Slicer's Python): a plain ITK read is only slower
        return None
    info = sitk.ImageFileReader()
    info.SetFileName(str(path))
    info.ReadImageInformation()
    try:
        with open(path, "rb") as fh:
            inflater = isal_zlib.decompressobj(16 + isal_zlib.MAX_WBITS)
            head = inflater.decompress(fh.read(HEAD_CHUNK))
            layout = _plain_layout(head[:352]) if len(head) >= 352 else None
            if layout is None:
                return None
            dtype, shape, offset = layout
            if (info.GetDimension() != 3 or info.GetNumberOfComponents() != 1
                    or info.GetPixelID() != SITK_TYPES[dtype.str[1:]] or tuple(info.GetSize()) != shape[::-1]):
                return None
            voxels = np.empty(shape, dtype=dtype)
            flat = memoryview(voxels).cast("B")
            got = _put(flat, 0, memoryview(head)[offset:])
            del head
            while got < flat.nbytes and (chunk := fh.read(CHUNK)):
                got = _put(flat, got, inflater.decompress(chunk))
            if got < flat.nbytes:
                got = _put(flat, got, inflater.flush())
    except (EOFError, OSError, isal_zlib.error) as exc:
        raise InputError(f"{path}: file is truncated or corrupt ({exc})") from None
    if got != voxels.nbytes:
        raise InputError(f"{path}: file is truncated ({offset + got} of {offset + voxels.nbytes} bytes)")
    image = sitk.GetImageFromArray(voxels if dtype.isnative else voxels.astype(dtype.newbyteorder("=")))
    del voxels, flat
    image.SetOrigin(info.GetOrigin())
    image.SetSpacing(info.GetSpacing())
    image.SetDirection(info.GetDirection())
    return image


def _put(flat: memoryview, at: int, piece: bytes | memoryview) -> int:
    """Copy ``piece`` into ``flat`` from ``at`` (bytes past the voxels are ignored, as ITK does)."""
    n = max(0, min(len(piece), flat.nbytes - at))
    flat[at:at + n] = piece[:n]
    return at + n
