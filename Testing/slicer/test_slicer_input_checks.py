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
