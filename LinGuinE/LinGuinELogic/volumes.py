"""Volume nodes <-> SimpleITK images, and each volume's timepoint.

The conversion happens on the main thread (only it may touch MRML); the images then go to the
worker. MRML geometry is RAS; SimpleITK's is LPS: this module is where the flip happens.
``write_volume_nrrd`` hands a volume to a child process in one pass over its voxels.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
import slicer
import vtk
from vtk.util import numpy_support

from LinGuinELib.errors import InputError
from LinGuinELib.geometry import RAS_LPS_MATRIX, ImageGeometry

from .scene import TIMEPOINT_ATTRIBUTE, study_attribute

_DATE_PATTERNS = (
    re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)"),
    re.compile(r"(?<!\d)(\d{4})_(\d{2})_(\d{2})(?!\d)"),
    re.compile(r"(?<!\d)(\d{4})(\d{2})(\d{2})(?!\d)"),
)
# DICOM tags, group,element as the DICOM database expects them.
ACQUISITION_DATE_TAG = "0008,0022"
STUDY_DATE_TAG = "0008,0020"


def world_ijk_to_ras(node: Any) -> np.ndarray:
    """4x4 IJK -> world RAS of a volume, including a linear parent transform."""
    ijk_to_ras = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(ijk_to_ras)
    matrix = slicer.util.arrayFromVTKMatrix(ijk_to_ras)
    parent = node.GetParentTransformNode()
    if parent is not None:
        if not parent.IsTransformToWorldLinear():
            raise InputError(
                f"volume '{node.GetName()}' is under a non-linear transform: harden it first"
            )
        to_world = vtk.vtkMatrix4x4()
        parent.GetMatrixTransformToWorld(to_world)
        matrix = slicer.util.arrayFromVTKMatrix(to_world) @ matrix
    return matrix


def _voxels(node: Any) -> np.ndarray:
    """The volume's voxels, x fastest, as a view of VTK's buffer (main thread only)."""
    image = node.GetImageData()
    if image is None or image.GetPointData().GetScalars() is None:
        raise InputError(f"volume '{node.GetName()}' has no voxels")
    if image.GetNumberOfScalarComponents() != 1:
        raise InputError(f"volume '{node.GetName()}' is not a scalar volume")
    return numpy_support.vtk_to_numpy(image.GetPointData().GetScalars())


def volume_view_zyx(node: Any) -> np.ndarray:
    """The voxels as a (z, y, x) view of VTK's buffer (main thread only; nothing is copied)."""
    flat = _voxels(node)  # refuses a volume without scalar voxels
    dims = node.GetImageData().GetDimensions()
    return flat.reshape(dims[2], dims[1], dims[0])


def volume_array_zyx(node: Any) -> np.ndarray:
    """The voxels as a (z, y, x) numpy array (a copy, safe to hand to another thread)."""
    return volume_view_zyx(node).copy()


# numpy's voxel types as NRRD names them
_NRRD_TYPES = {"int8": "signed char", "uint8": "uchar", "int16": "short", "uint16": "ushort", "int32": "int",
               "uint32": "uint", "int64": "longlong", "uint64": "ulonglong", "float32": "float", "float64": "double"}


def write_volume_nrrd(node: Any, path: Path) -> None:
    """The volume for a child process: a detached NRRD header ``path`` (.nhdr: world LPS grid, as
    ``volume_to_sitk`` gives it) beside the raw voxels written straight from VTK's buffer, so the
    main thread makes one pass over them (no copy into an image, no encoder)."""
    flat = _voxels(node)
    kind = _NRRD_TYPES.get(flat.dtype.name)
    if kind is None:
        raise InputError(f"volume '{node.GetName()}' has voxels of type {flat.dtype.name}, not a scalar CT type")
    grid = volume_geometry(node)
    axes = np.array(grid.direction).reshape(3, 3) * np.array(grid.spacing)  # column j: axis j, spacing long

    def vector(values: Any) -> str:
        return "(" + ",".join(repr(float(v)) for v in values) + ")"

    raw = Path(path).with_suffix(".raw")
    flat.tofile(str(raw))
    lines = ["NRRD0004", f"type: {kind}", "dimension: 3", "space: left-posterior-superior",
             "sizes: " + " ".join(str(n) for n in grid.size),
             "space directions: " + " ".join(vector(axes[:, j]) for j in range(3)),
             "kinds: domain domain domain", f"endian: {sys.byteorder}", "encoding: raw",
             f"space origin: {vector(grid.origin)}", f"data file: {raw.name}"]
    Path(path).write_text("\n".join(lines) + "\n")


def geometry_from_matrix(image: sitk.Image, ijk_to_ras: np.ndarray) -> sitk.Image:
    """Set origin, spacing and direction (LPS) of ``image`` from a 4x4 IJK -> RAS matrix."""
    linear = RAS_LPS_MATRIX @ ijk_to_ras[:3, :3]
    spacing = np.linalg.norm(linear, axis=0)
    if np.any(spacing <= 0):
        raise InputError("volume geometry has a zero spacing")
    image.SetSpacing(tuple(float(s) for s in spacing))
    image.SetDirection(tuple(float(v) for v in (linear / spacing).ravel()))
    image.SetOrigin(tuple(float(v) for v in RAS_LPS_MATRIX @ ijk_to_ras[:3, 3]))
    return image


def load_volume_file(scene: Any, path: str, name: str) -> Any:
    """Read an image file into a new scalar volume node with Slicer's own reader (no app needed)."""
    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name)
    storage = scene.AddNewNodeByClass("vtkMRMLVolumeArchetypeStorageNode")
    storage.SetFileName(str(path))
    if not storage.ReadData(node):
        scene.RemoveNode(storage)
        scene.RemoveNode(node)
        raise InputError(f"cannot read a volume from '{path}'")
    node.SetAndObserveStorageNodeID(storage.GetID())
    node.CreateDefaultDisplayNodes()
    return node


def volume_to_sitk(node: Any) -> sitk.Image:
    """A scalar volume node as a SimpleITK image in LPS (world geometry)."""
    image = sitk.GetImageFromArray(volume_array_zyx(node))
    return geometry_from_matrix(image, world_ijk_to_ras(node))


def volume_at(volumes: list[Any], position_ras: Any) -> Any | None:
    """The first of ``volumes`` whose voxel grid holds a world RAS point (a control point's world
    position), parent transforms included: the slice views' volume a point was placed on."""
    for volume in volumes:
        image = volume.GetImageData()
        if image is None:
            continue
        try:
            ras_to_ijk = np.linalg.inv(world_ijk_to_ras(volume))
        except InputError:  # under a non-linear transform: the logic places the point itself
            continue
        ijk = ras_to_ijk @ np.array([*position_ras, 1.0])
        dims = image.GetDimensions()
        if all(-0.5 <= ijk[a] <= dims[a] - 0.5 for a in range(3)):
            return volume
    return None


def volume_geometry(node: Any) -> ImageGeometry:
    """The volume's voxel grid (LPS, world) without its voxels."""
    image = node.GetImageData()
    if image is None:
        raise InputError(f"volume '{node.GetName()}' has no voxels")
    ijk_to_ras = world_ijk_to_ras(node)
    linear = RAS_LPS_MATRIX @ ijk_to_ras[:3, :3]
    spacing = np.linalg.norm(linear, axis=0)
    return ImageGeometry(
        tuple(int(d) for d in image.GetDimensions()),
        tuple(float(s) for s in spacing),
        tuple(float(v) for v in RAS_LPS_MATRIX @ ijk_to_ras[:3, 3]),
        tuple(float(v) for v in (linear / spacing).ravel()),
    )


@dataclass
class Timepoint:
    """When a volume was acquired: a date, else a label; and where that came from."""

    date: dt.date | None
    label: str | None
    source: str  # "user", "dicom", "name" or "sequence"

    @property
    def text(self) -> str:
        return self.date.isoformat() if self.date else (self.label or "")


def parse_date(text: str | None) -> dt.date | None:
    """A date found in text (2020-01-31, 2020_01_31 or DICOM's 20200131), else None."""
    if not text:
        return None
    for pattern in _DATE_PATTERNS:
        for match in pattern.finditer(text):
            try:
                return dt.date(int(match[1]), int(match[2]), int(match[3]))
            except ValueError:
                continue
    return None


def parse_timepoint(text: str, source: str) -> Timepoint:
    date = parse_date(text)
    return Timepoint(date, None if date else text.strip(), source)


def _dicom_date(scene: Any, node: Any) -> dt.date | None:
    """AcquisitionDate, else StudyDate, from the DICOM database or the subject hierarchy."""
    uids = (node.GetAttribute("DICOM.instanceUIDs") or "").split()
    database = getattr(slicer, "dicomDatabase", None)
    if uids and database is not None:
        try:
            path = database.fileForInstance(uids[0])
            for tag in (ACQUISITION_DATE_TAG, STUDY_DATE_TAG):
                date = parse_date(database.fileValue(path, tag)) if path else None
                if date:
                    return date
        except Exception:  # noqa: BLE001 - a broken database must not stop the listing
            pass
    return parse_date(study_attribute(scene, node, "DICOM.StudyDate"))


def volume_timepoint(scene: Any, node: Any) -> Timepoint:
    """The user's timepoint if set, else the DICOM date, else whatever the name says."""
    user = node.GetAttribute(TIMEPOINT_ATTRIBUTE)
    if user:
        return parse_timepoint(user, "user")
    date = _dicom_date(scene, node)
    if date:
        return Timepoint(date, None, "dicom")
    return parse_timepoint(node.GetName() or "", "name")


def set_timepoint(node: Any, text: str) -> None:
    """Store the user's timepoint on the node (it is saved with the scene)."""
    node.SetAttribute(TIMEPOINT_ATTRIBUTE, text.strip() or None)


def is_study_volume(node: Any) -> bool:
    """Scalar volumes qualify; label maps and vector volumes do not."""
    return (
        node.IsA("vtkMRMLScalarVolumeNode")
        and not node.IsA("vtkMRMLLabelMapVolumeNode")
        and not node.GetHideFromEditors()
    )


def scene_volumes(scene: Any) -> list[Any]:
    nodes = scene.GetNodesByClass("vtkMRMLScalarVolumeNode")
    found = [nodes.GetItemAsObject(i) for i in range(nodes.GetNumberOfItems())]
    return [n for n in found if is_study_volume(n)]


def sequence_items(sequence: Any) -> list[tuple[Any, Timepoint]]:
    """Volumes stored in a sequence node, with their index value as the timepoint."""
    items = []
    for i in range(sequence.GetNumberOfDataNodes()):
        node = sequence.GetNthDataNode(i)
        if node is None or not node.IsA("vtkMRMLScalarVolumeNode"):
            raise InputError(f"sequence '{sequence.GetName()}' item {i} is not a scalar volume")
        value = sequence.GetNthIndexValue(i)
        date = parse_date(value)
        label = f"{sequence.GetIndexName()} {value}{sequence.GetIndexUnit()}".strip()
        items.append((node, Timepoint(date, None if date else label, "sequence")))
    return items
