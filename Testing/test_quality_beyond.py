"""grown_beyond: a follow-up segment that took in the next stretch of a vessel beside the lesion is
flagged; a lesion that grew all round, or sits a few mm off where the registration put it, is not."""

import csv
import json

import engine_fixtures as fx
import numpy as np
import SimpleITK as sitk

from LinGuinELib.config import TrackingConfig
from LinGuinELib.pipeline import run_study
from LinGuinELib.propagation.result import MaskCrop
from LinGuinELib.quality import Reason
from LinGuinELib.quality.beyond import MAX_BEYOND
from LinGuinELib.quality.match import LesionReference, candidate_match, match_findings

CENTRE_ZYX = (20, 40, 40)  # 1 mm voxels: LPS (x, y, z) = (40, 40, 20)
CENTRE_LPS = np.array([40.0, 40.0, 20.0])


def _lung(shape=(40, 80, 80)) -> sitk.Image:
    arr = -850 + 20 * np.random.default_rng(0).standard_normal(shape)
    img = sitk.GetImageFromArray(arr.astype(np.int16))
    img.SetSpacing((1.0, 1.0, 1.0))
    return img


def _ball(shape, centre_zyx, r):
    zz, yy, xx = np.indices(shape)
    return (zz - centre_zyx[0]) ** 2 + (yy - centre_zyx[1]) ** 2 + (xx - centre_zyx[2]) ** 2 <= r**2


def _tube_along_x(shape, centre_zyx, r, x_from, x_to):
    zz, yy, xx = np.indices(shape)
    across = (zz - centre_zyx[0]) ** 2 + (yy - centre_zyx[1]) ** 2 <= r**2
    return across & (xx >= x_from) & (xx <= x_to)


def _findings(prompt_mask, follow_up_mask, mapped_lps=CENTRE_LPS):
    img = _lung(prompt_mask.shape)
    ref = LesionReference.from_prompt(img, MaskCrop.from_full(prompt_mask), CENTRE_LPS)
    match = candidate_match(ref, img, MaskCrop.from_full(follow_up_mask), mapped_lps, 90.0)
    return match, {f.reason for f in match_findings(match)}


def test_a_vessel_stretch_taken_in_beside_a_grown_nodule_is_flagged():
    shape = (40, 80, 80)
    prompt = _ball(shape, CENTRE_ZYX, 4.5)  # a 9 mm nodule on a vessel (the vessel left out)
    grown = _ball(shape, CENTRE_ZYX, 5.0)  # x1.4 in volume
    # the segment also took in 12 mm of the vessel on either side, nearly as thick as the nodule
    taken = grown | _tube_along_x(shape, CENTRE_ZYX, 2.5, 40 - 17, 40 + 17)
    match, reasons = _findings(prompt, taken)
    assert match["plausible"] == 1.0, match  # it fills the lesion's place: kept, as it must be
    assert match["beyond_share"] >= MAX_BEYOND, match
    assert Reason.GROWN_BEYOND in reasons, match


def test_a_nodule_grown_all_round_and_a_few_mm_off_is_not_flagged():
    shape = (40, 80, 80)
    prompt = _ball(shape, CENTRE_ZYX, 4.5)
    for r in (4.5, 6.0, 8.0):  # the same, x2.4, x5.6 in volume
        # put 3 mm off the mapped point (within the registration's allowance)
        match, reasons = _findings(prompt, _ball(shape, (20, 42, 42), r))
        assert Reason.GROWN_BEYOND not in reasons, (r, match)
        assert match["beyond_share"] < 0.05, (r, match)
    # a lumpy growth (a lobe as thick as the lesion's own radius) still widens with the core
    lobed = _ball(shape, CENTRE_ZYX, 6.0) | _ball(shape, (20, 40, 46), 4.0)
    match, reasons = _findings(prompt, lobed)
    assert Reason.GROWN_BEYOND not in reasons, match


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
