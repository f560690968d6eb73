"""Realistic-motion registration benchmark (``eval_registration.py --breathing``).

Each shared chest CT (two LIDC scans, the lung mass scan) is moved to other breathing phases by
``LinGuinELib.synthetic.breathing``: 20-40 mm diaphragm motion with the lungs sliding along the
chest wall, density following the volume change, another grid, field of view (every second case
a half-thorax reconstruction circle padded with -2048), kernel and noise. Landmarks at lung
vessel corners and the lesion centre are carried through the known transform; the backend maps
them source -> target and target -> source (two registrations per case). Generated cases can be
cached (``--cache DIR``): generation takes about a minute per case, registration seconds.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from LinGuinELib.synthetic.breathing import carry, lung_landmarks, lung_regions, make_breathing_case

log = logging.getLogger("eval_registration")

SCANS = (  # (name, CT, lesion mask) relative to the shared data folder
    ("LIDC-IDRI-0001", "lidc/LIDC-IDRI-0001_ct.nii.gz", "lidc/LIDC-IDRI-0001_consensus2.nii.gz"),
    ("LIDC-IDRI-0002", "lidc/LIDC-IDRI-0002_ct.nii.gz", "lidc/LIDC-IDRI-0002_consensus2.nii.gz"),
    ("lung2-mass", "mass/pyradiomics_lung2_ct.nrrd", "mass/pyradiomics_lung2_mask.nrrd"),
)


def lesion_centre(mask: sitk.Image) -> np.ndarray:
    """LPS centroid of the largest connected component of a lesion mask."""
    labels, _ = ndimage.label(sitk.GetArrayFromImage(mask) > 0)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    zyx = np.argwhere(labels == int(np.argmax(sizes))).mean(axis=0)
    return np.array(mask.TransformContinuousIndexToPhysicalPoint(tuple(zyx[::-1])))


def build_case(data: Path, scan: tuple[str, str, str], case: int, seed: int, n_points: int,
               cache: Path) -> dict:
    """Generate (or load from ``cache``) one case: target image path, points and their truth."""
    name, ct, mask = scan
    stem = cache / f"{name}_s{seed}_c{case}"
    meta_path = stem.with_suffix(".json")
    if meta_path.exists():
        return json.loads(meta_path.read_text())
    rng = np.random.default_rng([seed, case, sum(map(ord, name))])
    source = sitk.ReadImage(str(data / ct))
    regions = lung_regions(source)
    landmarks = lung_landmarks(source, regions[0], n_points, rng)
    lesion = lesion_centre(sitk.ReadImage(str(data / mask)))
    bc = make_breathing_case(source, rng, half_fov=case % 2 == 1, regions=regions)
    points = np.vstack([lesion[None], landmarks])
    truth = carry(bc, points)
    keep = np.isfinite(truth[:, 0])
    target_path = stem.with_suffix(".nii.gz")
    sitk.WriteImage(bc.target, str(target_path), True)
    meta = {"name": name, "case": case, "source": str(data / ct), "target": str(target_path),
            **bc.desc, "lesion_in_fov": bool(keep[0]),
            "points": points[keep].tolist(), "truth": truth[keep].tolist()}
    meta_path.write_text(json.dumps(meta))
    return meta


def _errors(mapped: list, truth: np.ndarray) -> np.ndarray:
    return np.linalg.norm(np.asarray(mapped) - truth, axis=1)


def summary(errors: np.ndarray) -> dict:
    e = np.asarray(errors, dtype=float)
    if e.size == 0:
        return {"n": 0}
    return {"n": int(e.size), "mean": round(float(e.mean()), 2), "median": round(float(np.median(e)), 2),
            "p90": round(float(np.percentile(e, 90)), 2), "max": round(float(e.max()), 2),
            "under_2.5mm": round(float((e < 2.5).mean()), 3)}


def calibration(conf: np.ndarray, errors: np.ndarray) -> list[dict]:
    """Per candidate threshold: share of landmarks flagged, and how many large errors are flagged."""
    out = []
    for threshold in (0.3, 0.4, 0.5, 0.6, 0.7):
        low = conf < threshold
        out.append({"threshold": threshold, "flagged": round(float(low.mean()), 3),
                    "over_2mm": int((errors > 2).sum()), "over_2mm_flagged": int(((errors > 2) & low).sum()),
                    "over_3mm": int((errors > 3).sum()), "over_3mm_flagged": int(((errors > 3) & low).sum()),
                    "error_mean_flagged": round(float(errors[low].mean()), 2) if low.any() else None,
                    "error_mean_kept": round(float(errors[~low].mean()), 2) if (~low).any() else None})
    return out


def run(args, options: dict, run_backend) -> dict:
    """All cases, both directions; returns the report (also logged)."""
    cache = args.cache or Path(args.tmp)
    cache.mkdir(parents=True, exist_ok=True)
    data = args.data.parent if args.data.name == "lidc" else args.data
    ctx = multiprocessing.get_context("spawn")
    rows = []
    for scan in SCANS:
        if not (data / scan[1]).exists():
            log.warning("%s absent: skipped", data / scan[1])
            continue
        for case in range(args.cases):
            meta = build_case(data, scan, case, args.seed, args.points, cache)
            points, truth = np.array(meta["points"]), np.array(meta["truth"])
            for direction, src, tgt, pin, pout in (("forward", meta["source"], meta["target"], points, truth),
                                                   ("reverse", meta["target"], meta["source"], truth, points)):
                with ctx.Pool(1) as pool:
                    res = pool.apply(run_backend, (args.backend, options, src, tgt, pin))
                err = _errors(res["mapped"], pout)
                lesion = meta["lesion_in_fov"]
                row = {"ct": meta["name"], "case": case, "direction": direction,
                       **{k: meta[k] for k in ("diaphragm_mm", "spacing", "kernel", "half_fov")},
                       "global_s": round(res["global_s"], 2), "global_cpu_s": round(res["global_cpu_s"], 2),
                       "point_cpu_s_mean": round(float(np.mean(res["point_cpu_s"])), 3),
                       "point_cpu_s_max": round(float(np.max(res["point_cpu_s"])), 3),
                       "lesion_error": round(float(err[0]), 2) if lesion else None,
                       "landmark_errors": err[int(lesion):].round(2).tolist(),
                       "confidence": res.get("confidence", []),
                       "motion_mean": round(float(np.linalg.norm(truth - points, axis=1).mean()), 1),
                       "peak_rss_mb": round(res["peak_rss_mb"]), "warnings": res.get("warnings", [])}
                rows.append(row)
                lm = np.array(row["landmark_errors"])
                log.info("%s c%d %s (diaphragm %.0f mm, %s%s): global %.1f s (cpu %.1f), point cpu %.2f s; "
                         "lesion %s mm; %d landmarks mean %.2f p90 %.2f max %.2f mm (motion %.1f)",
                         meta["name"], case, direction, meta["diaphragm_mm"], meta["kernel"],
                         ", half FOV" if meta["half_fov"] else "", row["global_s"], row["global_cpu_s"],
                         row["point_cpu_s_mean"], row["lesion_error"], len(lm), lm.mean(),
                         np.percentile(lm, 90), lm.max(), row["motion_mean"])
    report = {"backend": args.backend, "options": options, "seed": args.seed, "rows": rows}
    for direction in ("forward", "reverse", None):
        sel = [r for r in rows if direction in (None, r["direction"])]
        key = direction or "both"
        report[f"landmarks_{key}"] = summary([e for r in sel for e in r["landmark_errors"]])
        report[f"lesions_{key}"] = summary([r["lesion_error"] for r in sel if r["lesion_error"] is not None])
    report["global_s_max"] = max(r["global_s"] for r in rows)
    report["global_cpu_s_median"] = float(np.median([r["global_cpu_s"] for r in rows]))
    report["point_cpu_s_mean"] = round(float(np.mean([r["point_cpu_s_mean"] for r in rows])), 3)
    conf = np.array([c for r in rows for c in r["confidence"][int(r["lesion_error"] is not None):]], float)
    errs = np.array([e for r in rows for e in r["landmark_errors"]])
    if conf.size == errs.size and conf.size and np.isfinite(conf).any():
        report["confidence"] = calibration(conf, errs)
    report["cases"] = [{"ct": r["ct"], "case": r["case"], "direction": r["direction"], "half_fov": r["half_fov"],
                        **summary(r["landmark_errors"]), "lesion": r["lesion_error"], "global_cpu_s": r["global_cpu_s"],
                        "point_cpu_s": r["point_cpu_s_mean"]} for r in rows]
    for key in ("landmarks_forward", "landmarks_reverse", "lesions_both"):
        log.info("%s: %s", key, report.get(key))
    for row in report.get("confidence", []):
        log.info("confidence < %.2f: %s", row["threshold"], row)
    log.info("global stage: wall max %.1f s, cpu median %.1f s; refinement cpu mean %.3f s per point",
             report["global_s_max"], report["global_cpu_s_median"], report["point_cpu_s_mean"])
    return report
