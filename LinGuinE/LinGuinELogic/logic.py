"""LinGuinELogic: MRML nodes in, LinGuinELib's engine in the middle, MRML nodes out.

Batch use (Slicer's Python console, or headless with ``pip install slicer-core``)::

    from LinGuinELogic import LinGuinELogic
    logic = LinGuinELogic()
    result = logic.track(volumeNodes=[v0, v1, v2], promptNode=pointListNode,
                         registration="classical", segmentation="classical")
    result.segmentationNodes   # one vtkMRMLSegmentationNode per input volume, same order
    result.tableNode           # vtkMRMLTableNode, one row per (lesion, volume)

``track`` runs the engine in this process, or with ``childProcess=True`` in a child process
(as the GUI does) and waits. The GUI uses the steps one by one: ``prepare`` (MRML -> images),
``startTracking`` (child process), ``poll()`` on the returned job from a QTimer, then
``finishTracking`` on the main thread, which adds the nodes all or nothing.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from LinGuinELib.config import TrackingConfig
from LinGuinELib.errors import Cancelled, InputError
from LinGuinELib.propagation.result import TrackingResult
from LinGuinELib.study.model import Study

from . import record as rec
from .dependencies import backend_choices, ensure_requirements
from .failure import Failure
from .process import ChildTracking
from .prompts import LesionPrompt, check_prompts, lesions_from_points, lesions_from_segments
from .scene import default_scene, in_application, node_ids, place_in_study_of, remove_nodes_added_since
from .segmentations import add_lesion_segment, create_segmentation_node
from .study import StudyVolume, build_scans, list_scene_volumes, study_volumes
from .tables import fill_plot, fill_table
from .volumes import load_volume_file, set_timepoint
from .worker import StudyWorker, WorkerJob, study_key

log = logging.getLogger(__name__)

try:  # Inside Slicer: the standard base (parameter node handling); it needs Qt, so not headless.
    from slicer.ScriptedLoadableModule import ScriptedLoadableModuleLogic as _LogicBase
except ImportError:  # slicer-core: no Qt, no ScriptedLoadableModule

    class _LogicBase:  # type: ignore[no-redef]
        def __init__(self) -> None:
            pass


class TrackingFailed(RuntimeError):
    """The tracking process failed; the message's first line says what failed (``failure``), the
    lines after it are the process's last log lines."""


@dataclass
class PreparedRun:
    """Everything converted from MRML on the main thread, ready for the worker."""

    study: Study
    volumes: list[StudyVolume]
    prompts: list[LesionPrompt]
    name: str


@dataclass
class TrackOutput:
    """What ``track`` leaves in the scene, plus the library result behind it."""

    segmentationNodes: list[Any]
    tableNode: Any
    chartNode: Any
    plotTableNode: Any
    trackingResult: TrackingResult
    lesionNames: dict[str, str] = field(default_factory=dict)


class LinGuinELogic(_LogicBase):
    """Adapts MRML nodes to LinGuinELib and back; holds no algorithm of its own."""

    def __init__(self, scene: Any = None) -> None:
        super().__init__()
        self.scene = scene if scene is not None else default_scene()
        self.studyWorker: StudyWorker | None = None  # the study kept open between runs (see warmStudy)

    def _adoptSceneOf(self, nodes: list[Any]) -> None:
        """Work in the scene the input nodes live in (a script may have made its own scene)."""
        for node in nodes:
            scene = node.GetScene() if node is not None else None
            if scene is not None:
                self.scene = scene
                return

    # --- the study -------------------------------------------------------------------------
    def studyVolumes(self, nodes: list[Any] | None = None) -> list[StudyVolume]:
        """Scalar volumes (all in the scene by default) with their timepoints, in time order.

        Without ``nodes`` this never raises (it feeds the GUI list); with them it validates.
        """
        if nodes is None:
            return list_scene_volumes(self.scene)
        return study_volumes(self.scene, nodes)

    @staticmethod
    def setTimepoint(volumeNode: Any, text: str) -> None:
        set_timepoint(volumeNode, text)

    def loadVolume(self, path: str | Path, name: str | None = None) -> Any:
        """Load an image file as a volume node of this logic's scene (for scripts; works headless too).

        Slicer's loader reads into the application's scene only, whatever scene the script made.
        """
        name = name or Path(path).name.split(".")[0]
        if in_application():
            import slicer

            if self.scene is slicer.mrmlScene:
                return slicer.util.loadVolume(str(path), {"name": name})
        return load_volume_file(self.scene, str(path), name)

    @staticmethod
    def backendChoices(kind: str, options: Callable[[str, type], dict] | None = None, keep: str = ""
                       ) -> list[tuple[str, str | None]]:
        """(name, None) for usable backends, (name, reason) for the others (checked with ``options``);
        ``keep`` (the scene's saved backend) is listed even when it cannot be offered here yet."""
        return backend_choices(kind, options, keep)

    # --- tracking --------------------------------------------------------------------------
    def prepare(self, volumeNodes: list[Any], promptNode: Any, segmentIds: list[str] | None = None,
                name: str = "LinGuinE", voxels: bool = False) -> PreparedRun:
        """Main thread: volumes -> scans (grids; in-memory LPS images only with ``voxels``, which the
        engine needs in this process: a child process reads the volumes' own files), prompt node -> lesions.

        With ``voxels`` the scans are checked here as the CLI and the child process check the scans
        they read (the library's ``load_pixels``): a volume that is not CT in Hounsfield units, or the
        same image given twice (also in another voxel type or flipped), is an ``InputError``. The
        prompts are checked either way, as the CLI checks them: a point outside its volume or in air
        is an ``InputError`` here, before a child process starts or a registration runs."""
        if promptNode is None:
            raise InputError("promptNode is None: place a point per lesion or pick a segmentation")
        if not volumeNodes:
            raise InputError("volumeNodes is empty: give the study's volumes (or a sequence)")
        self._adoptSceneOf([*volumeNodes, promptNode])
        volumes = study_volumes(self.scene, list(volumeNodes))
        scans, inputs = build_scans(volumes, voxels)
        if promptNode.IsA("vtkMRMLSegmentationNode"):
            prompts = lesions_from_segments(self.scene, promptNode, inputs, segmentIds)
        elif promptNode.IsA("vtkMRMLMarkupsNode"):
            prompts = lesions_from_points(promptNode, inputs)
        else:
            raise InputError(f"promptNode '{promptNode.GetName()}' is not a point list or segmentation")
        # The study id goes into tracking ids, file titles and run.json: a run id, never the
        # DICOM patient id or name (no personal data in exports).
        study = Study(f"{name}-{uuid.uuid4().hex[:8]}", scans, [p.lesion for p in prompts])
        if voxels:
            from LinGuinELib.study.preflight import load_pixels

            load_pixels(study)  # every scan is in memory: nothing is read, each one is checked
        check_prompts(prompts, inputs)  # a click in air or off its volume: refused before any work
        return PreparedRun(study, volumes, prompts, name)

    def startTracking(self, prepared: PreparedRun, config: TrackingConfig,
                      environment: dict[str, str] | None = None, plugins: list[str] | None = None,
                      python: str | None = None, keepStudyOpen: bool = False) -> ChildTracking | WorkerJob:
        """Start the engine in a child process; poll the job, then call ``finishTracking``.

        ``environment``: extra variables for the child (``LINGUINE_MODEL_DIR``, ``LINGUINE_API_KEY``);
        ``plugins``: modules the child imports first (backends registered outside LinGuinELib).
        ``keepStudyOpen``: run on the study worker (started now unless ``warmStudy`` started it
        for these volumes; it takes ``config`` whatever settings it had), which stays for the next
        run; else in a one-shot child.
        """
        if keepStudyOpen:
            key = study_key(prepared.volumes, environment, plugins)
            worker = self.studyWorker
            if worker is None or worker.key != key or not worker.alive or worker.busy:
                self.closeStudyWorker()
                try:
                    worker = StudyWorker.start(prepared.study, prepared.volumes, config, key, environment, plugins,
                                               python, warm_from=[les.scan_id for les in prepared.study.lesions])
                except OSError as exc:  # no worker: this run alone, as before
                    log.warning("could not start the study worker (%s); tracking in a one-shot process", exc)
                    return ChildTracking.start(prepared, config, environment, plugins, python)
                self.studyWorker = worker
            return worker.submit(prepared, config)
        return ChildTracking.start(prepared, config, environment, plugins, python)

    def warmStudy(self, volumeNodes: list[Any], config: TrackingConfig, environment: dict[str, str] | None = None,
                  plugins: list[str] | None = None, python: str | None = None,
                  warmFrom: list[str] | None = None) -> StudyWorker:
        """Open the study in the background worker: scans read and pairs registered before any
        lesion comes (from the scans ``warmFrom``, default the first). A worker already open for
        the same volumes and voxels is kept and sent ``config`` (it redoes only what changed
        settings feed); any other is stopped and replaced."""
        self._adoptSceneOf(list(volumeNodes))
        volumes = study_volumes(self.scene, list(volumeNodes))
        key = study_key(volumes, environment, plugins)
        worker = self.studyWorker
        if worker is not None and worker.key == key and worker.alive:
            worker.poll()  # its answers so far: opened, warm
            worker.configure(config)
            return worker
        self.closeStudyWorker()
        scans, _ = build_scans(volumes, voxels=False)
        self.studyWorker = StudyWorker.start(Study("LinGuinE-study", scans, []), volumes, config, key,
                                             environment, plugins, python, warm_from=warmFrom)
        return self.studyWorker

    def closeStudyWorker(self) -> None:
        """Stop the study worker, if any (module cleanup, scene close, other inputs)."""
        worker, self.studyWorker = self.studyWorker, None
        if worker is not None:
            worker.close()

    @staticmethod
    def trackingFailure(job: ChildTracking | WorkerJob) -> Failure | None:
        """Why a finished job failed, for the panel's error dialog: what failed in one line the user
        can act on (bad input: the library's own line), the process's log in the details; None
        when it did not fail (or was cancelled)."""
        failure = job.failure
        return None if failure is None else failure.for_user()

    def finishTracking(self, job: ChildTracking | WorkerJob) -> TrackOutput:
        """Main thread: the finished job's result -> nodes (all or none); the job's files are removed."""
        try:
            if job.cancelled:
                raise Cancelled("tracking was cancelled")
            if not job.finished:
                raise RuntimeError("the tracking job has not finished")
            if job.error is not None:
                raise TrackingFailed(job.error)
            result = job.result()
        finally:
            job.close()
        return self.addResultToScene(result, job.context)

    def track(self, volumeNodes: list[Any], promptNode: Any, segmentIds: list[str] | None = None,
              config: TrackingConfig | None = None, progress: Callable[[Any], None] | None = None,
              name: str = "LinGuinE", childProcess: bool = False, plugins: list[str] | None = None,
              **overrides: Any) -> TrackOutput:
        """Synchronous tracking (batch, tests): see the module docstring.

        ``overrides`` are ``TrackingConfig`` fields (``registration="classical"``, ``mode="chain"``,
        ...) applied on top of ``config`` (default: ``TrackingConfig()``); an unknown name is an
        error. ``childProcess=True`` runs the engine as the GUI does, in a child process, which
        imports ``plugins`` first (modules that register backends of your own).
        """
        from LinGuinELib.propagation.engine import track as run_engine

        config = (config or TrackingConfig()).with_overrides(**overrides)
        if in_application():
            ensure_requirements(prompt=False)
        prepared = self.prepare(volumeNodes, promptNode, segmentIds, name, voxels=not childProcess)
        if not childProcess:
            return self.addResultToScene(run_engine(prepared.study, config, progress), prepared)
        job = self.startTracking(prepared, config, plugins=plugins)
        try:
            while not job.finished:
                time.sleep(0.05)
                for event in job.poll():
                    if progress is not None:
                        progress(event)
            for event in job.poll():
                if progress is not None:
                    progress(event)
        except BaseException:
            job.close()
            raise
        return self.finishTracking(job)

    # --- results -> scene ------------------------------------------------------------------
    def addResultToScene(self, result: TrackingResult, prepared: PreparedRun) -> TrackOutput:
        """Segmentation, table and chart nodes for ``result``: all of them, or none on an error."""
        before = node_ids(self.scene)
        try:
            return self._addResultNodes(result, prepared)
        except BaseException:
            remove_nodes_added_since(self.scene, before)
            raise

    def _addResultNodes(self, result: TrackingResult, prepared: PreparedRun) -> TrackOutput:
        from LinGuinELib.measures.trajectory import trajectory_rows
        from LinGuinELib.outputs.writer import tracking_id

        scene = self.scene
        lesions = []
        for prompt in prepared.prompts:
            lesions.append({
                "id": prompt.lesion.id, "name": prompt.name, "color": list(prompt.color),
                "scan": prompt.lesion.scan_id,
                "tracking_id": tracking_id(result.study.patient_id, prompt.lesion.id),
            })
        segmentations = []
        for volume in prepared.volumes:
            node = create_segmentation_node(scene, volume.node,
                                            f"{volume.node.GetName()} {prepared.name}")
            for les in lesions:
                add_lesion_segment(node, volume.node, les["id"], les["name"], tuple(les["color"]),
                                   result.get(les["id"], volume.scan_id), les["tracking_id"])
            segmentations.append(node)
        table = scene.AddNewNodeByClass("vtkMRMLTableNode", scene.GenerateUniqueName(f"{prepared.name} trajectory"))
        plot_table = scene.AddNewNodeByClass("vtkMRMLTableNode", scene.GenerateUniqueName(f"{prepared.name} plot data"))
        chart = scene.AddNewNodeByClass("vtkMRMLPlotChartNode",
                                       scene.GenerateUniqueName(f"{prepared.name} volume over time"))
        rows = trajectory_rows(result)
        fill_table(table, rows)
        fill_plot(scene, plot_table, chart, rows, [(x["id"], x["name"], tuple(x["color"]))
                                                    for x in lesions])
        rec.write_record(table, result, prepared.volumes, segmentations, lesions, chart, plot_table)
        first_in_scene = next((v.node for v in prepared.volumes if v.in_scene), None)
        if first_in_scene is not None:
            for node in (table, chart, plot_table):
                place_in_study_of(scene, node, first_in_scene)
        return TrackOutput(segmentations, table, chart, plot_table, result,
                           {x["id"]: x["name"] for x in lesions})

    # --- ground truth: re-measure and export -----------------------------------------------
    def remeasure(self, tableNode: Any) -> list[dict]:
        """Recompute the trajectory from the segments as edited; updates table and chart."""
        from LinGuinELib.measures.trajectory import trajectory_rows

        result = rec.rebuild_result(self.scene, tableNode)
        rows = trajectory_rows(result)
        record = rec.read_record(tableNode)
        fill_table(tableNode, rows)
        chart = tableNode.GetNodeReference(rec.CHART_ROLE)
        plot_table = tableNode.GetNodeReference(rec.PLOT_TABLE_ROLE)
        if chart is not None and plot_table is not None:
            fill_plot(self.scene, plot_table, chart, rows,
                      [(x["id"], x["name"], tuple(x["color"])) for x in record["lesions"]])
        return rows

    def export(self, tableNode: Any, outputDirectory: str | Path, dicom: bool | None = None) -> Path:
        """Write labels/*.nii.gz, segmentations/*.seg.nrrd, trajectory.csv/.png, run.json, and for
        volumes from the DICOM database a DICOM SEG + SR each, also added to the database
        (``dicom``: None = when possible, True = required, False = never; see dicom_export)."""
        import slicer

        from LinGuinELib.outputs.names import unique_names
        from LinGuinELib.outputs.safety import check_out, reseal
        from LinGuinELib.outputs.writer import write_outputs

        from .dicom_export import import_into_database, prepare_dicom

        out = check_out(Path(outputDirectory))  # new, empty or an earlier LinGuinE output: never user data
        result = rec.rebuild_result(self.scene, tableNode)
        with_dicom = prepare_dicom(result, rec.run_scans(tableNode), dicom)
        write_outputs(result, out, {"exported_from": "3D Slicer LinGuinE module"}, dicom=with_dicom)
        if with_dicom:
            import_into_database(out / "dicom")
        # The scene's own segmentations carry the user's names, colours and tags: keep those.
        names = unique_names([s.id for s in result.study.scans])
        for info in rec.run_scans(tableNode):
            storage = slicer.vtkMRMLSegmentationStorageNode()
            storage.SetFileName(str(out / "segmentations" / f"{names[info.scan_id]}.seg.nrrd"))
            if not storage.WriteData(info.segmentation):
                raise InputError(f"could not write the segmentation of scan '{info.scan_id}'")
        reseal(out)  # these files are LinGuinE's too: a later export may replace them unless edited
        return out

    @staticmethod
    def rowTarget(tableNode: Any, row: int) -> tuple[Any, Any, str | None]:
        """(volume, segmentation, segment id) shown when a table row is selected."""
        return rec.row_target(tableNode, row)

    @staticmethod
    def rowFocusRAS(tableNode: Any, row: int) -> tuple[float, float, float] | None:
        """The row's mask centroid, else its mapped point (RAS); None when neither exists."""
        return rec.row_focus_ras(tableNode, row)
