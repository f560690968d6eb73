#!/usr/bin/env python
"""Are two `linguine track` outputs the same result? (before/after a change that should not alter it)

    python scripts/compare_outputs.py OUT_A OUT_B

Compares what the result is, not how it was encoded: every labelmap's voxels and grid, every
Slicer segmentation's voxels and segments (names, colours, tags, extents, layers), trajectory.csv
byte for byte, and run.json except timings and package versions. trajectory.png is not compared
(a rendering of the table), nor the OUT marker (its digests cover run.json's timings and the
`.seg.nrrd` headers' date line). Exit 0 when all equal; else one line per difference, exit 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import slicerio

from LinGuinELib.outputs.safety import MARKER

VOLATILE = ("timings_s", "versions", "wall_s")


def _image_diff(a: Path, b: Path) -> str | None:
    ia, ib = sitk.ReadImage(str(a)), sitk.ReadImage(str(b))
    grid = [(x.GetSize(), x.GetOrigin(), x.GetSpacing(), x.GetDirection(), x.GetPixelID()) for x in (ia, ib)]
    if grid[0] != grid[1]:
        return f"grid differs: {grid[0]} vs {grid[1]}"
    diff = int((sitk.GetArrayViewFromImage(ia) != sitk.GetArrayViewFromImage(ib)).sum())
    return f"{diff} voxels differ" if diff else None


def _segmentation_diff(a: Path, b: Path) -> str | None:
    sa, sb = slicerio.read_segmentation(str(a)), slicerio.read_segmentation(str(b))
    if sa["voxels"].shape != sb["voxels"].shape or not np.array_equal(sa["voxels"], sb["voxels"]):
        return "voxels differ"
    if not np.array_equal(sa["ijkToLPS"], sb["ijkToLPS"]):
        return "geometry differs"
    return None if sa["segments"] == sb["segments"] else "segments differ"


def differences(a: Path, b: Path) -> list[str]:
    out = []
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    if files_a != files_b:
        out.append(f"file lists differ: only in A {sorted(set(files_a) - set(files_b))}, "
                   f"only in B {sorted(set(files_b) - set(files_a))}")
    for rel in sorted(set(files_a) & set(files_b)):
        pa, pb = a / rel, b / rel
        if rel.name.endswith(".nii.gz"):
            d = _image_diff(pa, pb)
        elif rel.name.endswith(".seg.nrrd"):
            d = _segmentation_diff(pa, pb)
        elif rel.name == "run.json":
            ja, jb = (json.loads(p.read_text()) for p in (pa, pb))
            for key in VOLATILE:
                ja.pop(key, None), jb.pop(key, None)
            d = None if ja == jb else f"differs in {[k for k in set(ja) | set(jb) if ja.get(k) != jb.get(k)]}"
        elif rel.suffix == ".png" or rel.name == MARKER:
            d = None
        else:
            d = None if pa.read_bytes() == pb.read_bytes() else "bytes differ"
        if d:
            out.append(f"{rel}: {d}")
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("a", type=Path)
    p.add_argument("b", type=Path)
    args = p.parse_args()
    found = differences(args.a, args.b)
    for line in found:
        print(line)
    print("same result" if not found else f"{len(found)} difference(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
