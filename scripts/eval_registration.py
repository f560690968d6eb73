"""Benchmark a registration backend on real chest CT moved by known transforms.

For each LIDC CT and each random case, a target scan is synthesised from the source with a
known pose change (rotation, translation, slight scaling), a smooth breathing-like deformation,
a local expansion around the nodule (growth), optionally lungs sliding along the chest wall, a
different slice thickness, in-plane spacing, field of view and reconstruction kernel, a small HU
calibration change and fresh noise. The true source -> target mapping is known, so the target
registration error (TRE) is measured at the nodule centre and at random lung points. The
backend runs in a spawned process so that its peak memory (VmHWM) and CPU time are its own.

Caveat: the target is made from the source itself, so anatomy and most texture match exactly;
real follow-up scans (new inspiration level, contrast, real growth) are harder than this.

Usage: python scripts/eval_registration.py [--backend classical] [--cases 3] [--points 20]
       [--sliding 10] [--max-rot 8] [--max-trans 25] [--max-def 8] [--max-crop 25]
       python scripts/eval_registration.py --breathing [--cases 2] [--points 40] [--cache DIR]
       (realistic breathing motion with sliding lungs: see scripts/eval_breathing.py)
Needs ../shared/data/lidc (relative to the repository root) or --data.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from LinGuinELib.registry import create_backend  # noqa: E402
from LinGuinELib.synthetic.breathing import invert  # noqa: E402

log = logging.getLogger("eval_registration")


def nodule_centre(consensus: sitk.Image) -> np.ndarray:
    """LPS centroid of the largest connected component of a nodule mask."""
    arr = sitk.GetArrayFromImage(consensus) > 0
    labels, count = ndimage.label(arr)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    zyx = np.argwhere(labels == int(np.argmax(sizes))).mean(axis=0)
    return np.array(consensus.TransformContinuousIndexToPhysicalPoint(tuple(zyx[::-1])))


def smooth_displacement(
    reference: sitk.Image, rng: np.random.Generator, max_mm: float, grid_mm: float = 10.0,
    growth_at: np.ndarray | None = None, growth_mm: float = 0.0, sliding_mm: float = 0.0,
) -> sitk.Transform:
    """A DisplacementFieldTransform (source space): broad Gaussian bumps, largest norm ``max_mm``.

    With ``growth_at``, a radial contraction (in the target -> source direction, so an
    expansion seen from the source) of up to ``growth_mm`` is added around that point; it
    leaves that point itself fixed. With ``sliding_mm``, the lungs alone move cranio-caudally
    (0 at the apex, ``sliding_mm`` at the base) and slide along the chest wall, which stays.
    """
    if sliding_mm > 0:
        grid_mm = 4.0
    size_mm = np.array(reference.GetSize()) * np.array(reference.GetSpacing())
    origin = np.array(reference.GetOrigin()) - 60.0
    shape_xyz = np.ceil((size_mm + 120.0) / grid_mm).astype(int) + 1
    axes = [origin[i] + grid_mm * np.arange(shape_xyz[i]) for i in range(3)]
    gx, gy, gz = np.meshgrid(*axes, indexing="ij")  # (x, y, z)
    pts = np.stack([gx, gy, gz], axis=-1)
    field = np.zeros(pts.shape)
    low = np.array(reference.GetOrigin())
    for _ in range(4):
        c = low + rng.uniform(0.15, 0.85, 3) * size_mm
        sigma = rng.uniform(50.0, 90.0)
        vec = rng.normal(size=3)
        w = np.exp(-np.sum((pts - c) ** 2, axis=-1) / (2 * sigma**2))
        field += w[..., None] * vec
    field *= max_mm / max(np.abs(np.linalg.norm(field, axis=-1)).max(), 1e-9)
    if growth_at is not None and growth_mm > 0:
        r = 10.0
        diff = pts - growth_at
        w = np.exp(-np.sum(diff**2, axis=-1) / (2 * r**2))
        field -= (growth_mm / (r * np.exp(-0.5))) * w[..., None] * diff
    if sliding_mm > 0:
        field += _lung_sliding(reference, origin, grid_mm, shape_xyz, pts, sliding_mm, rng)
    arr = np.transpose(field, (2, 1, 0, 3)).astype(np.float64)  # (z, y, x, 3)
    img = sitk.GetImageFromArray(arr, isVector=True)
    img.SetOrigin(tuple(origin))
    img.SetSpacing((grid_mm,) * 3)
    return sitk.DisplacementFieldTransform(img)


def _lung_sliding(reference: sitk.Image, origin: np.ndarray, grid_mm: float,
                  shape_xyz: np.ndarray, pts: np.ndarray, amount_mm: float,
                  rng: np.random.Generator) -> np.ndarray:
    """Breathing confined to the lungs: (x, y, z, 3) displacement on the field's grid."""
    grid = sitk.Resample(reference, [int(v) for v in shape_xyz], sitk.Transform(),
                         sitk.sitkLinear, tuple(origin), (grid_mm,) * 3,
                         (1, 0, 0, 0, 1, 0, 0, 0, 1), -1000.0, sitk.sitkFloat32)
    air = sitk.GetArrayFromImage(grid) < -400  # (z, y, x)
    labels, _ = ndimage.label(air)
    border = np.unique(np.concatenate([labels[[0, -1]].ravel(), labels[:, [0, -1]].ravel(),
                                       labels[:, :, [0, -1]].ravel()]))
    sizes = np.bincount(labels.ravel()) * grid_mm**3 / 1000.0
    keep = (sizes > 100.0) & ~np.isin(np.arange(len(sizes)), border)
    lungs = ndimage.binary_closing(keep[labels], iterations=2)
    weight = np.transpose(ndimage.gaussian_filter(lungs.astype(float), 0.75), (2, 1, 0))
    z = pts[..., 2]
    zs = z[np.transpose(lungs, (2, 1, 0))]
    top, bottom = (zs.max(), zs.min()) if zs.size else (z.max(), z.min())
    ramp = np.clip((top - z) / max(top - bottom, 1.0), 0.0, 1.0)
    direction = np.array([0.0, rng.uniform(-0.4, 0.4), 1.0]) * rng.choice([-1.0, 1.0])
    return (weight * ramp * amount_mm)[..., None] * direction


def make_case(
    source: sitk.Image, rng: np.random.Generator, max_rot_deg: float = 8.0,
    max_trans_mm: float = 25.0, max_def_mm: float = 8.0, growth_at: np.ndarray | None = None,
    max_crop_mm: float = 25.0, sliding_mm: float = 0.0,
) -> tuple[sitk.Image, sitk.Transform, dict]:
    """Synthesise a target scan; returns (target, g, description), g: target -> source points."""
    size = np.array(source.GetSize())
    spacing = np.array(source.GetSpacing())
    centre = np.array(source.TransformContinuousIndexToPhysicalPoint(tuple((size - 1) / 2.0)))
    angles = np.deg2rad(rng.uniform(-max_rot_deg, max_rot_deg, 3))
    trans = rng.normal(size=3)
    trans *= rng.uniform(0.4, 1.0) * max_trans_mm / np.linalg.norm(trans)
    pose = sitk.AffineTransform(3)
    rot = sitk.Euler3DTransform((0, 0, 0), *map(float, angles))
    scale = np.diag(rng.uniform(0.97, 1.03, 3))
    pose.SetMatrix(tuple((np.array(rot.GetMatrix()).reshape(3, 3) @ scale).ravel()))
    pose.SetCenter(tuple(centre))
    pose.SetTranslation(tuple(trans))
    disp = smooth_displacement(source, rng, max_def_mm, growth_at=growth_at,
                               growth_mm=2.0 if growth_at is not None else 0.0,
                               sliding_mm=sliding_mm)
    g = sitk.CompositeTransform([disp, pose])  # applied last-first: disp(pose(x))

    # Target grid: other slice thickness, other in-plane spacing, z field of view cropped.
    new_dz = 2.5 if spacing[2] < 2.0 else 1.25
    new_dxy = spacing[0] * rng.uniform(0.92, 1.08)
    crop_lo, crop_hi = rng.uniform(0.2, 1.0, 2) * max_crop_mm
    extent = size * spacing
    new_spacing = np.array([new_dxy, new_dxy, new_dz])
    new_size = np.array([
        int(extent[0] / new_dxy), int(extent[1] / new_dxy),
        int((extent[2] - crop_lo - crop_hi) / new_dz),
    ])
    new_origin = np.array(source.GetOrigin()) + np.array(
        [0.5 * (extent[0] - new_size[0] * new_dxy), 0.5 * (extent[1] - new_size[1] * new_dxy),
         crop_lo])
    blurred = sitk.Cast(source, sitk.sitkFloat32)
    if new_dz > spacing[2]:  # thicker slices average more tissue along z
        blurred = sitk.RecursiveGaussian(blurred, sigma=0.5 * new_dz, direction=2)
    target = sitk.Resample(blurred, [int(v) for v in new_size], g, sitk.sitkLinear,
                           tuple(new_origin), tuple(new_spacing), source.GetDirection(),
                           -1024.0, sitk.sitkFloat32)
    # Another reconstruction: a softer kernel, a slight HU calibration change, fresh noise.
    for axis in (0, 1):
        target = sitk.RecursiveGaussian(target, sigma=float(rng.uniform(0.3, 0.7)), direction=axis)
    target = target * float(rng.uniform(0.95, 1.05)) + float(rng.uniform(-20.0, 20.0))
    noise = sitk.AdditiveGaussianNoise(target, standardDeviation=25.0, seed=int(rng.integers(1e6)))
    target = sitk.Cast(noise, sitk.sitkInt16)
    desc = {"crop_mm": [round(crop_lo, 1), round(crop_hi, 1)],
            "rot_deg": np.rad2deg(angles).round(2).tolist(), "trans_mm": trans.round(1).tolist(),
            "def_mm": max_def_mm, "sliding_mm": sliding_mm,
            "spacing": new_spacing.round(3).tolist(),
            "size": new_size.tolist()}
    return target, g, desc


def lung_points(source: sitk.Image, target: sitk.Image, g: sitk.Transform, n: int,
                rng: np.random.Generator) -> np.ndarray:
    """``n`` random source points in lung parenchyma whose truth lies inside the target."""
    arr = sitk.GetArrayViewFromImage(source)
    small = arr[::4, ::8, ::8]
    body = ndimage.binary_fill_holes(small > -500, structure=np.ones((1, 3, 3)))
    lung = ndimage.binary_erosion(body & (small < -600), iterations=2)
    cand = np.argwhere(lung) * np.array([4, 8, 8])
    rng.shuffle(cand)
    chosen: list[np.ndarray] = []
    for zyx in cand:
        p = np.array(source.TransformContinuousIndexToPhysicalPoint(tuple(map(float, zyx[::-1]))))
        q = invert(g, p)
        idx = np.array(target.TransformPhysicalPointToContinuousIndex(tuple(q)))
        if np.all(idx > 20) and np.all(idx < np.array(target.GetSize()) - 20):
            chosen.append(p)
        if len(chosen) == n:
            break
    return np.array(chosen)


def _proc_status_mb(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return float(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def peak_rss_mb() -> float:
    """This process's peak resident memory (MB).

    Linux's VmHWM belongs to the current address space, so a spawned child does not inherit
    its parent's peak the way ``ru_maxrss`` does (that one survives exec).
    """
    hwm = _proc_status_mb("VmHWM")
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_backend(backend: str, options: dict, source_path: str, target_path: str,
                points: np.ndarray) -> dict:
    """Register and map in a fresh process, so that its peak memory is the backend's own.

    Wall times are what a user waits for on this (possibly busy) machine; CPU times are what
    the same work costs on an idle one (the classical backend runs one thread).
    """
    logging.basicConfig(level=logging.WARNING)
    source = sitk.ReadImage(source_path)
    target = sitk.ReadImage(target_path)
    rss_images = peak_rss_mb()
    warnings: list[str] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            warnings.append(record.getMessage())

    logging.getLogger("LinGuinELib").addHandler(_Collect(logging.WARNING))
    reg = create_backend("registration", backend, **options)
    w0, c0 = time.perf_counter(), time.process_time()
    mapper = reg.register(source, target)
    out = {"global_s": time.perf_counter() - w0, "global_cpu_s": time.process_time() - c0,
           "mapped": [], "point_s": [], "point_cpu_s": []}
    for p in points:
        w1, c1 = time.perf_counter(), time.process_time()
        out["mapped"].append(mapper.map_points(p[None])[0].tolist())
        out["point_s"].append(time.perf_counter() - w1)
        out["point_cpu_s"].append(time.process_time() - c1)
    out["confidence"] = [float(c) for c in mapper.confidence(points)] if len(points) else []
    out["warnings"] = warnings
    out["rss_images_mb"] = rss_images
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def summary(errors: list[float]) -> dict:
    e = np.asarray(errors)
    return {"n": len(e), "mean": round(float(e.mean()), 2), "median": round(float(np.median(e)), 2),
            "p90": round(float(np.percentile(e, 90)), 2), "max": round(float(e.max()), 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backend", default="classical")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "lidc")
    ap.add_argument("--cases", type=int, default=3, help="random transforms per CT")
    ap.add_argument("--points", type=int, default=20, help="random lung points per case")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--max-rot", type=float, default=8.0, help="degrees per axis")
    ap.add_argument("--max-trans", type=float, default=25.0, help="mm")
    ap.add_argument("--max-def", type=float, default=8.0, help="largest deformation, mm")
    ap.add_argument("--sliding", type=float, default=0.0,
                    help="lungs-only breathing motion at the lung base, mm (0: none)")
    ap.add_argument("--max-crop", type=float, default=25.0, help="z field-of-view cut per end, mm")
    ap.add_argument("--option", action="append", default=[],
                    help="backend option key=value (value parsed as JSON when possible)")
    ap.add_argument("--json", type=Path, help="write all results here")
    ap.add_argument("--breathing", action="store_true",
                    help="realistic-motion benchmark instead (scripts/eval_breathing.py); "
                         "--cases per CT, --points landmarks per case")
    ap.add_argument("--cache", type=Path, help="--breathing: keep generated cases here")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not args.data.is_dir():
        log.error("data folder %s not found", args.data)
        return 2
    options = {}
    for item in args.option:
        key, _, value = item.partition("=")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    create_backend("registration", args.backend, **options)  # fail early on bad options
    if args.breathing:
        import eval_breathing

        with tempfile.TemporaryDirectory() as tmp:
            args.tmp = tmp
            report = eval_breathing.run(args, options, run_backend)
        if args.json:
            args.json.write_text(json.dumps(report, indent=1))
        return 0
    rng = np.random.default_rng(args.seed)
    rows = []
    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("LIDC-IDRI-0001", "LIDC-IDRI-0002"):
            source_path = args.data / f"{name}_ct.nii.gz"
            source = sitk.ReadImage(str(source_path))
            nodule = nodule_centre(sitk.ReadImage(str(args.data / f"{name}_consensus2.nii.gz")))
            for case in range(args.cases):
                target, g, desc = make_case(source, rng, args.max_rot, args.max_trans,
                                            args.max_def, growth_at=nodule,
                                            max_crop_mm=args.max_crop,
                                            sliding_mm=args.sliding)
                target_path = str(Path(tmp) / "target.mha")
                sitk.WriteImage(target, target_path)
                points = np.vstack([nodule, lung_points(source, target, g, args.points, rng)])
                truth = np.array([invert(g, p) for p in points])
                with ctx.Pool(1) as pool:
                    res = pool.apply(run_backend, (args.backend, options, str(source_path),
                                                   target_path, points))
                err = np.linalg.norm(np.array(res["mapped"]) - truth, axis=1)
                motion = np.linalg.norm(truth - points, axis=1)
                row = {"ct": name, "case": case, **desc,
                       "global_s": round(res["global_s"], 2),
                       "global_cpu_s": round(res["global_cpu_s"], 2),
                       "point_s_mean": round(float(np.mean(res["point_s"])), 2),
                       "point_s_max": round(float(np.max(res["point_s"])), 2),
                       "point_cpu_s_mean": round(float(np.mean(res["point_cpu_s"])), 2),
                       "point_cpu_s_max": round(float(np.max(res["point_cpu_s"])), 2),
                       "nodule_tre": round(float(err[0]), 2),
                       "nodule_motion": round(float(motion[0]), 1),
                       "lung_tre": err[1:].round(2).tolist(),
                       "lung_motion_mean": round(float(motion[1:].mean()), 1),
                       "rss_images_mb": round(res["rss_images_mb"]),
                       "peak_rss_mb": round(res["peak_rss_mb"])}
                rows.append(row)
                log.info("%s case %d: global %.1f s (cpu %.1f), point %.1f s (cpu %.1f, max %.1f)"
                         ", nodule TRE %.2f mm (motion %.1f), lung TRE mean %.2f median %.2f "
                         "max %.2f (motion %.1f), peak %d MB (images %d MB)", name, case,
                         row["global_s"], row["global_cpu_s"], row["point_s_mean"],
                         row["point_cpu_s_mean"], row["point_s_max"], err[0], motion[0],
                         err[1:].mean(), np.median(err[1:]), err[1:].max(),
                         row["lung_motion_mean"], row["peak_rss_mb"], row["rss_images_mb"])
    nod = summary([r["nodule_tre"] for r in rows])
    lung = summary([e for r in rows for e in r["lung_tre"]])
    report = {"backend": args.backend, "options": options, "settings": {
        k: getattr(args, k)
        for k in ("max_rot", "max_trans", "max_def", "sliding", "max_crop", "seed")},
        "nodule_tre": nod, "lung_tre": lung,
        "global_s_max": max(r["global_s"] for r in rows),
        "global_cpu_s_max": max(r["global_cpu_s"] for r in rows),
        "point_s_mean": round(float(np.mean([r["point_s_mean"] for r in rows])), 2),
        "point_cpu_s_mean": round(float(np.mean([r["point_cpu_s_mean"] for r in rows])), 2),
        "point_cpu_s_max": max(r["point_cpu_s_max"] for r in rows),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in rows), "cases": rows}
    log.info("nodule TRE (mm) %s", nod)
    log.info("lung TRE (mm) %s", lung)
    log.info("global stage: wall max %.1f s, cpu max %.1f s; per point: wall mean %.2f s, cpu "
             "mean %.2f s, cpu max %.2f s; peak RSS %d MB", report["global_s_max"],
             report["global_cpu_s_max"], report["point_s_mean"], report["point_cpu_s_mean"],
             report["point_cpu_s_max"], report["peak_rss_mb"])
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
