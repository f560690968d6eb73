"""When tracking fails, the panel's error dialog says what failed in one line the user can act on
(``LinGuinELogic.trackingFailure``: the library's own line for bad input, the exception or crash
that ended the process otherwise), the process's log in its details. Real child processes and
study workers (slicer-core; this interpreter stands in for PythonSlicer). Before, the dialog's
text was "Tracking failed; nothing was added to the scene." whatever had failed; the study
worker's bad-input line came with its log appended."""

from __future__ import annotations

import sys

import numpy as np
import pytest

if not hasattr(sys.modules.get("slicer"), "vtkMRMLScene"):  # conftest imported it if it could
    pytest.skip("slicer-core is not installed (bash scripts/install_slicer_core.sh)", allow_module_level=True)

import vtk  # noqa: E402
from child_backends import OUT_OF_MEMORY  # noqa: E402
from test_child_process import PLUGINS, _environment, _wait  # noqa: E402
from test_slicer_input_checks import FAST, _counts, _voxels  # noqa: E402

from LinGuinELib.config import TrackingConfig  # noqa: E402

PATHS = pytest.mark.parametrize("keep_open", [True, False], ids=["study_worker", "one_shot_child"])


def _outcome(study, tmp_path, config: TrackingConfig, keep_open: bool, read=None):
    """The panel's path: prepare, start, poll until done; what ``read(logic, job)`` makes of the
    finished job (default: its failure), the job and any study worker closed after."""
    from LinGuinELogic import LinGuinELogic

    logic = LinGuinELogic(study.scene)
    prepared = logic.prepare(study.volumes, study.points)
    job = logic.startTracking(prepared, config, _environment(tmp_path), PLUGINS, keepStudyOpen=keep_open)
    _wait(job)
    try:
        return read(logic, job) if read is not None else logic.trackingFailure(job)
    finally:
        job.close()
        logic.closeStudyWorker()


def _click_on_nothing(study, alone: bool = True) -> None:
    """A point where the test segmenter finds nothing though it is not in air (lung-like -700 HU);
    ``alone``: the study's only click (a study where some clicks gave a segment is tracked)."""
    if alone:
        study.points.RemoveAllControlPoints()
    node = study.volumes[0]
    voxels = _voxels(node)
    voxels[voxels < -500] = -700
    node.GetImageData().Modified()
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    centre = np.array(node.GetImageData().GetDimensions()) / 2.0
    index = study.points.AddControlPoint(*matrix.MultiplyPoint((*centre, 1.0))[:3], "Nothing")
    study.points.SetNthControlPointAssociatedNodeID(index, node.GetID())


@PATHS
def test_bad_input_found_by_the_process_is_the_dialogs_text(ball_study, tmp_path, keep_open):
    _click_on_nothing(ball_study)
    before = _counts(ball_study.scene)
    failure = _outcome(ball_study, tmp_path, TrackingConfig(**FAST), keep_open)
    assert failure.message.startswith("Tracking failed: lesion 'Nothing': nothing could be segmented at its prompt")
    assert failure.message.endswith("on scan 'baseline'; click inside the lesion") and "\n" not in failure.message
    assert failure.details == "Nothing was added to the scene."
    assert _counts(ball_study.scene) == before


@PATHS
def test_a_click_on_nothing_beside_others_is_a_flagged_row_not_a_failure(ball_study, tmp_path, keep_open):
    """Before: the whole study failed for one click that gave nothing. Now the nodules are
    tracked; the table row of the empty click has no volume and is marked with its reason."""
    from LinGuinELogic.tables import table_rows

    _click_on_nothing(ball_study, alone=False)
    output = _outcome(ball_study, tmp_path, TrackingConfig(**FAST), keep_open,
                      lambda logic, job: logic.finishTracking(job))
    rows = {(r["lesion"], r["scan"]): r for r in table_rows(output.tableNode)}
    empty = rows[("Nothing", "baseline")]
    assert empty["volume_ml"] is None and empty["review"] == "review", empty
    assert empty["review_reasons"] == "empty_prompt"
    after = [rows[("Nothing", scan)] for scan in ball_study.names if scan != "baseline"]
    assert all(r["response"] == "NE" and "no_baseline" in r["review_reasons"] for r in after), after
    assert all(float(rows[("Nodule_A", scan)]["volume_ml"]) > 0 for scan in ball_study.names), rows


@PATHS
def test_a_backend_exception_is_named_with_the_log_in_the_details(ball_study, tmp_path, keep_open):
    failure = _outcome(ball_study, tmp_path, TrackingConfig(registration=FAST["registration"],
                                                            segmentation="slicer-test-raises"), keep_open)
    assert failure.message == f"Tracking failed: RuntimeError: {OUT_OF_MEMORY}"
    assert failure.details.startswith("Nothing was added to the scene.\n\n") and len(failure.details.splitlines()) > 3


def test_a_native_crash_says_so(ball_study, tmp_path):
    config = TrackingConfig(registration="slicer-test-crash", segmentation=FAST["segmentation"])
    failure = _outcome(ball_study, tmp_path, config, keep_open=False)
    assert failure.message.startswith("Tracking failed: the tracking process was killed by signal")
    assert failure.message.endswith(": Fatal Python error: Aborted")
    assert "illegal memory access" in failure.details and "File " in failure.details


def test_no_failure_no_dialog(ball_study, tmp_path):
    assert _outcome(ball_study, tmp_path, TrackingConfig(**FAST), keep_open=False) is None
