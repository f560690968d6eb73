#!/usr/bin/env python
"""The Slicer panel's study worker: one more lesion, and a change of settings, as the panel sees them.

    python scripts/bench_worker.py STUDY.json [--change boost=true] [--repeats 2]
    python scripts/bench_worker.py STUDY.json --segmenter-calls     # first vs later calls per scan
    python scripts/bench_worker.py STUDY.json --panel               # the panel's path (needs slicer-core)

Default: starts ``python -m LinGuinELib.worker`` on the study (scans given by path, as the panel's
temporary copies would be), waits for the warm-up, sends the lesions one more at a time (each
command with every lesion so far, as the panel does), then changes one setting two ways, back to
back: ``configure`` on the open worker (this release) and a new worker opened with the new
settings (what the panel did before: warm-up and every lesion again). Walls include the process,
pipes and result pickles. ``--segmenter-calls`` times, in this process and with nothing else
running, each scan's segmenter call at the lesions' mapped points three times over: whether a
scan's first call costs more than the later ones (per-scan set-up worth warming). Prints JSON
lines and the load average; compare only runs made back to back. ``--panel`` runs what the panel
does on real MRML (slicer-core, this interpreter standing in for PythonSlicer): the volumes loaded
into a scene, ``warmStudy`` (its time on the main thread: converting and writing the volumes), then
one Apply per lesion with every lesion so far (prepare on the main thread, the worker's run polled,
the result added to the scene).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


class Worker:
    """The worker process behind pipes."""

    def __init__(self, folder: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.folder = folder
        self.log = open(folder / "worker.log", "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "LinGuinELib.worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log, text=True, env=env, cwd=str(folder))
        self.next_id = 0

    def send(self, command: dict) -> int:
        self.next_id += 1
        self.proc.stdin.write(json.dumps({**command, "id": self.next_id}) + "\n")
        self.proc.stdin.flush()
        return self.next_id

    def until(self, ident: int, stages: set[str]) -> dict:
        for line in self.proc.stdout:
            answer = json.loads(line)
            if answer.get("id") == ident and answer["stage"] in stages:
                if answer["stage"] == "error":
                    sys.exit(f"worker error: {answer['message']}")
                return answer
        sys.exit((self.folder / "worker.log").read_text()[-3000:])

    def timed(self, command: dict, stages: set[str]) -> tuple[float, dict]:
        t = time.perf_counter()
        answer = self.until(self.send(command), stages)
        return time.perf_counter() - t, answer

    def close(self) -> None:
        self.send({"cmd": "close"})
        self.proc.stdin.close()
        self.proc.wait(60)
        self.log.close()


def study_records(study) -> list[dict]:
    """The study's lesions as the worker's ``track`` command takes them (the panel sends the same)."""
    records = []
    for les in study.lesions:
        record = {"id": les.id, "scan": les.scan_id}
        if les.points_lps is not None:
            record["points_lps"] = les.points_lps.tolist()
        if les.mask_path is not None:
            record["mask"] = str(Path(les.mask_path).resolve())
        records.append(record)
    return records


def open_worker(study, config, folder: Path) -> tuple[Worker, float, dict]:
    """A worker opened on the study with ``config``; (worker, seconds to warm, warm answer)."""
    scans = [{"id": s.id, "image": str(Path(s.path).resolve()), "date": s.date.isoformat() if s.date else None,
              "timepoint": s.timepoint} for s in study.scans]
    (folder / "study.json").write_text(json.dumps({"patient_id": study.patient_id, "scans": scans, "lesions": [],
                                                   "config": config.to_dict(), "plugins": []}))
    t = time.perf_counter()
    worker = Worker(folder)
    ident = worker.send({"cmd": "open", "workdir": str(folder),
                         "warm_from": list(dict.fromkeys(les.scan_id for les in study.lesions))})
    warm = worker.until(ident, {"warm"})
    return worker, time.perf_counter() - t, warm


def worker_run(manifest: Path, change: dict) -> dict:
    from LinGuinELib.config import TrackingConfig, first_changed_stage
    from LinGuinELib.study.manifest import load_manifest

    study = load_manifest(manifest)
    records = study_records(study)
    base, changed = TrackingConfig(), TrackingConfig(**change)
    out: dict = {"study": study.patient_id, "change": change, "stage": first_changed_stage(base, changed),
                 "load_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="bench-worker-") as tmp:
        worker, out["warm_s"], warm = open_worker(study, base, Path(tmp))
        out["warm_register_calls"] = warm["register_calls"]
        out["added"] = []
        for k in range(len(records)):
            wall, answer = worker.timed({"cmd": "track", "lesions": records[:k + 1]}, {"result", "error"})
            out["added"].append({"lesion": records[k]["id"], "wall_s": round(wall, 2),
                                 "register_calls": answer["register_calls"], "reused": answer["reused"]})
        # this release: the open worker takes the new settings with the next run
        wall, answer = worker.timed({"cmd": "track", "lesions": records, "config": changed.to_dict()},
                                    {"result", "error"})
        out["configure_then_track_s"] = round(wall, 2)
        out["configure_register_calls"] = answer["register_calls"]
        worker.close()
    with tempfile.TemporaryDirectory(prefix="bench-worker-") as tmp:
        # before: a new worker for the new settings, warmed, then every lesion again
        t = time.perf_counter()
        worker, _, warm = open_worker(study, changed, Path(tmp))
        wall, answer = worker.timed({"cmd": "track", "lesions": records}, {"result", "error"})
        out["restart_then_track_s"] = round(time.perf_counter() - t, 2)
        out["restart_register_calls"] = answer["register_calls"]
        worker.close()
    out["load_after"] = os.getloadavg()[0]
    return out


def segmenter_calls(manifest: Path) -> dict:
    """Each scan's segmenter call at the lesions' mapped points, 3 rounds, nothing else running."""
    import numpy as np

    from LinGuinELib.config import TrackingConfig
    from LinGuinELib.session import StudySession
    from LinGuinELib.study.manifest import load_manifest

    study = load_manifest(manifest)
    with StudySession(study, TrackingConfig()) as session:
        result = session.track()
        clicks = {les.id: les.points_lps[0] for les in study.lesions}
        points = [(lid, sid, res.propagated_point_lps if res.propagated_point_lps is not None else clicks[lid])
                  for (lid, sid), res in result.results.items()]
    with StudySession(dataclasses.replace(study, lesions=[])) as session:  # new images, new segmenter
        session.wait_warm()
        run = session._run
        rounds = []
        for _ in range(3):
            row = {}
            for lid, sid, point in points:
                image = run.image(sid)
                t, c = time.perf_counter(), time.thread_time()
                run.segmenter.segment(image, np.asarray(point)[None])
                row[f"{lid}@{sid}"] = [round(time.perf_counter() - t, 3), round(time.thread_time() - c, 3)]
            rounds.append(row)
    return {"study": study.patient_id, "wall_and_cpu_s_per_round": rounds, "load": os.getloadavg()[0]}


def panel_run(manifest: Path) -> dict:
    """The panel's path on real MRML: warmStudy, then one Apply per added lesion."""
    sys.path.insert(0, str(REPO / "LinGuinE"))
    from LinGuinELogic import LinGuinELogic

    from LinGuinELib.config import TrackingConfig
    from LinGuinELib.geometry import lps_to_ras
    from LinGuinELib.study.manifest import load_manifest

    study = load_manifest(manifest)
    logic = LinGuinELogic()
    nodes = {s.id: logic.loadVolume(Path(s.path).resolve(), s.id) for s in study.scans}
    points = logic.scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "lesions")
    config, out = TrackingConfig(), {"study": study.patient_id, "load_before": os.getloadavg()[0], "applies": []}
    t = time.perf_counter()
    worker = logic.warmStudy(list(nodes.values()), config, warmFrom=[les.scan_id for les in study.lesions])
    out["warm_study_main_thread_s"] = round(time.perf_counter() - t, 2)
    while not worker.warm:
        if not worker.alive:
            sys.exit("\n".join(worker.log_tail()))
        worker.poll()
        time.sleep(0.05)
    out["warm_s"] = round(time.perf_counter() - t, 2)
    for lesion in study.lesions:
        index = points.AddControlPoint(*lps_to_ras(lesion.points_lps[0]), lesion.id)
        points.SetNthControlPointAssociatedNodeID(index, nodes[lesion.scan_id].GetID())
        t = time.perf_counter()
        job = logic.startTracking(logic.prepare(list(nodes.values()), points), config, keepStudyOpen=True)
        started = time.perf_counter() - t
        while not job.finished:
            job.poll()
            time.sleep(0.05)
        if job.error:
            sys.exit(job.error)
        t_add = time.perf_counter()
        logic.finishTracking(job)
        out["applies"].append({"lesion": lesion.id, "main_thread_start_s": round(started, 2),
                               "add_to_scene_s": round(time.perf_counter() - t_add, 2),
                               "wall_s": round(time.perf_counter() - t, 2), "reused": job.reply.get("reused")})
    logic.closeStudyWorker()
    out["load_after"] = os.getloadavg()[0]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("manifest", type=Path)
    p.add_argument("--change", default="boost=true", help="the setting changed, NAME=JSON (default boost=true)")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--segmenter-calls", action="store_true", help="first vs later segmenter calls per scan")
    p.add_argument("--panel", action="store_true", help="the panel's path on real MRML (needs slicer-core)")
    args = p.parse_args()
    name, _, value = args.change.partition("=")
    for _ in range(args.repeats):
        if args.panel:
            record = panel_run(args.manifest)
        elif args.segmenter_calls:
            record = segmenter_calls(args.manifest)
        else:
            record = worker_run(args.manifest, {name: json.loads(value)})
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
