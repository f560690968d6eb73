"""`linguine demo`: a synthetic longitudinal study with known truth, tracked with the defaults."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ..config import TrackingConfig
from ..evaluation.evaluate import evaluate_result
from ..outputs.safety import check_out, claim_out
from ..pipeline import run_tracking
from ..study.manifest import load_manifest
from ..study.preflight import preflight
from .options import TqdmProgress, add_tracking_options, config_from_args, out_path
from .track import print_table


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="generate a synthetic study, track it, score it against the truth",
                       description="Build a small synthetic longitudinal CT study with known truth, track "
                                   "its lesions and print Dice per lesion and scan.")
    p.add_argument("--out", type=out_path, default=Path("linguine_demo"),
                   help="output folder: new, empty, or a previous demo output")
    p.add_argument("--seed", type=int, default=0, help="random seed of the synthetic study")
    add_tracking_options(p)
    p.set_defaults(func=run)


def truth_dice(result) -> dict[tuple[str, str], str]:
    """Dice of each (lesion, scan) mask against the study's truth labelmaps (evaluation's rules)."""
    return {(r["lesion"], r["scan"]): ("" if not np.isfinite(r["dice"]) else f"{r['dice']:.3f}")
            for r in evaluate_result(result)}


def run(args: argparse.Namespace) -> int:
    from ..synthetic import make_study

    config: TrackingConfig = config_from_args(args)
    start = time.perf_counter()
    check_out(args.out, (), "demo")
    claim_out(args.out, "demo")
    print(f"Generating a synthetic study in {args.out / 'study'} ...")
    manifest = make_study(args.out / "study", seed=args.seed)
    study = load_manifest(manifest)
    preflight(study, args.out / "result")
    bar = TqdmProgress("demo", disable=args.quiet)
    try:
        result, rows = run_tracking(study, args.out / "result", config, progress=bar)
    finally:
        bar.close()
    scores = truth_dice(result)
    print_table(rows, scores, "Dice")
    found = [float(v) for k, v in scores.items() if v and result.get(*k).status != "prompt"]
    if found:
        print(f"\nmedian Dice on propagated scans: {np.median(found):.3f} (n={len(found)})")
    print(f"done in {time.perf_counter() - start:.1f} s; outputs in {args.out / 'result'} "
          f"(labels/, segmentations/, trajectory.csv, trajectory.png, run.json)")
    return 0
