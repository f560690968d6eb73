#!/usr/bin/env python
"""Speed of one study: where the time goes, and one more lesion on a warmed study.

    python scripts/bench_speed.py STUDY.json [--repeats 3]          # the `linguine track` pipeline
    python scripts/bench_speed.py STUDY.json --session              # warm, then add each lesion
    python scripts/bench_speed.py STUDY.json --study-worker         # the same through the Slicer panel's worker
    python scripts/bench_speed.py STUDY.json --cli                  # `linguine -q track` itself, by stage

Each run is a fresh child process (imports and peak memory are its own). The pipeline run does
what `linguine track` does (manifest, preflight, track, write) and reports its stage breakdown:
start-up (imports, manifest), preflight (OUT and file checks, the prompted scans read), tracking
(with the wall time during which a registration or a segmentation ran), writing, and the share of
the total spent outside registration and segmentation. ``scripts/benchmark.py`` prints the same breakdown for every
study it tracks (``speed_record`` / ``speed_table`` below). Timings on a shared machine are
noisy: compare runs made back to back, and read the CPU seconds next to the wall.

``--cli`` runs the command itself (``linguine -q track STUDY --out OUT``) in the child and gives wall
and CPU seconds (all threads) of its start-up (until tracking starts), tracking and writing. It hooks
only the progress bar and the pipeline's writer, so any version of the command can be timed alike:
``--code CHECKOUT`` times another checkout's ``LinGuinELib`` (e.g. main before a change), back to back.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

START = time.perf_counter()
CPU_START = time.process_time()
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def peak_rss_mb() -> float:
    """Peak resident memory of this process (VmHWM: starts afresh at exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def speed_record(result, started: float, tracking_started: float, finished: float,
                 preflight_s: float = 0.0) -> dict:
    """Stage breakdown of one pipeline run (perf_counter stamps: process start, tracking start, end;
    ``preflight_s``: the part of start -> tracking spent in ``preflight``)."""
    total = finished - started
    method = result.walls.get("registration_or_segmentation", float("nan"))
    return {
        "total_s": total,
        "startup_s": tracking_started - started - preflight_s,
        "preflight_s": preflight_s,
        "track_s": result.walls.get("track", float("nan")),
        "write_s": result.walls.get("write", float("nan")),
        "registration_or_segmentation_s": method,
        "outside_share": (total - method) / total,
        "stage_thread_s": {k: round(v, 3) for k, v in result.timings.items()},
        "cpu_s": time.process_time(),
        "peak_rss_mb": peak_rss_mb(),
    }


def speed_table(records: list[dict]) -> str:
    """Markdown table of ``speed_record``s (``study`` and ``speed`` keys)."""
    lines = ["| study | process s | total s | start-up s | preflight s | tracking s | writing s | reg.+seg. wall s "
             "| outside reg.+seg. | CPU s | peak MB |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        s = r["speed"]
        process = f"{s['process_s']:.1f}" if "process_s" in s else ""
        lines.append(f"| {r['study']} | {process} | {s['total_s']:.1f} | {s['startup_s']:.1f} "
                     f"| {s.get('preflight_s', 0):.1f} "
                     f"| {s['track_s']:.1f} "
                     f"| {s['write_s']:.1f} | {s['registration_or_segmentation_s']:.1f} "
                     f"| {100 * s['outside_share']:.0f}% | {s['cpu_s']:.1f} | {s['peak_rss_mb']:.0f} |")
    return "\n".join(lines)


def pipeline_worker(manifest: Path, out: Path) -> dict:
    """What `linguine track STUDY --out OUT` does, timed."""
    from LinGuinELib.config import TrackingConfig
    from LinGuinELib.registry import check_config_options
    from LinGuinELib.study.manifest import load_manifest
    from LinGuinELib.study.preflight import preflight

    config = TrackingConfig()
    check_config_options(config)
    study = load_manifest(manifest)
    checked = time.perf_counter()
    preflight(study, out)
    preflight_s = time.perf_counter() - checked
    from LinGuinELib.pipeline import run_tracking  # as the command: after the checks

    tracking_started = time.perf_counter()
    result, _ = run_tracking(study, out, config)
    speed = speed_record(result, START, tracking_started, time.perf_counter(), preflight_s)
    return {"study": study.patient_id, "speed": speed}


def cli_worker(manifest: Path, out: Path) -> dict:
    """`linguine -q track` in this process, stamped when tracking starts (the progress bar is made)
    and when writing starts (the pipeline calls its writer)."""
    import contextlib
    import io

    from LinGuinELib.cli import options

    stamps: dict[str, tuple[float, float]] = {}
    bar_class = options.TqdmProgress

    class StampedBar(bar_class):  # type: ignore[misc, valid-type]
        def __init__(self, *args, **kwargs) -> None:
            stamps["tracking"] = (time.perf_counter(), time.process_time())
            pipeline = sys.modules["LinGuinELib.pipeline"]
            write = pipeline.write_outputs

            def stamped_write(*a, **k):
                stamps["writing"] = (time.perf_counter(), time.process_time())
                return write(*a, **k)

            pipeline.write_outputs = stamped_write
            super().__init__(*args, **kwargs)

    options.TqdmProgress = StampedBar
    from LinGuinELib.cli.main import main as linguine

    with contextlib.redirect_stdout(io.StringIO()):
        code = linguine(["-q", "track", str(manifest), "--out", str(out)])
    if code:
        sys.exit(f"linguine track exited {code}")
    marks = [(START, CPU_START), stamps["tracking"], stamps["writing"], (time.perf_counter(), time.process_time())]
    stages = {name: {"wall_s": b[0] - a[0], "cpu_s": b[1] - a[1]}
              for name, a, b in zip(("startup", "tracking", "writing"), marks, marks[1:])}
    stages["total"] = {"wall_s": marks[-1][0] - START, "cpu_s": marks[-1][1] - CPU_START}
    import LinGuinELib

    return {"study": str(manifest), "code": str(Path(LinGuinELib.__file__).parents[1]), "cli": stages,
            "peak_rss_mb": peak_rss_mb()}


def cli_table(records: list[dict]) -> str:
    """Markdown table of ``cli_worker`` records: wall / CPU seconds per stage."""
    names = ("startup", "tracking", "writing", "total")
    lines = ["| study | " + " | ".join(f"{n} s (wall / CPU)" for n in names) + " | peak MB |",
             "|---|---|---|---|---|---|"]
    for r in records:
        cells = " | ".join(f"{r['cli'][n]['wall_s']:.2f} / {r['cli'][n]['cpu_s']:.2f}" for n in names)
        lines.append(f"| {Path(r['study']).parent.name} | {cells} | {r['peak_rss_mb']:.0f} |")
    return "\n".join(lines)


def session_worker(manifest: Path) -> dict:
    """Start a session on the study without its lesions, wait for the warm-up, add each lesion."""
    import dataclasses

    from LinGuinELib.config import TrackingConfig
    from LinGuinELib.session import StudySession
    from LinGuinELib.study.manifest import load_manifest

    study = load_manifest(manifest)
    lesions = study.lesions
    session = StudySession(dataclasses.replace(study, lesions=[]), TrackingConfig(),
                           warm_from=list(dict.fromkeys(les.scan_id for les in lesions))).start()
    try:
        t = time.perf_counter()
        session.wait_warm()
        warm_s = time.perf_counter() - t
        added = []
        for lesion in lesions:
            t = time.perf_counter()
            result = session.add_lesion(lesion)
            added.append({"lesion": lesion.id, "wall_s": time.perf_counter() - t,
                          "stage_thread_s": {k: round(v, 3) for k, v in result.timings.items()}})
        calls = session.register_calls
    finally:
        session.close()
    return {"study": study.patient_id, "warm_s": warm_s, "register_calls": calls, "added": added,
            "peak_rss_mb": peak_rss_mb()}


def study_worker_run(manifest: Path) -> dict:
    """The Slicer panel's path: ``python -m LinGuinELib.worker`` opened on the study, then the lesions
    sent one more at a time (every lesion so far, as the panel does); walls as the panel sees them,
    process start, pipes and result pickles included. The worker is driven by ``bench_worker.py``'s."""
    import tempfile

    from bench_worker import open_worker, study_records

    from LinGuinELib.config import TrackingConfig
    from LinGuinELib.study.manifest import load_manifest

    study = load_manifest(manifest)
    records = study_records(study)
    worker, warm_s, warm = open_worker(study, TrackingConfig(), Path(tempfile.mkdtemp(prefix="bench-worker-")))
    added = []
    for k in range(len(records)):
        wall, answer = worker.timed({"cmd": "track", "lesions": records[:k + 1]}, {"result", "error"})
        added.append({"lesion": records[k]["id"], "wall_s": wall,
                      "register_calls": answer.get("register_calls"), "reused": answer.get("reused")})
    status = Path(f"/proc/{worker.proc.pid}/status")
    peak = next((int(x.split()[1]) / 1024 for x in status.read_text().splitlines() if x.startswith("VmHWM:")),
                float("nan")) if status.exists() else float("nan")
    worker.close()
    return {"study": study.patient_id, "warm_s": warm_s, "warm_register_calls": warm["register_calls"],
            "added": added, "worker_peak_rss_mb": peak}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("manifest", type=Path)
    p.add_argument("--out", type=Path, default=None, help="OUT folder (default: next to the manifest)")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--session", action="store_true", help="warm a session, then add each lesion")
    p.add_argument("--study-worker", action="store_true",
                   help="open the study in the Slicer panel's worker process, then send each lesion")
    p.add_argument("--cli", action="store_true", help="time `linguine -q track` itself, stage by stage")
    p.add_argument("--code", type=Path, default=None,
                   help="with --cli: time the LinGuinELib of this checkout (default: this one)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.study_worker:
        for _ in range(args.repeats):
            print(json.dumps(study_worker_run(args.manifest)))
        return
    if args.worker:
        out = args.out or args.manifest.parent / "result_speed"
        if args.cli:
            if args.code:
                sys.path.insert(0, str(args.code.resolve()))
            print(json.dumps(cli_worker(args.manifest, out)))
            return
        print(json.dumps(session_worker(args.manifest) if args.session else pipeline_worker(args.manifest, out)))
        return
    records = []
    for _ in range(args.repeats):
        cmd = [sys.executable, __file__, str(args.manifest), "--worker"] + (["--session"] if args.session else [])
        cmd += (["--cli"] if args.cli else []) + (["--code", str(args.code)] if args.code else [])
        cmd += ["--out", str(args.out)] if args.out else []
        began = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        process_s = time.perf_counter() - began  # as a user waits: interpreter start and exit too
        if proc.returncode != 0:
            sys.exit(proc.stderr[-3000:])
        records.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        if not args.session and not args.cli:
            records[-1]["speed"]["process_s"] = process_s
        print(json.dumps(records[-1]), file=sys.stderr)
    if args.cli:
        print(cli_table(records))
    elif not args.session:
        print(speed_table(records))


if __name__ == "__main__":
    main()
