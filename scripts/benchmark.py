#!/usr/bin/env python
"""Benchmark: time per stage, peak memory and accuracy of `linguine track` against known truth.

    python scripts/benchmark.py                    # generated study + LIDC-derived studies if present
    python scripts/benchmark.py --lidc-only --scans 5 --mode chain

Each study is tracked in a fresh child process, so its peak resident memory is its own
(VmHWM of that process). Accuracy per (lesion, propagated scan): Dice and centroid
distance against the study's truth labelmaps. LIDC-derived studies (real CT, real nodule, with
pose change, deformation, slice-thickness change and growth/shrinkage applied) are built in
--work from ``../shared/data/lidc`` when it exists; nothing is copied into the repository.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

START = time.perf_counter()  # the speed breakdown counts start-up (imports) too
REPO = Path(__file__).resolve().parents[1]
LIDC = REPO.parent / "shared" / "data" / "lidc"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def peak_rss_mb() -> float:
    """This process's own peak resident memory. ru_maxrss is carried across fork+exec on Linux
    (a child would report its parent's peak), so read VmHWM, which starts afresh at exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(manifest: Path, out: Path, args: argparse.Namespace) -> None:
    """Child process: track one study, write outputs, score it, print one JSON line."""
    from bench_speed import speed_record

    from LinGuinELib.config import TrackingConfig
    from LinGuinELib.evaluation.evaluate import evaluate_result
    from LinGuinELib.pipeline import run_tracking
    from LinGuinELib.study.manifest import load_manifest

    config = TrackingConfig(registration=args.registration, segmentation=args.segmentation,
                            mode=args.mode, boost=args.boost)
    study = load_manifest(manifest)
    start = time.perf_counter()
    result, _ = run_tracking(study, out, config)
    wall = time.perf_counter() - start
    speed = speed_record(result, START, start, time.perf_counter())
    peak_mb = peak_rss_mb()
    pairs = [{"lesion": r["lesion"], "scan": r["scan"], "status": r["status"], "dice": r["dice"],
              "centre_mm": r["centre_distance_mm"], "outcome": r["outcome"]} for r in evaluate_result(result)]
    print(json.dumps({"study": study.patient_id, "wall_s": wall, "peak_rss_mb": peak_mb,
                      "timings_s": result.timings, "scans": len(study.scans),
                      "size": list(result.references[study.scans[0].id].GetSize()),
                      "lesions": len(study.lesions), "pairs": pairs, "speed": speed}))


def build_studies(args: argparse.Namespace) -> list[Path]:
    from LinGuinELib.synthetic import REALISTIC_SHAPE_ZYX, REALISTIC_SPACING_XYZ, make_study, make_study_from_ct

    work = Path(args.work)
    manifests = []
    if args.realistic:
        target = work / f"phantom512_s{args.seed}_p{args.prompt_scan}"
        manifest = target / "study.json"
        if not manifest.exists():
            manifest = make_study(target, n_scans=args.scans, n_lesions=3, seed=args.seed,
                                  shape_zyx=REALISTIC_SHAPE_ZYX, spacing=REALISTIC_SPACING_XYZ,
                                  prompt_scan=args.prompt_scan)
        manifests.append(Path(manifest))
    elif not args.lidc_only:
        manifests.append(make_study(work / f"generated_p{args.prompt_scan}", n_scans=args.scans, seed=args.seed,
                                    prompt_scan=args.prompt_scan))
    if LIDC.exists() and not args.realistic:
        for case in ("LIDC-IDRI-0001", "LIDC-IDRI-0002"):
            for seed in range(args.seed, args.seed + args.repeats):
                suffix = "" if args.prompt_scan == 0 else f"_p{args.prompt_scan}"
                target = work / f"{case}_s{seed}{suffix}"
                manifest = target / "study.json"
                if not manifest.exists():
                    t = time.perf_counter()
                    manifest = make_study_from_ct(LIDC / f"{case}_ct.nii.gz", LIDC / f"{case}_consensus2.nii.gz",
                                                  target, n_scans=args.scans, seed=seed, prompt_scan=args.prompt_scan)
                    print(f"built {target.name} in {time.perf_counter() - t:.0f} s", file=sys.stderr)
                manifests.append(Path(manifest))
    elif args.lidc_only:
        sys.exit(f"benchmark: {LIDC} not found")
    return manifests


def summarise(records: list[dict]) -> str:
    lines = ["| study | size (x,y,z) | scans | lesions | track s | registration s | segmentation s | peak MB "
             "| median Dice | median centre mm | found |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    all_dice, all_dist = [], []
    for r in records:
        prop = [p for p in r["pairs"] if p["status"] != "prompt" and p["outcome"] != "correct_absent"
                and np.isfinite(p["dice"])]
        dice = [p["dice"] for p in prop]
        dist = [p["centre_mm"] for p in prop if np.isfinite(p["centre_mm"])]
        all_dice += dice
        all_dist += dist
        found = sum(p["outcome"] == "hit" for p in prop)
        lines.append(f"| {r['study']} | {tuple(r['size'])} | {r['scans']} | {r['lesions']} | {r['wall_s']:.1f} "
                     f"| {r['timings_s'].get('registration', 0):.1f} | {r['timings_s'].get('segmentation', 0):.1f} "
                     f"| {r['peak_rss_mb']:.0f} | {np.median(dice) if dice else float('nan'):.3f} "
                     f"| {np.median(dist) if dist else float('nan'):.2f} | {found}/{len(prop)} |")
    lines.append(f"\nAll propagated pairs: median Dice {np.median(all_dice):.3f} "
                 f"(IQR {np.percentile(all_dice, 25):.3f}-{np.percentile(all_dice, 75):.3f}, n={len(all_dice)}), "
                 f"median centre distance {np.median(all_dist):.2f} mm")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", default=str(REPO / "bench_out"), help="where studies and outputs go")
    p.add_argument("--scans", type=int, default=4, help="timepoints per study")
    p.add_argument("--repeats", type=int, default=1, help="LIDC-derived studies per patient (seeds)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lidc-only", action="store_true")
    p.add_argument("--realistic", action="store_true", help="only a 512x512 phantom study with 3 lesions")
    p.add_argument("--prompt-scan", type=int, default=0, help="index (time order) of the prompted scan")
    p.add_argument("--mode", default="direct")
    p.add_argument("--boost", action="store_true")
    p.add_argument("--registration", default="classical")
    p.add_argument("--segmentation", default="classical")
    p.add_argument("--worker", nargs=2, metavar=("MANIFEST", "OUT"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(Path(args.worker[0]), Path(args.worker[1]), args)
        return
    records = []
    for manifest in build_studies(args):
        out = manifest.parent / f"result_{args.mode}{'_boost' if args.boost else ''}"
        cmd = [sys.executable, __file__, "--worker", str(manifest), str(out), "--mode", args.mode,
               "--registration", args.registration, "--segmentation", args.segmentation]
        cmd += ["--boost"] if args.boost else []
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
            continue
        record = json.loads(proc.stdout.strip().splitlines()[-1])
        records.append(record)
        print(f"{record['study']}: {record['wall_s']:.1f} s, peak {record['peak_rss_mb']:.0f} MB", file=sys.stderr)
    Path(args.work).mkdir(parents=True, exist_ok=True)
    (Path(args.work) / f"benchmark_{args.mode}.json").write_text(json.dumps(records, indent=1))
    print(summarise(records))
    from bench_speed import speed_table

    print("\nWhere the time goes (wall; thread-seconds per stage in the JSON):\n" + speed_table(records))


if __name__ == "__main__":
    main()
