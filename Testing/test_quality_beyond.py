"""grown_beyond: a follow-up segment that took in the next stretch of a vessel beside the lesion is
flagged; a lesion that grew all round, or sits a few mm off where the registration put it, is not."""

import csv
import json

import engine_fixtures as fx
import numpy as np
import pytest
import SimpleITK as sitk
from quality_fixtures import CENTRE_ZYX, ball, image, judge_case, lung, painted, tube_x

from LinGuinELib.config import TrackingConfig
from LinGuinELib.geometry import index_zyx_to_physical
from LinGuinELib.pipeline import run_study
from LinGuinELib.propagation.result import MaskCrop
from LinGuinELib.quality import Reason, scan_checks
from LinGuinELib.quality.beyond import MAX_BEYOND
from LinGuinELib.quality.image_checks import widest_ball
from LinGuinELib.quality.match import LesionReference, match_findings

SHAPE = (40, 80, 80)
ZYX_OFF = (20, 42, 47)  # 2.8 mm from the lesion's centre, within the registration's allowance


def _judged(prompt_mask, follow_up_mask, vessel=None):
    """candidate_match (with the image checks, as the engine runs them) of a follow-up segment
    against the prompt's; both scans are lung with the segments painted solid, plus ``vessel``."""
    extra = [(vessel, 40.0)] if vessel is not None else []
    base = lung(SHAPE)
    match, _ = judge_case(painted(base, *extra, (prompt_mask, 40.0)), prompt_mask,
                          painted(base, *extra, (follow_up_mask, 40.0)), follow_up_mask)
    return match, {f.reason for f in match_findings(match)}


def test_a_vessel_stretch_taken_in_beside_a_grown_nodule_is_flagged():
    vessel = tube_x(SHAPE, CENTRE_ZYX, 2.5, 0, 80)  # nearly as thick as the nodule, through it
    prompt = ball(SHAPE, CENTRE_ZYX, 4.5)  # a 9 mm nodule on it (the vessel left out)
    grown = ball(SHAPE, CENTRE_ZYX, 5.0)  # x1.4 in volume
    taken = grown | (vessel & tube_x(SHAPE, CENTRE_ZYX, 9.0, 45 - 17, 45 + 18))  # and 12 mm of vessel each side
    match, reasons = _judged(prompt, taken, vessel)
    assert match["plausible"] == 1.0, match  # it fills the lesion's place: kept, as it must be
    assert match["beyond_share"] >= MAX_BEYOND, match
    assert Reason.GROWN_BEYOND in reasons, match


def test_a_nodule_grown_all_round_and_a_few_mm_off_is_not_flagged():
    prompt = ball(SHAPE, CENTRE_ZYX, 4.5)
    for r in (4.5, 6.0, 8.0):  # the same, x2.4, x5.6 in volume, 2.8 mm off the mapped point
        match, reasons = _judged(prompt, ball(SHAPE, ZYX_OFF, r))
        assert Reason.GROWN_BEYOND not in reasons, (r, match)
        assert match["beyond_share"] < 0.05, (r, match)
    # a lumpy growth (a lobe as thick as the lesion's own radius) still widens with the core
    lobed = ball(SHAPE, CENTRE_ZYX, 6.0) | ball(SHAPE, (20, 40, 51), 4.0)
    match, reasons = _judged(prompt, lobed)
    assert Reason.GROWN_BEYOND not in reasons, match
    # the same nodule on its vessel, grown and segmented without the vessel
    vessel = tube_x(SHAPE, CENTRE_ZYX, 2.5, 0, 80)
    match, reasons = _judged(prompt, ball(SHAPE, CENTRE_ZYX, 5.0), vessel)
    assert Reason.GROWN_BEYOND not in reasons and match["beyond_share"] == 0.0, match


@pytest.mark.parametrize("spacing_zyx", [(1.25, 0.7, 0.7), (5.0, 0.7, 0.7)])
def test_the_widest_ball_is_one_measure_for_the_prompt_reference_and_the_follow_up(spacing_zyx):
    """A 7 mm ball centred between voxel centres reads its radius within a voxel; the prompt's
    signal, the prompt reference (and its signed distance) and the same segment read as a follow-up
    agree exactly, so a segment that did not change has grown nothing (``grown_beyond``'s growth)."""
    sp = np.array(spacing_zyx)
    shape = tuple(int(np.ceil(40.0 / s)) for s in sp)
    centre = np.array(shape) // 2 * sp + np.array([0.3, 0.2, 0.1]) * sp
    mask = (((np.indices(shape).T * sp - centre) ** 2).sum(-1) <= 7.0**2).T
    img = image(painted(lung(shape), (mask, 40.0)), spacing_zyx[::-1])
    crop = MaskCrop.from_full(mask)
    prompt, _ = scan_checks(img, crop, is_prompt=True)
    assert prompt["inscribed_mm"] == widest_ball(mask, sp)[0]
    assert abs(prompt["inscribed_mm"] - 7.0) <= sp.max(), prompt
    assert prompt["compactness"] == prompt["inscribed_mm"] / prompt["radius_mm"]
    ref = LesionReference.from_prompt(img, crop, index_zyx_to_physical(img, crop.nonzero_zyx()).mean(0),
                                      prompt["inscribed_mm"])
    assert -float(ref.sdf.min()) == pytest.approx(ref.inscribed_mm, abs=1e-5)  # its outline, as deep
    follow_up, _ = scan_checks(img, crop, is_prompt=False, prompt_signals=prompt)
    assert follow_up["inscribed_mm"] - ref.inscribed_mm == 0.0


def test_the_finding_needs_a_kept_candidate():
    assert match_findings({"plausible": 0.0, "beyond_share": 0.9, "candidate_coverage": 0.1}) == []
    kept = match_findings({"plausible": 1.0, "beyond_share": 0.9, "candidate_coverage": 0.9})
    assert [f.reason for f in kept] == [Reason.GROWN_BEYOND] and "90%" in kept[0].text


def _write(folder, scans):
    """A two-scan study of (scan id, image) pairs; L1 and L2 prompted at their centres on T0."""
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for k, (sid, img) in enumerate(scans):
        sitk.WriteImage(img, str(folder / f"{sid}.mha"))
        entries.append({"id": sid, "image": f"{sid}.mha", "date": ["2024-01-01", "2024-04-01"][k]})
    lesions = [{"id": "L1", "scan": "T0", "point_lps": [-10.0, 0.0, 0.0]},
               {"id": "L2", "scan": "T0", "point_lps": [12.0, 10.0, 0.0]}]
    (folder / "study.json").write_text(json.dumps({"patient_id": "P1", "scans": entries, "lesions": lesions}))
    return folder / "study.json"


def _scan(sid, shift, radii, vessel_to_mm):
    """Two balls in lung, L1 at x=-10 and L2 at (12, 10), radii ``radii``; a vessel 2.5 mm thick
    along x from 6 mm left of L1's centre to ``vessel_to_mm``; all moved by ``shift`` (LPS mm)."""
    img = sitk.Image((72, 48, 32), sitk.sitkInt16)
    img.SetOrigin((-40.0, -24.0, -16.0))
    zz, yy, xx = np.meshgrid(*(np.arange(n) + o - s for n, o, s in zip((32, 48, 72), (-16.0, -24.0, -40.0),
                                                                       shift[::-1])), indexing="ij")
    arr = np.full(zz.shape, -800, np.int16)
    arr[((xx + 10) ** 2 + yy**2 + zz**2 <= radii[0] ** 2)] = 50
    arr[((xx - 12) ** 2 + (yy - 10) ** 2 + zz**2 <= radii[1] ** 2)] = 50
    arr[(zz**2 + yy**2 <= 2.5**2) & (xx <= -16.0) & (xx >= vessel_to_mm)] = 50
    arr.flat[0] = -801 - len(sid) - int(sid[1:])  # two scans never hold the same voxels
    out = sitk.GetImageFromArray(arr)
    out.CopyInformation(img)
    out.SetMetaData(fx.SHIFT_KEY, json.dumps([float(v) for v in shift]))
    out.SetMetaData("id", sid)
    return out


def test_engine_flags_the_follow_up_that_grew_into_its_vessel_and_not_the_clean_one(tmp_path):
    """T0: a 9 mm nodule with a vessel ending 1.5 mm short of it; T1: the nodule grew (x2.4) into
    the vessel, and a connected-region segmenter takes 16 mm of vessel with it. L2 grows cleanly."""
    manifest = _write(tmp_path / "study", [("T0", _scan("T0", (0, 0, 0), (4.5, 5.0), -32.0)),
                                           ("T1", _scan("T1", (2, -1, 1), (6.0, 6.0), -32.0))])
    config = TrackingConfig(registration="test-shift", segmentation="test-threshold")
    run_study(manifest, tmp_path / "out", config)
    with open(tmp_path / "out" / "trajectory.csv", newline="") as fh:
        rows = {(r["lesion"], r["scan"]): r for r in csv.DictReader(fh)}
    assert rows[("L1", "T1")]["status"] == "found"
    assert "grown_beyond" in rows[("L1", "T1")]["review_reasons"].split(";"), rows[("L1", "T1")]
    assert rows[("L1", "T1")]["review"] == "true"
    assert "grown_beyond" not in rows[("L2", "T1")]["review_reasons"], rows[("L2", "T1")]
