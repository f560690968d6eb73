"""Lesion prompts from MRML: one markups control point per lesion, or one segment per lesion.

A point belongs to the volume named by its associated node ID when that is one of the inputs,
else to the single input volume whose voxel grid contains it; zero or several is an error,
because guessing the scan would silently track the wrong anatomy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import slicer
import vtk
from vtk.util import numpy_support

from LinGuinELib.errors import InputError
from LinGuinELib.geometry import inside_image, mask_to_image, ras_to_lps
from LinGuinELib.prompt.checks import check_points_inside, check_prompt_voxels
from LinGuinELib.study.model import Lesion

from .scene import SEQUENCE_ITEM_ATTRIBUTE
from .volumes import volume_view_zyx


@dataclass
class ScanInput:
    """One input volume as the engine sees it: its scan id, node and grid."""

    scan_id: str
    node: Any
    image: Any  # its grid: a sitk.Image or an ImageGeometry (only the grid's getters are used)
    proxy_id: str = ""  # sequence items: the browser's proxy node showing them
    item: int | None = None  # sequence items: index in the sequence
    shown: bool = False  # sequence items: the browser shows this one now


@dataclass
class LesionPrompt:
    """A lesion for the engine plus how the scene should show it."""

    lesion: Lesion
    name: str
    color: tuple[float, float, float]


def safe_id(text: str, taken: set[str]) -> str:
    """A file- and tag-safe identifier derived from ``text``, unique among ``taken``."""
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", text.strip()).strip("_") or "lesion"
    candidate, k = base, 2
    while candidate in taken:
        candidate, k = f"{base}_{k}", k + 1
    taken.add(candidate)
    return candidate


def scan_for_point(point_lps: np.ndarray, associated_id: str, scans: list[ScanInput], what: str,
                   item: int | None = None) -> str:
    """The scan id a prompt point lies on (see module docstring).

    A point on a sequence's proxy volume belongs to the item shown when it was placed (``item``),
    else to the item the browser shows now.
    """
    for scan in scans:
        if associated_id and associated_id == scan.node.GetID():
            return scan.scan_id
    proxied = [s for s in scans if associated_id and s.proxy_id == associated_id]
    chosen = [s for s in proxied if (s.item == item if item is not None else s.shown)]
    if len(chosen) == 1:
        return chosen[0].scan_id
    holders = [s.scan_id for s in scans if inside_image(s.image, point_lps)[0]]
    if not holders:
        raise InputError(f"{what} lies outside every input volume")
    if len(holders) > 1:
        raise InputError(
            f"{what} lies inside several volumes ({', '.join(holders)}): "
            "set the control point's associated volume (place it on that volume)"
        )
    return holders[0]


def lesions_from_points(markups: Any, scans: list[ScanInput]) -> list[LesionPrompt]:
    """One lesion per defined control point, named by the point's label."""
    from LinGuinELib.outputs.colors import lesion_color  # outputs needs slicerio (first-use install)

    prompts: list[LesionPrompt] = []
    taken: set[str] = set()
    for i in range(markups.GetNumberOfControlPoints()):
        if markups.GetNthControlPointPositionStatus(i) != markups.PositionDefined:
            continue  # a point still being placed
        label = markups.GetNthControlPointLabel(i) or f"Lesion {i + 1}"
        ras = np.zeros(3)
        markups.GetNthControlPointPositionWorld(i, ras)
        lps = ras_to_lps(ras).reshape(1, 3)
        associated = markups.GetNthControlPointAssociatedNodeID(i) or ""
        item = markups.GetAttribute(f"{SEQUENCE_ITEM_ATTRIBUTE}.{markups.GetNthControlPointID(i)}")
        scan_id = scan_for_point(lps, associated, scans, f"point '{label}'",
                                 int(item) if item and item.isdigit() else None)
        lesion = Lesion(id=safe_id(label, taken), scan_id=scan_id, points_lps=lps)
        prompts.append(LesionPrompt(lesion, label, lesion_color(len(prompts))))
    if not prompts:
        raise InputError(f"prompt '{markups.GetName()}' has no placed points: add a lesion first")
    return prompts


def check_prompts(prompts: list[LesionPrompt], scans: list[ScanInput]) -> None:
    """The library's prompt checks, as the CLI runs them (``LinGuinELib.prompt.checks``): each point
    on its volume's grid and not in air, no prompt on NaN/inf voxels. On the volumes' own voxels
    (main thread, nothing copied), so a run in this process and one in a child are refused alike,
    before anything is computed or written."""
    by_id = {scan.scan_id: scan for scan in scans}
    for prompt in prompts:
        scan = by_id[prompt.lesion.scan_id]
        check_points_inside(prompt.lesion, scan.image)
        check_prompt_voxels(prompt.lesion, scan.image, volume_view_zyx(scan.node))


def _color_table_ids(scene: Any) -> set[str]:
    nodes = scene.GetNodesByClass("vtkMRMLColorTableNode")
    return {nodes.GetItemAsObject(i).GetID() for i in range(nodes.GetNumberOfItems())}


def segment_mask_zyx(scene: Any, segmentation: Any, segment_id: str, volume: Any) -> np.ndarray:
    """A segment as a bool (z, y, x) array on ``volume``'s voxel grid."""
    colors_before = _color_table_ids(scene)
    labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "__LinGuinE_temp__")
    try:
        ids = vtk.vtkStringArray()
        ids.InsertNextValue(segment_id)
        ok = slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(
            segmentation, ids, labelmap, volume
        )
        image = labelmap.GetImageData()
        if not ok or image is None or image.GetPointData().GetScalars() is None:
            raise InputError(f"segment '{segment_id}' could not be exported to '{volume.GetName()}'")
        dims = image.GetDimensions()
        flat = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars())
        return flat.reshape(dims[2], dims[1], dims[0]) > 0
    finally:
        display = labelmap.GetDisplayNode()
        if display is not None:
            scene.RemoveNode(display)
        scene.RemoveNode(labelmap)
        # The export adds a colour table for the temporary labelmap: remove what it added.
        for node_id in _color_table_ids(scene) - colors_before:
            scene.RemoveNode(scene.GetNodeByID(node_id))


def _segmentation_volume_id(segmentation: Any) -> str:
    role = segmentation.GetReferenceImageGeometryReferenceRole()
    node = segmentation.GetNodeReference(role)
    return node.GetID() if node is not None else ""


def lesions_from_segments(
    scene: Any, segmentation: Any, scans: list[ScanInput], segment_ids: list[str] | None = None
) -> list[LesionPrompt]:
    """One lesion per segment (all, or ``segment_ids``), its mask as the prompt."""
    seg = segmentation.GetSegmentation()
    ids = segment_ids or [seg.GetNthSegmentID(i) for i in range(seg.GetNumberOfSegments())]
    prompts: list[LesionPrompt] = []
    taken: set[str] = set()
    for segment_id in ids:
        segment = seg.GetSegment(segment_id)
        if segment is None:
            raise InputError(f"segment '{segment_id}' is not in '{segmentation.GetName()}'")
        name = segment.GetName() or segment_id
        centre = ras_to_lps(np.array(segmentation.GetSegmentCenterRAS(segment_id))).reshape(1, 3)
        scan_id = scan_for_point(
            centre, _segmentation_volume_id(segmentation), scans, f"segment '{name}'"
        )
        scan = next(s for s in scans if s.scan_id == scan_id)
        mask = segment_mask_zyx(scene, segmentation, segment_id, scan.node)
        if not mask.any():
            raise InputError(f"segment '{name}' is empty on volume '{scan.node.GetName()}'")
        lesion = Lesion(
            id=safe_id(name, taken), scan_id=scan_id, mask=mask_to_image(mask, scan.image)
        )
        prompts.append(LesionPrompt(lesion, name, tuple(segment.GetColor())))
    if not prompts:
        raise InputError(f"segmentation '{segmentation.GetName()}' has no segments")
    return prompts
