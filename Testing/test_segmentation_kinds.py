"""The classical segmenter on the lesion kinds users bring (synthetic chest, exact truth).

Each test is one of the failures measured on held-out data (issue 9): a large pleural-based
tumour cut to its core, a small nodule on the chest wall returning chest-wall muscle, a nodule on
5 mm slices leaking, ground glass too small or empty; plus the envelope rule (a click must not
return a region mostly outside the lung envelope) and the diagnostics a quality flag reads.
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from kind_scoring import score
from scipy import ndimage

from LinGuinELib.filtering.components import dilate_mm
from LinGuinELib.propagation.result import MaskCrop
from LinGuinELib.quality import Reason, scan_checks
from LinGuinELib.segmentation.cavity import find_cavity
from LinGuinELib.synthetic import LesionKind, render_case
from LinGuinELib.synthetic.kinds import make_kind_study
from LinGuinELib.synthetic.manifest import lesion_centre_zyx


def test_large_pleural_tumour_is_not_cut_to_its_core(seg):
    case = render_case(LesionKind(70.0, "chest_wall", "solid", 2.5, invade_mm=5.0), seed=0, pixel_mm=1.0)
    dice, ratio = score(case, seg.segment(case.image, case.centre_lps[None]))
    assert dice > 0.8 and 0.7 < ratio < 1.4, (dice, ratio)


def test_small_nodule_on_the_chest_wall_does_not_return_the_wall(seg):
    case = render_case(LesionKind(6.0, "chest_wall", "solid", 1.0), seed=0, half_mm=45.0)
    mask = seg.segment(case.image, case.centre_lps[None])
    dice, ratio = score(case, mask)
    assert mask.any() and ratio < 2.0 and dice > 0.5, (dice, ratio)
    far = ~ndimage.binary_dilation(case.truth, iterations=4)
    assert not (mask & far).any()


@pytest.mark.parametrize("attachment", ["vessel", "chest_wall"])
def test_nodule_on_thick_slices_does_not_leak(seg, attachment):
    case = render_case(LesionKind(14.0, attachment, "solid", 5.0), seed=1)
    dice, ratio = score(case, seg.segment(case.image, case.centre_lps[None]))
    assert dice > 0.75 and 0.5 < ratio < 2.0, (dice, ratio)


def test_ground_glass_on_the_wall_is_found_whole(seg):
    case = render_case(LesionKind(20.0, "chest_wall", "ground_glass", 1.25), seed=0, half_mm=50.0)
    dice, ratio = score(case, seg.segment(case.image, case.centre_lps[None]))
    assert dice > 0.8 and ratio > 0.75, (dice, ratio)


def test_click_in_the_chest_wall_returns_nothing_outside_the_envelope(seg):
    """The envelope rule: a prompt 12 mm deep in the wall next to a juxtapleural nodule must not
    return a region lying mostly outside the lung (here: deeper than 3 mm in the wall)."""
    case = render_case(LesionKind(8.0, "chest_wall", "solid", 1.0), seed=2, half_mm=50.0)
    sp = np.array(case.image.GetSpacing()[::-1])
    smooth = ndimage.gaussian_filter(sitk.GetArrayFromImage(case.image).astype(np.float32), 1.0)
    depth = ndimage.distance_transform_edt(~(smooth < -700), sampling=sp)  # mm from the lung
    grad = np.array(np.gradient(depth, *sp))
    p = np.array(case.image.TransformPhysicalPointToContinuousIndex(case.centre_lps.tolist()))[::-1]
    for _ in range(600):  # walk from the nodule away from the lung
        voxel = tuple(np.round(p).astype(int))
        if depth[voxel] > 12.0:
            break
        g = grad[(slice(None),) + voxel]
        p = p + 0.25 * g / (np.linalg.norm(g) + 1e-9) / sp
    assert depth[voxel] > 12.0 and smooth[voxel] > -200  # in the wall's soft tissue
    point = np.array(case.image.TransformContinuousIndexToPhysicalPoint(p[::-1].tolist()))
    mask = seg.segment(case.image, point[None])
    assert not mask.any() or np.mean(depth[mask] <= 3.0) >= 0.5
    assert seg.last_diagnostics["empty"] == (not mask.any())


def test_diagnostics_describe_the_result(seg):
    case = render_case(LesionKind(12.0, "isolated", "solid", 1.25), seed=3, half_mm=35.0)
    mask = seg.segment(case.image, case.centre_lps[None])
    d = seg.last_diagnostics
    for key in ("empty", "reason", "volume_ml", "in_lung", "lesion_scale_mm", "roi_half_mm",
                "roi_border_contact", "envelope_fraction", "envelope_cut_fraction", "edge_contrast_hu",
                "contrast_to_noise", "threshold_hu", "leak_retry", "read_beside_slice", "read_off_wall",
                "warnings"):
        assert key in d, key
    assert not d["empty"] and d["in_lung"] and d["warnings"] == []
    assert not d["read_beside_slice"] and not d["read_off_wall"]  # read where it was clicked
    assert d["volume_ml"] == pytest.approx(mask.sum() * np.prod(case.image.GetSpacing()) / 1000, rel=1e-3)
    assert 4.0 < d["lesion_scale_mm"] < 9.0 and d["contrast_to_noise"] > 5
    seg.segment(case.image, (case.centre_lps + [0, 0, 300.0])[None])  # outside the image
    assert seg.last_diagnostics["empty"] and "empty" in seg.last_diagnostics["warnings"]


@pytest.mark.parametrize("seed", [0, 1])
def test_small_nodule_on_thin_slices_is_not_inflated(seg, seed):
    """A 5 mm nodule on 0.625 mm slices: its blurred rim must not pull the level (and the
    threshold) outwards round after round (it came out 1.7-3x too big)."""
    case = render_case(LesionKind(5.0, "isolated", "solid", 0.625), seed=seed, half_mm=25.0)
    dice, ratio = score(case, seg.segment(case.image, case.centre_lps[None]))
    assert dice > 0.8 and 0.7 < ratio < 1.3, (dice, ratio)


@pytest.mark.parametrize("kind", [(8.0, "vessel", "solid", 1.25), (14.0, "vessel", "solid", 5.0),
                                  (14.0, "diaphragm", "solid", 5.0)])
def test_nodule_is_cut_from_a_vessel_nearly_as_thick(seg, kind):
    """A vessel half as thick as the nodule survives an opening with half the nodule's radius:
    the opening ball must grow until the eroded core stays within the nodule (seed 0 of the
    vessel kinds and seed 2 of the diaphragm one, where a vessel runs over the dome, leaked
    along the vessel tree: Dice 0.10-0.21, 8-19x the volume)."""
    case = render_case(LesionKind(*kind), seed=2 if kind[1] == "diaphragm" else 0, half_mm=40.0)
    dice, ratio = score(case, seg.segment(case.image, case.centre_lps[None]))
    assert dice > 0.65 and 0.5 < ratio < 1.7, (dice, ratio)


@pytest.mark.parametrize("seed", [7, 9])
def test_juxtavascular_nodule_keeps_no_stretch_of_its_vessel(seg, seed):
    """A 9 mm nodule on a vessel half its radius: the ball that first cut the vessel still fit where
    the vessel meets the nodule, and the border detail grown back kept a stretch of the vessel on
    each side (1.45x the volume, Dice 0.76 on both seeds; the benchmark's juxtavascular nodule
    was 2.5-2.9x on every scan)."""
    case = render_case(LesionKind(9.0, "vessel", "solid", 1.25), seed=seed, half_mm=40.0)
    dice, ratio = score(case, seg.segment(case.image, case.centre_lps[None]))
    assert dice > 0.85 and 0.7 < ratio < 1.25, (dice, ratio)


@pytest.mark.parametrize("seed", [10, 11, 14])
def test_a_vessel_just_thinner_than_the_ball_keeps_no_stretch_along_the_nodule(seg, seed):
    """A 9 mm nodule with a vessel passing along its side, a little thinner than the opening's
    ball: the eroded core stays compact (no vessel is seen as attached), and the border detail
    grown back round the opening took the stretch of vessel alongside (10-13% of the nodule's
    volume beyond 1 mm of it on these seeds; the held-out juxtavascular nodules of seeds 74-76 came
    out 1.5-1.6x). What runs on beyond the regrowth's reach at half the ball's thickness is a
    vessel, and is not grown back. These seeds are the ones the rule helped; on seeds 12, 15 and 16
    it keeps 15-27% still (a vessel as thick as the ball, or through the nodule)."""
    case = render_case(LesionKind(9.0, "vessel", "solid", 1.25), seed=seed, half_mm=40.0)
    mask = seg.segment(case.image, case.centre_lps[None])
    spacing = np.array(case.image.GetSpacing()[::-1])
    beyond = mask & ~dilate_mm(case.truth, 1.0, spacing)
    assert beyond.sum() < 0.095 * case.truth.sum(), beyond.sum() / case.truth.sum()


@pytest.mark.parametrize("seed", [0, 1])
def test_a_spiculated_solid_nodule_keeps_its_spicules(seg, seed):
    """Spicules (0.45-0.75 mm thick, out to 1.4-1.9 radii) run on beyond the regrowth's reach too,
    but are thinner than half the vessel-cutting ball: border detail, kept (0.68-0.72 of the truth
    beyond 1.2 radii on these seeds; cutting every protrusion that runs on kept 0.30-0.39)."""
    case = render_case(LesionKind(25.0, "chest_wall", "solid", 2.5, 0.0, "spiculated"), seed=seed)
    mask = seg.segment(case.image, case.centre_lps[None])
    spacing = np.array(case.image.GetSpacing()[::-1])
    centre = lesion_centre_zyx(case.truth, spacing)
    far = np.sqrt(sum(((a - c) * s) ** 2 for a, c, s in zip(np.indices(mask.shape), centre, spacing))) > 15.0
    kept = (mask & case.truth & far).sum() / (case.truth & far).sum()
    assert kept > 0.55, kept


def test_a_click_on_the_vessel_beside_a_nodule_says_it_cannot_tell(seg):
    """Where a juxtavascular nodule has gone, its propagated point lands on the vessel: what is cut
    there is as thick as what is kept, so the shape cannot say which is a lesion. The segmenter
    says so (``attached_as_thick``) and the image checks make it a review finding; on the nodule
    itself it does not (in the benchmark this fired on 10 of 17 bad results and 3 of 303 good)."""
    case = render_case(LesionKind(9.0, "vessel", "solid", 1.25), seed=7, half_mm=40.0)
    nodule = seg.segment(case.image, case.centre_lps[None])
    assert not seg.last_diagnostics["attached_as_thick"]
    _, findings = scan_checks(case.image, MaskCrop.from_full(nodule), is_prompt=False,
                              point_lps=case.centre_lps, diagnostics=seg.last_diagnostics)
    assert Reason.ATTACHED_AS_THICK not in {f.reason for f in findings}
    # the deepest point of the nodule's thresholded structure 10-12 mm from its centre: its vessel
    sp = np.array(case.image.GetSpacing()[::-1])
    smooth = ndimage.gaussian_filter(sitk.GetArrayFromImage(case.image).astype(np.float32), 1.0 / sp)
    centre = np.array(case.image.TransformPhysicalPointToContinuousIndex(case.centre_lps.tolist()))[::-1]
    labels, _ = ndimage.label(smooth > -300)
    structure = labels == labels[tuple(np.round(centre).astype(int))]
    voxels = np.argwhere(structure)
    far = np.sqrt((((voxels - centre) * sp) ** 2).sum(axis=1))
    ring = voxels[(far > 10.0) & (far < 12.0)]
    depth = ndimage.distance_transform_edt(structure, sampling=sp)
    on_vessel = ring[np.argmax(depth[tuple(ring.T)])]
    point = np.array(case.image.TransformContinuousIndexToPhysicalPoint([float(v) for v in on_vessel[::-1]]))
    piece = seg.segment(case.image, point[None])
    assert piece.any() and not (piece & case.truth).any()
    assert seg.last_diagnostics["attached_as_thick"]
    _, findings = scan_checks(case.image, MaskCrop.from_full(piece), is_prompt=False, point_lps=point,
                              diagnostics=seg.last_diagnostics)
    assert Reason.ATTACHED_AS_THICK in {f.reason for f in findings}


def test_flat_ground_glass_on_the_wall_is_not_opened_away(seg):
    """A plate-like ground-glass lesion spread on the pleura (like LIDC-0002): two long axes and
    one short. Read as "elongated", the vessel-cutting ball grew to its thickness and cut it
    (Dice 0.34, a fifth of the volume); its base on the wall was cut by the envelope's ball."""
    case = render_case(LesionKind(22.0, "chest_wall", "ground_glass", 1.25, shape="flat"), seed=1)
    dice, ratio = score(case, seg.segment(case.image, case.centre_lps[None]))
    assert dice > 0.8 and 0.7 < ratio < 1.4, (dice, ratio)
    # a propagated point 5 mm off, in the wall beside the lesion: its own region lies outside the
    # envelope (it came back empty); the lesion is found from the densest point well inside it.
    # Not robust: in a smaller box (half_mm=45) the same click returns a 3-voxel piece. 3.3 mm off
    # needed the move too until the chords through the wall's inner layer sized the lesion larger
    # (session 26): its region is now read where it is, at 1.19x (0.95x with the move)
    for offset_mm, moved in ((3.3, False), (5.0, True)):
        dice, ratio = score(case, seg.segment(case.image, (case.centre_lps + [offset_mm, 0.0, 0.0])[None]))
        assert dice > 0.7 and 0.6 < ratio < 1.4, (offset_mm, dice, ratio)
        assert seg.last_diagnostics["read_off_wall"] == moved  # the move is said, not only done


def test_tiny_nodule_on_the_wall_on_thick_slices_stays_off_the_pleura(seg):
    """A 5 mm nodule on the chest wall on 5 mm slices: the partial-volume layer of the pleura is a
    wide sheet as thin as the nodule; it must not pass for a flat lesion (it came out 20x)."""
    case = render_case(LesionKind(5.0, "chest_wall", "solid", 5.0), seed=1, half_mm=40.0)
    mask = seg.segment(case.image, case.centre_lps[None])
    dice, ratio = score(case, mask)
    assert mask.any() and ratio < 2.0, (dice, ratio)
    assert not (mask & ~ndimage.binary_dilation(case.truth, iterations=4)).any()


def test_click_in_the_cavity_of_a_cavitating_lesion_finds_the_lesion(seg):
    """A propagated centre lands in the air of a cavitating lesion: the wall all round, at about
    the same distance, is the lesion (the prompt in air gave an empty mask); aerated lung is not."""
    case = render_case(LesionKind(30.0, "isolated", "solid", 1.25, shape="cavitating"), seed=0, half_mm=45.0)
    dice, ratio = score(case, seg.segment(case.image, case.centre_lps[None]))
    assert dice > 0.9 and 0.8 < ratio < 1.25, (dice, ratio)
    arr = sitk.GetArrayFromImage(case.image)
    sp = np.array(case.image.GetSpacing()[::-1])
    lung = np.argwhere(ndimage.distance_transform_edt(arr < -750, sampling=sp) > 4.0)  # deep in aerated lung
    far = lung[np.linalg.norm((lung - lung.mean(axis=0)) * sp, axis=1).argsort()[:5]]
    assert all(find_cavity(arr, sp, p.astype(float), clearance_mm=3.0) is None for p in far)
    centre = np.array(case.image.TransformPhysicalPointToContinuousIndex(case.centre_lps.tolist()))[::-1]
    assert find_cavity(arr, sp, centre, clearance_mm=3.0) is not None


def test_nodule_on_the_dome_keeps_the_slice_it_rests_on(seg):
    """On 5 mm slices the diaphragm's dome runs along the slices: the slice in which a nodule meets
    it is a mix of lung and dome, which the air level calls wall, and a closing ball sampled only
    at slice centres fits into the nodule's bottom slice: the envelope cut that slice away (Dice
    0.81, 0.76 of the volume; on the benchmark's 14 mm dome nodules down to 0.3 of it)."""
    case = render_case(LesionKind(14.0, "diaphragm", "solid", 5.0), seed=5)
    dice, ratio = score(case, seg.segment(case.image, case.centre_lps[None]))
    assert dice > 0.9 and 0.85 < ratio < 1.2, (dice, ratio)


def test_nodule_on_the_dome_against_the_chest_wall_is_followed_into_the_dome_slice(seg):
    """A 14 mm nodule on the dome against the chest wall, 5 mm slices: the slice it shares with
    the dome reads as wall to the envelope, and the segment was the one slice above it (0.38x,
    Dice 0.55). The segment is followed into that slice where the nodule fills more than half of
    it over the dome's mix round it, and the chest wall beside it, dense on every slice, is left
    out (end_slices)."""
    case = render_case(LesionKind(14.0, "diaphragm", "solid", 5.0), seed=0)
    mask = seg.segment(case.image, case.centre_lps[None])
    dice, ratio = score(case, mask)
    assert dice > 0.88 and 0.8 < ratio < 1.25, (dice, ratio)
    assert set(np.flatnonzero(mask.any(axis=(1, 2)))) == set(np.flatnonzero(case.truth.any(axis=(1, 2))))
    assert 0.0 < seg.last_diagnostics["end_slice_on_wall"] < 1.0


def test_prompt_carried_into_the_dome_below_a_nodule_finds_the_nodule(seg):
    """A propagated point a few mm off lands in the dome under a 14 mm nodule on 5 mm slices
    (the benchmark: 4-12 mm). Nothing lesion-like is around it, inside the lung envelope or not,
    and the segmenter returned an empty mask: the nodule was reported gone where it is present.
    It now starts again from the densest point well inside the envelope next to the prompt."""
    case = render_case(LesionKind(14.0, "diaphragm", "solid", 5.0), seed=1)
    dice, ratio = score(case, seg.segment(case.image, (case.centre_lps - [0.0, 0.0, 6.0])[None]))
    assert dice > 0.9 and 0.8 < ratio < 1.25, (dice, ratio)


@pytest.fixture(scope="module")
def dome_study(tmp_path_factory):
    """A 14 mm nodule on the dome followed on 5 mm slices, with pose and warp between scans."""
    out = tmp_path_factory.mktemp("dome")
    make_kind_study(out, [LesionKind(14.0, "diaphragm", "solid", 5.0)], n_scans=4, seed=5,
                    growth=[1.0, 1.9, 0.7, 1.4])
    return out


def test_nodule_on_the_dome_leaves_the_dome_slice_beside_it(seg, dome_study):
    """On a follow-up the dome crosses the slice under the nodule obliquely: that slice is a mix of
    lung and dome as dense as a lesion over a wide area, inside the envelope where it meets the
    nodule, and the segment took it (2.1x the volume, Dice 0.62; held to a round lesion's reach
    from the slice above, still 1.8x, Dice 0.71). Its pixels are now decided by partial volume over
    the dome's mix round the nodule, and the segmenter says how much of the volume lies in such a
    slice."""
    image = sitk.ReadImage(str(dome_study / "scans" / "T2.nii.gz"))
    truth = sitk.GetArrayFromImage(sitk.ReadImage(str(dome_study / "truth" / "T2.nii.gz"))) == 1
    sp = np.array(image.GetSpacing()[::-1])
    centre = lesion_centre_zyx(truth, sp)
    point = np.array(image.TransformContinuousIndexToPhysicalPoint([float(v) for v in centre[::-1]]))
    mask = seg.segment(image, point[None])
    dice = 2.0 * (mask & truth).sum() / (mask.sum() + truth.sum())
    ratio = mask.sum() / truth.sum()
    assert dice > 0.85 and 0.8 < ratio < 1.25, (dice, ratio)
    assert 0.0 < seg.last_diagnostics["end_slice_on_wall"] < 1.0


def test_thin_slices_have_no_end_slice_on_a_wall(seg):
    """Thin slices resolve the wall: the envelope parts a chest-wall nodule from it on every slice,
    and no end slice is a mix of lesion and wall (the diagnostic reads 0)."""
    case = render_case(LesionKind(6.0, "chest_wall", "solid", 1.0), seed=0, half_mm=45.0)
    assert seg.segment(case.image, case.centre_lps[None]).any()
    assert seg.last_diagnostics["end_slice_on_wall"] == 0.0
