"""Configure the extension's CMake against a stub of Slicer's CMake package, then use the result.

The stub implements the two macros the module uses (slicerMacroBuildScriptedModule,
ctkMacroCompilePythonScript) the way Slicer's do for the build tree: copy each listed file under
qt-scripted-modules. So this checks that every listed file exists, that LinGuinELib and the
requirements are shipped next to the module, and that the copied module imports from there.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTED = "lib/Slicer-5.13/qt-scripted-modules"

STUB_CONFIG = f"""
set(Slicer_FOUND TRUE)
set(Slicer_USE_FILE ${{CMAKE_CURRENT_LIST_DIR}}/UseSlicer.cmake)
set(Slicer_EXTENSION_GENERATE_CONFIG ${{CMAKE_CURRENT_LIST_DIR}}/Empty.cmake)
set(Slicer_EXTENSION_CPACK ${{CMAKE_CURRENT_LIST_DIR}}/Empty.cmake)
set(Slicer_QTSCRIPTEDMODULES_LIB_DIR {SCRIPTED})
set(Slicer_INSTALL_QTSCRIPTEDMODULES_LIB_DIR {SCRIPTED})
"""
STUB_USE = """
macro(ctkMacroCompilePythonScript)
  cmake_parse_arguments(_P "NO_INSTALL_SUBDIR;GLOBAL_TARGET" "TARGET_NAME;SOURCE_DIR;DESTINATION_DIR;INSTALL_DIR"
                        "SCRIPTS;RESOURCES" ${ARGN})
  if(NOT _P_SOURCE_DIR)
    set(_P_SOURCE_DIR ${CMAKE_CURRENT_SOURCE_DIR})
  endif()
  foreach(_f IN LISTS _P_SCRIPTS _P_RESOURCES)
    if(NOT EXISTS "${_P_SOURCE_DIR}/${_f}")
      message(FATAL_ERROR "listed but missing: ${_P_SOURCE_DIR}/${_f}")
    endif()
    get_filename_component(_d "${_P_DESTINATION_DIR}/${_f}" DIRECTORY)
    file(COPY "${_P_SOURCE_DIR}/${_f}" DESTINATION "${_d}")
  endforeach()
endmacro()
macro(slicerMacroBuildScriptedModule)
  cmake_parse_arguments(_M "WITH_GENERIC_TESTS;WITH_SUBDIR" "NAME" "SCRIPTS;RESOURCES" ${ARGN})
  ctkMacroCompilePythonScript(TARGET_NAME ${_M_NAME} SCRIPTS "${_M_SCRIPTS}" RESOURCES "${_M_RESOURCES}"
    DESTINATION_DIR ${CMAKE_BINARY_DIR}/${Slicer_QTSCRIPTEDMODULES_LIB_DIR} INSTALL_DIR unused NO_INSTALL_SUBDIR)
endmacro()
macro(slicer_add_python_unittest)
  cmake_parse_arguments(_T "" "SCRIPT" "SLICER_ARGS" ${ARGN})
  message(STATUS "LINGUINE-UNITTEST ${_T_SCRIPT}")
endmacro()
"""


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> tuple[Path, str]:
    if shutil.which("cmake") is None:
        pytest.skip("cmake is not installed")
    root = tmp_path_factory.mktemp("extension")
    stub = root / "slicer"
    stub.mkdir()
    (stub / "SlicerConfig.cmake").write_text(STUB_CONFIG)
    (stub / "UseSlicer.cmake").write_text(STUB_USE)
    (stub / "Empty.cmake").write_text("")
    out = root / "build"
    done = subprocess.run(["cmake", "-S", str(REPO), "-B", str(out), f"-DSlicer_DIR={stub}",
                           "-DBUILD_TESTING=ON", "-DCMAKE_C_COMPILER_WORKS=1", "-DCMAKE_CXX_COMPILER_WORKS=1"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return out / SCRIPTED, done.stdout


def test_module_lib_and_requirements_are_shipped_together(build):
    scripted, _ = build
    for relative in ("LinGuinE.py", "LinGuinELogic/logic.py", "LinGuinEGui/study_panel.py",
                     "LinGuinELib/propagation/engine.py", "LinGuinELib/registry.py",
                     "Resources/UI/LinGuinE.ui", "Resources/Icons/LinGuinE.png",
                     "Resources/LinGuinE-requirements.txt"):
        assert (scripted / relative).is_file(), relative
    shipped = {p.relative_to(scripted / "LinGuinELib") for p in (scripted / "LinGuinELib").rglob("*.py")}
    source = {p.relative_to(REPO / "LinGuinELib") for p in (REPO / "LinGuinELib").rglob("*.py")}
    assert shipped == source


def test_tests_are_registered(build):
    _, log = build
    assert "LINGUINE-UNITTEST LinGuinE.py" in log  # the module's self-test
    assert "LinGuinEBatchTest.py" in log


def test_shipped_logic_imports_from_the_install_layout(build):
    if not hasattr(sys.modules.get("slicer"), "vtkMRMLScene"):  # conftest imported it if it could
        pytest.skip("slicer-core is not installed")
    scripted, _ = build
    code = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "import LinGuinELib, LinGuinELogic\n"
        "from LinGuinELogic.dependencies import requirements_file\n"
        "root = sys.argv[1]\n"
        "assert LinGuinELib.__file__.startswith(root) and LinGuinELogic.__file__.startswith(root)\n"
        "assert str(requirements_file()).startswith(root), requirements_file()\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(scripted)], capture_output=True, text=True,
                          timeout=120, cwd=str(scripted))
    assert done.returncode == 0, done.stderr[-2000:]
