"""`linguine track STUDY --out OUT`: track the lesions of one study."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ..errors import InputError
from ..registry import check_config_options
from ..study.manifest import load_folder, load_manifest
from ..study.preflight import preflight
from .options import TqdmProgress, add_tracking_options, config_from_args, out_path

log = logging.getLogger(__name__)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("track", help="track lesions across the scans of one study",
                       description="Track every lesion of a study (STUDY.json, or a folder of images "
                                   "with --point-ras and --source) and write OUT.")
    p.add_argument("study", type=Path, help="STUDY.json manifest, or a folder with one image per timepoint")
    p.add_argument("--out", type=out_path, required=True,
                   help="output folder: new, empty, or a previous LinGuinE track output (replaced atomically)")
    p.add_argument("--point-ras", help="folder input: lesion point X,Y,Z in RAS mm (Slicer coordinates); "
                   "write --point-ras=X,Y,Z when X is negative")
    p.add_argument("--source", help="folder input: id (file name without extension) of the scan clicked on; "
                   "DICOM folder: the scan's id (study date), study or series UID")
    p.add_argument("--patient", help="DICOM folder input: PatientID, when the folder holds several")
    p.add_argument("--series", nargs="+", default=[], metavar="UID",
                   help="DICOM folder input: series to use instead of the automatic choice (see `study`)")
    p.add_argument("--dicom", action="store_true",
                   help="also write DICOM SEG and a TID 1500 measurement report per scan (OUT/dicom/); "
                        "needs scans read from DICOM")
    add_tracking_options(p)
    p.set_defaults(func=run)


def _parse_point(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3:
        raise InputError(f"--point-ras: expected X,Y,Z in mm, got '{text}'")
    return values  # type: ignore[return-value]


def load_study(args: argparse.Namespace):
    if args.study.is_dir():
        if not args.point_ras or not args.source:
            raise InputError(f"{args.study}: a folder of images needs --point-ras X,Y,Z and --source SCAN")
        from ..study.dicom_folder import is_dicom_folder, load_dicom_study

        if is_dicom_folder(args.study):
            return load_dicom_study(args.study, _parse_point(args.point_ras), args.source,
                                    args.patient, args.series)
        return load_folder(args.study, _parse_point(args.point_ras), args.source)
    if args.point_ras or args.source or args.patient or args.series:
        raise InputError("--point-ras/--source/--patient/--series apply to a folder, not to a manifest")
    return load_manifest(args.study)


def print_table(rows: list[dict], extra: dict[tuple[str, str], str] | None = None,
                extra_name: str = "") -> None:
    """The trajectory on the console; a row that needs a look ends with ``review:`` and its reasons
    (the same codes as ``trajectory.csv``), so no doubtful volume is printed as plain fact."""
    lw = max([8] + [len(r["lesion"]) + 2 for r in rows])
    w = max([10] + [len(r["scan"]) + 2 for r in rows])
    head = f"{'lesion':<{lw}}{'scan':<{w}}{'when':<12}{'status':<14}{'vol mL':>8}{'LD mm':>8}{'resp':>10}"
    print(head + (f"{extra_name:>8}" if extra else ""))
    for r in rows:
        vol = "" if r["volume_ml"] is None else f"{r['volume_ml']:.2f}"
        ld = "" if r["longest_axial_diameter_mm"] is None else f"{r['longest_axial_diameter_mm']:.1f}"
        line = (f"{r['lesion']:<{lw}}{r['scan']:<{w}}{r['when']:<12}{r['status']:<14}{vol:>8}{ld:>8}"
                f"{r['response']:>10}")
        if extra:
            line += f"{extra.get((r['lesion'], r['scan']), ''):>8}"
        if r.get("review"):
            line += "  review: " + r.get("review_reasons", "").replace(";", ", ")
        print(line)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    check_config_options(config)
    if args.dicom:
        from ..outputs.dicom_seg import require_dicom_packages

        require_dicom_packages()
    study = load_study(args)
    preflight(study, args.out)
    from ..pipeline import run_tracking  # after the checks: bad input fails before scipy & co. load
    if args.dicom and not any(s.dicom_files for s in study.scans):
        print("linguine: --dicom: no scan was read from DICOM, so no SEG/SR can reference one; "
              "writing the other outputs only", file=sys.stderr)
    bar = TqdmProgress(f"{study.patient_id}", disable=args.quiet)
    try:
        result, rows = run_tracking(study, args.out, config, progress=bar, dicom=args.dicom)
    finally:
        bar.close()
    if not args.quiet:
        print_table(rows)
        total = result.walls.get("track", 0.0) + result.walls.get("write", 0.0)
        print(f"\n{len(study.lesions)} lesion(s), {len(study.scans)} scans in {total:.1f} s; "
              f"outputs in {args.out}")
    return 0
