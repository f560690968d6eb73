"""The module logic on a real headless MRML scene (slicer-core): nodes, geometry, tags, table."""

from __future__ import annotations

import json
import sys

import pytest

if not hasattr(sys.modules.get("slicer"), "vtkMRMLScene"):  # conftest imported it if it could
    pytest.skip("slicer-core is not installed (bash scripts/install_slicer_core.sh)", allow_module_level=True)

import numpy as np  # noqa: E402
import slicer  # noqa: E402
import vtk  # noqa: E402
from slicer_fixtures import assert_runs_in_fresh_python, segment_array  # noqa: E402

from LinGuinELib.errors import InputError  # noqa: E402

FAST = {"registration": "slicer-test-known-shift", "segmentation": "slicer-test-bright"}


def test_logic_imports_without_qt_or_ctk():
    code = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
        "import LinGuinELogic\n"
        "from LinGuinELogic import LinGuinELogic as L\n"
        "bad = [m for m in ('qt', 'ctk', 'PythonQt', 'torch') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    assert_runs_in_fresh_python(code)


def test_logic_imports_before_first_use_install():
    """A fresh Slicer has numpy, SimpleITK and vtk only: the module must still load."""
    code = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
        "for name in ('scipy', 'cc3d', 'slicerio', 'matplotlib', 'tqdm', 'torch', 'monai'):\n"
        "    sys.modules[name] = None  # import of these now fails\n"
        "from LinGuinELogic import LinGuinELogic\n"
        "from LinGuinELogic.dependencies import backend_choices, missing_requirements\n"
        "assert backend_choices('registration') == [('classical', None)], backend_choices('registration')\n"
    )
    assert_runs_in_fresh_python(code)


def _track(study, **kw):
    from LinGuinELogic import LinGuinELogic

    logic = LinGuinELogic(study.scene)
    # Given out of time order on purpose: the logic must sort by timepoint.
    shuffled = [study.volumes[2], study.volumes[0], study.volumes[1]]
    return logic, logic.track(volumeNodes=shuffled, promptNode=study.points, **{**FAST, **kw})


def test_track_makes_one_segmentation_per_volume_on_its_grid(ball_study):
    logic, result = _track(ball_study)
    assert len(result.segmentationNodes) == 3
    for volume, seg in zip(ball_study.volumes, result.segmentationNodes):
        assert seg.IsA("vtkMRMLSegmentationNode")
        role = seg.GetReferenceImageGeometryReferenceRole()
        assert seg.GetNodeReference(role) is volume
        geometry = seg.GetSegmentation().GetConversionParameter(
            slicer.vtkSegmentationConverter.GetReferenceImageGeometryParameterName())
        matrix, extent = vtk.vtkMatrix4x4(), [0] * 6
        image = slicer.vtkOrientedImageData()
        slicer.vtkSegmentationConverter.DeserializeImageGeometry(geometry, image)
        image.GetImageToWorldMatrix(matrix)
        expected = vtk.vtkMatrix4x4()
        volume.GetIJKToRASMatrix(expected)
        assert np.allclose(slicer.util.arrayFromVTKMatrix(matrix), slicer.util.arrayFromVTKMatrix(expected))
        extent = image.GetExtent()
        dims = volume.GetImageData().GetDimensions()
        assert extent == (0, dims[0] - 1, 0, dims[1] - 1, 0, dims[2] - 1)


def test_masks_come_back_voxel_exact_through_ras_lps(ball_study):
    _, result = _track(ball_study)
    for volume, name, seg in zip(ball_study.volumes, ball_study.names, result.segmentationNodes):
        segmentation = seg.GetSegmentation()
        for label in ("Nodule A", "Nodule B"):
            segment_id = next(segmentation.GetNthSegmentID(i) for i in range(segmentation.GetNumberOfSegments())
                              if segmentation.GetNthSegment(i).GetName() == label)
            mask = segment_array(ball_study.scene, seg, segment_id, volume)
            truth = ball_study.truth[(label, name)]
            assert mask.sum() == truth.sum() > 0
            assert np.array_equal(mask, truth), (label, name)
            ijk_to_ras = vtk.vtkMatrix4x4()
            volume.GetIJKToRASMatrix(ijk_to_ras)
            kji = np.argwhere(mask).mean(axis=0)
            centre = slicer.util.arrayFromVTKMatrix(ijk_to_ras) @ np.array([*kji[::-1], 1.0])
            assert np.linalg.norm(centre[:3] - ball_study.centres_ras[(label, name)]) < 1.0


def test_segments_share_name_colour_and_tracking_id(ball_study):
    from LinGuinELogic.scene import TRACKING_ID_TAG, get_tag

    _, result = _track(ball_study)
    seen: dict[str, set] = {}
    for seg in result.segmentationNodes:
        segmentation = seg.GetSegmentation()
        assert segmentation.GetNumberOfSegments() == 2
        for i in range(segmentation.GetNumberOfSegments()):
            segment = segmentation.GetNthSegment(i)
            seen.setdefault(segment.GetName(), set()).add(
                (tuple(np.round(segment.GetColor(), 4)), get_tag(segment, TRACKING_ID_TAG)))
    assert set(seen) == {"Nodule A", "Nodule B"}
    for name, variants in seen.items():
        assert len(variants) == 1, f"{name} differs between timepoints: {variants}"
    ids = {next(iter(v))[1] for v in seen.values()}
    colours = {next(iter(v))[0] for v in seen.values()}
    assert len(ids) == 2 and None not in ids and len(colours) == 2


def test_table_rows_timepoints_and_measures(ball_study):
    from LinGuinELogic.tables import table_rows

    _, result = _track(ball_study)
    rows = table_rows(result.tableNode)
    assert len(rows) == 6
    assert [r["scan"] for r in rows[:3]] == ["baseline", "week_8", "week_16"]  # sorted by label
    assert [r["days_from_first"] for r in rows[:3]] == [0.0, 56.0, 112.0]
    assert [r["status"] for r in rows[:3]] == ["prompt", "found", "found"]
    voxel_ml = np.prod([1.5, 1.5, 3.0]) / 1000
    for row in rows:
        truth = ball_study.truth[({"Nodule_A": "Nodule A", "Nodule_B": "Nodule B"}[row["lesion"]], row["scan"])]
        assert row["volume_ml"] == pytest.approx(truth.sum() * voxel_ml, rel=1e-6)
    growth = rows[2]["change_from_baseline_pct"]
    assert growth == pytest.approx(100 * (rows[2]["volume_ml"] / rows[0]["volume_ml"] - 1), rel=1e-6)
    assert result.tableNode.GetAttribute("LinGuinE.Role") == "trajectory"
    chart = result.chartNode
    assert chart.GetNumberOfPlotSeriesNodes() == 2
    series = [chart.GetNthPlotSeriesNode(i) for i in range(2)]
    colours = {tuple(np.round(s.GetColor(), 4)) for s in series}
    segment_colours = {tuple(np.round(result.segmentationNodes[0].GetSegmentation().GetNthSegment(i).GetColor(), 4))
                       for i in range(2)}
    assert colours == segment_colours


def test_results_sit_in_the_volume_study_in_subject_hierarchy(ball_study):
    sh = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(ball_study.scene)
    patient = sh.CreateSubjectItem(sh.GetSceneItemID(), "Patient 1")
    study = sh.CreateStudyItem(patient, "CT study")
    sh.SetItemAttribute(study, "DICOM.StudyDate", "20240102")
    for volume in ball_study.volumes:
        sh.CreateItem(study, volume)  # Slicer's subject hierarchy plugins would do this
    _, result = _track(ball_study)
    for seg in result.segmentationNodes:
        assert sh.GetItemParent(sh.GetItemByDataNode(seg)) == study


def test_timepoints_from_dicom_name_and_user(ball_study):
    from LinGuinELogic import LinGuinELogic

    logic = LinGuinELogic(ball_study.scene)
    listed = logic.studyVolumes()
    assert [v.node.GetName() for v in listed] == ["baseline", "week_8", "week_16"]
    assert all(v.timepoint.source == "name" for v in listed)
    sh = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(ball_study.scene)
    for volume, date in zip(ball_study.volumes, ("20240301", "20230101", "20240105")):
        study = sh.CreateStudyItem(sh.GetSceneItemID(), f"study {date}")
        sh.SetItemAttribute(study, "DICOM.StudyDate", date)
        sh.CreateItem(study, volume)
    listed = logic.studyVolumes()
    assert [v.node.GetName() for v in listed] == ["week_8", "week_16", "baseline"]
    assert [v.timepoint.text for v in listed] == ["2023-01-01", "2024-01-05", "2024-03-01"]
    logic.setTimepoint(ball_study.volumes[1], "2025-06-30")  # the user's edit wins
    listed = logic.studyVolumes()
    assert listed[-1].node is ball_study.volumes[1] and listed[-1].timepoint.source == "user"
    logic.setTimepoint(ball_study.volumes[1], "sometime")
    with pytest.raises(InputError, match="sometime"):
        logic.studyVolumes(ball_study.volumes)


def test_prompt_point_needs_one_volume(ball_study):
    from LinGuinELogic import LinGuinELogic

    logic = LinGuinELogic(ball_study.scene)
    ball_study.points.SetNthControlPointAssociatedNodeID(0, "")
    with pytest.raises(InputError, match="several volumes"):
        logic.prepare(ball_study.volumes, ball_study.points)
    ball_study.points.SetNthControlPointPositionWorld(0, 500.0, 0.0, 0.0)
    with pytest.raises(InputError, match="outside every input volume"):
        logic.prepare(ball_study.volumes, ball_study.points)
    with pytest.raises(InputError, match="at least 2"):
        logic.prepare(ball_study.volumes[:1], ball_study.points)


def test_segment_as_prompt(ball_study):
    from LinGuinELogic import LinGuinELogic
    from LinGuinELogic.tables import table_rows

    logic, first = _track(ball_study)
    prompt = first.segmentationNodes[0]  # baseline segments, on the baseline volume
    second = logic.track(volumeNodes=ball_study.volumes, promptNode=prompt, name="from segments", **FAST)
    assert isinstance(logic, LinGuinELogic)
    rows = table_rows(second.tableNode)
    assert [r["status"] for r in rows] == ["prompt", "found", "found"] * 2
    assert [r["volume_ml"] for r in rows] == pytest.approx([r["volume_ml"] for r in table_rows(first.tableNode)])
    from LinGuinELogic.scene import TRACKING_ID_TAG, get_tag

    def ids(output):
        segmentation = output.segmentationNodes[0].GetSegmentation()
        return {get_tag(segmentation.GetNthSegment(i), TRACKING_ID_TAG) for i in range(2)}

    assert not ids(first) & ids(second)  # each run's lesions get their own tracking ids


def test_remeasure_sees_edits_and_export_writes_files(ball_study, tmp_path):
    import slicerio
    from LinGuinELogic.tables import table_rows

    logic, result = _track(ball_study)
    week8 = result.segmentationNodes[1]
    segment_id = week8.GetSegmentation().GetNthSegmentID(0)  # Nodule A
    empty = slicer.vtkOrientedImageData()  # what erasing everything in Segment Editor leaves
    empty.SetExtent(0, 9, 0, 9, 0, 9)
    empty.AllocateScalars(vtk.VTK_UNSIGNED_CHAR, 1)
    empty.GetPointData().GetScalars().Fill(0)
    ijk_to_ras = vtk.vtkMatrix4x4()
    ball_study.volumes[1].GetIJKToRASMatrix(ijk_to_ras)
    empty.SetImageToWorldMatrix(ijk_to_ras)
    slicer.vtkSlicerSegmentationsModuleLogic.SetBinaryLabelmapToSegment(
        empty, week8, segment_id, slicer.vtkSlicerSegmentationsModuleLogic.MODE_REPLACE)
    nodes_before = ball_study.scene.GetNumberOfNodes()
    rows = logic.remeasure(result.tableNode)
    assert ball_study.scene.GetNumberOfNodes() == nodes_before  # no temporary node left behind
    assert rows[1]["status"] == "not_found" and not rows[1]["volume_ml"]
    assert table_rows(result.tableNode)[1]["status"] == "not_found"
    assert rows[3]["status"] == "prompt" and rows[4]["status"] == "found"

    out = logic.export(result.tableNode, tmp_path / "export")
    names = {p.name for p in out.iterdir()}
    assert {"labels", "segmentations", "trajectory.csv", "trajectory.png", "run.json"} <= names
    assert sorted(p.name for p in (out / "labels").iterdir()) == sorted(f"{n}.nii.gz" for n in ball_study.names)
    seg = slicerio.read_segmentation(str(out / "segmentations" / "week_16.seg.nrrd"))
    assert sorted(s["name"] for s in seg["segments"]) == ["Nodule A", "Nodule B"]
    assert all("LinGuinE.TrackingID" in s.get("tags", {}) for s in seg["segments"])
    csv_lines = (out / "trajectory.csv").read_text().splitlines()
    assert len(csv_lines) == 7 and "not_found" in csv_lines[2]
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["registration"] == FAST["registration"]


def test_headless_logics_live_as_long_as_their_scene():
    import gc

    from LinGuinELogic.scene import application_logic, headless_scene

    deleted = []
    scene = headless_scene()
    scene.AddObserver(vtk.vtkCommand.DeleteEvent, lambda *_: deleted.append(True))
    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "v")
    assert application_logic(node.GetScene()).GetModuleLogic("Sequences") is not None
    del scene
    gc.collect()
    assert deleted and node.GetScene() is None  # the logics no longer hold the scene


def test_scene_bundle_save_and_reload(ball_study, tmp_path):
    from LinGuinELogic import LinGuinELogic
    from LinGuinELogic.scene import application_logic, headless_scene
    from LinGuinELogic.tables import table_rows

    logic, result = _track(ball_study)
    before = table_rows(result.tableNode)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    app = application_logic(ball_study.scene)
    assert app.SaveSceneToSlicerDataBundleDirectory(str(bundle))
    mrb = tmp_path / "study.mrb"
    assert app.Zip(str(mrb), str(bundle)) and mrb.stat().st_size > 0

    scene = headless_scene()
    reopen = application_logic(scene)
    (tmp_path / "unpacked").mkdir()
    assert reopen.OpenSlicerDataBundle(str(mrb), str(tmp_path / "unpacked"))
    # The reopened scene's own tables (slicer.util.getNodesByClass reads slicer.mrmlScene's).
    tables = [scene.GetNthNodeByClass(i, "vtkMRMLTableNode")
              for i in range(scene.GetNumberOfNodesByClass("vtkMRMLTableNode"))]
    tables = [t for t in tables if t.GetAttribute("LinGuinE.Role") == "trajectory"]
    assert len(tables) == 1 and tables[0] is not result.tableNode
    # A saved table keeps 6 significant digits (LinGuinE/README.md).
    assert table_rows(tables[0]) == [{k: float(f"{v:.6g}") if isinstance(v, float) else v for k, v in row.items()}
                                     for row in before]
    again = LinGuinELogic(scene).remeasure(tables[0])
    assert [r["volume_ml"] for r in again] == pytest.approx([r["volume_ml"] for r in before])
    volume, seg, segment_id = LinGuinELogic.rowTarget(tables[0], 5)
    assert volume.GetName() == "week_16" and volume.GetScene() is scene and segment_id is not None
    assert seg.GetSegmentation().GetSegment(segment_id).GetName() == "Nodule B"


def test_sequence_of_volumes_is_a_study(ball_study):
    from LinGuinELogic import LinGuinELogic
    from LinGuinELogic.tables import table_rows
    from slicer_fixtures import sequences_logic

    scene = ball_study.scene
    sequence = scene.AddNewNodeByClass("vtkMRMLSequenceNode", "study sequence")
    sequence.SetIndexName("visit")
    sequence.SetIndexUnit("")
    for k, volume in enumerate(ball_study.volumes):
        sequence.SetDataNodeAtValue(volume, str(k))
    browser = scene.AddNewNodeByClass("vtkMRMLSequenceBrowserNode", "browser")
    browser.SetAndObserveMasterSequenceNodeID(sequence.GetID())
    sequences_logic(scene).UpdateProxyNodesFromSequences(browser)
    browser.SetSelectedItemNumber(0)
    proxy = browser.GetProxyNode(sequence)
    # Placed while the browser showed item 0: Slicer associates the point with the proxy node.
    for i in range(ball_study.points.GetNumberOfControlPoints()):
        ball_study.points.SetNthControlPointAssociatedNodeID(i, proxy.GetID())
    for volume in list(ball_study.volumes):
        scene.RemoveNode(volume)  # the sequence holds its own copies

    logic = LinGuinELogic(scene)
    result = logic.track(volumeNodes=[sequence], promptNode=ball_study.points, **FAST)
    assert len(result.segmentationNodes) == 3
    # Browsed on after placing: the item noted at placement still decides (the GUI notes it).
    from LinGuinELogic.scene import SEQUENCE_ITEM_ATTRIBUTE

    browser.SetSelectedItemNumber(2)
    assert all(p.lesion.scan_id == "week_16" for p in logic.prepare([sequence], ball_study.points).prompts)
    for i in range(ball_study.points.GetNumberOfControlPoints()):
        point_id = ball_study.points.GetNthControlPointID(i)
        ball_study.points.SetAttribute(f"{SEQUENCE_ITEM_ATTRIBUTE}.{point_id}", "0")
    assert all(p.lesion.scan_id == "baseline" for p in logic.prepare([sequence], ball_study.points).prompts)
    rows = table_rows(result.tableNode)
    assert [r["scan"] for r in rows[:3]] == ["baseline", "week_8", "week_16"]
    assert [r["status"] for r in rows] == ["prompt", "found", "found"] * 2
    assert [r["when"] for r in rows[:3]] == ["visit 0", "visit 1", "visit 2"]
    # Row -> the sequence item itself; re-measure reads the items back.
    volume, _, segment_id = logic.rowTarget(result.tableNode, 2)
    assert volume is sequence.GetNthDataNode(2) and segment_id
    assert [r["volume_ml"] for r in logic.remeasure(result.tableNode)] == pytest.approx(
        [r["volume_ml"] for r in rows])


@pytest.mark.slow
def test_batch_snippet_on_a_generated_study(tmp_path):
    """The README's batch snippet, as written, with the default classical backends."""
    from LinGuinELogic import LinGuinELogic
    from LinGuinELogic.scene import headless_scene

    from LinGuinELib.geometry import lps_to_ras
    from LinGuinELib.study.manifest import load_manifest
    from LinGuinELib.synthetic import make_study

    study = load_manifest(make_study(tmp_path / "study", n_scans=2, n_lesions=1, seed=3,
                                     shape_zyx=(40, 80, 80), spacing=(3.0, 3.0, 4.0)))
    scene = headless_scene()
    logic = LinGuinELogic(scene)
    v0, v1 = (logic.loadVolume(scan.path, scan.id) for scan in study.scans)
    pointListNode = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "prompts")
    lesion = study.lesions[0]
    index = pointListNode.AddControlPoint(*lps_to_ras(lesion.points_lps[0]), lesion.id)
    pointListNode.SetNthControlPointAssociatedNodeID(index, {"T0": v0, "T1": v1}[lesion.scan_id].GetID())

    result = logic.track(volumeNodes=[v0, v1], promptNode=pointListNode,
                         registration="classical", segmentation="classical")
    assert [n.IsA("vtkMRMLSegmentationNode") for n in result.segmentationNodes] == [True, True]
    assert result.tableNode.IsA("vtkMRMLTableNode")
    assert result.tableNode.GetTable().GetNumberOfRows() == 2
    prepared_ids = [s.id for s in result.trackingResult.study.scans]
    assert prepared_ids == [s.id for s in study.scans]  # file dates -> same order as the manifest
    # The in-memory images the engine saw have the geometry SimpleITK reads from the files.
    import SimpleITK as sitk
    from LinGuinELogic.volumes import volume_to_sitk
    for node, scan in zip((v0, v1), study.scans):
        ours, theirs = volume_to_sitk(node), sitk.ReadImage(str(scan.path))
        assert ours.GetSize() == theirs.GetSize()
        assert np.allclose(ours.GetOrigin(), theirs.GetOrigin(), atol=1e-4)
        assert np.allclose(ours.GetDirection(), theirs.GetDirection(), atol=1e-6)
        assert np.allclose(ours.GetSpacing(), theirs.GetSpacing(), atol=1e-6)
        assert np.array_equal(sitk.GetArrayViewFromImage(ours), sitk.GetArrayViewFromImage(theirs))


def test_row_focus_is_the_mask_centroid_in_ras(ball_study):
    from LinGuinELogic import LinGuinELogic

    _, result = _track(ball_study)
    keys = [(lesion, name) for lesion in ("Nodule A", "Nodule B") for name in ball_study.names]
    for row, key in enumerate(keys):
        focus = LinGuinELogic.rowFocusRAS(result.tableNode, row)
        assert focus is not None
        assert np.linalg.norm(np.array(focus) - ball_study.centres_ras[key]) < 1.0, key


def test_logic_follows_the_scene_of_its_inputs(ball_study):
    from LinGuinELogic import LinGuinELogic
    from LinGuinELogic.scene import headless_scene

    logic = LinGuinELogic(headless_scene())  # another scene than the volumes'
    result = logic.track(volumeNodes=ball_study.volumes, promptNode=ball_study.points, **FAST)
    assert all(node.GetScene() is ball_study.scene for node in result.segmentationNodes)
    assert result.tableNode.GetScene() is ball_study.scene


def test_batch_errors_name_the_problem(ball_study):
    from LinGuinELogic import LinGuinELogic

    logic = LinGuinELogic(ball_study.scene)
    with pytest.raises(InputError, match="registration backend 'nope' is unknown"):
        logic.track(volumeNodes=ball_study.volumes, promptNode=ball_study.points, registration="nope")
    with pytest.raises(InputError, match="mode"):
        logic.track(volumeNodes=ball_study.volumes, promptNode=ball_study.points, mode="sideways")
    with pytest.raises(InputError, match="promptNode is None"):
        logic.track(volumeNodes=ball_study.volumes, promptNode=None)
    assert ball_study.scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode") == 0


@pytest.mark.lidc
def test_real_ct_geometry_and_prompt_through_slicer(lidc_dir, tmp_path):
    """A real chest CT read by Slicer's reader reaches the engine (in this process, or as the files
    a tracking process reads) with SimpleITK's own geometry."""
    import SimpleITK as sitk
    from LinGuinELogic import LinGuinELogic
    from LinGuinELogic.scene import headless_scene
    from LinGuinELogic.volumes import write_volume_nrrd

    from LinGuinELib.geometry import index_zyx_to_physical, lps_to_ras

    logic = LinGuinELogic(headless_scene())
    ct = logic.loadVolume(lidc_dir / "LIDC-IDRI-0001_ct.nii.gz", "ct0")
    ct_again = logic.loadVolume(lidc_dir / "LIDC-IDRI-0001_ct.nii.gz", "ct1")
    # the same image twice is refused (another date must be another scan): one corner voxel differs
    from vtk.util import numpy_support

    numpy_support.vtk_to_numpy(ct_again.GetImageData().GetPointData().GetScalars())[0] += 1
    ct_again.GetImageData().Modified()
    truth = sitk.ReadImage(str(lidc_dir / "LIDC-IDRI-0001_consensus2.nii.gz"))
    centre_lps = index_zyx_to_physical(truth, np.argwhere(sitk.GetArrayViewFromImage(truth) > 0).mean(axis=0))[0]
    points = logic.scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "nodule")
    index = points.AddControlPoint(*lps_to_ras(centre_lps), "nodule")
    points.SetNthControlPointAssociatedNodeID(index, ct.GetID())

    prepared = logic.prepare([ct, ct_again], points, voxels=True)
    write_volume_nrrd(ct, tmp_path / "ct0.nhdr")  # what a tracking process reads instead
    theirs = sitk.ReadImage(str(lidc_dir / "LIDC-IDRI-0001_ct.nii.gz"))
    for ours in (prepared.study.scans[0].image, sitk.ReadImage(str(tmp_path / "ct0.nhdr"))):
        assert ours.GetSize() == theirs.GetSize()
        assert np.allclose(ours.GetOrigin(), theirs.GetOrigin(), atol=1e-3)
        assert np.allclose(ours.GetSpacing(), theirs.GetSpacing(), atol=1e-5)
        assert np.allclose(ours.GetDirection(), theirs.GetDirection(), atol=1e-6)
        assert np.array_equal(sitk.GetArrayViewFromImage(ours), sitk.GetArrayViewFromImage(theirs))
    lesion = prepared.study.lesions[0]
    assert lesion.scan_id == "ct0"
    assert np.allclose(lesion.points_lps[0], centre_lps, atol=1e-6)
