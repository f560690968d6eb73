"""Headless MRML fixtures (slicer-core); imported by conftest only when slicer-core is present.

``ball_study`` builds volumes directly in MRML (RAS), one of them with a flipped axis, with
bright balls at known RAS centres that move and grow between scans. Two small backends make
the outcome exact (``child_backends.py``: a registration that knows each scan's true motion, a
segmenter that returns the bright region under the prompt). So a mask that comes back through the
segmentation node must equal the ball voxel for voxel, which checks the RAS <-> LPS boundary.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import vtk
from child_backends import KNOWN_SHIFTS_LPS, grid_key
from vtk.util import numpy_support

REPO = Path(__file__).resolve().parents[2]
MODULE_DIR = REPO / "LinGuinE"


def assert_runs_in_fresh_python(code: str) -> None:
    """Run ``code`` in a new interpreter (argv[1] = repository, argv[2] = module folder): import
    effects such as which packages got loaded can only be seen in a process of their own."""
    done = subprocess.run([sys.executable, "-c", code, str(REPO), str(MODULE_DIR)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


@dataclass
class BallStudy:
    scene: object
    volumes: list  # in time order
    names: list[str]
    points: object  # markups point list, one point per lesion
    truth: dict  # (lesion label, volume name) -> bool zyx mask
    centres_ras: dict  # (lesion label, volume name) -> RAS centre


DIMS = (40, 36, 20)  # i, j, k
SPACING = (1.5, 1.5, 3.0)
LESIONS = {"Nodule A": (np.array([-8.0, 4.0, 2.0]), 4.0), "Nodule B": (np.array([12.0, -10.0, -8.0]), 3.5)}
# name -> (RAS shift, radius growth factor, flip first axis?)
SCANS = {"baseline": ((0.0, 0.0, 0.0), 1.0, False),
         "week_8": ((3.0, -2.0, 3.0), 1.25, True),
         "week_16": ((-2.5, 3.5, -3.0), 1.5, False)}


def add_volume(scene, name: str, shift, grow: float, flip: bool, truth: dict, centres: dict):
    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name)
    directions = np.eye(3)
    origin = np.array([-30.0, -27.0, -30.0])
    if flip:
        directions[0, 0] = -1.0
        origin[0] = -origin[0]
    ijk_to_ras = np.eye(4)
    ijk_to_ras[:3, :3] = directions * np.array(SPACING)
    ijk_to_ras[:3, 3] = origin + np.array(shift) * 0.37  # grids differ a little between scans
    matrix = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            matrix.SetElement(r, c, ijk_to_ras[r, c])
    node.SetIJKToRASMatrix(matrix)
    k, j, i = np.indices(DIMS[::-1])
    ijk = np.stack([i, j, k, np.ones_like(i)], -1).reshape(-1, 4).T
    ras = (ijk_to_ras @ ijk)[:3].T.reshape(*DIMS[::-1], 3)
    rng = np.random.default_rng(len(name))
    arr = (-900 + rng.normal(0, 15, DIMS[::-1])).astype(np.int16)
    for label, (centre, radius) in LESIONS.items():
        c = centre + np.array(shift)
        ball = np.linalg.norm(ras - c, axis=-1) <= radius * grow
        arr[ball] = 120
        truth[(label, name)] = ball
        centres[(label, name)] = c
    image = vtk.vtkImageData()
    image.SetDimensions(*DIMS)
    image.AllocateScalars(vtk.VTK_SHORT, 1)
    numpy_support.vtk_to_numpy(image.GetPointData().GetScalars())[:] = arr.ravel()
    node.SetAndObserveImageData(image)
    node.CreateDefaultDisplayNodes()
    return node


def lps_grid_key(node) -> tuple:
    from LinGuinELogic.volumes import volume_geometry

    return grid_key(volume_geometry(node))


@pytest.fixture(autouse=True)
def application_scene(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """Each test's own empty ``slicer.mrmlScene``, as in Slicer, where the application's scene exists
    before a script makes its own. Without it the first test's scene stayed the global for the whole
    session, and a test reading the global instead of its own scene (as ``slicer.util`` helpers do,
    LinGuinE/README.md) passed or failed with the order the tests ran in. Code given a scene must
    leave this one empty."""
    import slicer

    scene = slicer.vtkMRMLScene()
    monkeypatch.setattr(slicer, "mrmlScene", scene, raising=False)
    yield scene
    strays = [scene.GetNthNode(i).GetName() for i in range(scene.GetNumberOfNodes())]
    assert not strays, f"added to slicer.mrmlScene instead of the scene in use: {strays}"


@pytest.fixture()
def ball_study() -> BallStudy:
    from LinGuinELogic.scene import headless_scene

    scene = headless_scene()
    truth, centres, volumes = {}, {}, []
    for name, (shift, grow, flip) in SCANS.items():
        node = add_volume(scene, name, shift, grow, flip, truth, centres)
        KNOWN_SHIFTS_LPS[lps_grid_key(node)] = np.array(shift) * np.array([-1.0, -1.0, 1.0])
        volumes.append(node)
    points = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "prompts")
    for label in LESIONS:
        index = points.AddControlPoint(*centres[(label, "baseline")], label)
        points.SetNthControlPointAssociatedNodeID(index, volumes[0].GetID())
    return BallStudy(scene, volumes, list(SCANS), points, truth, centres)


def segment_array(scene, segmentation, segment_id: str, volume) -> np.ndarray:
    from LinGuinELogic.prompts import segment_mask_zyx

    return segment_mask_zyx(scene, segmentation, segment_id, volume)


def sequences_logic(scene):
    """The headless scene's sequences logic (the application registers it inside Slicer)."""
    from LinGuinELogic.scene import application_logic

    return application_logic(scene).GetModuleLogic("Sequences")
