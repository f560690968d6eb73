"""Inputs that used to be taken silently or to hang: one line naming the file or field, exit 2, nothing written.

Folder input ordered by the manifest's one timepoint rule, a lesion with two prompts, an image path
that is a named pipe, a 3-channel image. Each case failed before the fix.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import SimpleITK as sitk
from safety_fixtures import CENTRE, TRACK, assert_one_line, assert_refused, run, scan_image, write_study

import LinGuinELib
from LinGuinELib.study.manifest import load_folder

POINT_RAS = f"--point-ras={-CENTRE[0]},{-CENTRE[1]},{CENTRE[2]}"
CODE = Path(LinGuinELib.__file__).resolve().parents[1]


def _folder(folder: Path, names: tuple[str, ...]) -> Path:
    folder.mkdir(parents=True)
    for k, name in enumerate(names):
        sitk.WriteImage(scan_image(k, name), str(folder / f"{name}.mha"))
    return folder


def test_folder_names_without_an_order_are_refused(tmp_path, capsys):
    """CT_9, CT_10, CT_11 sorted as text put the baseline last; a manifest with them is refused too."""
    folder = _folder(tmp_path / "scans", ("CT_9", "CT_10", "CT_11"))
    assert_refused(capsys, tmp_path, "track", folder, POINT_RAS, "--source", "CT_9", "--out", tmp_path / "out", *TRACK,
                   words=("CT_", "cannot be ordered", "manifest", "date"))


def test_folder_names_are_ordered_by_the_manifest_rule(tmp_path):
    folder = _folder(tmp_path / "scans", ("visit_9", "visit_10", "baseline"))
    study = load_folder(folder, (-CENTRE[0], -CENTRE[1], CENTRE[2]), "visit_9")
    assert [s.id for s in study.scans] == ["baseline", "visit_9", "visit_10"]


@pytest.mark.parametrize("extra", [{"mask": "scans/s0.mha"}, {"point_lps": list(CENTRE)}, {"mask_label": 1}])
def test_a_lesion_with_two_prompts_is_refused(tmp_path, capsys, extra):
    lesion = {"id": "L9", "scan": "T0", "point_ras": [-CENTRE[0], -CENTRE[1], CENTRE[2]], **extra}
    study = write_study(tmp_path / "S", lesion=lesion)
    assert_refused(capsys, tmp_path, "track", study, "--out", tmp_path / "out", *TRACK,
                   words=("L9", "one prompt", next(iter(extra))))


@pytest.mark.parametrize("which", ["image", "manifest"])
def test_an_input_that_is_a_named_pipe_is_refused_not_waited_on(tmp_path, which):
    """Opening a FIFO blocks in C (no signal gets through): a child process, killed if it hangs."""
    study = write_study(tmp_path / "S")
    if which == "image":
        fifo = study.parent / "scans" / "s1.mha"
        fifo.unlink()
    else:
        study = fifo = study.with_name("pipe.json")
    os.mkfifo(fifo)
    env = {**os.environ, "PYTHONPATH": str(CODE)}
    proc = subprocess.run([sys.executable, "-m", "LinGuinELib.cli.main", "-q", "track", str(study),
                           "--out", str(tmp_path / "out")],  # default backends: refused before they load
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert_one_line(proc.stderr, str(fifo), "not a regular file")
    assert not (tmp_path / "out").exists()


def test_a_three_channel_image_says_so(tmp_path, capsys):
    rgb = sitk.Compose([scan_image(1, "T1")] * 3)
    study = write_study(tmp_path / "S", images={1: rgb})
    assert_refused(capsys, tmp_path, "track", study, "--out", tmp_path / "out", *TRACK, words=("s1.mha", "3 component"))
    assert json.loads(study.read_text(encoding="utf-8"))["scans"][1]["image"] == "scans/s1.mha"


def _dicom_studies(folder: Path) -> Path:
    """Two CT studies (dates) of the fixture scans as DICOM series below ``folder``."""
    pytest.importorskip("pydicom")
    import datetime as dt

    from LinGuinELib.synthetic.dicom_ct import CTSeriesHeader, write_ct_series

    for k in range(2):
        write_ct_series(scan_image(k, f"T{k}"), folder / f"exam{k}", CTSeriesHeader("P9", dt.date(2024, 1 + k, 2)))
    return folder


@pytest.mark.parametrize("how", ["inside", "default_in_cwd", "through_a_symlink", "up_from_a_symlink", "track_out"])
def test_output_inside_a_dicom_input_is_refused(tmp_path, capsys, monkeypatch, how):
    """`study --out` used to write the manifest into the DICOM folder it read (now one rule with track's OUT)."""
    dicom = _dicom_studies(tmp_path / "dcm")
    (tmp_path / "link").symlink_to(dicom, target_is_directory=True)
    (tmp_path / "exam_link").symlink_to(dicom / "exam0", target_is_directory=True)
    argv = {"inside": ["study", dicom, "--out", dicom / "exam0" / "study.json"],
            "default_in_cwd": ["study", dicom],
            "through_a_symlink": ["study", dicom, "--out", tmp_path / "link" / "study.json"],
            # link/.. is the folder above the link's target (as the OS reads it), not tmp_path
            "up_from_a_symlink": ["study", dicom, "--out", f"{tmp_path}/exam_link/../study.json"],
            "track_out": ["track", dicom, "--point-ras=-20,-20,10", "--source", "2024-01-02",
                          "--out", tmp_path / "link" / "out", *TRACK]}[how]
    monkeypatch.chdir(dicom)
    assert_refused(capsys, tmp_path, *argv, words=("inside the input folder", str(dicom)))
    monkeypatch.chdir(tmp_path)
    assert run(capsys, "study", dicom, "--out", tmp_path / "study.json")[0] == 0  # beside it: written


def test_study_force_on_a_symlinked_manifest_keeps_the_link(tmp_path, capsys):
    """--force used to replace the user's link by a file (with paths relative to the link's folder)."""
    dicom = _dicom_studies(tmp_path / "dcm")
    (tmp_path / "work").mkdir()
    real = tmp_path / "work" / "study.json"
    assert run(capsys, "study", dicom, "--out", real)[0] == 0
    link = tmp_path / "study.json"
    link.symlink_to(real)
    assert run(capsys, "study", dicom, "--out", link, "--force")[0] == 0
    assert link.is_symlink()
    image = json.loads(real.read_text(encoding="utf-8"))["scans"][0]["image"]
    assert (real.parent / image).is_dir()
