#!/usr/bin/env python
"""Time one register / one segment per learned backend, with random weights, and peak memory.

    python scripts/bench_learned.py               # tiny models (minutes on 2 CPU cores)
    python scripts/bench_learned.py --full-size   # real-size networks, random weights (slow on CPU)

Each backend runs in its own subprocess so that its peak resident memory (ru_maxrss) is its own.
Random weights time the real computation; the masks and mapped points mean nothing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "Testing"))

BACKENDS = ("unigradicon", "nninteractive", "vista3d", "lesionlocator")


def phantom(shift_mm: float, size=(192, 192, 96), spacing=(1.6, 1.6, 3.0)) -> sitk.Image:
    """Chest-like CT: soft-tissue body, two lungs, a 12 mm nodule moved by ``shift_mm`` in x."""
    z, y, x = np.indices(size[::-1]).astype(np.float32)
    x, y, z = x * spacing[0], y * spacing[1], z * spacing[2]
    cx, cy, cz = size[0] * spacing[0] / 2, size[1] * spacing[1] / 2, size[2] * spacing[2] / 2
    arr = np.full(x.shape, -1000.0, np.float32)
    arr[((x - cx) / 140) ** 2 + ((y - cy) / 100) ** 2 < 1] = 40.0
    for side in (-1, 1):
        arr[((x - cx - side * 65) / 50) ** 2 + ((y - cy) / 70) ** 2 + ((z - cz) / 120) ** 2 < 1] = -850
    nodule = (x - cx - 60 - shift_mm) ** 2 + (y - cy) ** 2 + (z - cz) ** 2 < 36
    arr[nodule] = 20.0
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(spacing)
    return img


def nodule_point(shift_mm: float, size=(192, 192, 96), spacing=(1.6, 1.6, 3.0)) -> np.ndarray:
    return np.array([[size[0] * spacing[0] / 2 + 60 + shift_mm, size[1] * spacing[1] / 2,
                      size[2] * spacing[2] / 2]])


def nninteractive_folder(tmp: Path, full: bool) -> Path:
    from learned_fixtures import tiny_plans, write_tiny_nninteractive

    if not full:
        return write_tiny_nninteractive(tmp / "nnInteractive_tiny")
    # ResEnc-L-like layout at patch 192 (an approximation of the official architecture).
    plans = tiny_plans(patch=192)
    arch = plans["configurations"]["3d_tiny"]["architecture"]["arch_kwargs"]
    arch.update({
        "n_stages": 6, "features_per_stage": [32, 64, 128, 256, 320, 320],
        "kernel_sizes": [[3, 3, 3]] * 6,
        "strides": [[1, 1, 1]] + [[2, 2, 2]] * 5,
        "n_blocks_per_stage": [1, 3, 4, 6, 6, 6], "n_conv_per_stage_decoder": [1] * 5,
    })
    return write_tiny_nninteractive(tmp / "nnInteractive_full", plans=plans)


def lesionlocator_folder(tmp: Path, full: bool) -> Path:
    """LesionLocatorCheckpoint layout; full size: the published LLSeg plans' network, patch and
    spacing (ResEnc-L, 6 stages, patch 160x224x224, 1.0x0.8x0.8 mm), one fold."""
    from learned_fixtures import tiny_plans, write_tiny_lesionlocator

    if not full:
        return write_tiny_lesionlocator(tmp / "LesionLocatorCheckpoint", folds=(0,))
    plans = tiny_plans(patch=160)
    config = plans["configurations"]["3d_tiny"]
    config.update({"patch_size": [160, 224, 224], "spacing": [1.0, 0.8, 0.8]})
    config["architecture"]["arch_kwargs"].update({
        "n_stages": 6, "features_per_stage": [32, 64, 128, 256, 320, 320],
        "kernel_sizes": [[3, 3, 3]] * 6, "strides": [[1, 1, 1]] + [[2, 2, 2]] * 5,
        "n_blocks_per_stage": [1, 3, 4, 6, 6, 6], "n_conv_per_stage_decoder": [1] * 5,
    })
    return write_tiny_lesionlocator(tmp / "LesionLocatorCheckpoint", folds=(0,), plans=plans)


def run_one(name: str, full: bool, device: str, threads: int) -> dict[str, Any]:
    import torch

    from LinGuinELib.registry import create_backend
    from LinGuinELib.segmentation.torch_utils import peak_rss_mb

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    src, tgt = phantom(0.0), phantom(6.0)
    result: dict[str, Any] = {"backend": name, "full_size": full, "device": device}
    with tempfile.TemporaryDirectory() as tmp_str:
        tmp = Path(tmp_str)
        t0 = time.perf_counter()
        if name == "unigradicon":
            from LinGuinELib.registration.icon import build_network

            grid = 175 if full else 128
            weights = tmp / "w.trch"
            state = build_network((grid,) * 3).regis_net.state_dict()
            for key in state:  # zero-initialised by the package: make the map non-trivial
                if "lastConv" in key:
                    state[key].normal_(0.0, 5e-4)
            torch.save(state, weights)
            backend = create_backend("registration", name, weights=str(weights), grid=grid,
                                     device=device)
            backend.load()
            result["load_s"] = time.perf_counter() - t0
            t1 = time.perf_counter()
            mapped = backend.register(src, tgt).map_points(nodule_point(0.0))
            result["register_s"] = time.perf_counter() - t1
            result["grid"] = grid
            result["moved_mm"] = float(np.linalg.norm(mapped - nodule_point(0.0)))
        else:
            if name == "lesionlocator":
                # one fold, no mirroring: upstream's defaults (5 folds x 8 mirrorings) are 40x this
                opts = {"model_dir": str(lesionlocator_folder(tmp, full)), "folds": "0",
                        "mirror": False}
            elif name == "nninteractive":
                # AutoZoom off: random weights call everything foreground, and AutoZoom would then
                # refine the whole image (minutes), which real weights do not do.
                opts = {"model_dir": str(nninteractive_folder(tmp, full)), "threads": threads,
                        "autozoom": False}
            else:
                from monai.networks.nets import vista3d132

                weights = tmp / "model.pt"
                torch.save(vista3d132(encoder_embed_dim=48 if full else 8).state_dict(), weights)
                opts = {"weights": str(weights), "encoder_embed_dim": 48 if full else 8,
                        "roi": 128 if full else 32}
            backend = create_backend("segmentation", name, device=device, **opts)
            backend.load()
            result["load_s"] = time.perf_counter() - t0
            t1 = time.perf_counter()
            mask = backend.segment(tgt, nodule_point(6.0))
            result["segment_s"] = time.perf_counter() - t1
            result["mask_voxels"] = int(mask.sum())
    result["params_m"] = _param_count(backend) / 1e6
    result["peak_rss_mb"] = peak_rss_mb()
    if device.startswith("cuda"):
        result["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def _param_count(backend: Any) -> int:
    net = getattr(backend, "network", None)
    if net is None and getattr(backend, "_model", None):
        net = backend._model["net"]
    if net is None and getattr(backend, "session", None) is not None:
        net = backend.session.network
    return sum(p.numel() for p in net.parameters()) if net is not None else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full-size", action="store_true", help="real-size networks (slow on CPU)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.full_size, args.device, args.threads)))
        return 0
    results = []
    for name in args.backends:
        cmd = [sys.executable, __file__, "--one", name, "--device", args.device,
               "--threads", str(args.threads)] + (["--full-size"] if args.full_size else [])
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = proc.stderr.strip().splitlines()[-1:] or ["?"]
            results.append({"backend": name, "error": tail[0]})
        else:
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        results[-1]["process_s"] = time.perf_counter() - t0
        print(json.dumps(results[-1]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
