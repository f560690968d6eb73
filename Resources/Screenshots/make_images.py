"""Draw the extension's icon and screenshot (matplotlib).

The screenshot is a real tracking result: a synthetic study from ``LinGuinELib.synthetic`` tracked
with the classical backends; each panel shows one timepoint, the tracked mask (colour) and the
truth (dashed white), with the volume-over-time plot below. Run from the repository root:

    python Resources/Screenshots/make_images.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


def draw_icon(path: Path) -> None:
    """128x128 RGBA: three scans in time, the same lesion growing, linked by one track."""
    fig = plt.figure(figsize=(1.28, 1.28), dpi=100)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_xlim(0, 128)
    ax.set_ylim(0, 128)
    ax.axis("off")
    ax.add_patch(FancyBboxPatch((4, 4), 120, 120, boxstyle="round,pad=0,rounding_size=22",
                                facecolor="#1d2b44", edgecolor="none"))
    centres = [(34, 40), (64, 66), (94, 92)]
    for k, (x, y) in enumerate(centres):
        ax.add_patch(Circle((x, y), 21, facecolor="#8e9aae", edgecolor="#d9dee7", linewidth=1.5))
        ax.add_patch(Circle((x - 4, y + 2), 9, facecolor="#55627a", edgecolor="none"))
        ax.add_patch(Circle((x + 6, y - 5), 3.2 + 2.0 * k, facecolor="#e69f00", edgecolor="white",
                            linewidth=0.8))
    for (x0, y0), (x1, y1) in zip(centres, centres[1:]):
        ax.add_patch(FancyArrowPatch((x0 + 10, y0 - 2), (x1 + 2, y1 - 10), arrowstyle="-|>",
                                     mutation_scale=9, color="#56b4e9", linewidth=2.2,
                                     connectionstyle="arc3,rad=0.35"))
    fig.savefig(path, transparent=True)
    plt.close(fig)


def draw_screenshot(path: Path) -> None:
    import SimpleITK as sitk

    from LinGuinELib.config import TrackingConfig
    from LinGuinELib.measures.trajectory import trajectory_rows
    from LinGuinELib.outputs.colors import lesion_color
    from LinGuinELib.propagation.engine import track
    from LinGuinELib.study.manifest import load_manifest
    from LinGuinELib.synthetic import make_study

    with tempfile.TemporaryDirectory() as tmp:
        study = load_manifest(make_study(Path(tmp), n_scans=4, n_lesions=2, seed=4))
        result = track(study, TrackingConfig())
        rows = trajectory_rows(result)
        lesion = study.lesions[0]
        fig = plt.figure(figsize=(12.8, 7.2), dpi=100, facecolor="#20242b")
        for k, scan in enumerate(study.scans):
            image = sitk.ReadImage(str(scan.path))
            arr = sitk.GetArrayFromImage(image)
            res = result.get(lesion.id, scan.id)
            mask = res.mask.to_full()
            truth = (sitk.GetArrayFromImage(sitk.ReadImage(str(scan.truth_path))) == lesion.truth_label
                     if scan.truth_path else np.zeros_like(mask))
            ref = mask if mask.any() else truth
            z, y, x = (np.argwhere(ref).mean(axis=0).round().astype(int) if ref.any()
                       else np.array(arr.shape) // 2)
            half = 28
            ys, xs = slice(max(y - half, 0), y + half), slice(max(x - half, 0), x + half)
            ax = fig.add_axes([0.02 + k * 0.245, 0.45, 0.225, 0.5])
            ax.imshow(arr[z, ys, xs], cmap="gray", vmin=-1000, vmax=400, interpolation="nearest")
            if truth[z].any():
                ax.contour(truth[z, ys, xs], levels=[0.5], colors="white", linestyles="--", linewidths=1)
            if mask[z].any():
                ax.contour(mask[z, ys, xs], levels=[0.5], colors=[lesion_color(0)], linewidths=2)
            row = next(r for r in rows if r["lesion"] == lesion.id and r["scan"] == scan.id)
            volume = f"{row['volume_ml']:.2f} mL" if row["volume_ml"] is not None else "-"
            ax.set_title(f"{scan.id}  {scan.when}\n{row['status']}  {volume}", color="white", fontsize=11)
            ax.axis("off")
        ax = fig.add_axes([0.08, 0.07, 0.86, 0.3], facecolor="#2b3038")
        days = [r["days_from_first"] for r in rows if r["lesion"] == lesion.id]
        tracked = [r["volume_ml"] for r in rows if r["lesion"] == lesion.id]
        truth_ml = []
        for scan in study.scans:
            label = sitk.ReadImage(str(scan.truth_path))
            voxels = int((sitk.GetArrayViewFromImage(label) == lesion.truth_label).sum())
            truth_ml.append(voxels * float(np.prod(label.GetSpacing())) / 1000.0)
        ax.plot(days, tracked, "-o", color=lesion_color(0), label=f"{lesion.id} tracked", linewidth=2)
        ax.plot(days, truth_ml, "--", color="white", label=f"{lesion.id} truth", linewidth=1.2)
        for r in rows:  # the whole result, so a failure on another lesion is not hidden
            print(f"{r['lesion']} {r['scan']} {r['status']} {r['volume_ml']}")
        print(f"truth {lesion.id}: {truth_ml}")
        ax.set_xlabel("days from first scan", color="white")
        ax.set_ylabel("volume (mL)", color="white")
        ax.tick_params(colors="white")
        for spine in ax.spines.values():
            spine.set_color("#8e9aae")
        ax.legend(facecolor="#2b3038", labelcolor="white", edgecolor="#8e9aae")
        fig.text(0.5, 0.965, f"LinGuinE: lesion {lesion.id} tracked from one point on {lesion.scan_id} "
                 "(classical backends; dashed = truth)", color="white", ha="center", fontsize=13)
        fig.savefig(path, facecolor=fig.get_facecolor())
        plt.close(fig)


if __name__ == "__main__":
    icon = REPO / "LinGuinE" / "Resources" / "Icons" / "LinGuinE.png"
    draw_icon(icon)
    (REPO / "Resources" / "Icons").mkdir(parents=True, exist_ok=True)
    draw_icon(REPO / "Resources" / "Icons" / "LinGuinE.png")
    draw_screenshot(REPO / "Resources" / "Screenshots" / "LinGuinE-trajectory.png")
