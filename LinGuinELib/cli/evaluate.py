"""`linguine evaluate OUT`: score a batch output against the ground-truth labelmaps."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from ..errors import InputError
from ..evaluation.analyses import summarise, summary_columns
from ..evaluation.evaluate import EVAL_COLUMNS, evaluate_batch, table_signature, write_table
from ..evaluation.metrics import HIT_MIN_DICE
from ..outputs.safety import check_folder_writable, check_replaceable, read_marker, record_written

SUMMARY_PRINT = (("pairs", "{:.0f}"), ("dice_median", "{:.3f}"), ("dice_q1", "{:.3f}"),
                 ("dice_q3", "{:.3f}"), ("centre_distance_mm_median", "{:.1f}"),
                 ("hd95_mm_median", "{:.1f}"), ("tracking_success_rate", "{:.2f}"))


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate", help="score batch outputs against ground truth (Dice, distances, detection)",
        description="Compare OUT/<patient>/labels with each scan's truth labelmap ('label' in the "
                    "manifest; the lesion's 'truth_label' is its value). Writes OUT/evaluation.csv "
                    "(one row per lesion and scan) and OUT/evaluation_summary.csv (medians, IQR and "
                    "tracking success per dataset and configuration).")
    p.add_argument("out", type=Path, help="output folder of `linguine batch`")
    p.add_argument("--dataset", type=Path,
                   help="the dataset given to batch (default: as recorded in OUT/batch.json)")
    p.add_argument("--dataset-name", help="name of the dataset in the tables (default: its file name)")
    p.add_argument("--name", help="name of the configuration in the tables "
                                  "(default: from the settings, e.g. classical+classical/direct)")
    p.add_argument("--hit-min-dice", type=float, default=HIT_MIN_DICE,
                   help="Dice from which a present lesion counts as tracked (default %(default)s)")
    p.set_defaults(func=run)


def _fmt(value, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return spec.format(value)


def run(args: argparse.Namespace) -> int:
    out: Path = args.out
    if not out.is_dir():
        raise InputError(f"{out}: not a folder")
    marker = read_marker(out) or {}
    if not (out / "batch.json").is_file() and marker.get("kind") != "batch":
        raise InputError(f"{out}: not a `linguine batch` output (no batch.json); evaluate writes only there")
    if not 0 <= args.hit_min_dice <= 1:
        raise InputError(f"--hit-min-dice must be within [0, 1], got {args.hit_min_dice}")
    check_folder_writable(out, str(out))  # its tables go there: said before the studies are scored
    tables = {out / "evaluation.csv": EVAL_COLUMNS, out / "evaluation_summary.csv": summary_columns()}
    for path, columns in tables.items():  # an earlier evaluation is replaced, never a file of yours
        check_replaceable(path, table_signature(columns), "a LinGuinE evaluation table")
    rows, missing = evaluate_batch(out, args.dataset, args.dataset_name, args.name,
                                   args.hit_min_dice)
    if not rows:
        raise InputError(f"{out}: no finished study to evaluate")
    write_table(rows, out / "evaluation.csv", EVAL_COLUMNS)
    summary = summarise(rows)
    write_table(summary, out / "evaluation_summary.csv", summary_columns())
    record_written(out, [p.name for p in tables])  # edited later, they are kept like any file of yours
    if not args.quiet:
        head = ["dataset", "configuration"] + [k for k, _ in SUMMARY_PRINT]
        print("  ".join(head))
        for s in summary:
            cells = [s["dataset"], s["configuration"]] + [_fmt(s[k], f) for k, f in SUMMARY_PRINT]
            print("  ".join(cells))
        studies = len({r["patient_id"] for r in rows})
        print(f"\n{studies} studies, {len(rows)} rows -> {out / 'evaluation.csv'}")
        if missing:
            print(f"not evaluated (no finished output): {', '.join(missing)}")
    return 0
