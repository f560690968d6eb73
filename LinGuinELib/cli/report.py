"""`linguine report OUT [OUT ...]`: one self-contained HTML page of results and analyses."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..evaluation.report import build_report


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report", help="self-contained HTML summary of batch outputs (tables and plots)",
        description="Summarise one or more `linguine batch` output folders in one HTML file with "
                    "tables and plots embedded (opens in any browser, no Python needed). Folders "
                    "with truth labels are evaluated if `linguine evaluate` was not run. With two "
                    "or more folders, configurations are compared on the same lesions (Wilcoxon "
                    "signed-rank, paired t-test); with runs from the earliest, middle and latest "
                    "source scans (`batch --source`), a Friedman test checks direction agnosticism.")
    p.add_argument("outs", type=Path, nargs="+", metavar="OUT", help="batch output folder(s)")
    p.add_argument("--html", type=Path, help="report file (default: OUT/report.html of the first)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path = build_report(list(args.outs), args.html)
    if not args.quiet:
        print(f"report written to {path}")
    return 0
