"""A volume handed to the tracking process as raw voxels beside a detached NRRD header reads back
(SimpleITK) as exactly the image ``volume_to_sitk`` makes in Slicer's process: same voxels and type,
same world LPS grid, a rotated, shifted and parent-transformed volume included."""

from __future__ import annotations

import sys

import numpy as np
import pytest

if not hasattr(sys.modules.get("slicer"), "vtkMRMLScene"):  # conftest imported it if it could
    pytest.skip("slicer-core is not installed (bash scripts/install_slicer_core.sh)", allow_module_level=True)


def _same(path, node) -> None:
    import SimpleITK as sitk
    from LinGuinELogic.volumes import volume_to_sitk

    ours, theirs = sitk.ReadImage(str(path)), volume_to_sitk(node)
    assert ours.GetPixelID() == theirs.GetPixelID() and ours.GetSize() == theirs.GetSize()
    assert np.array_equal(sitk.GetArrayViewFromImage(ours), sitk.GetArrayViewFromImage(theirs))
    for getter in ("GetOrigin", "GetSpacing", "GetDirection"):
        assert np.allclose(getattr(ours, getter)(), getattr(theirs, getter)(), rtol=0, atol=1e-9), getter


def test_volume_files_read_back_as_the_in_memory_image(ball_study, tmp_path):
    import slicer.util
    import vtk
    from LinGuinELogic.volumes import write_volume_nrrd

    for k, node in enumerate(ball_study.volumes):
        write_volume_nrrd(node, tmp_path / f"v{k}.nhdr")
        _same(tmp_path / f"v{k}.nhdr", node)
    # float voxels on an oblique grid under a rotating, shifting parent transform
    node = ball_study.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "oblique")
    rng = np.random.default_rng(0)
    slicer.util.updateVolumeFromArray(node, rng.normal(size=(7, 9, 11)).astype(np.float32))
    ijk_to_ras = vtk.vtkMatrix4x4()
    c, s = np.cos(0.3), np.sin(0.3)
    for i, row in enumerate([[0.7 * c, -0.8 * s, 0, 12.5], [0.7 * s, 0.8 * c, 0, -3.25], [0, 0, 2.5, 40.0]]):
        for j, value in enumerate(row):
            ijk_to_ras.SetElement(i, j, value)
    node.SetIJKToRASMatrix(ijk_to_ras)
    transform = ball_study.scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "moved")
    matrix = vtk.vtkMatrix4x4()
    matrix.SetElement(0, 2, 0.1)  # a tilt about y (not quite a rotation: scaled as well)
    matrix.SetElement(2, 0, -0.1)
    matrix.SetElement(1, 3, 7.0)
    transform.SetMatrixTransformToParent(matrix)
    node.SetAndObserveTransformNodeID(transform.GetID())
    write_volume_nrrd(node, tmp_path / "oblique.nhdr")
    _same(tmp_path / "oblique.nhdr", node)
    assert (tmp_path / "oblique.raw").stat().st_size == 7 * 9 * 11 * 4
