#!/usr/bin/env python
"""End-to-end DICOM check on real CT: LIDC study -> DICOM folder -> `linguine study` -> `track --dicom`.

    python scripts/dicom_e2e.py [--case LIDC-IDRI-0001] [--scans 4] [--work /tmp/linguine_dicom_e2e]

A longitudinal study is generated from one LIDC CT (``../shared/data/lidc``; pose, deformation,
slice thickness and growth as in the benchmark), every scan is written as its own DICOM study
with synthetic headers, the folder goes through `linguine study` and `linguine track --dicom`,
and the SEG and SR are read back and compared with ``labels/`` and ``trajectory.csv``; dciodvfy
checks every object when it is installed. Prints the timings of each step. Nothing is written
into the repository.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
LIDC = REPO.parent / "shared" / "data" / "lidc"
sys.path.insert(0, str(REPO))


def _timed(label: str, timings: dict, fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    timings[label] = round(time.perf_counter() - start, 2)
    return out


def main() -> int:
    import SimpleITK as sitk

    from LinGuinELib.cli.main import main as linguine
    from LinGuinELib.outputs.dicom_seg import read_seg_masks
    from LinGuinELib.outputs.dicom_sr import read_measurement_report
    from LinGuinELib.outputs.writer import _csv_value
    from LinGuinELib.study.images import dicom_series_files
    from LinGuinELib.synthetic import make_study_from_ct
    from LinGuinELib.synthetic.dicom_ct import manifest_to_dicom

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--case", default="LIDC-IDRI-0001")
    p.add_argument("--scans", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", type=Path, default=Path("/tmp/linguine_dicom_e2e"))
    args = p.parse_args()
    if not (LIDC / f"{args.case}_ct.nii.gz").exists():
        sys.exit(f"dicom_e2e: {LIDC} not found")
    shutil.rmtree(args.work, ignore_errors=True)
    t: dict[str, float] = {}
    nifti = _timed("generate study (NIfTI)", t, make_study_from_ct, LIDC / f"{args.case}_ct.nii.gz",
                   LIDC / f"{args.case}_consensus2.nii.gz", args.work / "nifti", n_scans=args.scans,
                   seed=args.seed)
    data = json.loads(Path(nifti).read_text())
    _timed("write DICOM CT series", t, manifest_to_dicom, nifti, args.work / "pacs")
    les = data["lesions"][0]
    point = ",".join(str(v) for v in les["point_ras"])
    source = next(s["date"] for s in data["scans"] if s["id"] == les["scan"])
    manifest = args.work / "study.json"
    rc = _timed("linguine study", t, linguine, ["-q", "study", str(args.work / "pacs"), "--out", str(manifest),
                                                 f"--point-ras={point}", "--source", source])
    out = args.work / "out"
    rc |= _timed("linguine track --dicom", t, linguine, ["-q", "track", str(manifest), "--out", str(out), "--dicom"])
    if rc:
        sys.exit(f"dicom_e2e: a command failed (exit {rc})")
    run = json.loads((out / "run.json").read_text())
    t["  of which tracking"] = run["wall_s"]["track"]
    t["  of which SEG + SR writing"] = run["dicom"]["seconds"]
    with open(out / "trajectory.csv") as f:
        table = {(r["lesion"], r["scan"]): r for r in csv.DictReader(f)}
    seg_equal, sr_equal, uids = True, True, set()
    start = time.perf_counter()
    for scan in json.loads(manifest.read_text())["scans"]:
        files = dicom_series_files(manifest.parent / scan["image"], scan["series_uid"])
        masks = read_seg_masks(out / "dicom" / f"{scan['id']}.seg.dcm", files)
        labels = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "labels" / f"{scan['id']}.nii.gz")))
        seg_equal &= all(np.array_equal(m, labels == n) for n, m in masks.items())
        for g in read_measurement_report(out / "dicom" / f"{scan['id']}.sr.dcm"):
            row = table[(g["tracking_identifier"].split("/")[-1], scan["id"])]
            sr_equal &= all(str(_csv_value(g[k])) == row[k] for k in
                            ("volume_ml", "longest_axial_diameter_mm", "short_axis_mm"))
            sr_equal &= g["response"] == row["response"]
            uids.add(g["tracking_uid"])
            print(f"  {scan['id']}: {row['status']:<10} {g['volume_ml']:.3f} mL  "
                  f"LD {g['longest_axial_diameter_mm']:.1f} mm  SA {g['short_axis_mm']:.1f} mm  {g['response']}")
    t["read back SEG + SR"] = round(time.perf_counter() - start, 2)
    errors = None
    if shutil.which("dciodvfy"):
        errors = 0
        for path in sorted((out / "dicom").glob("*.dcm")):
            res = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
            errors += sum(line.startswith("Error") for line in (res.stdout + res.stderr).splitlines())
    print(f"{args.case}, {args.scans} timepoints: SEG == labels/: {seg_equal}; SR == trajectory.csv: {sr_equal}; "
          f"tracking UIDs: {len(uids)} for 1 lesion; dciodvfy errors: {errors if errors is not None else 'n/a'}")
    for k, v in t.items():
        print(f"  {k:<28} {v:8.2f} s")
    return 0 if seg_equal and sr_equal and len(uids) == 1 and not errors else 1


if __name__ == "__main__":
    sys.exit(main())
