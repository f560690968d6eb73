"""The study as Slicer holds it: volume nodes (or a sequence's items), each with a timepoint.

``study_volumes`` turns what the user selected into ``StudyVolume`` records in time order;
``build_scans`` converts them to the library's ``Scan`` objects, with in-memory images when the
engine runs in this process (main thread only). Scan ids come from volume names, made file-safe
and unique, because they name the exported files and the table rows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from LinGuinELib.errors import InputError
from LinGuinELib.study.model import Scan
from LinGuinELib.study.timepoints import sort_scans

from .prompts import ScanInput, safe_id
from .volumes import Timepoint, scene_volumes, sequence_items, volume_geometry, volume_timepoint, volume_to_sitk

log = logging.getLogger(__name__)


@dataclass
class StudyVolume:
    """One scan of the study: its volume node, and where it lives in the scene."""

    node: Any  # vtkMRMLScalarVolumeNode (in the scene, or a sequence's data node)
    timepoint: Timepoint
    scan_id: str = ""
    sequence: Any = None  # the vtkMRMLSequenceNode holding ``node``, if any
    item: int | None = None  # index of ``node`` in ``sequence``
    proxy_id: str = ""  # the sequence browser's proxy node that shows the sequence's items
    shown: bool = False  # the browser shows this item now

    @property
    def in_scene(self) -> bool:
        return self.sequence is None


def shown_item(scene: Any, sequence: Any) -> tuple[int, str] | None:
    """(item index, proxy node ID) a sequence browser currently shows, if any.

    A point placed on a sequence in Slicer is associated with the proxy node, which stands for
    the item shown at that moment.
    """
    browsers = scene.GetNodesByClass("vtkMRMLSequenceBrowserNode")
    for i in range(browsers.GetNumberOfItems()):
        browser = browsers.GetItemAsObject(i)
        if browser.IsSynchronizedSequenceNodeID(sequence.GetID(), True):
            proxy = browser.GetProxyNode(sequence)
            if proxy is not None:
                return browser.GetSelectedItemNumber(), proxy.GetID()
    return None


def _assign_ids(volumes: list[StudyVolume]) -> None:
    taken: set[str] = set()
    for volume in volumes:
        volume.scan_id = safe_id(volume.node.GetName() or "scan", taken)


def _scan_stub(volume: StudyVolume) -> Scan:
    return Scan(id=volume.scan_id, date=volume.timepoint.date, timepoint=volume.timepoint.label)


def order_volumes(volumes: list[StudyVolume]) -> list[StudyVolume]:
    """Time order by date or label; names that say nothing about time keep the given order.

    A label the user typed that cannot be ordered is an error (it names the label), so a typo
    never reorders the study silently.
    """
    by_id = {v.scan_id: v for v in volumes}
    try:
        return [by_id[s.id] for s in sort_scans([_scan_stub(v) for v in volumes])]
    except InputError:
        if any(v.timepoint.source == "user" for v in volumes):
            raise
        log.warning("volume names give no usable time order: keeping the given order")
        return list(volumes)


def study_volumes(scene: Any, nodes: list[Any], sort: bool = True) -> list[StudyVolume]:
    """Records for volume nodes and/or sequence nodes (a sequence keeps its own order)."""
    volumes: list[StudyVolume] = []
    has_sequence = False
    for node in nodes:
        if node is None:
            raise InputError("volumeNodes contains None")
        if node.IsA("vtkMRMLSequenceNode"):
            has_sequence = True
            shown = shown_item(scene, node)
            for k, (item, timepoint) in enumerate(sequence_items(node)):
                volumes.append(StudyVolume(item, timepoint, sequence=node, item=k,
                                           proxy_id=shown[1] if shown else "",
                                           shown=bool(shown) and shown[0] == k))
        elif node.IsA("vtkMRMLScalarVolumeNode") and not node.IsA("vtkMRMLLabelMapVolumeNode"):
            volumes.append(StudyVolume(node, volume_timepoint(scene, node)))
        else:
            raise InputError(f"'{node.GetName()}' is neither a scalar volume nor a sequence of them")
    if len(volumes) < 2:
        raise InputError(f"a study needs at least 2 volumes, got {len(volumes)}")
    _assign_ids(volumes)
    if sort and not has_sequence:
        volumes = order_volumes(volumes)
    return volumes


def list_scene_volumes(scene: Any) -> list[StudyVolume]:
    """Every study-worthy volume of the scene, in time order where that can be decided."""
    volumes = [StudyVolume(n, volume_timepoint(scene, n)) for n in scene_volumes(scene)]
    _assign_ids(volumes)
    try:
        return order_volumes(volumes)
    except InputError as exc:  # a bad label the user typed: list as is, Apply will say why
        log.warning("%s", exc)
        return volumes


def build_scans(volumes: list[StudyVolume], voxels: bool = True) -> tuple[list[Scan], list[ScanInput]]:
    """Library scans, and the lookup the prompt adapters use. With ``voxels`` the scans hold
    in-memory LPS images (two copies of every volume); without, only their grids (for a child
    process, which gets the voxels as files: ``process.write_child_study``)."""
    scans, inputs = [], []
    for volume in volumes:
        scan = _scan_stub(volume)
        scan.image = volume_to_sitk(volume.node) if voxels else None
        grid = scan.image if voxels else volume_geometry(volume.node)
        scans.append(scan)
        inputs.append(ScanInput(volume.scan_id, volume.node, grid, volume.proxy_id, volume.item, volume.shown))
    return scans, inputs
