"""Batch use inside Slicer (ctest runs it with Slicer's Python): the README snippet, verbatim.

Generates a small synthetic study, loads it with Slicer's readers, tracks with the classical
backends through ``LinGuinELogic.track`` and checks the nodes it returns.
"""

import os
import tempfile
import unittest

import slicer


class LinGuinEBatchTest(unittest.TestCase):
    def setUp(self):
        slicer.mrmlScene.Clear()

    def test_batch_snippet(self):
        from LinGuinELogic.dependencies import ensure_requirements

        ensure_requirements(prompt=False)  # a fresh Slicer: before LinGuinELib.synthetic needs them
        from LinGuinE import LinGuinELogic
        from LinGuinELib.geometry import lps_to_ras
        from LinGuinELib.study.manifest import load_manifest
        from LinGuinELib.synthetic import make_study

        folder = tempfile.mkdtemp(prefix="LinGuinE-batch-")
        study = load_manifest(make_study(folder, n_scans=3, n_lesions=2, seed=1))
        volumes = {scan.id: slicer.util.loadVolume(str(scan.path), {"name": scan.id, "show": False})
                   for scan in study.scans}
        v0, v1, v2 = (volumes[scan.id] for scan in study.scans)
        pointListNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "prompts")
        for lesion in study.lesions:
            index = pointListNode.AddControlPoint(*lps_to_ras(lesion.points_lps[0]), lesion.id)
            pointListNode.SetNthControlPointAssociatedNodeID(index, volumes[lesion.scan_id].GetID())

        logic = LinGuinELogic()
        result = logic.track(volumeNodes=[v0, v1, v2], promptNode=pointListNode,
                             registration="classical", segmentation="classical")

        self.assertEqual(len(result.segmentationNodes), 3)
        for volume, node in zip((v0, v1, v2), result.segmentationNodes):
            self.assertTrue(node.IsA("vtkMRMLSegmentationNode"))
            role = node.GetReferenceImageGeometryReferenceRole()
            self.assertIs(node.GetNodeReference(role), volume)
            self.assertEqual(node.GetSegmentation().GetNumberOfSegments(), len(study.lesions))
        self.assertEqual(result.tableNode.GetTable().GetNumberOfRows(), 3 * len(study.lesions))
        out = logic.export(result.tableNode, os.path.join(folder, "export"))
        self.assertTrue(os.path.isfile(os.path.join(out, "trajectory.csv")))


def runTest():
    unittest.main(module=__name__, argv=["LinGuinEBatchTest"], exit=False)
