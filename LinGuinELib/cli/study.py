"""`linguine study DICOM_FOLDER`: a STUDY.json manifest from every CT series below a folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InputError
from ..outputs.safety import check_folder_writable, check_outside_inputs
from ..textio import read_json, write_json_atomic
from .track import _parse_point


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "study", help="write a study manifest from a folder of DICOM files",
        description="Find every CT series below DICOM_FOLDER (headers only), group them by patient "
                    "and imaging study, choose one series per study (regular volume, axial, full "
                    "coverage, thinnest slices, most images; --series overrides), order the studies "
                    "by StudyDate/StudyTime and write a STUDY.json manifest (scan ids = study dates). "
                    "Add lesions with --point-ras/--source here, or edit the manifest.")
    p.add_argument("folder", type=Path, help="folder searched recursively for DICOM files")
    p.add_argument("--out", type=Path, default=Path("study.json"),
                   help="manifest to write (default: study.json; an existing file is kept unless --force)")
    p.add_argument("--patient", help="PatientID to use when the folder holds several patients")
    p.add_argument("--series", nargs="+", default=[], metavar="UID",
                   help="SeriesInstanceUID(s) to use for their studies instead of the automatic choice")
    p.add_argument("--point-ras", action="append", default=[], metavar="X,Y,Z",
                   help="a lesion point in RAS mm on the --source scan (repeat for several lesions)")
    p.add_argument("--source", help="scan the points lie on: its id (date), study or series UID")
    p.add_argument("--force", action="store_true", help="replace an existing manifest")
    p.set_defaults(func=run)


def _is_manifest(path: Path) -> bool:
    try:
        data = read_json(path, "study manifest")
    except InputError:
        return False
    return isinstance(data, dict) and isinstance(data.get("scans"), list)


def run(args: argparse.Namespace) -> int:
    from ..study.dicom_folder import manifest_for, match_scan, scan_dicom_folder, select_study

    out: Path = args.out
    check_outside_inputs(out, [args.folder])  # never a file written into the DICOM folder read
    if out.exists() and not args.force:
        raise InputError(f"{out}: exists; pass --force to replace it")
    if out.exists() and not _is_manifest(out):  # --force replaces a manifest, never another file
        raise InputError(f"{out}: exists and is not a study manifest; LinGuinE does not replace it")
    check_folder_writable(out.resolve().parent, f"--out {out}")  # before the DICOM folder is searched
    if bool(args.point_ras) != bool(args.source):
        raise InputError("--point-ras and --source go together")
    series, skipped = scan_dicom_folder(args.folder)
    patient, scans = select_study(series, args.folder, args.patient, args.series)
    if len(scans) < 1:
        raise InputError(f"{args.folder}: no usable CT volume for patient '{patient}'")
    lesions = []
    if args.source:
        prompt = match_scan(scans, args.source)
        if prompt is None:
            raise InputError(f"--source: scan '{args.source}' not found (scans: {', '.join(p.id for p in scans)})")
        lesions = [{"id": f"L{k}", "scan": prompt.id, "point_ras": list(_parse_point(text))}
                   for k, text in enumerate(args.point_ras, start=1)]
    target = out.resolve()  # a symlinked manifest: its target is replaced (paths relative to it), the link kept
    data = manifest_for(patient, scans, target.parent, lesions)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(target, data)  # Ctrl-C: the earlier manifest, no leftover
    if not args.quiet:
        print(f"patient {patient}: {len(scans)} studies -> {out}")
        for p in scans:
            s = p.series
            print(f"  {p.id:<12} series {s.series_number:<4} {len(s.files):>4} images, "
                  f"{s.spacing_mm:.2f} mm, {s.description[:32]!r}"
                  + (f"  (of {1 + len(p.others)} CT series)" if p.others else ""))
        if skipped:
            print(f"  ({skipped} other DICOM files ignored: not CT Image Storage)")
        if not lesions:
            print("  no lesions yet: add them to 'lesions' (see README) or rerun with --point-ras/--source")
    return 0
