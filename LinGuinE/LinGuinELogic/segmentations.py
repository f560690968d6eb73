"""Tracking masks -> segmentation nodes, and edited segments -> masks again.

One segmentation node per volume, on that volume's own grid (reference image geometry from the
volume); one segment per lesion with the lesion's name, colour and the tags that tie the
timepoints together. Masks arrive cropped (``MaskCrop``) and are written as an oriented image
whose extent is the crop box, so a small lesion never costs a full-size labelmap.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import slicer
import vtk
from vtk.util import numpy_support

from LinGuinELib.geometry import lps_to_ras
from LinGuinELib.propagation.result import LesionScanResult, MaskCrop

from .prompts import segment_mask_zyx
from .scene import (
    LESION_ID_TAG,
    POINT_TAG,
    STATUS_TAG,
    TRACKING_ID_TAG,
    get_tag,
    place_in_study_of,
)


def create_segmentation_node(scene: Any, volume: Any, name: str) -> Any:
    """An empty segmentation node on ``volume``'s grid, beside it in the subject hierarchy."""
    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", scene.GenerateUniqueName(name))
    node.CreateDefaultDisplayNodes()
    # Under the volume's transform first: the reference geometry is then taken in the same
    # (untransformed) frame as the volume's voxels, instead of having the transform baked in.
    if volume.GetTransformNodeID():
        node.SetAndObserveTransformNodeID(volume.GetTransformNodeID())
    node.SetReferenceImageGeometryParameterFromVolumeNode(volume)
    if volume.GetScene() is scene:
        place_in_study_of(scene, node, volume)
    return node


def _ijk_to_ras(volume: Any) -> vtk.vtkMatrix4x4:
    matrix = vtk.vtkMatrix4x4()
    volume.GetIJKToRASMatrix(matrix)
    return matrix


def crop_to_oriented_image(crop: MaskCrop, volume: Any) -> Any:
    """A binary vtkOrientedImageData covering just the crop box, in the volume's IJK frame."""
    image = slicer.vtkOrientedImageData()
    z0, y0, x0 = crop.offset_zyx
    nz, ny, nx = crop.array.shape
    image.SetExtent(x0, x0 + nx - 1, y0, y0 + ny - 1, z0, z0 + nz - 1)
    image.SetImageToWorldMatrix(_ijk_to_ras(volume))
    scalars = numpy_support.numpy_to_vtk(
        np.ascontiguousarray(crop.array, dtype=np.uint8).ravel(), deep=True,
        array_type=vtk.VTK_UNSIGNED_CHAR,
    )
    image.GetPointData().SetScalars(scalars)
    return image


def add_lesion_segment(
    node: Any,
    volume: Any,
    segment_id: str,
    name: str,
    color: tuple[float, float, float],
    result: LesionScanResult,
    tracking_id: str,
) -> str:
    """Add one lesion's mask on this volume as a segment (empty when not found) and tag it."""
    segmentation = node.GetSegmentation()
    if segmentation.GetSegment(segment_id) is not None:
        segmentation.RemoveSegment(segment_id)
    segment = slicer.vtkSegment()
    segment.SetName(name)
    segment.SetColor(*color)
    if not result.mask.empty:
        segment.AddRepresentation(
            slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName(),
            crop_to_oriented_image(result.mask, volume),
        )
    segmentation.AddSegment(segment, segment_id)
    segment = segmentation.GetSegment(segment_id)
    segment.SetTag(TRACKING_ID_TAG, tracking_id)
    segment.SetTag(LESION_ID_TAG, result.lesion_id)
    segment.SetTag(STATUS_TAG, result.status)
    if result.propagated_point_lps is not None:
        ras = lps_to_ras(np.asarray(result.propagated_point_lps).reshape(3))
        segment.SetTag(POINT_TAG, " ".join(f"{v:.3f}" for v in ras))
    return segment_id


def find_segment(node: Any, tracking_id: str) -> str | None:
    """The segment ID carrying ``tracking_id`` (names may have been edited; the tag stays)."""
    segmentation = node.GetSegmentation()
    for i in range(segmentation.GetNumberOfSegments()):
        segment_id = segmentation.GetNthSegmentID(i)
        if get_tag(segmentation.GetSegment(segment_id), TRACKING_ID_TAG) == tracking_id:
            return segment_id
    return None


def edited_mask(scene: Any, node: Any, segment_id: str | None, volume: Any) -> MaskCrop:
    """The segment's current content on the volume's grid (empty if the segment is gone)."""
    dims = volume.GetImageData().GetDimensions()
    shape = (dims[2], dims[1], dims[0])
    if segment_id is None:
        return MaskCrop(shape)
    segment = node.GetSegmentation().GetSegment(segment_id)
    if segment is None or _is_empty(node, segment_id):
        return MaskCrop(shape)
    return MaskCrop.from_full(segment_mask_zyx(scene, node, segment_id, volume))


def _is_empty(node: Any, segment_id: str) -> bool:
    image = slicer.vtkOrientedImageData()
    node.GetBinaryLabelmapRepresentation(segment_id, image)
    extent = image.GetExtent()
    return extent[0] > extent[1] or extent[2] > extent[3] or extent[4] > extent[5]


def segment_status(node: Any, segment_id: str | None) -> str | None:
    if segment_id is None:
        return None
    return get_tag(node.GetSegmentation().GetSegment(segment_id), STATUS_TAG)


def segment_point_lps(node: Any, segment_id: str | None) -> np.ndarray | None:
    if segment_id is None:
        return None
    text = get_tag(node.GetSegmentation().GetSegment(segment_id), POINT_TAG)
    if not text:
        return None
    return lps_to_ras(np.array([float(v) for v in text.split()]))
