#!/usr/bin/env python
"""The classical segmenter per lesion kind: synthetic kinds with exact truth, and the real lesions.

Synthetic: each kind of ``KINDS`` is rendered (``LinGuinELib.synthetic.render_case``) for
--seeds seeds and clicked at its centre (the deepest truth voxel) and at --offsets points
``offset_fraction`` of its radius (at least 2 mm, at most 6 mm) off-centre, as a propagated
prompt lands. Real: the LIDC main nodules and the mass in ../shared/data (when present), same
clicks. Per kind, size class, attachment, density and slice class: median Dice, fraction of
volumes within a factor 2 of the truth, segmenter warnings, time per call.

Each click's segmentation is also read by the quality flag as a prompt scan's would be
(``quality.scan_checks``): per group, how many bad results (Dice < 0.5 or volume off by more
than 2x) it flags and what share of good ones. ``--random N`` draws N kinds instead
(:func:`random_kinds`): lesions nobody chose, the honest measure of kinds not developed on.

Usage: python scripts/eval_segmentation_kinds.py [--seeds 2] [--offsets 2] [--per-case]
       [--quick | --new | --wall | --part-solid | --thick-hazy | --random N [--first-seed S]
       [--wall-clicks K]]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import cc3d
import numpy as np
import SimpleITK as sitk
from scipy import ndimage

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO))

from LinGuinELib.errors import InputError  # noqa: E402
from LinGuinELib.propagation.result import MaskCrop  # noqa: E402
from LinGuinELib.quality import scan_checks  # noqa: E402
from LinGuinELib.registry import create_backend  # noqa: E402
from LinGuinELib.synthetic import LesionKind, render_case  # noqa: E402
from LinGuinELib.synthetic.kinds import ATTACHMENTS, DENSITIES  # noqa: E402
from LinGuinELib.synthetic.manifest import lesion_centre_zyx  # noqa: E402
from LinGuinELib.voxels import voxels  # noqa: E402

# (diameter mm, attachment, density, slice mm, invasion mm): sizes 4 mm to 10 cm, every
# attachment and density, slices 0.6-5 mm; the failures are among them
KINDS = [
    (5, "isolated", "solid", 0.625, 0), (6, "chest_wall", "solid", 1.0, 0),
    (7, "chest_wall", "solid", 2.5, 0), (8, "vessel", "solid", 1.25, 0),
    (8, "fissure", "solid", 1.0, 0), (9, "isolated", "ground_glass", 1.0, 0),
    (14, "isolated", "solid", 5.0, 0), (14, "chest_wall", "solid", 5.0, 0),
    (14, "vessel", "solid", 5.0, 0), (12, "fissure", "solid", 1.25, 0),
    (20, "mediastinum", "solid", 2.0, 0), (20, "diaphragm", "solid", 2.5, 0),
    (18, "isolated", "ground_glass", 1.0, 0), (20, "chest_wall", "ground_glass", 1.25, 0),
    (16, "vessel", "part_solid", 1.0, 0), (24, "isolated", "part_solid", 2.5, 0),
    (40, "chest_wall", "solid", 2.5, 0), (45, "mediastinum", "solid", 3.0, 0),
    (35, "isolated", "ground_glass", 2.5, 0),
    (70, "chest_wall", "solid", 2.5, 5), (90, "chest_wall", "solid", 5.0, 8),
    (65, "diaphragm", "solid", 5.0, 0), (80, "mediastinum", "solid", 3.0, 4),
]
# kinds added after the segmenter was developed (held out from its development: measured first,
# fixed only by general methods): tiny nodules on 5 mm slices, ground glass on thick slices, flat
# lesions on the pleura and on a fissure, spiculated and cavitating lesions, the costophrenic
# angle, a broad-based mediastinal mass and a 10 cm tumour
NEW_KINDS = [
    (4.5, "isolated", "solid", 5.0, 0), (5, "chest_wall", "solid", 5.0, 0),
    (12, "isolated", "ground_glass", 5.0, 0), (22, "chest_wall", "ground_glass", 1.25, 0, "flat"),
    (8, "fissure", "solid", 1.0, 0, "flat"), (16, "isolated", "solid", 1.25, 0, "spiculated"),
    (25, "chest_wall", "solid", 2.5, 0, "spiculated"), (30, "isolated", "solid", 1.25, 0, "cavitating"),
    (18, "costophrenic", "solid", 2.5, 0), (45, "costophrenic", "solid", 5.0, 0),
    (50, "mediastinum", "solid", 2.5, 10), (100, "chest_wall", "solid", 5.0, 6),
]
# part-solid lesions whose ground-glass halo is wide enough to pass for the lung around the core
# (session 6: a 22 mm one on a fissure came out as its core, 0.11x): sizes, attachments, slices
PART_SOLID_KINDS = [
    (22, "fissure", "part_solid", 1.25, 0), (30, "chest_wall", "part_solid", 2.5, 0),
    (12, "isolated", "part_solid", 5.0, 0), (40, "mediastinum", "part_solid", 2.0, 0),
]
# small juxtapleural nodules (session 6): a chest-wall nodule on thin slices (its base was cut), a
# nodule on the diaphragm's dome and one in the costophrenic angle on 5 mm slices (the slice that
# crosses the dome obliquely is a mix of lung, lesion and dome)
WALL_KINDS = [(6, "chest_wall", "solid", 1.25, 0), (14, "diaphragm", "solid", 5.0, 0),
              (10, "costophrenic", "solid", 5.0, 0)]
# part-solid and ground-glass lesions on 5 mm slices (session 11; `benchmark.py --kinds full` found them
# cut to their core): a solid core averaged with its halo across a thick slice reads lighter than soft tissue
THICK_HAZY_KINDS = [(25, "isolated", "part_solid", 5.0, 0), (20, "mediastinum", "part_solid", 5.0, 0),
                    (20, "costophrenic", "part_solid", 5.0, 0), (40, "chest_wall", "part_solid", 5.0, 0),
                    (8, "fissure", "part_solid", 5.0, 0), (20, "vessel", "ground_glass", 5.0, 0),
                    (8, "diaphragm", "ground_glass", 5.0, 0)]
KINDS = KINDS + NEW_KINDS + WALL_KINDS + PART_SOLID_KINDS + THICK_HAZY_KINDS
QUICK = [0, 1, 6, 7, 12, 15, 19, 20]
OFFSET_DIRS = np.array([[1, 0, 0], [0, -1, 0], [0, 0, 1], [-1, 1, -1], [1, 1, 0], [0, -1, -1]], float)
OFFSET_DIRS /= np.linalg.norm(OFFSET_DIRS, axis=1, keepdims=True)


SLICES_MM = (0.625, 1.0, 1.25, 2.0, 2.5, 3.0, 5.0)
DENSITY_SHARES = (0.55, 0.25, 0.2)  # solid, part-solid, ground glass


def random_kinds(n: int, first_seed: int) -> list[tuple[tuple, int]]:
    """``n`` kinds drawn at random, each with its own seed (which also renders it): kinds nobody
    chose, so a measure of the segmenter on lesions it was not developed on. Sizes log-uniform
    4-100 mm, every attachment alike, densities by DENSITY_SHARES, slices among SLICES_MM; three in
    seven drawn spiculated, flat or cavitating (cavities only in solid lesions of 20 mm or more,
    plates up to 40 mm, the rest round: about a quarter in all); a chest-wall tumour over 50 mm
    invades the wall by up to a tenth of its size."""
    out = []
    for seed in range(first_seed, first_seed + n):
        rng = np.random.default_rng(seed)
        d = round(float(np.exp(rng.uniform(np.log(4.0), np.log(100.0)))), 1)
        attach = ATTACHMENTS[rng.integers(len(ATTACHMENTS))]
        density = DENSITIES[rng.choice(len(DENSITIES), p=DENSITY_SHARES)]
        slice_mm = float(rng.choice(SLICES_MM))
        shape = str(rng.choice(["round"] * 4 + ["spiculated", "flat", "cavitating"]))
        if (shape == "cavitating" and (d < 20 or density != "solid")) or (shape == "flat" and d > 40):
            shape = "round"
        invade = round(float(rng.uniform(0, 0.1 * d)), 1) if attach == "chest_wall" and d > 50 else 0.0
        out.append(((d, attach, density, slice_mm, invade, shape), seed))
    return out


Sink = Callable[[dict], None] | None  # takes each call's row as it is made (``--signals``)


def json_line(row: dict) -> str:
    """One row as a line of strict JSON: a NaN (a signal that could not be read) becomes null."""
    def finite(v):
        if isinstance(v, dict):
            return {k: finite(x) for k, x in v.items()}
        return None if isinstance(v, float) and not math.isfinite(v) else v
    return json.dumps(finite(row), allow_nan=False) + "\n"


def flagged(image: sitk.Image, pred: np.ndarray, diag: dict, click_lps: np.ndarray | None = None) -> tuple[str, dict]:
    """The quality flag's reasons for a click's own segmentation (as on a prompt scan, ``click_lps``
    the click there), and the signals they were read from."""
    signals, findings = scan_checks(image, MaskCrop.from_full(pred), is_prompt=True, point_lps=click_lps,
                                    diagnostics=diag)
    return ";".join(sorted({f.reason.value for f in findings})), signals


def is_bad(row: dict) -> bool:
    """The benchmark's bad result: Dice below 0.5 or the volume off by more than a factor 2."""
    return row["dice"] < 0.5 or not 0.5 <= row["ratio"] <= 2.0


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 2.0 * int(np.logical_and(a, b).sum()) / total if total else 1.0


def clicks(centre_lps: np.ndarray, radius_mm: float, n_offsets: int) -> list[tuple[str, np.ndarray]]:
    step = float(np.clip(0.3 * radius_mm, 2.0, 6.0))
    return [("centre", centre_lps)] + [(f"off{i}", centre_lps + step * OFFSET_DIRS[i])
                                       for i in range(n_offsets)]


WALL_HU = -200.0  # a wall click's voxel (smoothed over 3 voxels) is tissue at least this dense


def wall_clicks(image: sitk.Image, truth: np.ndarray, n: int, seed: int) -> list[tuple[str, np.ndarray]]:
    """``n`` clicks on a lesion's tissue, as a reader clicks a cavitating lesion's wall: voxels of
    the truth a voxel in from its edge whose 3-voxel mean is tissue (not the cavity's air), drawn
    with the case's seed."""
    smooth = ndimage.uniform_filter(voxels(image).astype(np.float32), 3)
    wall = np.argwhere(truth & (smooth > WALL_HU) & ndimage.binary_erosion(truth))
    picks = wall[np.random.default_rng(seed).choice(len(wall), size=min(n, len(wall)), replace=False)]
    return [(f"wall{i}", np.array(image.TransformIndexToPhysicalPoint([int(v) for v in p[::-1]])))
            for i, p in enumerate(picks)]


def run_case(seg, image: sitk.Image, truth: np.ndarray, points: list[tuple[str, np.ndarray]],
             group: dict, sink: Sink = None) -> list[dict]:
    voxel_ml = float(np.prod(image.GetSpacing())) / 1000.0
    truth_ml = float(truth.sum()) * voxel_ml
    rows = []
    for name, point in points:
        start = time.perf_counter()
        pred = seg.segment(image, point[None])
        seconds = time.perf_counter() - start
        diag = getattr(seg, "last_diagnostics", {}) or {}
        ml = float(pred.sum()) * voxel_ml
        flags, signals = flagged(image, pred, diag, point)
        rows.append({**group, "click": name, "dice": dice(pred, truth), "ratio": ml / truth_ml,
                     "truth_ml": truth_ml, "pred_ml": ml, "seconds": seconds,
                     "warnings": ",".join(diag.get("warnings", [])), "flags": flags,
                     "signals": signals})
        if sink:
            sink(rows[-1])
    return rows


def synthetic_rows(seg, cases: list[tuple[tuple, int]], n_offsets: int, sink: Sink = None,
                   n_wall: int = 0) -> list[dict]:
    """Rows for (kind, seed) cases; a kind that cannot be placed or rendered at a seed is skipped
    (logged): no room for it in the chest there, or a nodule thinner than the slice is lost.
    ``n_wall``: instead of the centre and offsets, only the cavitating kinds, clicked on their wall
    at that many points (:func:`wall_clicks`)."""
    rows = []
    for (d, attach, density, slice_mm, invade, *shape), seed in cases:
        kind = LesionKind(float(d), attach, density, float(slice_mm), float(invade), *shape)
        if n_wall and kind.shape != "cavitating":
            continue
        try:
            case = render_case(kind, seed=seed)
        except InputError as why:
            logging.warning("%s %g mm slices, seed %d: skipped (%s)", kind.label, slice_mm, seed, why)
            continue
        group = {"source": "synthetic", "case": f"{d:g} mm {kind.label} {slice_mm}mm s{seed}",
                 "kind": kind.label, "size": kind.size_class, "attachment": attach,
                 "density": density, "slices": kind.slice_class}
        points = wall_clicks(case.image, case.truth, n_wall, seed) if n_wall else \
            clicks(case.centre_lps, d / 2, n_offsets)
        rows += run_case(seg, case.image, case.truth, points, group, sink)
        logging.info("%s: %s", group["case"], [round(r["dice"], 2) for r in rows[-len(points):]])
    return rows


REAL = [  # (name, ct, mask, kind descriptor): the development set, described like the kinds
    ("LIDC-IDRI-0001", "lidc/LIDC-IDRI-0001_ct.nii.gz", "lidc/LIDC-IDRI-0001_consensus2.nii.gz",
     ("10-30mm", "chest_wall", "solid", "medium")),
    ("LIDC-IDRI-0002", "lidc/LIDC-IDRI-0002_ct.nii.gz", "lidc/LIDC-IDRI-0002_consensus2.nii.gz",
     ("10-30mm", "chest_wall", "ground_glass", "thin")),
    ("mass", "mass/pyradiomics_lung2_ct.nrrd", "mass/pyradiomics_lung2_mask.nrrd",
     ("30-60mm", "real_mass", "solid", "thick")),
]


def real_rows(seg, n_offsets: int, sink: Sink = None) -> list[dict]:
    rows = []
    for name, ct, mask, (size, attach, density, slices) in REAL:
        if not (DATA / ct).exists():
            continue
        image = sitk.ReadImage(str(DATA / ct))
        labels = sitk.GetArrayFromImage(sitk.ReadImage(str(DATA / mask))) > 0
        truth = cc3d.largest_k(labels, k=1, connectivity=26) > 0
        sp = np.array(image.GetSpacing()[::-1])
        centre = lesion_centre_zyx(truth, sp)
        centre_lps = np.array(image.TransformContinuousIndexToPhysicalPoint([float(v) for v in centre[::-1]]))
        radius = float(np.cbrt(truth.sum() * np.prod(sp) * 3 / (4 * np.pi)))
        group = {"source": "real", "case": name, "kind": f"real:{name}", "size": size,
                 "attachment": attach, "density": density, "slices": slices}
        rows += run_case(seg, image, truth, clicks(centre_lps, radius, n_offsets), group, sink)
    return rows


def table(rows: list[dict], key: str) -> list[str]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        groups[r[key]].append(r)
    out = [f"| {key} | n | median Dice | min Dice | within 2x | centre-click Dice (median) | warned "
           "| bad flagged | good flagged | s/call |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name in sorted(groups):
        g = groups[name]
        d = np.array([r["dice"] for r in g])
        ratio = np.array([r["ratio"] for r in g])
        within = np.mean((ratio >= 0.5) & (ratio <= 2.0))
        centre = [r["dice"] for r in g if r["click"] == "centre"]
        warned = np.mean([bool(r["warnings"]) for r in g])
        bad = [bool(r["flags"]) for r in g if is_bad(r)]
        good = [bool(r["flags"]) for r in g if not is_bad(r)]
        good_share = f"{100 * np.mean(good):.0f}%" if good else "-"
        out.append(f"| {name} | {len(g)} | {np.median(d):.3f} | {d.min():.3f} | {100 * within:.0f}% "
                   f"| {np.median(centre) if centre else math.nan:.3f} | {100 * warned:.0f}% "
                   f"| {sum(bad)}/{len(bad)} | {good_share} | {np.median([r['seconds'] for r in g]):.2f} |")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--offsets", type=int, default=2, help="off-centre clicks per case (<= 6)")
    p.add_argument("--quick", action="store_true", help="a subset of the kinds (the hard ones)")
    p.add_argument("--new", action="store_true", help="only the kinds added after development (NEW_KINDS)")
    p.add_argument("--part-solid", action="store_true", help="only the part-solid kinds (PART_SOLID_KINDS)")
    p.add_argument("--wall", action="store_true", help="only the small juxtapleural kinds (WALL_KINDS)")
    p.add_argument("--thick-hazy", action="store_true",
                   help="only part-solid and ground-glass kinds on 5 mm slices (THICK_HAZY_KINDS)")
    p.add_argument("--random", type=int, default=0, metavar="N",
                   help="instead of the listed kinds, N kinds drawn at random (random_kinds), one seed each "
                        "(--seeds, --only and the kind lists do not apply)")
    p.add_argument("--first-seed", type=int, default=1000, help="with --random: the first kind's seed")
    p.add_argument("--wall-clicks", type=int, default=0, metavar="K",
                   help="with --random: only the cavitating kinds drawn, each clicked at K points of its wall "
                        "(its tissue) instead of its centre and offsets; no real lesions")
    p.add_argument("--only", default="", help="only kinds whose label contains this text")
    p.add_argument("--no-real", action="store_true", help="skip ../shared/data")
    p.add_argument("--per-case", action="store_true")
    p.add_argument("--backend", default="classical")
    p.add_argument("--verbose", action="store_true")
    p.add_argument("--signals", type=Path, metavar="FILE",
                   help="also write each call's row with the quality signals, one JSON object per line "
                        "(for choosing a check's bound)")
    args = p.parse_args(argv)
    if args.signals and (args.signals.exists() or not args.signals.parent.is_dir()):
        why = "already exists (not overwritten)" if args.signals.exists() else "has no folder to go in"
        print(f"--signals {args.signals}: {why}", file=sys.stderr)
        return 2
    if args.wall_clicks and (args.wall_clicks < 0 or not args.random):
        print(f"--wall-clicks {args.wall_clicks}: " + ("give a number of clicks, 1 or more" if args.wall_clicks < 0
              else "clicks the random kinds' cavitating lesions: give --random N too"), file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    seg = create_backend("segmentation", args.backend)
    kinds = [KINDS[i] for i in QUICK] if args.quick else (
        NEW_KINDS if args.new else WALL_KINDS if args.wall else PART_SOLID_KINDS if args.part_solid
        else THICK_HAZY_KINDS if args.thick_hazy else KINDS)
    kinds = [k for k in kinds if args.only in LesionKind(float(k[0]), *k[1:3], float(k[3]), float(k[4]), *k[5:]).label]
    cases = random_kinds(args.random, args.first_seed) if args.random else \
        [(kind, seed) for kind in kinds for seed in range(args.seeds)]
    out = args.signals.open("x") if args.signals else None  # "x": never over a file that appeared meanwhile

    def sink(row: dict) -> None:  # each row as it is made: an interrupted run keeps what it measured
        out.write(json_line(row))
        out.flush()
    try:
        rows = synthetic_rows(seg, cases, min(args.offsets, len(OFFSET_DIRS)), sink if out else None,
                              args.wall_clicks)
        if not args.no_real and not args.wall_clicks:
            rows += real_rows(seg, min(args.offsets, len(OFFSET_DIRS)), sink if out else None)
    finally:
        if out:
            out.close()
    if not rows:
        print("no cavitating kind among those drawn" if args.wall_clicks else "no case could be rendered",
              file=sys.stderr)
        return 1
    if args.per_case:
        print("| case | click | Dice | truth mL | predicted mL | warnings | flags | s |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for r in rows:
            print(f"| {r['case']} | {r['click']} | {r['dice']:.3f} | {r['truth_ml']:.2f} | {r['pred_ml']:.2f} "
                  f"| {r['warnings']} | {r['flags']} | {r['seconds']:.2f} |")
        print()
    for key in ("size", "attachment", "density", "slices") if args.random else \
            ("kind", "size", "attachment", "density", "slices"):
        print("\n".join(table(rows, key)) + "\n")
    d = np.array([r["dice"] for r in rows])
    ratio = np.array([r["ratio"] for r in rows])
    syn = [r["dice"] for r in rows if r["source"] == "synthetic"]
    print(f"overall: median Dice {np.median(d):.3f} (synthetic {np.median(syn):.3f}), "
          f"{100 * np.mean((ratio >= 0.5) & (ratio <= 2)):.0f}% of volumes within 2x, "
          f"{len(rows)} calls, median {np.median([r['seconds'] for r in rows]):.2f} s, "
          f"max {max(r['seconds'] for r in rows):.2f} s per call")
    bad = [r for r in rows if is_bad(r)]
    good = [bool(r["flags"]) for r in rows if not is_bad(r)]
    print(f"quality flag on the click's own segmentation: {sum(bool(r['flags']) for r in bad)}/{len(bad)} bad "
          f"results flagged, {f'{100 * np.mean(good):.0f}%' if good else '-'} of good ones")
    if args.random:
        held = len({r['case'] for r in rows if r['source'] == 'synthetic'})
        rest = "not cavitating or could not be placed" if args.wall_clicks else "could not be placed"
        print(f"kinds: {held} of {args.random} drawn (the rest {rest}; logged)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
