"""The per-kind evaluation's own rules: random kinds are reproducible and valid, a bad result is
the benchmark's, and a click's segmentation is read by the quality flag."""

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from eval_segmentation_kinds import flagged, is_bad, main, random_kinds  # noqa: E402

from LinGuinELib.synthetic import LesionKind, render_case  # noqa: E402
from LinGuinELib.synthetic.kinds import ATTACHMENTS  # noqa: E402


def test_random_kinds_are_reproducible_valid_and_varied():
    drawn = random_kinds(200, first_seed=5000)
    assert drawn == random_kinds(200, first_seed=5000)  # the seed fixes the kind
    assert [seed for _, seed in drawn] == list(range(5000, 5200))
    kinds = [LesionKind(float(d), a, dens, sl, inv, shape) for (d, a, dens, sl, inv, shape), _ in drawn]
    assert {k.attachment for k in kinds} == set(ATTACHMENTS)
    assert {k.size_class for k in kinds} == {"4-10mm", "10-30mm", "30-60mm", "60-100mm"}
    assert {k.density for k in kinds} == {"solid", "part_solid", "ground_glass"}
    for k in kinds:  # the generator's own limits on shapes
        assert k.shape != "cavitating" or (k.density == "solid" and k.diameter_mm >= 20)
        assert k.shape != "flat" or k.diameter_mm <= 40
        assert k.invade_mm == 0 or (k.attachment == "chest_wall" and k.diameter_mm > 50)


def test_bad_is_the_benchmarks_bad():
    assert not is_bad({"dice": 0.8, "ratio": 1.9})
    assert is_bad({"dice": 0.49, "ratio": 1.0}) and is_bad({"dice": 0.8, "ratio": 2.1})
    assert is_bad({"dice": 0.6, "ratio": 0.45})


def test_the_flag_reads_a_clicks_segmentation():
    case = render_case(LesionKind(12.0, "isolated", "solid", 1.25), seed=3, half_mm=35.0)
    reasons, signals = flagged(case.image, case.truth, {})
    assert reasons == ""  # the truth itself: nothing to look at
    assert signals["faint_rim"] < 0.3 and signals["radius_mm"] > 5.0  # what it was read from
    assert flagged(case.image, np.zeros_like(case.truth), {})[0] == "empty_prompt"


def test_signals_are_written_one_line_per_call(tmp_path, capsys):
    """``--signals``: each call's row and the signals the flag read, for choosing a check's bound."""
    out = tmp_path / "signals.jsonl"
    assert main(["--random", "1", "--first-seed", "18", "--offsets", "1", "--no-real", "--signals", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["click"] for r in rows] == ["centre", "off0"]
    assert all(0.0 <= r["dice"] <= 1.0 and "faint_rim" in r["signals"] for r in rows)
    assert all(r["signals"]["registration_confidence"] is None for r in rows)  # NaN written as null
    assert "2 calls" in capsys.readouterr().out


def test_signals_never_overwrite_and_need_a_folder(tmp_path, capsys):
    """Refused before any case runs, one line naming the path, nothing written."""
    taken = tmp_path / "taken.jsonl"
    taken.write_text("mine\n")
    assert main(["--random", "1", "--first-seed", "18", "--no-real", "--signals", str(taken)]) == 2
    said = capsys.readouterr()
    assert taken.read_text() == "mine\n" and str(taken) in said.err and said.out == ""  # refused before any case
    nowhere = tmp_path / "missing" / "s.jsonl"
    assert main(["--random", "1", "--first-seed", "18", "--no-real", "--signals", str(nowhere)]) == 2
    assert not nowhere.parent.exists()


def test_wall_clicks_click_only_cavitating_lesions_on_their_tissue(tmp_path):
    """``--wall-clicks K``: the cavitating kinds drawn, each clicked at K voxels of its wall (tissue
    inside the truth, never the cavity's air); the other kinds are skipped."""
    out = tmp_path / "walls.jsonl"
    # seeds 8250-8251: a 4-10 mm nodule (skipped) and a 24 mm cavitating lesion on 5 mm slices
    assert [k[5] for k, _ in random_kinds(2, 8250)] == ["round", "cavitating"]
    assert main(["--random", "2", "--first-seed", "8250", "--wall-clicks", "2", "--signals", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["click"] for r in rows] == ["wall0", "wall1"] and {r["kind"] for r in rows} == {
        "10-30mm/vessel/solid/cavitating"}
    assert all(r["dice"] > 0.9 for r in rows)


def test_wall_clicks_refused_without_random_or_below_one(tmp_path, capsys):
    """``--wall-clicks`` alone would run the listed kinds unclicked on any wall, a negative count
    was a traceback: both are one line and exit 2, before any case runs or ``--signals`` is made."""
    out = tmp_path / "walls.jsonl"
    assert main(["--wall-clicks", "2", "--signals", str(out)]) == 2
    assert "--random" in capsys.readouterr().err
    assert main(["--random", "1", "--wall-clicks", "-1", "--signals", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--wall-clicks -1" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
