"""Per-kind accuracy tables for scripts/benchmark.py: one record per (lesion, scan), grouped.

A lesion's kind is its size class (equivalent diameter of the truth on the prompt scan: 4-10,
10-30, 30-60, 60-100 mm), attachment and density. Synthetic lesions carry their kind in
``truth.json`` (``kind_detail``); real ones (LIDC, the mass) are measured from the truth mask
and the CT: density from the lesion's median HU (ground glass below -300 HU, part-solid below
-100 HU, else solid), attachment from the ring of voxels just outside it (isolated when under
15% of it is soft tissue, else "attached": where, the CT alone doesn't say).

Per group, separately for the prompt scan and the propagated scans: median Dice, median centre
distance, share of volumes within 2x of the truth, response agreement (the README's volumetric
rules on the true and on the reported volumes, every scan after the first; also among the rows
the product vouches for, i.e. not marked ``response_uncertain``), flag recall and precision
(bad = Dice < 0.5, volume off > 2x, missed or spurious; the segmentation flag: every reason but
``response_uncertain``, which speaks of the category, not the segment), vanished lesions
not_found (and present lesions whose segment was rejected as not the lesion: real ones lost).

Each disagreeing (lesion, scan) gets a cause, by counterfactual: ``vanished_kept`` (the lesion has
gone, a segment was reported), ``lost`` (present, reported not_found), ``baseline`` (the true
baseline volume alone would give the true category), ``this_scan`` (this scan's true volume alone
would), ``earlier_scans`` (the true volumes of the scans before it would: a wrong nadir), else
``several``; ``near_threshold`` is added when the true ratio itself lies within the measurement
tolerance of a threshold (a small error flips it).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from LinGuinELib.measures.response import response_uncertainty, trajectory_changes
from LinGuinELib.quality.scoring import flag_scores, is_bad

UNCERTAIN = "response_uncertain"

SIZE_CLASSES = ((4.0, "4-10mm"), (10.0, "10-30mm"), (30.0, "30-60mm"), (60.0, "60-100mm"))


def size_class(volume_ml: float) -> str:
    d = 2.0 * (3.0 * volume_ml * 1000.0 / (4.0 * math.pi)) ** (1.0 / 3.0) if volume_ml > 0 else 0.0
    return [name for lo, name in SIZE_CLASSES if d >= lo][-1] if d >= 4.0 else "<4mm"


def measured_kind(image: sitk.Image, truth: np.ndarray) -> dict:
    """Density and attachment of a real lesion from its truth mask and CT (see module docstring)."""
    hu = sitk.GetArrayViewFromImage(image)
    inner = ndimage.binary_erosion(truth)
    level = float(np.median(hu[inner if inner.sum() > 20 else truth]))
    density = "ground_glass" if level < -300 else ("part_solid" if level < -100 else "solid")
    d1 = ndimage.binary_dilation(truth)
    ring = ndimage.binary_dilation(d1, iterations=2) & ~d1
    tissue = float(np.mean(hu[ring] > -300)) if ring.any() else 0.0
    return {"density": density, "attachment": "attached" if tissue >= 0.15 else "isolated",
            "tissue_contact": round(tissue, 3)}


def lesion_kinds(manifest: Path, study, evaluation_rows: list[dict]) -> dict[str, dict]:
    """Lesion id -> {size_class, attachment, density, slice_class?} for one study."""
    truth_doc = manifest.parent / "truth.json"
    doc = json.loads(truth_doc.read_text()) if truth_doc.is_file() else {}
    listed = {les["id"]: les for les in doc.get("lesions", [])}
    out = {}
    for lesion in study.lesions:
        src = [r for r in evaluation_rows if r["lesion"] == lesion.id and r["is_source"]]
        vol = float(src[0]["truth_volume_ml"]) if src else math.nan
        info = listed.get(lesion.id, {})
        detail = info.get("kind_detail") or {}
        kind = {"size_class": size_class(vol), "label": info.get("kind", "")}
        if info.get("expected_volume_ml") and doc.get("scans"):  # the generator's own volumes, by scan id
            kind["expected_ml"] = dict(zip([sc["id"] for sc in doc["scans"]], info["expected_volume_ml"]))
        if detail.get("attachment") and detail.get("density"):
            kind.update(attachment=detail["attachment"], density=detail["density"])
            if detail.get("slice_class"):
                kind["slice_class"] = detail["slice_class"]
        elif info.get("kind") in ("vessel", "pleura", "free"):  # the phantom's own three
            kind.update(attachment={"vessel": "vessel", "pleura": "chest_wall", "free": "isolated"}[info["kind"]],
                        density="solid")
        else:
            scan = study.scan(lesion.scan_id)
            image = sitk.ReadImage(str(scan.path))
            truth = sitk.GetArrayFromImage(sitk.ReadImage(str(scan.truth_path))) == (lesion.truth_label or 1)
            kind.update(measured_kind(image, truth))
        out[lesion.id] = kind
    return out


def _responses(volumes: list) -> list[str]:
    return [r["response"] for r in trajectory_changes(volumes)]


def disagreement_cause(truth: list, pred: list, k: int, tolerance: float = 1.3) -> str:
    """Why the reported category of scan ``k`` differs from the truth's (see module docstring).

    ``tolerance``: the measurement tolerance used to call the truth itself near a threshold."""
    want = _responses(truth)[k]
    first = next((i for i, v in enumerate(pred) if v is not None), None)
    if truth[k] == 0 and (pred[k] or 0) > 0:
        cause = "vanished_kept"
    elif (truth[k] or 0) > 0 and pred[k] == 0:
        cause = "lost"
    elif first is not None and _responses([truth[i] if i == first else v for i, v in enumerate(pred)])[k] == want:
        cause = "baseline"
    elif _responses([truth[i] if i == k else v for i, v in enumerate(pred)])[k] == want:
        cause = "this_scan"
    elif _responses([truth[i] if i < k else v for i, v in enumerate(pred)])[k] == want:
        cause = "earlier_scans"
    else:
        cause = "several"
    near = response_uncertainty(truth, [tolerance] * len(truth))[k]
    return cause + (", near_threshold" if near else "")


def pair_records(dataset: str, study_id: str, kinds: dict, evaluation_rows: list[dict],
                 trajectory_rows: list[dict]) -> list[dict]:
    """One record per (lesion, scan) with truth, prediction, response and review."""
    traj = {(r["lesion"], r["scan"]): r for r in trajectory_rows}
    by_lesion = defaultdict(list)
    for r in evaluation_rows:
        by_lesion[r["lesion"]].append(r)
    out = []
    for lesion, rows in by_lesion.items():
        truth_v = [float(r["truth_volume_ml"]) if np.isfinite(r["truth_volume_ml"]) else None for r in rows]
        pred_v = [traj[(lesion, r["scan"])]["volume_ml"] for r in rows]
        true_resp = trajectory_changes(truth_v)
        expected = kinds[lesion].get("expected_ml") or {}
        exp_resp = trajectory_changes([expected.get(r["scan"]) for r in rows]) if expected else [{}] * len(rows)
        for k, (r, tr, er) in enumerate(zip(rows, true_resp, exp_resp)):
            t = traj[(lesion, r["scan"])]  # its response is what users are told
            differ = tr["response"] not in ("baseline", "NE") and tr["response"] != t["response"]
            out.append({"dataset": dataset, "study": study_id, "lesion": lesion, "scan": r["scan"],
                        **{k: v for k, v in kinds[lesion].items() if k not in ("tissue_contact", "expected_ml")},
                        "is_source": bool(r["is_source"]), "status": r["status"],
                        "truth_ml": r["truth_volume_ml"], "pred_ml": r["pred_volume_ml"],
                        "dice": r["dice"], "centre_mm": r["centre_distance_mm"],
                        "true_response": tr["response"], "reported_response": t["response"],
                        "expected_response": er.get("response", ""),
                        "review": bool(t["review"]), "reasons": t["review_reasons"],
                        "cause": ("" if not differ else "not evaluable (no baseline: the click gave nothing)"
                                  if "no_baseline" in t["review_reasons"].split(";")
                                  else disagreement_cause(truth_v, pred_v, k))})
    return out


def _group_stats(recs: list[dict]) -> dict:
    present = [r for r in recs if r["truth_ml"] > 0]
    gone = [r for r in recs if r["truth_ml"] == 0]
    dice = [r["dice"] for r in present if np.isfinite(r["dice"])]
    dist = [r["centre_mm"] for r in present if np.isfinite(r["centre_mm"])]
    within = [r["pred_ml"] > 0 and max(r["pred_ml"] / r["truth_ml"], r["truth_ml"] / r["pred_ml"]) <= 2.0
              for r in present]
    called = [r for r in recs if r["true_response"] not in ("baseline", "NE")]
    resp = [r["true_response"] == r["reported_response"] for r in called]
    vouched = [r["true_response"] == r["reported_response"] for r in called if UNCERTAIN not in _codes(r)]
    judged = [(b, bool(_codes(r) - {UNCERTAIN})) for r in recs
              if (b := is_bad(r["truth_ml"], r["pred_ml"], r["dice"])) is not None]
    flags = flag_scores(judged)
    return {"n": len(present), "dice": float(np.median(dice)) if dice else math.nan,
            "centre_mm": float(np.median(dist)) if dist else math.nan,
            "within2x": float(np.mean(within)) if within else math.nan,
            "response": float(np.mean(resp)) if resp else math.nan, "n_response": len(resp),
            "response_agree": int(sum(resp)), "response_vouched": float(np.mean(vouched)) if vouched else math.nan,
            "n_vouched": len(vouched), "vouched_agree": int(sum(vouched)),
            "disagree_unreviewed": sum(r["true_response"] != r["reported_response"] and not r["review"]
                                       for r in called),
            "reviewed": float(np.mean([r["review"] for r in recs])) if recs else math.nan,
            "bad": flags["bad"], "recall": flags["recall"], "precision": flags["precision"],
            "good_flagged": flags["good_flagged_rate"],
            "vanished": len(gone), "vanished_not_found": sum(r["status"] == "not_found" for r in gone),
            "present_rejected": sum("candidate_rejected" in r["reasons"].split(";") for r in present),
            "present_not_found": sum(r["status"] == "not_found" for r in present)}


def _codes(record: dict) -> set[str]:
    return set(filter(None, record["reasons"].split(";")))


def cause_table(records: list[dict]) -> str:
    """Every (lesion, scan) whose reported category differs from the truth's, with its cause; the
    category from the generator's own volumes (before voxelisation) is shown when it differs."""
    lines = ["| study | lesion | kind | scan | truth mL | reported mL | true (generator's) | reported | cause "
             "| review reasons |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        if r.get("cause"):
            kind = f"{r.get('size_class', '')} {r.get('attachment', '')}"
            truth = r["true_response"] + (f" ({r['expected_response']})" if r.get("expected_response")
                                          not in ("", r["true_response"]) else "")
            lines.append(f"| {r['study']} | {r['lesion']} | {kind} | {r['scan']} | {r['truth_ml']:.2f} "
                         f"| {r['pred_ml']:.2f} | {truth} | {r['reported_response']} | {r['cause']} "
                         f"| {r['reasons'] or '-'} |")
    return "\n".join(lines)


def truth_disagreements(records: list[dict]) -> str:
    """How often the two truths (voxelised labels, generator's volumes) give different categories."""
    both = [r for r in records if r.get("expected_response") and r["true_response"] not in ("baseline", "NE")]
    differ = [r for r in both if r["expected_response"] != r["true_response"]]
    text = ", ".join(f"{r['study']} {r['lesion']} {r['scan']}: {r['true_response']} / {r['expected_response']}"
                     for r in differ)
    return f"{len(differ)} of {len(both)} categories differ between the two truths" + (f" ({text})" if text else "")


def kind_tables(records: list[dict]) -> tuple[str, dict]:
    """Markdown tables (overall, per dataset, size class, attachment, density, slices) and the numbers."""
    keys = ["dataset", "size_class", "attachment", "density"]
    if any("slice_class" in r for r in records):
        keys.append("slice_class")
    groups: list[tuple[str, str, list[dict]]] = [("all", "all", records)]
    for key in keys:
        for value in sorted({str(r.get(key, "?")) for r in records}):
            groups.append((key, value, [r for r in records if str(r.get(key, "?")) == value]))
    head = ("| group | scans | n | median Dice | centre mm | within 2x | response agree | agree where vouched "
            "| bad | flag recall | flag precision | good flagged | vanished not_found |")
    lines = [head, "|" + "---|" * 13]
    numbers = {}
    for key, value, recs in groups:
        for part, sel in (("prompt", [r for r in recs if r["is_source"]]),
                          ("propagated", [r for r in recs if not r["is_source"]])):
            if not sel:
                continue
            s = _group_stats(sel)
            numbers[f"{key}={value}/{part}"] = s
            van = f"{s['vanished_not_found']}/{s['vanished']}" if s["vanished"] else "-"
            if s["present_not_found"]:
                van += f", present not_found {s['present_not_found']} ({s['present_rejected']} by the check)"
            lines.append(f"| {key}={value} | {part} | {s['n']} | {_f(s['dice'])} | {_f(s['centre_mm'], 1)} "
                         f"| {_pct(s['within2x'])} | {_pct(s['response'])} ({s['response_agree']}/{s['n_response']}) "
                         f"| {_pct(s['response_vouched'])} ({s['vouched_agree']}/{s['n_vouched']}) | {s['bad']} "
                         f"| {_pct(s['recall'])} | {_pct(s['precision'])} | {_pct(s['good_flagged'])} | {van} |")
    return "\n".join(lines), numbers


def _f(v: float, digits: int = 3) -> str:
    return "-" if not np.isfinite(v) else f"{v:.{digits}f}"


def _pct(v: float) -> str:
    return "-" if not np.isfinite(v) else f"{100 * v:.0f}%"


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a rate k/n (NaN when n = 0): honest at small counts and near 0 or 1."""
    if n == 0:
        return math.nan, math.nan
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _rate(k: int, n: int) -> str:
    lo, hi = wilson(k, n)
    return f"{k}/{n} ({100 * k / n:.0f}%, {100 * lo:.0f}-{100 * hi:.0f})" if n else "-"


def pooled_counts(records: list[dict]) -> dict[str, tuple[int, int]]:
    """(count, of) for the issue's four goals on the propagated scans: bad results flagged, good
    results flagged, vanished lesions not_found, response categories agreeing with the truth's."""
    prop = [r for r in records if not r["is_source"]]
    judged = [(b, bool(_codes(r) - {UNCERTAIN})) for r in prop
              if (b := is_bad(r["truth_ml"], r["pred_ml"], r["dice"])) is not None]
    gone = [r for r in prop if r["truth_ml"] == 0]
    called = [r for r in prop if r["true_response"] not in ("baseline", "NE")]
    return {"bad flagged": (sum(b and f for b, f in judged), sum(b for b, _ in judged)),
            "good flagged": (sum(f and not b for b, f in judged), sum(not b for b, _ in judged)),
            "vanished not_found": (sum(r["status"] == "not_found" for r in gone), len(gone)),
            "response agrees": (sum(r["true_response"] == r["reported_response"] for r in called), len(called))}


def pooled_table(records: list[dict]) -> str:
    """One row per seed and one for all seeds pooled: count/of (rate, 95% Wilson interval)."""
    seeds = sorted({r.get("seed") for r in records}, key=lambda s: (s is None, s))
    rows = [(f"seed {s}", [r for r in records if r.get("seed") == s]) for s in seeds]
    if len(rows) > 1:
        rows.append(("pooled", records))
    names = list(pooled_counts([]))
    lines = ["| seeds | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for label, recs in rows:
        counts = pooled_counts(recs)
        lines.append(f"| {label} | " + " | ".join(_rate(*counts[n]) for n in names) + " |")
    return "\n".join(lines)
