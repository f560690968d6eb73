"""The module's in-process path (``logic.track`` without a child process) checks the scans as the
CLI and the panel's child do (slicer-core's real MRML): a volume that is not CT in Hounsfield
units, or the same image given twice, also stored in another voxel type or flipped, is one
``InputError`` naming the volumes, and nothing is added to the scene. Before, each was tracked."""

from __future__ import annotations

import sys

import pytest

if not hasattr(sys.modules.get("slicer"), "vtkMRMLScene"):  # conftest imported it if it could
    pytest.skip("slicer-core is not installed (bash scripts/install_slicer_core.sh)", allow_module_level=True)

import numpy as np  # noqa: E402
import vtk  # noqa: E402
from vtk.util import numpy_support  # noqa: E402

from LinGuinELib.errors import InputError  # noqa: E402

FAST = {"registration": "slicer-test-known-shift", "segmentation": "slicer-test-bright"}


def _counts(scene) -> dict:
    classes = ("vtkMRMLSegmentationNode", "vtkMRMLTableNode", "vtkMRMLPlotChartNode")
    return {c: scene.GetNumberOfNodesByClass(c) for c in classes} | {"all": scene.GetNumberOfNodes()}


def _voxels_of(image) -> np.ndarray:
    """The image data's scalars, (k, j, i), writable in place."""
    return numpy_support.vtk_to_numpy(image.GetPointData().GetScalars()).reshape(image.GetDimensions()[::-1])


def _voxels(node) -> np.ndarray:
    return _voxels_of(node.GetImageData())


def _stored_flipped_as_float(scene, node, name: str):
    """The same scan re-exported: float voxels, its first (i) axis stored the other way round."""
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    ijk_to_ras = np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])
    last_i = node.GetImageData().GetDimensions()[0] - 1
    ijk_to_ras[:3, 3] += ijk_to_ras[:3, 0] * last_i  # voxel i of the copy is voxel last_i - i
    ijk_to_ras[:3, 0] *= -1.0
    copy = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name)
    for r in range(4):
        for c in range(4):
            matrix.SetElement(r, c, ijk_to_ras[r, c])
    copy.SetIJKToRASMatrix(matrix)
    image = vtk.vtkImageData()
    image.SetDimensions(*node.GetImageData().GetDimensions())
    image.AllocateScalars(vtk.VTK_FLOAT, 1)
    _voxels_of(image)[:] = _voxels(node)[:, :, ::-1]
    copy.SetAndObserveImageData(image)
    return copy


def _refused(study, volumes, *words) -> None:
    from LinGuinELogic import LinGuinELogic

    before = _counts(study.scene)
    with pytest.raises(InputError) as caught:
        LinGuinELogic(study.scene).track(volumeNodes=volumes, promptNode=study.points, **FAST)
    message = str(caught.value)
    assert "\n" not in message and "None" not in message, message  # one line; no path for in-memory scans
    for word in words:
        assert word in message, message
    assert _counts(study.scene) == before


def test_a_volume_that_is_not_ct_in_hu_is_refused_in_process(ball_study):
    mr = _voxels(ball_study.volumes[2])
    mr[:] = mr * 2 + 2000
    ball_study.volumes[2].GetImageData().Modified()
    _refused(ball_study, ball_study.volumes, "'week_16'", "not a CT in Hounsfield units")


def test_identical_voxels_in_two_volumes_are_refused_in_process(ball_study):
    _voxels(ball_study.volumes[2])[:] = _voxels(ball_study.volumes[1])
    ball_study.volumes[2].GetImageData().Modified()
    _refused(ball_study, ball_study.volumes, "'week_8'", "'week_16'", "identical voxels")


def test_one_volume_selected_twice_is_refused_in_process(ball_study):
    volumes = ball_study.volumes
    _refused(ball_study, [volumes[0], volumes[1], volumes[1]], "'week_8'", "identical voxels")


def test_the_same_scan_stored_flipped_in_float_is_refused_in_process(ball_study):
    volumes = ball_study.volumes
    copy = _stored_flipped_as_float(ball_study.scene, volumes[1], "week_20")
    from LinGuinELogic.volumes import volume_to_sitk

    a, b = volume_to_sitk(volumes[1]), volume_to_sitk(copy)
    assert a.GetDirection() != b.GetDirection() and a.GetPixelID() != b.GetPixelID()  # not the same arrays
    _refused(ball_study, [volumes[0], volumes[1], copy], "'week_8'", "'week_20'", "identical voxels")


def test_the_checked_study_still_tracks_in_process(ball_study):
    """The checks refuse nothing in a real study (three volumes, one of them flipped)."""
    from LinGuinELogic import LinGuinELogic

    output = LinGuinELogic(ball_study.scene).track(volumeNodes=ball_study.volumes, promptNode=ball_study.points,
                                                   **FAST)
    assert len(output.segmentationNodes) == 3


@pytest.mark.parametrize("case", ["mr_values", "same_voxels_flipped"])
def test_the_panels_study_worker_refuses_them_too(ball_study, tmp_path, case):
    """Apply's path (the study worker kept open between runs): the run fails naming why, and the
    scene stays as it was. The flipped float copy passed there before too (the child's check)."""
    from LinGuinELogic import LinGuinELogic, TrackingFailed
    from test_child_process import PLUGINS, _environment, _wait

    from LinGuinELib.config import TrackingConfig

    volumes = list(ball_study.volumes)
    if case == "mr_values":
        mr = _voxels(volumes[2])
        mr[:] = mr * 2 + 2000
        volumes[2].GetImageData().Modified()
    else:
        volumes[2] = _stored_flipped_as_float(ball_study.scene, volumes[1], "week_20")
    before = _counts(ball_study.scene)
    logic = LinGuinELogic(ball_study.scene)
    prepared = logic.prepare(volumes, ball_study.points)
    job = logic.startTracking(prepared, TrackingConfig(**FAST), _environment(tmp_path), PLUGINS, keepStudyOpen=True)
    try:
        _wait(job)
        why = "not a CT in Hounsfield units" if case == "mr_values" else "identical voxels"
        with pytest.raises(TrackingFailed, match=why):
            logic.finishTracking(job)
    finally:
        logic.closeStudyWorker()
    assert _counts(ball_study.scene) == before



def _air_block(study, k: int) -> list[float]:
    """Volume ``k``'s background lifted to lung-like -700 HU (not air), air outside the body
    (-1000 HU) in one corner; the RAS of that corner's centre. Only the right voxels read as air."""
    node = study.volumes[k]
    voxels = _voxels(node)
    voxels[voxels < -500] = -700
    voxels[:5, :7, :7] = -1000
    node.GetImageData().Modified()
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    return list(matrix.MultiplyPoint((3.0, 3.0, 2.0, 1.0))[:3])


def _user_state(study) -> tuple:
    """What the user owns: the point list's points and every volume's voxels."""
    points = study.points
    placed = []
    for i in range(points.GetNumberOfControlPoints()):
        ras = [0.0, 0.0, 0.0]
        points.GetNthControlPointPositionWorld(i, ras)
        placed.append((points.GetNthControlPointLabel(i), tuple(ras), points.GetNthControlPointAssociatedNodeID(i)))
    return tuple(placed), tuple(_voxels(v).tobytes() for v in study.volumes)


@pytest.mark.parametrize("where", ["air", "air_on_the_flipped_volume", "off_the_volume"])
@pytest.mark.parametrize("child", [False, True], ids=["in_process", "child_process"])
def test_a_click_in_air_or_off_its_volume_is_refused_before_any_work(ball_study, where, child):
    """The CLI's prompt checks (``LinGuinELib.prompt.checks``), with its one line, in both Slicer
    paths, the scene and the user's nodes untouched. Before: the in-process engine registered, then
    said "nothing could be segmented"; the child process started, registered, and failed with two
    lines ("exit status 2" first)."""
    from LinGuinELogic import LinGuinELogic

    k = 1 if where == "air_on_the_flipped_volume" else 0
    ras = [500.0, 0.0, 0.0] if where == "off_the_volume" else _air_block(ball_study, k)
    index = ball_study.points.AddControlPoint(*ras, "Missed")
    ball_study.points.SetNthControlPointAssociatedNodeID(index, ball_study.volumes[k].GetID())
    before, owned = _counts(ball_study.scene), _user_state(ball_study)
    with pytest.raises(InputError) as caught:  # an InputError of this process: no child was started
        LinGuinELogic(ball_study.scene).track(volumeNodes=ball_study.volumes, promptNode=ball_study.points,
                                              childProcess=child, **FAST)
    scan = ball_study.names[k]
    expected = (f"lesion 'Missed': point RAS [500.0, 0.0, 0.0] is outside scan '{scan}'" if where == "off_the_volume"
                else f"lesion 'Missed': its prompt on scan '{scan}' lies in air or aerated lung (median -1000 HU "
                     "around it); click inside the lesion")
    assert str(caught.value) == expected
    assert _counts(ball_study.scene) == before and _user_state(ball_study) == owned


@pytest.mark.parametrize("k", [0, 1], ids=["baseline", "flipped_volume"])
def test_lung_like_voxels_beside_the_air_are_no_reason_to_refuse(ball_study, k):
    """A click on -700 HU beside the air corner of the same volume is not refused (it is not in air)."""
    from LinGuinELogic import LinGuinELogic

    _air_block(ball_study, k)
    centre = np.array(ball_study.volumes[k].GetImageData().GetDimensions()) / 2.0
    matrix = vtk.vtkMatrix4x4()
    ball_study.volumes[k].GetIJKToRASMatrix(matrix)
    ras = list(matrix.MultiplyPoint((*centre, 1.0))[:3])  # the middle of the volume: lung-like, no ball
    index = ball_study.points.AddControlPoint(*ras, "Lung")
    ball_study.points.SetNthControlPointAssociatedNodeID(index, ball_study.volumes[k].GetID())
    prepared = LinGuinELogic(ball_study.scene).prepare(ball_study.volumes, ball_study.points, voxels=True)
    assert [p.name for p in prepared.prompts] == ["Nodule A", "Nodule B", "Lung"]


def test_the_volume_a_point_was_placed_on_counts_its_transform(ball_study):
    """The panel ties a new point to the slice views' background volume that holds it
    (``LinGuinEGui.lesion_panel.backgroundVolumeAt``). Markups give the point's world position; a
    follow-up aligned under a linear transform holds it only with that transform counted. Before,
    each volume's own RAS-to-IJK was used: the point was tied to no volume (or to a wrong one), and
    the logic then guessed the volume from the world grids (refused when several hold the point)."""
    from pathlib import Path

    from LinGuinELogic import LinGuinELogic
    from LinGuinELogic.volumes import volume_at

    scene = ball_study.scene
    baseline, week8 = ball_study.volumes[0], ball_study.volumes[1]
    transform = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "aligned")
    matrix = vtk.vtkMatrix4x4()
    matrix.SetElement(0, 3, 120.0)  # far beyond both grids (60 mm wide): only the transform puts it there
    transform.SetMatrixTransformToParent(matrix)
    week8.SetAndObserveTransformNodeID(transform.GetID())
    centre = ball_study.centres_ras[("Nodule A", "week_8")] + np.array([120.0, 0.0, 0.0])
    points = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "clicked")
    points.AddControlPoint(*centre, "Nodule A")  # the point list is not transformed: world = local
    world = [0.0, 0.0, 0.0]
    points.GetNthControlPointPositionWorld(0, world)

    assert volume_at([baseline, week8], world) is week8
    assert volume_at([baseline], world) is None
    assert volume_at([baseline, week8], ball_study.centres_ras[("Nodule A", "baseline")]) is baseline
    # Tied to it as the panel does, the logic takes the prompt on that volume.
    points.SetNthControlPointAssociatedNodeID(0, week8.GetID())
    prepared = LinGuinELogic(scene).prepare(ball_study.volumes, points)
    assert [p.lesion.scan_id for p in prepared.prompts] == ["week_8"]
    panel = (Path(__file__).resolve().parents[2] / "LinGuinE" / "LinGuinEGui" / "lesion_panel.py").read_text()
    assert "return volume_at(candidates, position)" in panel and "GetRASToIJKMatrix" not in panel

