"""Refused before the work, not after it: a click where the segmenter finds nothing (before any
registration), and an OUT that cannot be written (before any image is read). One line, exit 2,
nothing written. Each case failed before the fix.
"""

from __future__ import annotations

import engine_fixtures as fx
import pytest
import SimpleITK as sitk
from safety_fixtures import scan_image, snapshot, write_study
from test_safety_cli import assert_one_line, run

from LinGuinELib.config import TrackingConfig
from LinGuinELib.errors import InputError
from LinGuinELib.propagation.engine import track
from LinGuinELib.study.manifest import load_manifest

WALL_CLICK_LPS = [-10.0, 20.0, 10.0]  # inside the wall below, 22 mm from the ball's edge
REAL_SEGMENTER = ["--registration", "test-shift", "--segmentation", "classical"]


def wall_scan(k: int, scan_id: str) -> sitk.Image:
    """``scan_image`` with a chest wall: uniform soft tissue (40 HU) at x < 0 mm LPS, air outside
    it. The classical segmenter finds nothing at a click inside it; the click is not in air."""
    image = scan_image(k, scan_id)
    arr = sitk.GetArrayFromImage(image)
    arr[:, :, 2:10] = 40
    arr[:, :, :2] = -1000
    out = sitk.GetImageFromArray(arr)
    out.CopyInformation(image)
    for key in image.GetMetaDataKeys():
        out.SetMetaData(key, image.GetMetaData(key))
    return out


def wall_study(folder):
    lesion = {"id": "L_wall", "scan": "T1", "point_lps": WALL_CLICK_LPS}
    return write_study(folder, images={k: wall_scan(k, sid) for k, sid in enumerate(("T0", "T1", "T2"))},
                       lesion=lesion)


@pytest.mark.parametrize("workers", [0, None], ids=["serial", "threads"])
def test_an_empty_prompt_segment_is_refused_before_any_registration(tmp_path, workers):
    """Before: every pair's registration was submitted first and the prompt segmented after (the
    serial run registered both pairs, then refused)."""
    study = load_manifest(wall_study(tmp_path / "S"))
    fx.ShiftRegistration.calls.clear()
    with pytest.raises(InputError) as caught:
        track(study, TrackingConfig(registration="test-shift", segmentation="classical"), workers=workers)
    assert fx.ShiftRegistration.calls == []
    message = str(caught.value)
    assert message.startswith("lesion 'L_wall': nothing could be segmented at its prompt")
    assert "scan 'T1'" in message and "s1.mha" in message and "\n" not in message


def test_the_cli_says_so_in_one_line_and_writes_nothing(tmp_path, capsys):
    manifest = wall_study(tmp_path / "S")
    before = snapshot(tmp_path)
    code, err = run(capsys, "track", manifest, "--out", tmp_path / "out", *REAL_SEGMENTER)
    assert code == 2, err
    assert_one_line(err, "L_wall", "nothing could be segmented", "T1")
    assert snapshot(tmp_path) == before


def test_a_batch_fails_only_that_study(tmp_path, capsys):
    """One lesion on nothing fails its study (listed in failures.csv, exit 1), the others run."""
    ds = tmp_path / "ds"
    wall_study(ds / "bad")
    write_study(ds / "good", "P_good", images={k: wall_scan(k, sid) for k, sid in enumerate(("T0", "T1", "T2"))})
    out = tmp_path / "out"
    code, err = run(capsys, "batch", ds, "--out", out, *REAL_SEGMENTER)
    assert code == 1, err
    failures = (out / "failures.csv").read_text(encoding="utf-8")
    assert "L_wall" in failures and "nothing could be segmented" in failures
    assert (out / "P_good" / "run.json").is_file() and not (out / "P_A").exists()
