"""Read scans and masks: any file SimpleITK reads, or a folder holding one DICOM series."""

from __future__ import annotations

from pathlib import Path

import SimpleITK as sitk

from ..errors import InputError
from ..geometry import ImageGeometry
from ..textio import check_input_path
from .integrity import check_complete, check_geometry
from .nifti_fast import read_nifti_gz

MIN_SIZE = 4  # voxels per axis: fewer is a slice or a stub, not a CT volume to track in


def dicom_series_files(folder: Path, series_uid: str | None = None) -> list[str]:
    """The files of the folder's one DICOM series (or of ``series_uid``, searched below it), slice order."""
    reader = sitk.ImageSeriesReader
    if series_uid:
        files = reader.GetGDCMSeriesFileNames(str(folder), series_uid, False, True)
        if not files:
            raise InputError(f"{folder}: no DICOM series {series_uid} below this folder")
        return list(files)
    series = reader.GetGDCMSeriesIDs(str(folder))
    if not series:
        raise InputError(f"{folder}: folder holds no DICOM series")
    if len(series) > 1:
        raise InputError(f"{folder}: folder holds {len(series)} DICOM series; give one per folder "
                         f"(or its series_uid)")
    return list(reader.GetGDCMSeriesFileNames(str(folder), series[0]))


def _check_3d(image: sitk.Image, path: Path) -> sitk.Image:
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(
            f"{path}: expected a 3D scalar image, got {image.GetDimension()}D with "
            f"{image.GetNumberOfComponentsPerPixel()} component(s)"
        )
    if min(image.GetSize()) < MIN_SIZE:
        raise InputError(f"{path}: image of size {image.GetSize()} is not a 3D volume "
                         f"(at least {MIN_SIZE} voxels per axis)")
    check_geometry(path, image.GetDirection())
    return image


def read_image(path: Path, series_uid: str | None = None, files: list[str] | None = None) -> sitk.Image:
    """Read a 3D scalar image (file or DICOM folder); one-line InputError when it can't be.

    A DICOM folder is read as its one series, ``series_uid``, or the given ``files`` of it.
    """
    path = check_input_path(path, folders=True)
    try:
        if path.is_dir():
            reader = sitk.ImageSeriesReader()
            reader.SetFileNames(files or dicom_series_files(path, series_uid))
            image = reader.Execute()
        else:
            check_complete(path)
            image = read_nifti_gz(path)  # ITK's grid, voxels inflated about twice as fast
            if image is None:
                image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unreadable"
        raise InputError(f"{path}: cannot read image ({first[:160]})") from None
    return _check_3d(image, path)


def read_geometry(path: Path) -> ImageGeometry:
    """The image's grid from its header only (cheap); a DICOM folder is read whole."""
    path = check_input_path(path, folders=True)
    if path.is_dir():
        return ImageGeometry.of(read_image(path))
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        raise InputError(f"{path}: cannot read image") from None
    if reader.GetDimension() != 3 or reader.GetNumberOfComponents() != 1:
        raise InputError(f"{path}: expected a 3D scalar image, got {reader.GetDimension()}D with "
                         f"{reader.GetNumberOfComponents()} component(s)")
    if min(reader.GetSize()) < MIN_SIZE:
        raise InputError(f"{path}: image of size {reader.GetSize()} is not a 3D volume "
                         f"(at least {MIN_SIZE} voxels per axis)")
    check_geometry(path, reader.GetDirection())
    return ImageGeometry.of(reader)
