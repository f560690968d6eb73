"""Tiny studies, file snapshots and the CLI runner for the data-safety tests (deterministic test backends).

Scans are 48x48x16 voxels of 2x2x4 mm (96x96x64 mm, origin (-20, -20, -20) LPS) with one
bright ball that moves by a known shift per scan; ``engine_fixtures``' test-shift registration
and test-threshold segmenter track it exactly in milliseconds.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import engine_fixtures as fx
import numpy as np
import SimpleITK as sitk

from LinGuinELib.cli.main import main

SIZE = (48, 48, 16)
SPACING = (2.0, 2.0, 4.0)
CENTRE = (20.0, 20.0, 10.0)  # LPS mm of the ball on T0
SHIFTS = [(0.0, 0.0, 0.0), (2.0, -2.0, 0.0), (4.0, 2.0, 4.0)]
TRACK = ["--registration", "test-shift", "--segmentation", "test-threshold"]


def scan_image(k: int, scan_id: str, radius: float = 8.0) -> sitk.Image:
    return fx.ball_scan(scan_id, np.array(SHIFTS[k]), [radius], [CENTRE], spacing=SPACING, size=SIZE)


def write_study(folder: Path, patient_id: str = "P_A", scan_ids=("T0", "T1", "T2"),
                lesion: dict | None = None, images: dict | None = None, truth: bool = False) -> Path:
    """Scans ``scans/<name>.mha`` and ``study.json``; ``images`` overrides a scan's image;
    ``truth``: a truth labelmap per scan (the ball, value 1) and ``truth_label`` 1."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "scans").mkdir(exist_ok=True)
    scans = []
    for k, sid in enumerate(scan_ids):
        name = f"s{k}.mha"
        image = (images or {}).get(k) or scan_image(k, sid)
        sitk.WriteImage(image, str(folder / "scans" / name))
        scans.append({"id": sid, "image": f"scans/{name}", "date": f"2024-0{k + 1}-01"})
        if truth:
            label = sitk.Cast(image > 0, sitk.sitkUInt8)
            sitk.WriteImage(label, str(folder / "scans" / f"truth{k}.nii.gz"))
            scans[-1]["label"] = f"scans/truth{k}.nii.gz"
    les = lesion or {"id": "L1", "scan": scan_ids[0], "point_lps": list(CENTRE)}
    if truth:
        les = {**les, "truth_label": 1}
    doc = {"patient_id": patient_id, "scans": scans, "lesions": [les]}
    manifest = folder / "study.json"
    manifest.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return manifest


def snapshot(root: Path, exclude: Path | None = None) -> dict[str, str]:
    """Every file (sha256) and folder ('dir') under root, except ``exclude`` and what is in it."""
    out: dict[str, str] = {}
    for p in sorted(Path(root).rglob("*")):
        if exclude is not None and (p == exclude or exclude in p.parents):
            continue
        rel = str(p.relative_to(root))
        out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def run(capsys, *argv) -> tuple[int, str]:
    """``linguine -q ARGV`` in this process: its exit code and its stderr (the error line, if any)."""
    code = main(["-q", *map(str, argv)])
    err = capsys.readouterr().err.strip()
    return code, err


def assert_one_line(err: str, *words: str) -> None:
    """One ``linguine:`` line holding every word, and no traceback: what a user is told, and no more."""
    lines = [ln for ln in err.splitlines() if ln.startswith("linguine:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for w in words:
        assert w in lines[0], (w, lines[0])


def assert_refused(capsys, root: Path, *argv, words: tuple[str, ...] = (), code: int = 2) -> str:
    """``linguine ARGV`` refused: exit ``code``, one line holding ``words``, nothing under ``root`` changed.

    Returns the error text, for what a test checks beyond that."""
    before = snapshot(root)
    got, err = run(capsys, *argv)
    assert got == code, (argv, err)
    assert_one_line(err, *words)
    assert snapshot(root) == before
    return err
