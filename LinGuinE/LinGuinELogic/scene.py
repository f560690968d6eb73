"""Where the MRML scene comes from, and small MRML helpers shared by the adapters.

Inside the Slicer application ``slicer.mrmlScene`` exists and module logics are registered by the
application. Headless (``pip install slicer-core``) there is no application: ``headless_scene``
builds a scene and registers the module logics that segmentations, markups, tables and scene
bundles need, so the same adapters run in tests and scripts.
"""

from __future__ import annotations

import logging
import weakref
from typing import Any

import slicer
import vtk

log = logging.getLogger(__name__)

TAG_PREFIX = "LinGuinE."
TRACKING_ID_TAG = "LinGuinE.TrackingID"
LESION_ID_TAG = "LinGuinE.LesionID"
STATUS_TAG = "LinGuinE.Status"
POINT_TAG = "LinGuinE.PropagatedPointRAS"
TIMEPOINT_ATTRIBUTE = "LinGuinE.Timepoint"
# On a point list: "<prefix>.<control point ID>" = index of the sequence item shown when the point
# was placed on a sequence's proxy volume (the proxy alone cannot say which item it showed).
SEQUENCE_ITEM_ATTRIBUTE = "LinGuinE.SequenceItem"

# Module logics a headless scene needs, by the name Slicer registers them under.
_HEADLESS_LOGICS = (
    ("Colors", "vtkSlicerColorLogic"),
    ("Volumes", "vtkSlicerVolumesLogic"),
    ("Segmentations", "vtkSlicerSegmentationsModuleLogic"),
    ("Markups", "vtkSlicerMarkupsLogic"),
    ("SubjectHierarchy", "vtkSlicerSubjectHierarchyModuleLogic"),
    ("Tables", "vtkSlicerTablesLogic"),
    ("Plots", "vtkSlicerPlotsLogic"),
    ("Sequences", "vtkSlicerSequencesLogic"),
)

# A headless scene's logics (application logic first), kept while the scene's Python object lives.
# Weak keys, not a list that only grows: the logics hold C++ references to their scene, so a list
# kept every scene of a process (one per test) alive, and a DeleteEvent observer on the scene never
# fires while they are held. Dropping the last Python reference to the scene drops its logics and
# with them the scene.
_HEADLESS_LOGICS_OF: weakref.WeakKeyDictionary[Any, list[Any]] = weakref.WeakKeyDictionary()


def in_application() -> bool:
    """True inside the Slicer application (it has ``slicer.app``)."""
    return hasattr(slicer, "app")


def headless_scene() -> vtk.vtkObject:
    """A vtkMRMLScene with an application logic and the module logics the adapters need.

    Also sets ``slicer.mrmlScene`` when it is missing, so ``slicer.util`` helpers work.
    """
    scene = slicer.vtkMRMLScene()
    app_logic = slicer.vtkSlicerApplicationLogic()
    app_logic.SetMRMLScene(scene)
    keep = [app_logic]
    for name, class_name in _HEADLESS_LOGICS:
        cls = getattr(slicer, class_name, None)
        if cls is None:
            log.debug("slicer-core lacks %s", class_name)
            continue
        logic = cls()
        logic.SetMRMLApplicationLogic(app_logic)
        logic.SetMRMLScene(scene)
        app_logic.SetModuleLogic(name, logic)
        keep.append(logic)
    _HEADLESS_LOGICS_OF[scene] = keep
    if getattr(slicer, "mrmlScene", None) is None:
        slicer.mrmlScene = scene
    return scene


def application_logic(scene: Any) -> Any:
    """The application logic attached to ``scene`` (Slicer's for its own scene, else the headless one)."""
    if in_application() and scene is slicer.mrmlScene:
        return slicer.app.applicationLogic()
    keep = _HEADLESS_LOGICS_OF.get(scene)
    return keep[0] if keep else None


def default_scene() -> Any:
    """``slicer.mrmlScene`` when set, else a new headless scene."""
    scene = getattr(slicer, "mrmlScene", None)
    return scene if scene is not None else headless_scene()


def get_tag(segment: Any, name: str) -> str | None:
    value = vtk.reference("")
    return str(value) if segment.GetTag(name, value) else None


def place_in_study_of(scene: Any, node: Any, like_node: Any) -> None:
    """Put ``node`` under the same subject-hierarchy parent (patient/study) as ``like_node``."""
    sh = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
    if sh is None:
        return
    like_item = sh.GetItemByDataNode(like_node)
    if not like_item:
        return
    parent = sh.GetItemParent(like_item)
    if not parent or parent == sh.GetSceneItemID():
        return
    item = sh.GetItemByDataNode(node)
    if item:
        sh.SetItemParent(item, parent)
    else:  # headless: no subject hierarchy plugins create items for new nodes
        sh.CreateItem(parent, node)


def study_attribute(scene: Any, node: Any, attribute: str) -> str | None:
    """An attribute of the node's subject-hierarchy ancestors (e.g. DICOM.StudyDate), if any."""
    sh = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
    if sh is None:
        return None
    item = sh.GetItemByDataNode(node)
    while item and item != sh.GetSceneItemID():
        value = sh.GetItemAttribute(item, attribute)
        if value:
            return value
        item = sh.GetItemParent(item)
    return None


def node_ids(scene: Any) -> set:
    """IDs of every node in the scene now (to undo what a failed step added)."""
    return {scene.GetNthNode(i).GetID() for i in range(scene.GetNumberOfNodes())}


def remove_nodes_added_since(scene: Any, before: set) -> None:
    """Remove the nodes added after ``node_ids`` returned ``before`` (newest first)."""
    added = [scene.GetNthNode(i) for i in range(scene.GetNumberOfNodes())]
    for node in reversed([n for n in added if n.GetID() not in before]):
        if node.GetScene() is scene:  # removing a node may already have removed its display nodes
            scene.RemoveNode(node)
