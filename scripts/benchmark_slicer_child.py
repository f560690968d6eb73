"""Slicer module's child-process tracking against the CLI on the same study (needs slicer-core).

The study: three timepoints generated from a real LIDC CT (``../shared/data/lidc``, when present),
else the synthetic phantom. Timed, alternating, ``--repeats`` times each:

- CLI: ``python -m LinGuinELib.cli.main track STUDY.json --out OUT`` (a fresh process: start, read
  the images, track, write OUT);
- child: what the panel's Track does once the volumes are in the scene: MRML -> images, write them
  with the prompts to a temporary folder, run ``python -m LinGuinELib.child`` (this interpreter
  standing in for PythonSlicer), read its result and add the segmentation, table and chart nodes.

Each run's engine seconds are reported too (run.json's ``wall_s.track`` for the CLI, the result's
timings for the child), so the cost outside the engine shows: for the CLI start-up, reading and
writing OUT; for the child conversion, files, process start, result and nodes. The target is
child <= 1.1 x CLI + 3 s. Usage:

    PYTHONPATH=. python scripts/benchmark_slicer_child.py [--repeats 2] [--work /tmp/lg-bench]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LIDC = REPO.parent / "shared" / "data" / "lidc"


def make_study(work: Path) -> Path:
    if (LIDC / "LIDC-IDRI-0001_ct.nii.gz").is_file():
        from LinGuinELib.synthetic.from_ct import make_study_from_ct

        return make_study_from_ct(LIDC / "LIDC-IDRI-0001_ct.nii.gz", LIDC / "LIDC-IDRI-0001_consensus2.nii.gz",
                                  work / "study", n_scans=3, seed=0)
    from LinGuinELib.synthetic import make_study as make_phantom

    return make_phantom(work / "study", n_scans=3, n_lesions=2, seed=0)


def run_cli(manifest: Path, out: Path) -> tuple[float, float]:
    """(wall seconds of the command, seconds its engine took as run.json records them)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "LinGuinELib.cli.main", "-q", "track", str(manifest), "--out", str(out)],
                   check=True, cwd=REPO)
    wall = time.perf_counter() - start
    return wall, float(json.loads((out / "run.json").read_text())["wall_s"]["track"])


def scene_with_study(manifest: Path):
    """The study's volumes and prompts in a headless scene, as a user would have them loaded."""
    from LinGuinELogic import LinGuinELogic
    from LinGuinELogic.scene import headless_scene

    from LinGuinELib.geometry import lps_to_ras
    from LinGuinELib.study.manifest import load_manifest

    study = load_manifest(manifest)
    logic = LinGuinELogic(headless_scene())
    volumes = {scan.id: logic.loadVolume(scan.path, scan.id) for scan in study.scans}
    for scan in study.scans:
        logic.setTimepoint(volumes[scan.id], scan.when)
    points = logic.scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "prompts")
    for lesion in study.lesions:
        index = points.AddControlPoint(*lps_to_ras(lesion.points_lps[0]), lesion.id)
        points.SetNthControlPointAssociatedNodeID(index, volumes[lesion.scan_id].GetID())
    return logic, [volumes[s.id] for s in study.scans], points


def run_child(logic, volumes, points) -> tuple[float, float]:
    """(wall seconds from Track to nodes in the scene, seconds the engine took in the child)."""
    start = time.perf_counter()
    output = logic.track(volumeNodes=volumes, promptNode=points, childProcess=True)
    elapsed = time.perf_counter() - start
    assert output.tableNode.GetTable().GetNumberOfRows() > 0
    return elapsed, sum(output.trackingResult.timings.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    sys.path[:0] = [str(REPO), str(REPO / "LinGuinE")]
    work = args.work or Path(tempfile.mkdtemp(prefix="lg-bench-child-"))
    manifest = make_study(work)
    logic, volumes, points = scene_with_study(manifest)
    cli, child, cli_engine, child_engine = [], [], [], []
    for k in range(args.repeats):
        wall, engine = run_cli(manifest, work / f"out{k}")
        cli.append(wall)
        cli_engine.append(engine)
        wall, engine = run_child(logic, volumes, points)
        child.append(wall)
        child_engine.append(engine)
        print(f"run {k + 1}: CLI {cli[-1]:.1f} s (engine {cli_engine[-1]:.1f} s), "
              f"child {child[-1]:.1f} s (engine {child_engine[-1]:.1f} s)", flush=True)
    c, h = statistics.median(cli), statistics.median(child)
    record = {"study": str(manifest), "cli_s": cli, "child_s": child, "cli_engine_s": cli_engine,
              "child_engine_s": child_engine, "cli_median_s": round(c, 2), "child_median_s": round(h, 2),
              "overhead_vs_cli_s": round(h - c, 2),
              "child_outside_engine_s": round(statistics.median(a - b for a, b in zip(child, child_engine)), 2),
              "target_s": round(1.1 * c + 3.0, 2), "within_target": h <= 1.1 * c + 3.0}
    print(json.dumps(record, indent=1))
    (work / "benchmark_child.json").write_text(json.dumps(record, indent=1))
    return 0 if record["within_target"] else 1


if __name__ == "__main__":
    sys.exit(main())
