"""The module self-test's body: the generated demo study through the widget path.

The requirements are installed first (the demo generator needs them). Apply starts the child
process; the test pumps Qt events until the widget's QTimer has turned the result into nodes,
then checks them, selects a row, re-measures and exports.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import slicer


def loadDemoStudy(logic, folder: Path):
    """Synthetic study -> volumes (Slicer's reader) with timepoints, and one point per lesion."""
    import SimpleITK as sitk

    from LinGuinELib.geometry import lps_to_ras
    from LinGuinELib.prompt import mask_centre_lps
    from LinGuinELib.study.images import read_image
    from LinGuinELib.study.manifest import load_manifest
    from LinGuinELib.synthetic import make_study

    study = load_manifest(make_study(folder, n_scans=3, n_lesions=2, seed=0))
    volumes = {}
    for scan in study.scans:
        node = slicer.util.loadVolume(str(scan.path), {"name": scan.id, "show": False})
        logic.setTimepoint(node, scan.when)
        volumes[scan.id] = node
    points = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "demo prompts")
    for lesion in study.lesions:
        if lesion.points_lps is not None:
            lps = lesion.points_lps[0]
        else:
            mask = read_image(lesion.mask_path)
            lps = mask_centre_lps(sitk.GetArrayFromImage(mask) > 0, mask)
        index = points.AddControlPoint(*lps_to_ras(lps), lesion.id)
        points.SetNthControlPointAssociatedNodeID(index, volumes[lesion.scan_id].GetID())
    return study, volumes, points


def runDemoThroughWidget(test) -> None:
    """``test`` is the ScriptedLoadableModuleTest (assertions and delayDisplay)."""
    from LinGuinELogic.dependencies import ensure_requirements

    ensure_requirements(prompt=False)  # before LinGuinELib.synthetic, which needs them
    test.delayDisplay("Generating the synthetic demo study")
    widget = slicer.modules.linguine.widgetRepresentation().self()
    logic = widget.logic
    folder = Path(tempfile.mkdtemp(prefix="LinGuinE-selftest-"))
    study, volumes, points = loadDemoStudy(logic, folder)

    widget.initializeParameterNode()
    widget._parameterNode.promptNode = points
    widget.ui.pointsPromptRadioButton.checked = True
    widget.studyPanel.refresh()
    test.assertEqual(widget.ui.volumeTable.rowCount, len(volumes))

    test.delayDisplay("Tracking (child process)")
    widget.onApplyButton()
    test.assertIsNotNone(widget._job, widget.ui.statusLabel.text)
    deadline = time.time() + 900
    while widget._job is not None and time.time() < deadline:
        slicer.app.processEvents()
        time.sleep(0.05)
    test.assertIsNone(widget._job, "tracking did not finish in 15 minutes")

    table = widget._parameterNode.tableNode
    test.assertIsNotNone(table, widget.ui.statusLabel.text)
    test.assertEqual(table.GetTable().GetNumberOfRows(), len(study.lesions) * len(volumes))
    segmentations = slicer.util.getNodesByClass("vtkMRMLSegmentationNode")
    test.assertEqual(len(segmentations), len(volumes))
    for node in segmentations:
        test.assertEqual(node.GetSegmentation().GetNumberOfSegments(), len(study.lesions))

    widget.showRow(1)
    rows = logic.remeasure(table)
    test.assertEqual(len(rows), len(study.lesions) * len(volumes))
    out = logic.export(table, folder / "export")
    for name in ("trajectory.csv", "trajectory.png", "run.json"):
        test.assertTrue(os.path.isfile(os.path.join(out, name)), name)
    test.delayDisplay("LinGuinE self-test passed")
