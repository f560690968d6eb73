"""The engine end to end with deterministic backends: exact expectations."""

import csv
import json

import engine_fixtures as fx
import numpy as np
import pytest
import SimpleITK as sitk

from LinGuinELib.cli.main import main
from LinGuinELib.config import TrackingConfig
from LinGuinELib.errors import Cancelled
from LinGuinELib.pipeline import run_study
from LinGuinELib.propagation.engine import track
from LinGuinELib.study.manifest import load_manifest

SHIFTS = [(0, 0, 0), (3, -2, 4), (-4, 1, -2), (2, 3, 0)]
CENTRES = [(-6.0, -6.0, -6.0), (7.0, 6.0, 2.0)]


def _config(**kw):
    return TrackingConfig(registration="test-shift", segmentation="test-threshold", **kw)


@pytest.fixture
def manifest(tmp_path):
    radii = [(5, 4), (6, 4), (7, 0), (8, 4)]  # lesion 2 vanishes on T2
    return fx.write_ball_study(tmp_path / "study", radii, SHIFTS, CENTRES, prompt_scan=1)


@pytest.mark.parametrize("mode", ["direct", "chain"])
def test_every_lesion_followed_on_every_scan(manifest, mode):
    fx.ShiftRegistration.calls.clear()
    study = load_manifest(manifest)
    result = track(study, _config(mode=mode, boost=True))
    for k, shift in enumerate(SHIFTS):
        r1 = result.get("L1", f"T{k}")
        assert r1.status == ("prompt" if k == 1 else "found")
        np.testing.assert_allclose(r1.centre_lps, np.add(CENTRES[0], shift), atol=1.1)
        if k != 1:
            np.testing.assert_allclose(r1.propagated_point_lps, np.add(CENTRES[0], shift), atol=1.1)
    assert result.get("L2", "T2").status == "not_found"
    assert result.get("L2", "T2").mask.empty
    # A pair is registered once, whatever the number of lesions.
    assert len(fx.ShiftRegistration.calls) == len(set(fx.ShiftRegistration.calls)) == 3
    if mode == "chain":
        assert result.get("L1", "T3").from_scan_id == "T2"
        assert result.get("L1", "T0").from_scan_id == "T1"


@pytest.mark.parametrize("mode", ["direct", "chain"])
def test_the_mapper_is_given_the_lesion_on_the_scan_it_starts_from(manifest, mode, monkeypatch):
    """``map_lesion`` receives the source scan's segment, in that scan's physical space: the
    classical backend places a lesion by its surroundings when its own match leaves it."""
    from LinGuinELib.registration.base import TransformMapper

    seen = []

    def record(self, centre_lps, lesion=None):
        seen.append((np.asarray(centre_lps, float), lesion))
        return self.map_points(np.asarray(centre_lps, float)[None])[0], float("nan")

    monkeypatch.setattr(TransformMapper, "map_lesion", record, raising=False)
    result = track(load_manifest(manifest), _config(mode=mode))
    steps = [(k[0], r.from_scan_id) for k, r in result.results.items() if r.from_scan_id is not None]
    assert len(seen) == len(steps) == 6
    empty = sum(result.get(les, source).mask.empty for les, source in steps)  # chain: L2 gone on T2
    assert sum(lesion is None for _, lesion in seen) == empty == (1 if mode == "chain" else 0)
    for centre, lesion in (s for s in seen if s[1] is not None):
        arr = sitk.GetArrayFromImage(lesion).astype(bool)
        zyx = np.argwhere(arr)
        points = np.array([lesion.TransformIndexToPhysicalPoint([int(i) for i in p[::-1]]) for p in zyx])
        # the segment holds its centre, a ball of radius 4-8 mm around it
        assert np.linalg.norm(points.mean(axis=0) - centre) < 1.0
        assert 3.0 < np.abs(points - centre).max() < 9.5


def test_lesion_leaving_the_image_is_reported_not_dropped(tmp_path):
    shifts = [(0, 0, 0), (30, 0, 0)]
    m = fx.write_ball_study(tmp_path / "s", [(4,), (4,)], shifts, [(12.0, 0.0, 0.0)])
    result = track(load_manifest(m), _config())
    assert result.get("L1", "T1").status == "outside_image"
    # nothing was measured there: the row says why, in words, and asks for a look
    from LinGuinELib.measures.trajectory import trajectory_rows

    row = next(r for r in trajectory_rows(result) if (r["lesion"], r["scan"]) == ("L1", "T1"))
    assert row["review"] and "point_outside_image" in row["review_reasons"].split(";")
    assert "outside this scan" in row["review_details"] and row["response"] == "NE"


def test_a_lesion_whose_scan_sent_the_others_outside_is_flagged_registration_doubtful(tmp_path):
    from LinGuinELib.measures.trajectory import trajectory_rows

    centres = [(12.0, -10.0, 0.0), (12.0, 10.0, 0.0), (-12.0, 0.0, 0.0)]
    m = fx.write_ball_study(tmp_path / "s", [(4, 4, 4)] * 2, [(0, 0, 0), (30, 0, 0)], centres)
    result = track(load_manifest(m), _config())
    assert [result.get(f"L{k}", "T1").status for k in (1, 2, 3)] == ["outside_image", "outside_image", "found"]
    rows = {(r["lesion"], r["scan"]): r for r in trajectory_rows(result)}
    assert "registration_doubtful" in rows[("L3", "T1")]["review_reasons"].split(";")
    assert "L1, L2" in rows[("L3", "T1")]["review_details"]
    assert not any("registration_doubtful" in rows[(f"L{k}", "T0")]["review_reasons"] for k in (1, 2, 3))


def test_cancel_stops(manifest):
    with pytest.raises(Cancelled):
        track(load_manifest(manifest), _config(), cancel=lambda: True)


def test_outputs_contract(manifest, tmp_path):
    out = tmp_path / "out"
    result = run_study(manifest, out, _config())
    for k in range(4):
        label = sitk.ReadImage(str(out / "labels" / f"T{k}.nii.gz"))
        scan = sitk.ReadImage(str(manifest.parent / f"T{k}.mha"))
        assert label.GetPixelID() == sitk.sitkUInt16
        assert label.GetSize() == scan.GetSize() and label.GetOrigin() == scan.GetOrigin()
        arr = sitk.GetArrayFromImage(label)
        assert set(np.unique(arr)) <= {0, 1, 2}
        assert (arr == 1).sum() == result.get("L1", f"T{k}").mask.voxel_count
        assert (out / "segmentations" / f"T{k}.seg.nrrd").exists()
    rows = list(csv.DictReader(open(out / "trajectory.csv")))
    assert len(rows) == 8 and rows[0]["lesion"] == "L1" and rows[0]["scan"] == "T0"
    assert [r["status"] for r in rows if r["lesion"] == "L2"] == ["found", "prompt", "not_found", "found"]
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["registration"] == "test-shift" and "segmentation" in run["timings_s"]
    assert (out / "trajectory.png").stat().st_size > 1000
    import slicerio

    seg = slicerio.read_segmentation(str(out / "segmentations" / "T0.seg.nrrd"))
    names = [s["name"] for s in seg["segments"]]
    assert names == ["L1", "L2"]
    assert seg["segments"][0]["tags"]["LinGuinE.TrackingID"] == "P1/L1"


def test_cli_bad_input_exit_2_and_nothing_written(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"scans": [], "lesions": []}))
    out = tmp_path / "out"
    assert main(["track", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("linguine: error:") and "bad.json" in err[0]
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_cli_track_runs(manifest, tmp_path, capsys):
    out = tmp_path / "o"
    code = main(["-q", "track", str(manifest), "--out", str(out), "--registration", "test-shift",
                 "--segmentation", "test-threshold", "--mode", "chain"])
    assert code == 0 and (out / "run.json").exists()
