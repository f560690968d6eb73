"""Benchmark the classical segmenter on the LIDC nodules against the >=2-reader consensus.

For every nodule (connected component of ``*_consensus2`` with at least --min-ml), the segmenter
is prompted (a) at the nodule centre (the voxel deepest inside it) and (b) at points offset by
each of --offsets-mm in 14 directions (6 axes, 8 diagonals), simulating a propagated prompt.
The ceiling is inter-reader variability: Dice of the >=1-reader and >=3-reader masks
against the >=2 consensus.

Usage: python scripts/eval_segmentation_lidc.py [--data ../shared/data/lidc] [--backend classical]
Prints a markdown table; exits 0 with a note when the data folder is absent.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import cc3d
import numpy as np
import SimpleITK as sitk
from scipy import ndimage

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from LinGuinELib.geometry import index_zyx_to_physical  # noqa: E402
from LinGuinELib.registry import create_backend  # noqa: E402

_AXES = [[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]]
_DIAGONALS = [[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)]
OFFSETS = np.array(_AXES + _DIAGONALS, dtype=float)
OFFSETS /= np.linalg.norm(OFFSETS, axis=1, keepdims=True)  # LPS unit vectors


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 2.0 * int(np.logical_and(a, b).sum()) / total if total else 1.0


def nodule_centre(mask: np.ndarray, spacing_zyx: np.ndarray) -> np.ndarray:
    """Voxel (z, y, x) farthest from the nodule border in mm (always inside the nodule)."""
    box = ndimage.find_objects(mask.astype(np.uint8))[0]
    padded = np.pad(mask[box], 1)
    depth = ndimage.distance_transform_edt(padded, sampling=spacing_zyx)[1:-1, 1:-1, 1:-1]
    local = np.unravel_index(np.argmax(depth), depth.shape)
    return np.array([s.start + i for s, i in zip(box, local)], dtype=float)


def evaluate_patient(
    ct_path: Path, segmenter, min_ml: float, offsets_mm: list[float]
) -> list[dict]:
    stem = ct_path.name.replace("_ct.nii.gz", "")
    image = sitk.ReadImage(str(ct_path))
    def read(suffix: str) -> np.ndarray:
        return sitk.GetArrayFromImage(sitk.ReadImage(str(ct_path.parent / f"{stem}_{suffix}")))

    consensus = read("consensus2.nii.gz") > 0
    readers = read("reader_count.nii.gz")
    spacing = np.array(image.GetSpacing()[::-1])
    voxel_ml = float(np.prod(spacing)) / 1000.0
    labels = cc3d.connected_components(consensus, connectivity=26)
    counts = np.bincount(labels.ravel())
    rows = []
    order = np.argsort(counts[1:])[::-1] + 1
    for rank, lab in enumerate(order):
        if counts[lab] * voxel_ml < min_ml:
            continue
        truth = labels == lab
        # reader masks restricted to this nodule's neighbourhood (its own component at >=1 reader)
        any_reader = cc3d.connected_components(readers >= 1, connectivity=26)
        near = np.unique(any_reader[truth])
        one = np.isin(any_reader, near[near > 0])
        three = (readers >= 3) & one
        centre = nodule_centre(truth, spacing)
        centre_lps = index_zyx_to_physical(image, centre)[0]
        prompts = [("centre", centre_lps)] + [
            (f"offset {mm:g} mm {tuple(np.round(d, 2).tolist())}", centre_lps + mm * d)
            for mm in offsets_mm
            for d in OFFSETS
        ]
        for name, point in prompts:
            start = time.perf_counter()
            pred = segmenter.segment(image, point[None, :])
            seconds = time.perf_counter() - start
            rows.append(
                {
                    "patient": stem,
                    "nodule": f"#{rank + 1} ({counts[lab] * voxel_ml:.2f} mL)",
                    "prompt": name,
                    "dice": dice(pred, truth),
                    "pred_ml": float(pred.sum()) * voxel_ml,
                    "seconds": seconds,
                    "ceiling_ge1": dice(one, truth),
                    "ceiling_ge3": dice(three, truth) if three.any() else float("nan"),
                }
            )
    return rows


def _fmt(value: float) -> str:
    return "n/a (no voxel with 3 readers)" if np.isnan(value) else f"{value:.3f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "lidc")
    parser.add_argument("--backend", default="classical")
    parser.add_argument("--min-ml", type=float, default=0.1, help="smallest nodule evaluated")
    parser.add_argument("--offsets-mm", default="2,3", help="comma-separated prompt offsets")
    parser.add_argument("--per-prompt", action="store_true", help="also print every prompt")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
    cts = sorted(args.data.glob("*_ct.nii.gz"))
    if not cts:
        print(f"no LIDC data under {args.data}; nothing to evaluate")
        return 0
    segmenter = create_backend("segmentation", args.backend)
    rows = []
    for ct in cts:
        offsets = [float(v) for v in args.offsets_mm.split(",") if v.strip()]
        rows += evaluate_patient(ct, segmenter, args.min_ml, offsets)

    if args.per_prompt:
        print("| patient | nodule | prompt | Dice vs >=2 readers | predicted mL | s/call |")
        print("| --- | --- | --- | --- | --- | --- |")
        for r in rows:
            print(
                f"| {r['patient']} | {r['nodule']} | {r['prompt']} | {r['dice']:.3f} "
                f"| {r['pred_ml']:.2f} | {r['seconds']:.2f} |"
            )
        print()
    print("| patient | nodule | Dice centre | Dice offset prompts mean (min) | n offsets "
          "| ceiling: >=1 reader vs >=2 | ceiling: >=3 readers vs >=2 |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    keys = dict.fromkeys((r["patient"], r["nodule"]) for r in rows)
    for key in keys:
        group = [r for r in rows if (r["patient"], r["nodule"]) == key]
        offs = [r["dice"] for r in group if r["prompt"] != "centre"]
        print(
            f"| {key[0]} | {key[1]} | {group[0]['dice']:.3f} | {np.mean(offs):.3f} "
            f"({np.min(offs):.3f}) | {len(offs)} | {group[0]['ceiling_ge1']:.3f} "
            f"| {_fmt(group[0]['ceiling_ge3'])} |"
        )
    times = np.array([r["seconds"] for r in rows])
    print(f"\ntime per call: median {np.median(times):.2f} s, max {times.max():.2f} s "
          f"({len(times)} calls)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
