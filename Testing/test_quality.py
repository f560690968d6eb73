"""The quality flag: it fires on implausible results and stays quiet on clean ones."""

import csv

import engine_fixtures as fx
import numpy as np
import SimpleITK as sitk
from quality_fixtures import judge
from scipy import ndimage

from LinGuinELib.config import TrackingConfig
from LinGuinELib.geometry import physical_to_continuous_index_zyx
from LinGuinELib.pipeline import run_study
from LinGuinELib.propagation.result import MaskCrop
from LinGuinELib.quality import Reason, assess_volumes, scan_checks
from LinGuinELib.quality.image_checks import widest_ball
from LinGuinELib.quality.match import LesionReference, candidate_match
from LinGuinELib.registry import register_segmentation
from LinGuinELib.segmentation.base import Segmenter


def _reasons(findings):
    return {f.reason for f in findings}


def test_volume_spike_flags_that_scan_only():
    out = assess_volumes([1.0, 1.3, 9.0, 1.6], [0, 60, 120, 180], [True] * 4, 0, [1.0] * 4)
    assert [bool(f) for f in out] == [False, False, True, False]
    assert Reason.GROWTH_TOO_FAST in _reasons(out[2])


def test_plausible_growth_and_shrinkage_not_flagged():
    # the LIDC-derived benchmark schedule over 12-week intervals, then a complete response
    out = assess_volumes([6.0, 8.4, 11.4, 4.2, 0.0], [0, 84, 161, 217, 315], [True] * 4 + [False], 0, [2.5] * 5)
    assert not any(out)


def test_same_jump_is_plausible_over_a_year_but_not_over_two_weeks():
    slow = assess_volumes([1.0, 6.0], [0, 365], [True, True], 0, [1.0, 1.0])
    fast = assess_volumes([1.0, 6.0], [0, 14], [True, True], 0, [1.0, 1.0])
    assert not any(slow) and Reason.GROWTH_TOO_FAST in _reasons(fast[1])


def test_undated_scans_use_a_ratio_between_neighbours():
    out = assess_volumes([2.0, 2.5, 30.0], [None] * 3, [True] * 3, 0, [1.0] * 3)
    assert not out[1] and Reason.GROWTH_TOO_FAST in _reasons(out[2])


def test_missing_between_two_finds_is_flagged():
    out = assess_volumes([1.0, 0.0, 1.1], [0, 40, 80], [True, False, True], 0, [1.0] * 3)
    assert _reasons(out[1]) == {Reason.MISSING_BETWEEN}


def _chest(shape=(30, 60, 60), seed=0):
    """1 mm voxels: lung (-850 HU, noise) with a chest wall (soft tissue) at x < 12."""
    rng = np.random.default_rng(seed)
    arr = -850 + 20 * rng.standard_normal(shape)
    arr[:, :, :12] = 40 + 15 * rng.standard_normal((shape[0], shape[1], 12))
    img = sitk.GetImageFromArray(arr.astype(np.int16))
    img.SetSpacing((1.0, 1.0, 1.0))
    return img, arr


def _ball(shape, centre_zyx, r):
    zz, yy, xx = np.indices(shape)
    return (zz - centre_zyx[0]) ** 2 + (yy - centre_zyx[1]) ** 2 + (xx - centre_zyx[2]) ** 2 <= r**2


def test_clean_nodule_not_flagged_and_chest_wall_leak_flagged():
    img, arr = _chest()
    nodule = _ball(arr.shape, (15, 30, 35), 6)
    arr[nodule] = 30
    img2 = sitk.GetImageFromArray(arr.astype(np.int16))
    img2.CopyInformation(img)
    _, clean = scan_checks(img2, MaskCrop.from_full(nodule), is_prompt=True)
    assert clean == []
    wall = np.zeros(arr.shape, bool)
    wall[5:25, 10:50, 2:12] = True  # a slab of chest wall, as a leaking segmenter returns it
    signals, leak = scan_checks(img2, MaskCrop.from_full(wall), is_prompt=True)
    assert {Reason.OUTSIDE_LUNG, Reason.OPEN_BOUNDARY} <= _reasons(leak), signals


def test_ground_glass_on_the_wall_reads_a_clean_edge_a_solid_nodule_on_it_reads_open():
    """Tissue denser than a segment by half its contrast to the lung is another structure: ground
    glass leaning on the chest wall stands out from the wall as from the lung (its ring, half wall,
    read open and weak before); a solid nodule on the wall runs on into tissue of its own density."""
    img, arr = _chest()
    nodule = _ball(arr.shape, (15, 30, 17), 7) & (np.indices(arr.shape)[2] >= 12)
    opens = []
    for hu in (-450, 30):
        painted = arr.copy()
        painted[nodule] = hu
        scan = sitk.GetImageFromArray(painted.astype(np.int16))
        scan.CopyInformation(img)
        signals, findings = scan_checks(scan, MaskCrop.from_full(nodule), is_prompt=True)
        opens.append(signals["open_boundary"])
        if hu < 0:
            assert not _reasons(findings) & {Reason.OPEN_BOUNDARY, Reason.WEAK_EDGE}, signals
    assert opens[0] < 0.1 < opens[1], opens


def test_empty_prompt_and_far_point_flagged():
    img, arr = _chest()
    _, empty = scan_checks(img, MaskCrop.from_full(np.zeros(arr.shape, bool)), is_prompt=True)
    assert _reasons(empty) == {Reason.EMPTY_PROMPT}
    nodule = _ball(arr.shape, (15, 30, 35), 4)
    far_point = np.array([35.0 + 15, 30.0, 15.0])  # LPS of voxel (15, 30, 50): 15 mm from the centre
    _, far = scan_checks(img, MaskCrop.from_full(nodule), is_prompt=False, point_lps=far_point,
                         prompt_signals={"radius_mm": 4.0})
    assert Reason.POINT_FAR in _reasons(far)



def test_a_click_anywhere_in_the_lesion_is_not_far_on_the_prompt_scan():
    """The reader's click may sit on a lesion's wall, a radius from its centre: not far on the
    prompt scan. The same point carried by registration to a follow-up is far (the prompt's centre
    was mapped), and so is a click that misses the segment by more than POINT_FAR_MM."""
    img, arr = _chest(shape=(40, 60, 60))
    lesion = _ball(arr.shape, (20, 30, 38), 14)
    arr[lesion] = 30
    scan = sitk.GetImageFromArray(arr.astype(np.int16))
    scan.CopyInformation(img)
    wall, outside = np.array([38.0 + 13, 30.0, 20.0]), np.array([38.0, 30.0 + 21, 20.0])

    def far(point, is_prompt):
        signals, findings = scan_checks(scan, MaskCrop.from_full(lesion), is_prompt=is_prompt,
                                        point_lps=point, prompt_signals=None if is_prompt else {"radius_mm": 14.0})
        return Reason.POINT_FAR in _reasons(findings), signals

    assert not far(wall, True)[0], far(wall, True)[1]
    assert far(wall, False)[0]
    assert far(outside, True)[0]

def test_low_registration_confidence_flags_small_lesions_and_unvouched_points_only():
    """A few mm of registration doubt matter for a 8 mm nodule, not inside a 30 mm mass; a point
    nothing vouches for (confidence 0) is flagged whatever the size."""
    img, arr = _chest(shape=(40, 60, 60))
    small, large = _ball(arr.shape, (20, 30, 38), 4), _ball(arr.shape, (20, 30, 38), 15)
    arr[large] = 30
    img2 = sitk.GetImageFromArray(arr.astype(np.int16))
    img2.CopyInformation(img)
    centre = np.array([38.0, 30.0, 20.0])

    def flagged(mask, confidence):
        radius = float((3 * mask.sum() / (4 * np.pi)) ** (1 / 3))
        _, found = scan_checks(img2, MaskCrop.from_full(mask), is_prompt=False, point_lps=centre,
                               confidence=confidence, prompt_signals={"radius_mm": radius})
        return Reason.LOW_REGISTRATION_CONFIDENCE in _reasons(found)

    assert flagged(small, 0.3) and not flagged(small, 0.8)
    assert not flagged(large, 0.3) and flagged(large, 0.0)
    assert flagged(np.zeros(arr.shape, bool), 0.3)  # nothing segmented: nothing holds the point


def test_candidate_match_rejects_a_passing_vessel_keeps_a_shrunk_lesion():
    img, arr = _chest(shape=(40, 80, 80))
    centre_zyx = (20, 40, 45)
    lesion = MaskCrop.from_full(_ball(arr.shape, centre_zyx, 6))
    centre_lps = np.array([45.0, 40.0, 20.0])
    spacing = np.array(img.GetSpacing()[::-1])

    def match(mask: np.ndarray) -> dict[str, float]:
        return candidate_match(ref, img, MaskCrop.from_full(mask), widest_ball(mask, spacing)[0], centre_lps, 90.0)

    ref = LesionReference.from_prompt(img, lesion, centre_lps, widest_ball(lesion.array, spacing)[0])
    vessel = np.zeros(arr.shape, bool)
    vessel[:, 40 - 2:40 + 2, 45 + 7:45 + 11] = True  # runs along z, 7 mm beside the old centre
    v = match(vessel)
    assert v["plausible"] == 0.0, v
    shrunk = match(_ball(arr.shape, (21, 41, 44), 3))
    assert shrunk["plausible"] == 1.0, shrunk
    grown = match(_ball(arr.shape, (20, 42, 45), 8))
    assert grown["plausible"] == 1.0, grown


@register_segmentation("test-nearest-bright")
class NearestBrightSegmenter(Segmenter):
    """The bright component nearest the prompt within 8 mm, as a segmenter that searches for a
    seed does when the lesion has gone (it finds the neighbouring structure)."""

    def segment(self, image, positive_lps, negative_lps=None):
        arr = sitk.GetArrayViewFromImage(image)
        labels, _ = ndimage.label(arr > 0)
        spacing = np.array(image.GetSpacing()[::-1])
        out = np.zeros(arr.shape, bool)
        for p in positive_lps:
            zyx = physical_to_continuous_index_zyx(image, p[None])[0]
            idx = np.argwhere(labels > 0)
            d = np.sqrt((((idx - zyx) * spacing) ** 2).sum(1))
            if len(d) and d.min() <= 8.0:
                out |= labels == labels[tuple(idx[np.argmin(d)])]
        return out


def _vessel_study(folder):
    """T0: a 5 mm nodule beside a wall (a bright wall beside it); T1: the nodule has gone."""
    manifest = fx.write_ball_study(folder, [(5,), (0,)], [(0, 0, 0), (2, -1, 2)], [(0.0, 0.0, 0.0)],
                                   dates=["2024-01-01", "2024-03-01"])
    for sid, shift in (("T0", (0, 0, 0)), ("T1", (2, -1, 2))):
        img = sitk.ReadImage(str(folder / f"{sid}.mha"))
        arr = sitk.GetArrayFromImage(img)
        x0 = int(round(7.5 + shift[0] + 20))
        arr[:, :, x0:x0 + 3] = 60  # a wall 2.5 mm from the nodule surface
        out = sitk.GetImageFromArray(arr)
        out.CopyInformation(img)
        for key in img.GetMetaDataKeys():
            out.SetMetaData(key, img.GetMetaData(key))
        sitk.WriteImage(out, str(folder / f"{sid}.mha"))
    return manifest


def test_vanished_lesion_beside_a_wall_is_not_found(tmp_path):
    manifest = _vessel_study(tmp_path / "study")
    config = TrackingConfig(registration="test-shift", segmentation="test-nearest-bright")
    result = run_study(manifest, tmp_path / "out", config)
    assert result.get("L1", "T0").status == "prompt"
    assert result.get("L1", "T1").status == "not_found"
    assert result.get("L1", "T1").mask.empty


def test_trajectory_csv_has_review_columns(tmp_path):
    # lesion L1 jumps from 4 mm to 9 mm radius in a month, then back: a leak-like spike
    manifest = fx.write_ball_study(tmp_path / "study", [(4, 5), (4.2, 5), (9, 5), (4.4, 5)],
                                   [(0, 0, 0)] * 4, [(-8.0, -8.0, 0.0), (8.0, 8.0, 0.0)])
    config = TrackingConfig(registration="test-shift", segmentation="test-threshold")
    run_study(manifest, tmp_path / "out", config)
    with open(tmp_path / "out" / "trajectory.csv", newline="") as fh:
        rows = {(r["lesion"], r["scan"]): r for r in csv.DictReader(fh)}
    assert {"review", "review_reasons", "review_details"} <= set(next(iter(rows.values())))
    # the volume flags (response_uncertain, tested on its own, also fires on these 8 mm balls)
    volume = {k for k, r in rows.items() if set(r["review_reasons"].split(";")) - {"", "response_uncertain"}}
    assert volume == {("L1", "T2")}, {k: r["review_reasons"] for k, r in rows.items()}
    assert "growth_too_fast" in rows[("L1", "T2")]["review_reasons"].split(";")
    assert rows[("L1", "T2")]["review"] == "true"
    assert rows[("L2", "T1")]["review"] == "false" and rows[("L2", "T1")]["review_reasons"] == ""


def _judge(prompt_img, prompt_mask, img, cand):
    return judge(prompt_img, prompt_mask, img, cand, np.array([45.0, 40.0, 20.0]))


def _with(arr, img, mask, hu):
    out = arr.copy()
    out[mask] = hu
    new = sitk.GetImageFromArray(out.astype(np.int16))
    new.CopyInformation(img)
    return new


def test_fragment_where_a_lesion_was_is_rejected_but_a_lesion_that_shrank_a_lot_is_kept():
    img, arr = _chest(shape=(40, 80, 80))
    lesion = _ball(arr.shape, (20, 40, 45), 7)
    prompt_img = _with(arr, img, lesion, 30)
    # gone: a fissure (a 2 mm sheet of -150 HU) runs through its place; the segmenter returns the
    # piece of it nearest the point (a disc within the old outline)
    sheet = np.zeros(arr.shape, bool)
    sheet[:, 39:41, :] = True
    fragment = sheet & _ball(arr.shape, (20, 40, 45), 6)
    gone, unlike = _judge(prompt_img, lesion, _with(arr, img, sheet, -150), fragment)
    assert gone["plausible"] == 0.0 and "not_compact" in unlike, (gone, unlike)
    # shrank to a tenth of its volume (a responding tumour): small, covers little, still a nodule
    small = _ball(arr.shape, (20, 40, 45), 3.2)
    shrunk, unlike = _judge(prompt_img, lesion, _with(arr, img, small, 30), small)
    assert shrunk["candidate_coverage"] < 0.25 and not unlike and shrunk["plausible"] == 1.0, (shrunk, unlike)
    # still there, grown a little, with a vessel attached: covers its place, kept for the flag
    leak = _ball(arr.shape, (20, 40, 45), 7.5)
    leak[20, 39:42, 45:75] = True
    kept, unlike = _judge(prompt_img, lesion, _with(arr, img, leak, 30), leak)
    assert kept["plausible"] == 1.0, (kept, unlike)


@register_segmentation("test-near-bright")
class NearBrightSegmenter(Segmenter):
    """Everything denser than lung within 7 mm of the prompt: on a lesion that has gone from a
    fissure, the piece of fissure where it was (a segmenter that always returns something)."""

    def segment(self, image, positive_lps, negative_lps=None):
        arr = sitk.GetArrayViewFromImage(image)
        from LinGuinELib.geometry import index_zyx_to_physical

        zyx = np.argwhere(arr > -500)
        near = np.linalg.norm(index_zyx_to_physical(image, zyx) - positive_lps[0], axis=1) <= 7.0
        out = np.zeros(arr.shape, bool)
        out[tuple(zyx[near].T)] = True
        return out


def test_engine_reports_a_fragment_of_fissure_where_a_lesion_was_as_not_found(tmp_path):
    folder = tmp_path / "study"
    shifts = [(0, 0, 0), (2, -1, 2)]
    manifest = fx.write_ball_study(folder, [(6,), (0,)], shifts, [(0.0, 0.0, 0.0)],
                                   dates=["2024-01-01", "2024-03-01"])
    for sid, shift in zip(("T0", "T1"), shifts):  # a 1 mm fissure through the lesion's centre
        img = sitk.ReadImage(str(folder / f"{sid}.mha"))
        arr = sitk.GetArrayFromImage(img)
        sheet = arr[:, 20 + shift[1], :]
        sheet[sheet < 0] = -100
        out = sitk.GetImageFromArray(arr)
        out.CopyInformation(img)
        for key in img.GetMetaDataKeys():
            out.SetMetaData(key, img.GetMetaData(key))
        sitk.WriteImage(out, str(folder / f"{sid}.mha"))
    config = TrackingConfig(registration="test-shift", segmentation="test-near-bright")
    result = run_study(manifest, tmp_path / "out", config)
    gone = result.get("L1", "T1")
    assert result.get("L1", "T0").status == "prompt" and not result.get("L1", "T0").findings
    assert gone.status == "not_found" and gone.mask.empty, gone.signals
    assert gone.signals["candidate_ml"] > 0 and gone.signals["candidate_unlike"] >= 1
    # its surroundings match and its place is aerated: a confident disappearance, nothing to review
    assert gone.signals["absence_context_ncc"] > 0.9 and gone.signals["absence_empty"] > 0.8
    assert not gone.findings, gone.findings


def test_a_candidate_filling_most_of_the_lesions_place_is_kept_even_leaking_and_unlike():
    from LinGuinELib.quality.match import rejects

    # measured cases (inside, coverage, unlike): a 9 mm nodule on a vessel, still there (x0.7),
    # segmented with 2.3 mL of its vessel: half of it away, not compact, but it fills its place
    assert not rejects(0.48, 0.81, 1)
    # the same nodule gone: the vessel alone crosses its place
    assert rejects(0.65, 0.31, 1) and rejects(0.15, 0.30, 1)
    # a fragment of wall or fissure inside the old place; a structure passing by
    assert rejects(1.00, 0.13, 3) and rejects(0.50, 0.10, 0)
    # one piece of evidence alone: a lesion that shrank a lot, or one that grew out of its place
    assert not rejects(1.00, 0.10, 0) and not rejects(0.60, 0.40, 0) and not rejects(1.00, 0.40, 1)


def test_console_table_shows_review_reasons_and_fits_long_ids(capsys):
    from LinGuinELib.cli.track import print_table

    base = {"when": "2023-01-09", "status": "found", "volume_ml": 1.5, "longest_axial_diameter_mm": 14.0,
            "response": "SD", "review": False, "review_reasons": ""}
    rows = [{**base, "lesion": "right-lower-lobe-nodule", "scan": "T0"},
            {**base, "lesion": "L2", "scan": "T1", "review": True, "review_reasons": "weak_edge;open_boundary"}]
    print_table(rows)
    head, long_row, flagged = capsys.readouterr().out.splitlines()
    assert long_row.index("T0") == head.index("scan")  # a long id does not push the columns
    assert flagged.endswith("review: weak_edge, open_boundary") and "review" not in long_row


def test_follow_ups_of_a_baseline_that_is_no_lesion_are_flagged(tmp_path):
    # L1's prompt scan shows a thin rod where its follow-ups show a ball: the baseline's segment is
    # not lesion-shaped (not_compact), each follow-up is clean on its own, yet every volume change
    # is read against that rod. L2 is a ball throughout: nothing carried over.
    centres = [(-8.0, -8.0, 0.0), (8.0, 8.0, 0.0)]
    manifest = fx.write_ball_study(tmp_path / "study", [(4, 4)] * 4, [(0, 0, 0)] * 4, centres)
    prompt = sitk.ReadImage(str(tmp_path / "study" / "T0.mha"))
    arr = sitk.GetArrayFromImage(prompt)
    c = physical_to_continuous_index_zyx(prompt, np.array([centres[0]]))[0].round().astype(int)
    arr[c[0] - 3:c[0] + 4, c[1] - 5:c[1] + 6, c[2] - 5:c[2] + 6] = -800  # the ball goes (2 x 1 x 1 mm voxels)
    arr[c[0] - 1:c[0] + 2, c[1] - 1:c[1] + 2, c[2] - 9:c[2] + 10] = 50  # a rod lies across its place
    rod = sitk.GetImageFromArray(arr)
    rod.CopyInformation(prompt)
    for key in prompt.GetMetaDataKeys():
        rod.SetMetaData(key, prompt.GetMetaData(key))
    sitk.WriteImage(rod, str(tmp_path / "study" / "T0.mha"))
    config = TrackingConfig(registration="test-shift", segmentation="test-threshold")
    run_study(manifest, tmp_path / "out", config)
    with open(tmp_path / "out" / "trajectory.csv", newline="") as fh:
        rows = {(r["lesion"], r["scan"]): r["review_reasons"].split(";") for r in csv.DictReader(fh)}
    assert "not_compact" in rows[("L1", "T0")]
    for scan in ("T1", "T2", "T3"):
        assert "baseline_doubtful" in rows[("L1", scan)] and "not_compact" not in rows[("L1", scan)], rows
        assert "baseline_doubtful" not in rows[("L2", scan)]
    assert "baseline_doubtful" not in rows[("L1", "T0")]
