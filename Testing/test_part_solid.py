"""Part-solid lesions keep their ground-glass halo, and the segmenter says when it left one out
(a diagnostic, not a review finding: on the ten-seed benchmark it fired on 14 good results of a
real solid nodule and on no bad one; made a finding again in session 16, it fired on 9 good results
of held-out seeds 90-94, LIDC-0001's follow-ups among them, and on no bad one).

The held-out benchmark of session 5 (seeds 10-11) segmented a 22 mm part-solid nodule on a
fissure as its solid core on three of four scans (0.11x, Dice 0.20), unflagged: the radial
profile took the halo's fading edge for the lung, and the halo, read against that level, looked
too faint to be one. The cases here are generated lesions of the same make whose halo is dark
enough (about -620 HU) for that to happen.
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from kind_scoring import score

from LinGuinELib.synthetic import LesionKind, render_case


@pytest.mark.parametrize("kind,seed", [(LesionKind(22.0, "fissure", "part_solid", 1.25), 11),
                                       (LesionKind(18.0, "isolated", "part_solid", 1.0), 3)])
def test_part_solid_lesion_keeps_a_halo_that_passes_for_lung(seg, kind, seed):
    """Before: the core alone (0.18x and 0.28x). The aerated lung is read beyond the halo."""
    case = render_case(kind, seed=seed)
    mask = seg.segment(case.image, case.centre_lps[None])
    dice, ratio = score(case, mask)
    assert dice > 0.8 and 0.75 < ratio < 1.35, (dice, ratio)
    assert not seg.last_diagnostics["halo_left_out"]


@pytest.mark.parametrize("kind,seed", [(LesionKind(18.0, "isolated", "part_solid", 1.0), 8),
                                       (LesionKind(12.1, "fissure", "part_solid", 1.25), 4124),
                                       (LesionKind(15.3, "chest_wall", "part_solid", 1.0), 4162)])
def test_a_halo_on_part_of_the_shell_is_taken_when_reading_it_doubles_the_lesion(seg, kind, seed):
    """These cores sit off-centre in their halos, or against a fissure or the wall: the shell round
    them is 41-48% hazy, too little to take the halo on its share alone (a real solid juxtapleural
    nodule's shell reads 43-50%). Read as a halo, it gives the core back 2-6 times over, where the
    real nodule read so comes back 1.0-1.2x. Before: the core alone (0.38x, 0.26x, 0.22x; the last
    two from the random kinds 4000-4199, unflagged), with only a warning."""
    case = render_case(kind, seed=seed)
    mask = seg.segment(case.image, case.centre_lps[None])
    dice, ratio = score(case, mask)
    assert dice > 0.7 and 0.5 < ratio < 1.35, (dice, ratio)
    assert not seg.last_diagnostics["halo_left_out"]


@pytest.mark.parametrize("kind", [LesionKind(12.0, "fissure", "solid", 1.25), LesionKind(14.0, "vessel", "solid", 5.0),
                                  LesionKind(7.0, "chest_wall", "solid", 2.5),
                                  LesionKind(4.5, "isolated", "solid", 5.0)])
def test_a_solid_nodule_has_no_halo(seg, kind):
    """The blur of a solid edge, thick slices' partial volume (a nodule thinner than its slice is
    itself hazy) and a wall or vessel beside it are not a halo: neither taken nor flagged."""
    case = render_case(kind, seed=0, half_mm=40.0)
    mask = seg.segment(case.image, case.centre_lps[None])
    dice, ratio = score(case, mask)
    assert dice > 0.75 and 0.6 < ratio < 1.5, (dice, ratio)
    assert not seg.last_diagnostics["halo_left_out"]


def test_part_solid_lesion_on_thick_slices_keeps_its_halo(seg):
    """Before (session 10): the core alone (0.07x). A solid core averaged with its halo across a
    5 mm slice reads lighter than soft tissue at the click; the halo is judged on the level the
    threshold settled on, the core's own."""
    case = render_case(LesionKind(25.0, "isolated", "part_solid", 5.0), seed=1)
    mask = seg.segment(case.image, case.centre_lps[None])
    dice, ratio = score(case, mask)
    assert dice > 0.85 and 0.8 < ratio < 1.25, (dice, ratio)


def test_a_halo_beside_the_mediastinum_left_out_is_said(seg):
    """The mediastinum fills part of the shell round this core (46% hazy): too little to take the
    halo, enough to say the result cannot vouch that there is none (0.46x; before: said from one
    click of three, the click's partial-volume level hid the halo)."""
    case = render_case(LesionKind(20.0, "mediastinum", "part_solid", 5.0), seed=1)
    mask = seg.segment(case.image, case.centre_lps[None])
    dice, ratio = score(case, mask)
    assert ratio < 0.6, (dice, ratio)  # the case this test is about
    assert "halo_left_out" in seg.last_diagnostics["warnings"]


def test_a_solid_edge_across_thick_slices_is_no_halo(seg):
    """A 90 mm tumour invading the chest wall, on 5 mm slices: where its surface crosses the slices
    obliquely its own edge is hazy over a slice's width (a quarter of the shell): no halo (a
    reading of the shell inside the lung envelope only took it for one, at 1.2x). The lower bound
    guards against a cut only: sized by its chords (47.5 mm against 42 from the rays, a 45 mm
    radius), it reads 0.84x at Dice 0.90, where it read 1.00x at Dice 0.87."""
    case = render_case(LesionKind(90.0, "chest_wall", "solid", 5.0, invade_mm=8.0), seed=1)
    mask = seg.segment(case.image, case.centre_lps[None])
    dice, ratio = score(case, mask)
    assert dice > 0.85 and 0.8 < ratio < 1.1, (dice, ratio)
    assert not seg.last_diagnostics["halo_left_out"]


@pytest.mark.lidc
@pytest.mark.slow
def test_a_real_solid_nodule_with_a_hazy_rim_is_not_taken_with_it(seg, lidc_dir, tmp_path):
    """LIDC-0001's juxtapleural nodule on the benchmark's generated follow-ups (seed 0): about half
    the shell round it is hazy (vessels, the pleura's partial volume), so the halo reading is
    tried. Held at the haze's level (a variant tried in session 11) it read 1.7x of the
    radiologists' outline (Dice 0.73); re-measured on what it finds, it comes back to the nodule."""
    from LinGuinELib.synthetic.from_ct import DEFAULT_GROWTH, make_study_from_ct
    from LinGuinELib.synthetic.manifest import lesion_centre_zyx

    manifest = make_study_from_ct(lidc_dir / "LIDC-IDRI-0001_ct.nii.gz", lidc_dir / "LIDC-IDRI-0001_consensus2.nii.gz",
                                  tmp_path / "study", n_scans=5, seed=0, growth=[*DEFAULT_GROWTH, 0.0])
    for scan in ("T1", "T2"):
        image = sitk.ReadImage(str(manifest.parent / "scans" / f"{scan}.nii.gz"))
        truth = sitk.GetArrayFromImage(sitk.ReadImage(str(manifest.parent / "truth" / f"{scan}.nii.gz"))) == 1
        centre = lesion_centre_zyx(truth, np.array(image.GetSpacing()[::-1]))
        point = image.TransformContinuousIndexToPhysicalPoint([float(v) for v in centre[::-1]])
        mask = seg.segment(image, np.array(point)[None])
        dice = 2.0 * (mask & truth).sum() / (mask.sum() + truth.sum())
        assert dice > 0.8 and mask.sum() / truth.sum() < 1.3, (scan, dice, mask.sum() / truth.sum())


def test_the_lung_beyond_a_fading_halo_is_read_where_the_halo_ends():
    """The radial profile of an 80 mm part-solid tumour on the diaphragm (5 mm slices, the full kind
    plan): the halo's own slow fade levelled off 4 mm into it, and that reading (-579 HU, not lung)
    left the core alone as the lesion (0.12x). Beyond the halo the lung is read where it is."""
    from LinGuinELib.segmentation.levels import AIR_LIKE_HU, lung_beyond

    halo = np.linspace(-535.0, -601.0, 16)
    profile = np.concatenate([halo, [-696, -746, -764, -769, -788, -840, -846, -849, -849, -854, -858, -861, -861]])
    assert lung_beyond(profile, 1, -535.0, 8.0) < AIR_LIKE_HU
    # a halo that gives way to something denser (a wall) has no lung beyond it
    walled = np.concatenate([halo, [-560, -420, -200, -40, 20, 30, 30, 30]])
    assert np.isnan(lung_beyond(walled, 1, -535.0, 8.0))


@pytest.mark.parametrize("seed", [4, 5])
def test_a_clear_halo_keeps_its_level_while_the_threshold_settles(seg, seed):
    """A 20 mm mediastinal part-solid lesion on 5 mm slices, most of the shell round its core hazy:
    re-measured on the core-and-halo whole, whose median lies between the two, the threshold crept
    up into the halo round after round and ended at the core (0.49x and 0.32x)."""
    case = render_case(LesionKind(20.0, "mediastinum", "part_solid", 5.0), seed=seed)
    mask = seg.segment(case.image, case.centre_lps[None])
    dice, ratio = score(case, mask)
    assert dice > 0.7 and 0.7 < ratio < 1.6, (dice, ratio)


def test_a_click_on_the_core_of_a_large_part_solid_tumour_keeps_its_halo(seg):
    """An 80 mm part-solid tumour on the diaphragm (5 mm slices) clicked on its solid core (where a
    user clicks, and where a propagated centre can land): the radial profile read the core against
    its own solid plateau first and the ground glass as a second reading, and the halo was tried
    only after a single reading: 0.10x (0.21x on a benchmark follow-up)."""
    from scipy import ndimage

    case = render_case(LesionKind(80.0, "diaphragm", "part_solid", 5.0), seed=5)
    smooth = ndimage.gaussian_filter(sitk.GetArrayFromImage(case.image).astype(float), 1.0)
    smooth[~ndimage.binary_erosion(case.truth)] = -2000.0
    densest = np.unravel_index(np.argmax(smooth), smooth.shape)
    assert smooth[densest] > 0  # on the solid core, not in the ground glass
    click = case.image.TransformContinuousIndexToPhysicalPoint([float(i) for i in densest[::-1]])
    dice, ratio = score(case, seg.segment(case.image, np.array(click)[None]))
    assert dice > 0.7 and 0.7 < ratio < 1.6, (dice, ratio)


def test_a_faint_nodule_beside_a_vessel_is_not_traded_for_the_vessel(seg):
    """A 7 mm part-solid nodule on 5 mm slices whose core is a dot beside a vessel (a random kind
    of the sweep, seed 1206). The first rounds found the nodule; as the threshold rose, the dot of
    a core was too small for the separating ball, which let the vessel through, and the rounds
    after measured the vessel: 24x, Dice 0.004. A stricter threshold cannot find more of a lesion
    lighter than fat, so the round before stands."""
    case = render_case(LesionKind(7.0, "isolated", "part_solid", 5.0), seed=1206)
    dice, ratio = score(case, seg.segment(case.image, case.centre_lps[None]))
    assert dice > 0.6 and ratio < 2.0, (dice, ratio)


def test_a_flat_ground_glass_plate_clicked_off_centre_keeps_to_the_plate(seg):
    """A 22 mm ground-glass plate on the chest wall clicked 3.3 mm off its centre (the per-kind
    evaluation's off1 click): a stricter round took in a stretch of the wall's blur (Dice 0.18)."""
    case = render_case(LesionKind(22.0, "chest_wall", "ground_glass", 1.25, shape="flat"), seed=0)
    step = float(np.clip(0.3 * 11.0, 2.0, 6.0))
    direction = np.array([0.0, -1.0, 0.0])
    dice, ratio = score(case, seg.segment(case.image, (case.centre_lps + step * direction)[None]))
    assert dice > 0.8 and 0.7 < ratio < 1.4, (dice, ratio)
