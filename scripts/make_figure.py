#!/usr/bin/env python
"""Figure for the README: each timepoint's axial slice through the tracked lesion.

    python scripts/make_figure.py STUDY.json RESULT_DIR OUT.png [--lesion L1] [--window -1000,400]

Red: LinGuinE's mask (OUT/labels); green dashed: the truth labelmap when the manifest has one;
star: the prompt scan. Each panel is the scan's own grid (no resampling), cropped around the lesion.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    from LinGuinELib.geometry import physical_to_continuous_index_zyx, ras_to_lps
    from LinGuinELib.study.manifest import load_manifest

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("manifest", type=Path)
    p.add_argument("result", type=Path)
    p.add_argument("png", type=Path)
    p.add_argument("--lesion", default=None)
    p.add_argument("--window", default="-1000,400", help="HU window low,high")
    p.add_argument("--half-mm", type=float, default=35.0, help="half width of each panel (mm)")
    args = p.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    study = load_manifest(args.manifest)
    k = 0 if args.lesion is None else [les.id for les in study.lesions].index(args.lesion)
    lesion = study.lesions[k]
    rows = {r["scan"]: r for r in csv.DictReader(open(args.result / "trajectory.csv")) if r["lesion"] == lesion.id}
    lo, hi = (float(v) for v in args.window.split(","))
    fig, axes = plt.subplots(1, len(study.scans), figsize=(3.0 * len(study.scans), 3.4), dpi=110)
    for ax, scan in zip(np.atleast_1d(axes), study.scans):
        image = sitk.ReadImage(str(scan.path))
        arr = sitk.GetArrayViewFromImage(image)
        label = sitk.GetArrayFromImage(sitk.ReadImage(str(args.result / "labels" / f"{scan.id}.nii.gz")))
        row = rows[scan.id]
        key = "centroid" if row["centroid_r"] else "point"
        if not row[f"{key}_r"]:
            ax.set_axis_off()
            continue
        centre = ras_to_lps(np.array([float(row[f"{key}_{a}"]) for a in "ras"]))
        z, y, x = np.round(physical_to_continuous_index_zyx(image, centre[None])[0]).astype(int)
        z = int(np.clip(z, 0, arr.shape[0] - 1))
        sy, sx = image.GetSpacing()[1], image.GetSpacing()[0]
        hy, hx = int(args.half_mm / sy), int(args.half_mm / sx)
        ys = slice(max(y - hy, 0), y + hy)
        xs = slice(max(x - hx, 0), x + hx)
        ax.imshow(arr[z, ys, xs], cmap="gray", vmin=lo, vmax=hi, aspect=sy / sx)
        mask = label[z, ys, xs] == k + 1
        if mask.any():
            ax.contour(mask, levels=[0.5], colors="red", linewidths=1.2)
        if scan.truth_path is not None and lesion.truth_label is not None:
            truth = sitk.GetArrayFromImage(sitk.ReadImage(str(scan.truth_path)))[z, ys, xs] == lesion.truth_label
            if truth.any():
                ax.contour(truth, levels=[0.5], colors="lime", linewidths=1.0, linestyles="dashed")
        vol = f"{float(row['volume_ml']):.2f} mL" if row["volume_ml"] else row["status"]
        star = " *" if row["status"] == "prompt" else ""
        ax.set_title(f"{scan.id}{star} {scan.when}\n{vol} {row['response']}", fontsize=9)
        ax.set_axis_off()
    fig.suptitle(f"{study.patient_id} {lesion.id}: red = LinGuinE, green dashed = truth, * = prompt", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    fig.savefig(args.png)


if __name__ == "__main__":
    main()
