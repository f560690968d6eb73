"""The module's settings: derived from TrackingConfig, paths in application settings, no secret stored;
Reload re-imports the sub-packages; everything under LinGuinE/ parses as Python 3.9."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

if not hasattr(sys.modules.get("slicer"), "vtkMRMLScene"):  # conftest imported it if it could
    pytest.skip("slicer-core is not installed (bash scripts/install_slicer_core.sh)", allow_module_level=True)

import numpy as np  # noqa: E402
import slicer  # noqa: E402
import vtk  # noqa: E402
from slicer_fixtures import MODULE_DIR, assert_runs_in_fresh_python, segment_array  # noqa: E402

from LinGuinELib.config import TrackingConfig, option_specs  # noqa: E402
from LinGuinELib.errors import InputError  # noqa: E402


class FakeQSettings:
    """QSettings' value/setValue on a dict: slicer-core has no ``slicer.app`` (no Qt), so the
    application settings object cannot exist here; inside Slicer it is ``slicer.app.settings()``."""

    def __init__(self) -> None:
        self.data: dict[str, object] = {}

    def value(self, key, default=None):
        return self.data.get(key, default)

    def setValue(self, key, value) -> None:  # noqa: N802 - QSettings' name
        self.data[key] = value


def test_parameter_fields_are_the_config_options():
    from LinGuinELogic.settings import parameter_fields

    fields = {f.parameter: f for f in parameter_fields()}
    assert list(fields) == ["registration", "segmentation", "mode", "boost", "device", "searchRadiusMm"]
    specs = {s.name: s for s in option_specs()}
    for f in fields.values():
        spec = specs[f.option]
        assert (f.kind, f.default, f.choices, f.minimum, f.maximum, f.help) == (
            spec.kind, spec.default, spec.choices, spec.minimum, spec.maximum, spec.help)


def test_settings_round_trip_through_a_real_parameter_node():
    """Values stored on a vtkMRMLScriptedModuleNode, the scene saved and read again, give the config back."""
    from LinGuinELogic.scene import headless_scene
    from LinGuinELogic.settings import config_from_parameters, parameters_from_config

    config = TrackingConfig(registration="unigradicon", segmentation="nninteractive", mode="chain", boost=True,
                            device="cuda", search_radius_mm=12.5)
    scene = headless_scene()
    node = scene.AddNewNodeByClass("vtkMRMLScriptedModuleNode", "LinGuinE")
    for name, value in parameters_from_config(config).items():
        node.SetParameter(name, repr(value) if not isinstance(value, str) else value)
    scene.SetSaveToXMLString(1)
    scene.Commit()
    again = slicer.vtkMRMLScene()
    again.SetLoadFromXMLString(1)
    again.SetSceneXMLString(scene.GetSceneXMLString())
    again.Import()
    copy = again.GetFirstNodeByName("LinGuinE")
    assert copy is not None and copy is not node
    kinds = {"True": True, "False": False}
    values = {}
    for name in parameters_from_config(config):
        raw = copy.GetParameter(name)
        values[name] = kinds.get(raw, raw)
    values["searchRadiusMm"] = float(values["searchRadiusMm"])
    assert config_from_parameters(values) == config
    with pytest.raises(InputError, match="unknown module setting"):
        config_from_parameters({"searchRadius": 3.0})
    with pytest.raises(InputError, match="search_radius_mm must lie in"):
        config_from_parameters({"searchRadiusMm": 0.0})


def test_backend_paths_live_in_application_settings_and_the_key_nowhere(tmp_path):
    from LinGuinELogic.settings import API_KEY_ENV, MODEL_DIR_ENV, MODEL_DIR_KEY, ModuleSettings, backend_panel_options

    from LinGuinELib.registry import backend_class

    store = FakeQSettings()
    settings = ModuleSettings(store)
    remote = backend_class("segmentation", "nninteractive-remote")
    vista = backend_class("segmentation", "vista3d")
    assert backend_panel_options(remote) == ["server_url", "api_key"]
    assert backend_panel_options(vista) == ["weights"]
    assert backend_panel_options(backend_class("registration", "classical")) == []

    settings.set_option("segmentation", "nninteractive-remote", "server_url", "http://gpu-box:1527")
    settings.set_option("segmentation", "nninteractive-remote", "api_key", "sk-live-42")
    settings.set_option("segmentation", "vista3d", "weights", str(tmp_path / "model.pt"))
    settings.set_model_dir(str(tmp_path))
    assert store.data == {"LinGuinE/segmentation/nninteractive-remote/server_url": "http://gpu-box:1527",
                          "LinGuinE/segmentation/vista3d/weights": str(tmp_path / "model.pt"),
                          MODEL_DIR_KEY: str(tmp_path)}  # no key among them
    assert "sk-live-42" not in repr(store.data)

    # A new session reads the paths back; the key is gone with the old session.
    again = ModuleSettings(store)
    assert again.option("segmentation", "nninteractive-remote", "server_url") == "http://gpu-box:1527"
    assert again.option("segmentation", "nninteractive-remote", "api_key") == ""
    assert again.backend_options("segmentation", "vista3d", vista) == {"weights": str(tmp_path / "model.pt")}

    options = settings.backend_options("segmentation", "nninteractive-remote", remote)
    assert options == {"server_url": "http://gpu-box:1527"}  # what the config (and run.json) gets
    assert settings.check_options("segmentation", "nninteractive-remote", remote)["api_key"] == "sk-live-42"
    config = TrackingConfig(segmentation="nninteractive-remote", segmentation_options=options)
    assert settings.child_environment(config) == {MODEL_DIR_ENV: str(tmp_path), API_KEY_ENV: "sk-live-42"}
    assert settings.child_environment(TrackingConfig()) == {MODEL_DIR_ENV: str(tmp_path)}
    with pytest.raises(InputError):
        settings.set_option("segmentation", "vista3d", "roi", "128")
    settings.set_model_dir("")


def test_reload_reimports_the_sub_packages():
    code = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
        "import LinGuinELogic, LinGuinELib.config, LinGuinELogic.settings\n"
        "old = (LinGuinELogic.LinGuinELogic, LinGuinELib.config.TrackingConfig)\n"
        "from LinGuinELogic.dependencies import unload_module_packages\n"
        "gone = unload_module_packages()\n"
        "assert {'LinGuinELogic', 'LinGuinELogic.logic', 'LinGuinELib.config'} <= set(gone), gone\n"
        "import LinGuinELogic, LinGuinELib.config\n"
        "new = (LinGuinELogic.LinGuinELogic, LinGuinELib.config.TrackingConfig)\n"
        "assert all(a is not b for a, b in zip(old, new))\n"
        "assert not [m for m in sys.modules if m.startswith('LinGuinEGui')]\n"
    )
    assert_runs_in_fresh_python(code)


def _py39_problems(path: Path) -> list[str]:
    """Syntax newer than 3.9, and 3.10-only calls, in one file (Slicer 5.8 ships Python 3.9)."""
    source = path.read_text()
    tree = ast.parse(source, feature_version=(3, 9))  # match statements etc. fail here
    future = "from __future__ import annotations" in source
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "zip":
            if any(k.arg == "strict" for k in node.keywords):
                problems.append(f"{path.name}:{node.lineno}: zip(strict=)")
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "isinstance":
            if len(node.args) == 2 and isinstance(node.args[1], ast.BinOp):
                problems.append(f"{path.name}:{node.lineno}: isinstance(x, A | B)")
        annotations = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            annotations = [a.annotation for a in (*node.args.args, *node.args.kwonlyargs) if a.annotation]
            annotations += [node.returns] if node.returns else []
        elif isinstance(node, ast.AnnAssign):
            annotations = [node.annotation]
        if not future and any(isinstance(n, ast.BinOp) and isinstance(n.op, ast.BitOr)
                              for a in annotations for n in ast.walk(a)):
            problems.append(f"{path.name}:{node.lineno}: X | Y annotation evaluated at runtime")
    return problems


def test_everything_under_the_module_folder_runs_on_python_3_9():
    files = [p for p in MODULE_DIR.rglob("*.py") if "__pycache__" not in p.parts]
    assert len(files) > 15
    problems = [problem for path in files for problem in _py39_problems(path)]
    assert not problems, problems
    # The checker itself finds what it is meant to find.
    bad = MODULE_DIR.parent / "LinGuinELib" / "synthetic" / "phantom.py"
    assert any("zip(strict=)" in p for p in _py39_problems(bad))


def test_device_probe_asks_a_child_process(monkeypatch):
    """cuda is offered only when torch, in Slicer's Python, sees a GPU; torch is not imported here."""
    import importlib.util

    from LinGuinELogic.process import DeviceProbe

    if importlib.util.find_spec("torch") is None:
        assert DeviceProbe().devices() == ["cpu"]
        return
    probe = DeviceProbe()
    assert probe.process is not None and probe.process.pid
    probe.process.wait(120)
    answer = probe.devices()
    assert answer in (["cpu"], ["cpu", "cuda"])
    assert "torch" not in sys.modules or sys.modules["torch"] is not None


def test_the_gpu_probe_hides_its_console_on_windows(monkeypatch):
    """PythonSlicer is a console program: on Windows every process the module starts is created
    without a console window, as ``slicer.util.launchConsoleProcess`` does; the GPU probe, started
    each time the panel is set up, flashed one. Tracking processes also lead their own group (Cancel)."""
    import importlib.util
    import subprocess

    from LinGuinELogic import process

    seen = []

    class Recorder:
        def __init__(self, args, **kwargs):
            seen.append(kwargs)
            self.pid = 1

        def poll(self):
            return None  # still running

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(process, "WINDOWS", True)
    monkeypatch.setattr(subprocess, "Popen", Recorder)
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: object() if name == "torch" else real_find_spec(name, *args))
    probe = process.DeviceProbe(python="PythonSlicer")
    assert probe.devices() is None and len(seen) == 1  # asked, answer pending
    assert seen[0]["creationflags"] == process.CREATE_NO_WINDOW
    assert process.popen_options()["creationflags"] == process.CREATE_NO_WINDOW | process.CREATE_NEW_PROCESS_GROUP
    monkeypatch.setattr(process, "WINDOWS", False)
    assert process.popen_options() == {"start_new_session": True} and process.popen_options(False) == {}


def test_segmentation_under_a_transform_keeps_the_volume_grid(ball_study):
    """A volume under a linear transform: the segmentation sits under the same transform with the
    volume's own (untransformed) grid, and the masks still match the balls voxel for voxel."""
    from child_backends import KNOWN_SHIFTS_LPS
    from LinGuinELogic import LinGuinELogic
    from slicer_fixtures import lps_grid_key

    scene = ball_study.scene
    shifts = [KNOWN_SHIFTS_LPS[lps_grid_key(volume)] for volume in ball_study.volumes]
    transform = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "moved")
    matrix = vtk.vtkMatrix4x4()
    matrix.SetElement(0, 3, 17.0)
    matrix.SetElement(2, 3, -9.0)
    transform.SetMatrixTransformToParent(matrix)
    for volume, shift in zip(ball_study.volumes, shifts):
        volume.SetAndObserveTransformNodeID(transform.GetID())
        KNOWN_SHIFTS_LPS[lps_grid_key(volume)] = shift  # the engine sees the moved (world) grid
    points = ball_study.points
    for i in range(points.GetNumberOfControlPoints()):  # the prompts move with the volumes
        ras = np.array(points.GetNthControlPointPosition(i)) + [17.0, 0.0, -9.0]
        points.SetNthControlPointPosition(i, *ras)
    result = LinGuinELogic(scene).track(volumeNodes=ball_study.volumes, promptNode=points,
                                        registration="slicer-test-known-shift", segmentation="slicer-test-bright")
    for volume, seg in zip(ball_study.volumes, result.segmentationNodes):
        assert seg.GetTransformNodeID() == transform.GetID()
        image = slicer.vtkOrientedImageData()
        geometry = seg.GetSegmentation().GetConversionParameter(
            slicer.vtkSegmentationConverter.GetReferenceImageGeometryParameterName())
        slicer.vtkSegmentationConverter.DeserializeImageGeometry(geometry, image)
        got, expected = vtk.vtkMatrix4x4(), vtk.vtkMatrix4x4()
        image.GetImageToWorldMatrix(got)
        volume.GetIJKToRASMatrix(expected)
        assert np.allclose(slicer.util.arrayFromVTKMatrix(got), slicer.util.arrayFromVTKMatrix(expected))
        mask = segment_array(scene, seg, "Nodule_A", volume)
        assert np.array_equal(mask, ball_study.truth[("Nodule A", volume.GetName())])


class _TestingModePackaging:
    """``slicer.packaging`` as Slicer 5.12+ has it, behaving as in ``--testing`` mode when
    ``skip_in_testing`` is left True: nothing is installed. slicer-core has no ``slicer.app`` and
    no ``slicer.packaging``, so this stand-in is the only way to run this path here."""

    def __init__(self) -> None:
        self.calls = []

    @staticmethod
    def load_requirements(path):
        return [line for line in Path(path).read_text().splitlines() if line.strip()]

    def pip_ensure(self, requirements, constraints=None, prompt_install=True, prompt_restart=True,
                   requester=None, skip_in_testing=True, show_progress=True):
        self.calls.append({"prompt_install": prompt_install, "prompt_restart": prompt_restart,
                           "skip_in_testing": skip_in_testing, "requester": requester})


class _SlicerUtilInstall:
    """``slicer.util``'s pip_install and confirmOkCancelDisplay (Slicer 5.10-5.11 path), recorded."""

    def __init__(self, confirm: bool) -> None:
        self.confirm, self.asked, self.installed = confirm, [], []

    def confirmOkCancelDisplay(self, text, windowTitle=None, **kwargs):  # noqa: N802, N803 - Slicer's names
        self.asked.append(text)
        return self.confirm

    def pip_install(self, requirements):
        self.installed.append(requirements)


def test_requirements_install_without_a_click_in_batch_and_fail_loudly_when_still_missing(monkeypatch):
    """As in Slicer 5.12+: ``slicer.packaging`` is a submodule that ``import slicer`` does not import,
    so it is in sys.modules only once imported, never an attribute of ``slicer`` before that."""
    from LinGuinELogic import dependencies

    packaging = _TestingModePackaging()
    util = _SlicerUtilInstall(confirm=True)
    monkeypatch.setattr(slicer, "app", object(), raising=False)
    monkeypatch.delattr(slicer, "packaging", raising=False)
    monkeypatch.setitem(sys.modules, "slicer.packaging", packaging)
    monkeypatch.setattr(slicer.util, "pip_install", util.pip_install, raising=False)
    monkeypatch.setattr(dependencies, "missing_requirements", lambda: ["connected-components-3d"])
    with pytest.raises(InputError, match="required Python packages are not installed: connected-components-3d"):
        dependencies.ensure_requirements(prompt=False)
    assert packaging.calls == [{"prompt_install": False, "prompt_restart": False, "skip_in_testing": False,
                                "requester": "LinGuinE"}]
    assert util.installed == []  # pip_ensure did it, not the old path without a confirmation


@pytest.mark.parametrize("confirm", [False, True])
def test_without_pip_ensure_the_install_is_confirmed_first(monkeypatch, confirm):
    """Slicer 5.10-5.11 (no ``slicer.packaging``): ``pip_install`` asks nothing, so the panel's path
    (prompt=True) asks before installing; declined: nothing installed, one line saying so."""
    from LinGuinELogic import dependencies

    util = _SlicerUtilInstall(confirm)
    monkeypatch.setattr(slicer, "app", object(), raising=False)
    monkeypatch.delattr(slicer, "packaging", raising=False)
    monkeypatch.setitem(sys.modules, "slicer.packaging", None)  # import slicer.packaging fails
    monkeypatch.setattr(slicer.util, "pip_install", util.pip_install, raising=False)
    monkeypatch.setattr(slicer.util, "confirmOkCancelDisplay", util.confirmOkCancelDisplay, raising=False)
    missing = ["connected-components-3d", "edt>=2.4"]
    monkeypatch.setattr(dependencies, "missing_requirements", lambda: list(missing))
    if not confirm:
        with pytest.raises(InputError, match="declined.*connected-components-3d, edt>=2.4"):
            dependencies.ensure_requirements()
        assert util.installed == [] and len(util.asked) == 1 and "edt>=2.4" in util.asked[0]
        return
    with pytest.raises(InputError, match="still|not installed"):  # the stand-in installs nothing
        dependencies.ensure_requirements()
    assert len(util.asked) == 1 and util.installed == ["connected-components-3d edt>=2.4"]
    util.asked.clear()
    with pytest.raises(InputError):
        dependencies.ensure_requirements(prompt=False)  # batch: no question
    assert util.asked == []
