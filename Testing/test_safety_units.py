"""The data-safety building blocks: file names from ids, the crash-safe swap, leftovers."""

from __future__ import annotations

import os

import numpy as np
import pytest
import SimpleITK as sitk
import slicerio

from LinGuinELib.errors import InputError
from LinGuinELib.outputs import names, safety, staging
from LinGuinELib.outputs.nrrd_text import write_segmentation_file
from LinGuinELib.outputs.safety import MARKER


@pytest.mark.parametrize("text", ["../../etc/passwd", "..", ".", "/abs/x", "a\\b", "a\x00b", "CON", "nul.txt",
                                  "x" * 400, "ü" * 300, " .hidden", "a:b*c?", ""])
def test_safe_name_cannot_escape_and_stays_short(text):
    name = names.safe_name(text)
    assert name and "/" not in name and "\\" not in name and "\x00" not in name
    assert not name.startswith(".") and name not in ("..", ".")
    assert name.split(".")[0].lower() not in ("con", "nul")
    assert len(name.encode("utf-8")) <= names.NAME_MAX_BYTES


def test_safe_name_keeps_readable_names():
    assert names.safe_name("Müller, Jürgen") == "Müller, Jürgen"
    assert names.safe_name("week_12") == "week_12"
    assert names.safe_name("P/001") == "P_001"


def test_unique_names_are_deterministic_and_case_insensitive():
    ids = ["T1", "t1", "P/1", "P_1", "x" * 400, "x" * 401]
    got = names.unique_names(ids)
    assert got == names.unique_names(ids)
    assert len({n.casefold() for n in got.values()}) == len(ids)
    assert got["T1"] == "T1" and got["t1"].startswith("t1~")
    assert names.unique_names(["t1"])["t1"] == "t1"  # the hash tag depends on the id alone


def _output(folder, text):
    folder.mkdir()
    (folder / "run.json").write_text(text)
    (folder / MARKER).write_text('{"kind": "track", "files": ["run.json"]}')


def test_swap_replaces_and_a_failure_keeps_the_old_output(tmp_path):
    out = tmp_path / "out"
    _output(out, "old")
    with pytest.raises(RuntimeError), staging.staged_output(out) as tmp:
        (tmp / "run.json").write_text("half")
        raise RuntimeError("disk full")
    assert (out / "run.json").read_text() == "old"
    with staging.staged_output(out) as tmp:
        (tmp / "run.json").write_text("new")
    assert (out / "run.json").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_kill_between_the_two_renames_is_recovered(tmp_path, monkeypatch):
    """Without an atomic exchange, a kill after 'old aside' leaves only .out.old-*: the next run restores it."""
    out = tmp_path / "out"
    _output(out, "old")
    monkeypatch.setattr(staging, "_rename_exchange", lambda a, b: False)
    real_rename = os.rename
    calls = []

    def killed_on_second(src, dst):
        calls.append(src)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the process dies here
        return real_rename(src, dst)

    monkeypatch.setattr(staging.os, "rename", killed_on_second)
    with pytest.raises(KeyboardInterrupt), staging.staged_output(out) as tmp:
        (tmp / "run.json").write_text("new")
    monkeypatch.setattr(staging.os, "rename", real_rename)
    assert not out.exists() and list(tmp_path.glob(".out.old-*"))
    staging.recover_leftovers(out)
    assert (out / "run.json").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_full_disk_while_writing_names_out_and_keeps_the_old_output(tmp_path):
    """The OS's ENOSPC names no file ("No space left on device" was all the CLI said): the error
    names OUT and says the previous output is intact, which it is."""
    import errno

    from LinGuinELib.errors import EnvironmentProblem

    out = tmp_path / "out"
    _output(out, "old")
    with pytest.raises(EnvironmentProblem) as caught, staging.staged_output(out) as tmp:
        (tmp / "run.json").write_text("half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # what a write to a full disk raises
    assert str(caught.value).startswith(f"{out}: the disk filled up") and "intact" in str(caught.value)
    assert (out / "run.json").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_atomic_exchange_is_used_on_linux(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    ia, ib = a.stat().st_ino, b.stat().st_ino
    if not staging._rename_exchange(a, b):
        pytest.skip("no renameat2 RENAME_EXCHANGE here")
    assert (a.stat().st_ino, b.stat().st_ino) == (ib, ia)


def test_leftovers_in_use_by_a_live_run_are_kept(tmp_path):
    out = tmp_path / "out"
    with staging.staged_output(out) as tmp:
        staging.recover_leftovers(out)  # another run on the same OUT starts meanwhile
        assert tmp.exists()
        (tmp / "run.json").write_text("x")
    assert (out / "run.json").is_file()


def test_check_out_refusals(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(InputError, match="file"):
        safety.check_out(tmp_path / "f")
    _output(tmp_path / "b", "x")
    with pytest.raises(InputError, match="'track' output, not a 'batch'"):
        safety.check_out(tmp_path / "b", kind="batch")
    for planted in ("{}", '{"files": []}', '{"kind": null}', "[]"):  # a marker LinGuinE did not write
        (tmp_path / "mine").mkdir(exist_ok=True)
        (tmp_path / "mine" / MARKER).write_text(planted)
        with pytest.raises(InputError, match="is not a LinGuinE output"):  # was: "a LinGuinE 'None' output"
            safety.check_out(tmp_path / "mine")
    assert safety.check_out(tmp_path / "new" / "deeper") == (tmp_path / "new" / "deeper").resolve()
    assert not (tmp_path / "new").exists()


def test_seg_nrrd_header_keeps_utf8_text(tmp_path):
    seg = slicerio.create_segmentation((4, 4, 4), np.eye(4))
    slicerio.add_segment(seg, np.ones((4, 4, 4), np.uint8),
                         {"id": "Läsion", "name": "Läsion", "color": [1, 0, 0], "tags": {"k": "Ωmega"}})
    path = tmp_path / "x.seg.nrrd"
    write_segmentation_file(seg, path)
    image = sitk.ReadImage(str(path))
    assert image.GetMetaData("Segment0_Name") == "Läsion"
    assert "Ωmega" in image.GetMetaData("Segment0_Tags")
    assert sitk.GetArrayViewFromImage(image).sum() == 64


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_truncated_nifti_is_refused_and_complete_one_passes(tmp_path, suffix):
    from LinGuinELib.study.integrity import check_complete

    image = sitk.GetImageFromArray(np.arange(16 * 16 * 8, dtype=np.int16).reshape(8, 16, 16))
    path = tmp_path / f"x{suffix}"
    sitk.WriteImage(image, str(path), suffix.endswith(".gz"))
    check_complete(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated"):
        check_complete(path)


def test_symlinked_out_keeps_its_link(tmp_path):
    real = tmp_path / "real"
    _output(real, "old")
    link = tmp_path / "link"
    link.symlink_to(real)
    safety.check_out(link)
    with staging.staged_output(link) as tmp:
        (tmp / "run.json").write_text("new")
    assert link.is_symlink() and (link / "run.json").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "real"]


def test_mask_pieces_far_apart_are_refused_but_specks_are_not():
    from LinGuinELib.prompt.masks import check_spread

    image = sitk.Image((64, 64, 64), sitk.sitkUInt8)
    image.SetSpacing((2.0, 2.0, 2.0))
    arr = np.zeros((64, 64, 64), bool)
    arr[5:10, 5:10, 5:10] = True  # a lesion
    arr[60, 60, 60] = True  # one stray voxel 190 mm away: drawing noise
    check_spread(arr, image, "mask")
    arr[55:60, 55:60, 55:60] = True  # a second lesion as large, 170 mm away
    with pytest.raises(InputError, match="apart"):
        check_spread(arr, image, "mask")
