"""`linguine demo`: a synthetic longitudinal study with known truth, tracked with the defaults."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..config import TrackingConfig
from ..evaluation.metrics import dice
from ..pipeline import run_tracking
from ..study.manifest import load_manifest
from .options import TqdmProgress, add_tracking_options, config_from_args
from .track import print_table


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="generate a synthetic study, track it, score it against the truth",
                       description="Build a small synthetic longitudinal CT study with known truth, track "
                                   "its lesions and print Dice per lesion and scan.")
    p.add_argument("--out", type=Path, default=Path("linguine_demo"), help="output folder")
    p.add_argument("--seed", type=int, default=0, help="random seed of the synthetic study")
    add_tracking_options(p)
    p.set_defaults(func=run)


def truth_dice(result, rows: list[dict]) -> dict[tuple[str, str], str]:
    """Dice of each (lesion, scan) mask against the study's truth labelmaps."""
    out: dict[tuple[str, str], str] = {}
    for scan in result.study.scans:
        if scan.truth_path is None:
            continue
        truth = sitk.GetArrayFromImage(sitk.ReadImage(str(scan.truth_path)))
        for lesion in result.study.lesions:
            if lesion.truth_label is None:
                continue
            pred = result.get(lesion.id, scan.id).mask.to_full()
            d = dice(pred, truth == lesion.truth_label)
            out[(lesion.id, scan.id)] = "" if d is None or not np.isfinite(d) else f"{d:.3f}"
    return out


def run(args: argparse.Namespace) -> int:
    from ..synthetic import make_study

    config: TrackingConfig = config_from_args(args)
    start = time.perf_counter()
    print(f"Generating a synthetic study in {args.out / 'study'} ...")
    manifest = make_study(args.out / "study", seed=args.seed)
    study = load_manifest(manifest)
    bar = TqdmProgress("demo", disable=args.quiet)
    try:
        result, rows = run_tracking(study, args.out / "result", config, progress=bar)
    finally:
        bar.close()
    scores = truth_dice(result, rows)
    print_table(rows, scores, "Dice")
    found = [float(v) for k, v in scores.items() if v and result.get(*k).status != "prompt"]
    if found:
        print(f"\nmedian Dice on propagated scans: {np.median(found):.3f} (n={len(found)})")
    print(f"done in {time.perf_counter() - start:.1f} s; outputs in {args.out / 'result'} "
          f"(labels/, segmentations/, trajectory.csv, trajectory.png, run.json)")
    return 0
