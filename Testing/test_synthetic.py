"""Synthetic longitudinal studies: manifest format, grids, growth truth, prompts, determinism."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from LinGuinELib.errors import InputError
from LinGuinELib.geometry import (
    index_zyx_to_physical,
    physical_to_continuous_index_zyx,
    ras_to_lps,
    same_grid,
    voxel_volume_ml,
)
from LinGuinELib.synthetic import (
    compose,
    growth_warp,
    jacobian_determinant,
    make_study,
    pull_points,
    push_points,
    random_pose,
    random_smooth_field,
    regrid,
    resample_label,
)
from LinGuinELib.synthetic.from_ct import make_study_from_ct

SMALL = {"shape_zyx": (48, 96, 96), "spacing": (2.5, 2.5, 3.0)}
_TIMES: dict[str, float] = {}


def _read(study: Path, rel: str) -> sitk.Image:
    return sitk.ReadImage(str(study.parent / rel))


def _value_at(label: sitk.Image, p_lps) -> int:
    idx = np.rint(physical_to_continuous_index_zyx(label, np.asarray(p_lps)[None])[0]).astype(int)
    arr = sitk.GetArrayViewFromImage(label)
    if np.any(idx < 0) or np.any(idx >= arr.shape):
        return -1
    return int(arr[tuple(idx)])


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    """The default demo-sized study (4 scans, 2 lesions), timed."""
    t0 = time.perf_counter()
    path = make_study(tmp_path_factory.mktemp("phantom") / "P001")
    _TIMES["default"] = time.perf_counter() - t0
    return path


def test_default_study_is_fast(study):
    # the demo budget is < 10 s on an idle machine; leave room for a loaded shared CI box
    assert _TIMES["default"] < 30.0, _TIMES


def test_manifest_format(study):
    doc = json.loads(study.read_text())
    assert set(doc) == {"patient_id", "scans", "lesions"}
    assert doc["patient_id"] == "P001"
    assert [s["id"] for s in doc["scans"]] == ["T0", "T1", "T2", "T3"]
    dates = [s["date"] for s in doc["scans"]]
    assert dates == sorted(dates) and len(set(dates)) == 4
    for s in doc["scans"]:
        assert set(s) == {"id", "image", "date", "label"}
        assert not Path(s["image"]).is_absolute()
        assert (study.parent / s["image"]).exists() and (study.parent / s["label"]).exists()
    assert [les["id"] for les in doc["lesions"]] == ["L1", "L2"]
    for les in doc["lesions"]:
        assert set(les) == {"id", "scan", "point_ras", "truth_label"}
        assert les["scan"] == "T0" and len(les["point_ras"]) == 3


def test_scans_and_labels_share_grids(study):
    doc = json.loads(study.read_text())
    spacings = set()
    for s in doc["scans"]:
        img, lab = _read(study, s["image"]), _read(study, s["label"])
        assert same_grid(img, lab)
        assert img.GetPixelID() == sitk.sitkInt16 and lab.GetPixelID() == sitk.sitkUInt16
        assert 1.25 <= img.GetSpacing()[2] <= 3.0
        spacings.add(round(img.GetSpacing()[2], 2))
        arr = sitk.GetArrayViewFromImage(img)
        assert arr.min() >= -1024 and np.median(arr) < -500  # air + lungs dominate
    assert len(spacings) >= 2  # slice thickness varies over time


def test_lesion_volumes_follow_growth(study):
    truth = json.loads((study.parent / "truth.json").read_text())
    doc = json.loads(study.read_text())
    vanished = 0
    for les in truth["lesions"]:
        for t, s in enumerate(doc["scans"]):
            lab = _read(study, s["label"])
            vol = float((sitk.GetArrayViewFromImage(lab) == les["truth_label"]).sum()) \
                * voxel_volume_ml(lab)
            factor = les["volume_factor"][t]
            if factor == 0:
                vanished += 1
                assert vol == 0.0 and not les["present"][t]
                continue
            assert vol == pytest.approx(les["truth_volume_ml"][t], abs=1e-3)
            # exact truth: reference volume / Jacobian of the pull map at the lesion centre
            assert vol == pytest.approx(les["expected_volume_ml"][t], rel=0.15)
            # nominal growth, up to the smooth warp's local compression and voxelisation
            assert vol / les["reference_volume_ml"] == pytest.approx(factor, rel=0.35)
            assert _value_at(lab, les["centre_lps"][t]) == les["truth_label"]
    grow = truth["lesions"][0]["truth_volume_ml"]
    assert grow[-1] > 1.5 * grow[0]  # lesion 1 grows, lesion 2 shrinks then vanishes
    assert vanished == 1


def test_prompt_point_inside_lesion(study):
    doc = json.loads(study.read_text())
    scans = {s["id"]: s for s in doc["scans"]}
    for les in doc["lesions"]:
        lab = _read(study, scans[les["scan"]]["label"])
        p_lps = ras_to_lps(np.array(les["point_ras"])[None])[0]
        assert _value_at(lab, p_lps) == les["truth_label"]


def test_landmarks_follow_the_anatomy(study):
    """The truth points given per scan sit on the same tissue in every written image."""
    truth = json.loads((study.parent / "truth.json").read_text())
    doc = json.loads(study.read_text())
    samples = []
    for t, s in enumerate(doc["scans"]):
        img = _read(study, s["image"])
        arr = ndimage.uniform_filter(sitk.GetArrayFromImage(img).astype(np.float32), 3)
        pts = np.array(truth["scans"][t]["landmarks_lps"], dtype=float)
        idx = physical_to_continuous_index_zyx(img, pts)
        samples.append(ndimage.map_coordinates(arr, idx.T, order=1))
    samples = np.array(samples)
    assert samples.shape[1] >= 10
    for t in range(1, len(samples)):
        assert np.corrcoef(samples[0], samples[t])[0, 1] > 0.95
        assert np.mean(np.abs(samples[t] - samples[0])) < 40.0
        # a point off by one landmark would not match
        assert np.corrcoef(samples[0], np.roll(samples[t], 1))[0, 1] < 0.8


def test_mask_prompt_on_a_later_scan(tmp_path):
    m = make_study(tmp_path / "s", n_scans=3, n_lesions=2, seed=3, prompt_scan="T2",
                   prompt_kind="mask", **SMALL)
    doc = json.loads(m.read_text())
    for les in doc["lesions"]:
        assert les["scan"] == "T2" and "point_ras" not in les
        mask = _read(m, les["mask"])
        lab = _read(m, doc["scans"][2]["label"])
        assert same_grid(mask, lab)
        want = sitk.GetArrayViewFromImage(lab) == les["truth_label"]
        got = sitk.GetArrayViewFromImage(mask) > 0
        assert got.any() and np.array_equal(got, want)
    # no lesion may vanish on the prompt scan (the last one here)
    truth = json.loads((m.parent / "truth.json").read_text())
    assert all(les["present"][2] for les in truth["lesions"])


def test_deterministic_with_seed(tmp_path):
    a = make_study(tmp_path / "a", n_scans=2, seed=7, **SMALL)
    b = make_study(tmp_path / "b", n_scans=2, seed=7, **SMALL)
    c = make_study(tmp_path / "c", n_scans=2, seed=8, **SMALL)
    assert a.read_text() == b.read_text()
    assert (a.parent / "truth.json").read_text() == (b.parent / "truth.json").read_text()
    for rel in ("scans/T1.nii.gz", "truth/T1.nii.gz"):
        assert np.array_equal(sitk.GetArrayFromImage(_read(a, rel)),
                              sitk.GetArrayFromImage(_read(b, rel)))
    assert a.read_text() != c.read_text()


def test_inplane_spacing_jitter_keeps_truth(tmp_path):
    m = make_study(tmp_path / "j", n_scans=2, n_lesions=1, seed=5, inplane_jitter=0.15, **SMALL)
    doc = json.loads(m.read_text())
    truth = json.loads((m.parent / "truth.json").read_text())
    sx = set()
    for t, s in enumerate(doc["scans"]):
        img, lab = _read(m, s["image"]), _read(m, s["label"])
        assert same_grid(img, lab)
        sx.add(round(img.GetSpacing()[0], 4))
        extent = (img.GetSize()[0] - 1) * img.GetSpacing()[0]
        assert extent == pytest.approx(95 * 2.5, abs=img.GetSpacing()[0])  # same field of view
        les = truth["lesions"][0]
        assert les["truth_volume_ml"][t] == pytest.approx(les["expected_volume_ml"][t], rel=0.15)
        assert _value_at(lab, les["centre_lps"][t]) == 1
    assert len(sx) == 2


def test_bad_inputs_raise_input_error(tmp_path):
    with pytest.raises(InputError):
        make_study(tmp_path / "x", prompt_scan="T9", **SMALL)
    with pytest.raises(InputError):
        make_study(tmp_path / "y", prompt_kind="box", **SMALL)


# ---------------------------------------------------------------- transforms


def _sphere_label(radius_mm: float, centre=(4.0, -3.0, 2.0)) -> sitk.Image:
    ref = sitk.Image(96, 96, 64, sitk.sitkUInt16)
    ref.SetSpacing((1.0, 1.0, 1.5))
    ref.SetOrigin((-48.0, -48.0, -48.0))
    zyx = np.argwhere(np.ones((64, 96, 96), bool))
    pts = index_zyx_to_physical(ref, zyx)
    inside = np.linalg.norm(pts - np.array(centre), axis=1) <= radius_mm
    lab = sitk.GetImageFromArray(inside.reshape(64, 96, 96).astype(np.uint16))
    lab.CopyInformation(ref)
    return lab


def test_compose_applies_in_the_given_order():
    shift = sitk.TranslationTransform(3, (1.0, 0.0, 0.0))
    scale = sitk.ScaleTransform(3, (2.0, 2.0, 2.0))
    assert pull_points(compose(shift, scale), [[1.0, 1.0, 1.0]])[0] == pytest.approx([4, 2, 2])
    assert pull_points(compose(scale, shift), [[1.0, 1.0, 1.0]])[0] == pytest.approx([3, 2, 2])


@pytest.mark.parametrize("scale", [0.7, 1.3])
def test_growth_warp_scales_volume_by_cube(scale):
    centre = np.array([4.0, -3.0, 2.0])
    lab = _sphere_label(10.0, centre)
    warp = growth_warp(centre, 10.5, scale)
    out = resample_label(lab, warp, regrid(lab, (1.0, 1.0, 1.5)))
    ratio = sitk.GetArrayViewFromImage(out).sum() / sitk.GetArrayViewFromImage(lab).sum()
    assert ratio == pytest.approx(scale**3, rel=0.06)
    assert jacobian_determinant(warp, centre[None])[0] == pytest.approx(scale**-3, rel=1e-3)
    far = np.array([[40.0, 40.0, 40.0]])
    assert pull_points(warp, far) == pytest.approx(far)  # identity away from the lesion


def test_push_inverts_pull_and_local_label_resampling_is_exact():
    rng = np.random.default_rng(2)
    lab = _sphere_label(9.0)
    m = compose(random_pose(rng, (0, 0, 0), 5.0, 6.0), random_smooth_field(rng, lab, 3.0),
                growth_warp((4.0, -3.0, 2.0), 9.5, 1.2))
    pts = rng.uniform(-30, 30, (10, 3))
    assert pull_points(m, push_points(m, pts)) == pytest.approx(pts, abs=1e-3)
    grid = regrid(lab, (1.0, 1.0, 2.5))
    full = sitk.Resample(lab, grid, m, sitk.sitkNearestNeighbor, 0, sitk.sitkUInt16)
    assert np.array_equal(sitk.GetArrayViewFromImage(resample_label(lab, m, grid)),
                          sitk.GetArrayViewFromImage(full))
    smooth = sitk.GetArrayViewFromImage(resample_label(lab, m, grid, smooth=True)) > 0
    near = sitk.GetArrayViewFromImage(full) > 0
    assert 2 * (smooth & near).sum() / (smooth.sum() + near.sum()) > 0.9


# ---------------------------------------------------------------- from one CT


def _toy_ct(folder: Path, direction=(1, 0, 0, 0, 1, 0, 0, 0, 1)) -> tuple[Path, Path]:
    """A small chest-like CT (body, lung, vessel-free) with two blobs in the mask."""
    shape = (40, 96, 96)
    z, y, x = np.mgrid[: shape[0], : shape[1], : shape[2]].astype(np.float32)
    body = ((x - 48) / 44) ** 2 + ((y - 48) / 34) ** 2 <= 1
    lung = ((x - 48) / 34) ** 2 + ((y - 46) / 24) ** 2 <= 1
    rng = np.random.default_rng(0)
    ct = np.where(body, np.where(lung, -850.0, 40.0), -1000.0) + rng.normal(0, 15, shape)
    blob1 = (x - 35) ** 2 + (y - 45) ** 2 + ((z - 20) * 1.6) ** 2 <= 8**2
    blob2 = (x - 64) ** 2 + (y - 52) ** 2 + ((z - 18) * 1.6) ** 2 <= 5**2
    ct[blob1 | blob2] = 30.0
    paths = []
    for arr, name, dtype in ((ct, "ct.nii.gz", np.int16), (blob1 | blob2, "mask.nii.gz", np.uint8)):
        img = sitk.GetImageFromArray(arr.astype(dtype))
        img.SetSpacing((1.25, 1.25, 2.0))
        img.SetOrigin((-60.0, -60.0, -200.0))
        img.SetDirection([float(v) for v in direction])
        sitk.WriteImage(img, str(folder / name))
        paths.append(folder / name)
    return paths[0], paths[1]


@pytest.mark.parametrize("direction", [(1, 0, 0, 0, 1, 0, 0, 0, 1), (-1, 0, 0, 0, -1, 0, 0, 0, 1)],
                         ids=["lps", "ras-stored"])
def test_from_ct_on_a_toy_ct(tmp_path, direction):
    ct_path, mask_path = _toy_ct(tmp_path, direction)
    growth = [[1.0, 1.5, 0.6], [1.0, 0.7, 0.0]]
    m = make_study_from_ct(ct_path, mask_path, tmp_path / "study", n_scans=3, seed=1,
                           growth=growth, lesions="all", min_lesion_ml=0.05)
    doc = json.loads(m.read_text())
    truth = json.loads((m.parent / "truth.json").read_text())
    assert [les["truth_label"] for les in doc["lesions"]] == [1, 2]
    t0 = _read(m, doc["scans"][0]["image"])
    orig = sitk.ReadImage(str(ct_path))
    assert np.array_equal(sitk.GetArrayViewFromImage(t0), sitk.GetArrayViewFromImage(orig))
    assert same_grid(t0, orig)
    for t, s in enumerate(doc["scans"]):
        img, lab = _read(m, s["image"]), _read(m, s["label"])
        assert same_grid(img, lab)
        assert img.GetDirection() == pytest.approx(orig.GetDirection())
        if t:
            assert img.GetSpacing()[2] != pytest.approx(2.0)  # new slice spacing
        for k, les in enumerate(truth["lesions"]):
            vol = float((sitk.GetArrayViewFromImage(lab) == les["truth_label"]).sum()) \
                * voxel_volume_ml(lab)
            if growth[k][t] == 0:
                assert vol == 0.0
                # the erased lesion is lung again at its (moved) location
                hu = sitk.GetArrayViewFromImage(img)
                idx = np.rint(physical_to_continuous_index_zyx(img, np.array(
                    les["centre_lps"][t])[None])[0]).astype(int)
                assert hu[tuple(idx)] < -600
            else:
                assert vol / les["reference_volume_ml"] == pytest.approx(growth[k][t], rel=0.3)
                assert _value_at(lab, les["centre_lps"][t]) == les["truth_label"]
    for les in doc["lesions"]:
        p_lps = ras_to_lps(np.array(les["point_ras"])[None])[0]
        assert _value_at(_read(m, doc["scans"][0]["label"]), p_lps) == les["truth_label"]


def test_from_ct_rejects_bad_growth(tmp_path):
    ct_path, mask_path = _toy_ct(tmp_path)
    with pytest.raises(InputError):
        make_study_from_ct(ct_path, mask_path, tmp_path / "s", n_scans=3, growth=[1.0, 2.0])


@pytest.mark.lidc
@pytest.mark.slow
def test_from_ct_on_lidc(tmp_path, lidc_dir):
    """Real anatomy and a real nodule (consensus of 2 readers), on a 256x256 in-plane crop
    around it to keep the test short (the full 512x512 run is the benchmark's job)."""
    base = lidc_dir / "LIDC-IDRI-0001"
    ct = sitk.ReadImage(f"{base}_ct.nii.gz")
    mask = sitk.ReadImage(f"{base}_consensus2.nii.gz")
    zyx = np.argwhere(sitk.GetArrayViewFromImage(mask) > 0).mean(axis=0).astype(int)
    x0 = int(np.clip(zyx[2] - 128, 0, 256))
    y0 = int(np.clip(zyx[1] - 128, 0, 256))
    paths = []
    for img, name in ((ct, "ct.nii.gz"), (mask, "mask.nii.gz")):
        sitk.WriteImage(img[x0:x0 + 256, y0:y0 + 256, :], str(tmp_path / name))
        paths.append(tmp_path / name)
    m = make_study_from_ct(paths[0], paths[1], tmp_path / "lidc", n_scans=2, seed=0,
                           growth=[1.0, 1.6])
    doc = json.loads(m.read_text())
    truth = json.loads((m.parent / "truth.json").read_text())
    img, lab = _read(m, doc["scans"][1]["image"]), _read(m, doc["scans"][1]["label"])
    assert img.GetSize()[:2] == (256, 256) and same_grid(img, lab)
    assert img.GetSpacing()[2] != pytest.approx(2.5)
    les = truth["lesions"][0]
    assert len(truth["lesions"]) == 1  # the two 1-voxel specks are below min_lesion_ml
    assert les["reference_volume_ml"] == pytest.approx(7.76, rel=0.02)
    assert les["truth_volume_ml"][1] / les["reference_volume_ml"] == pytest.approx(1.6, rel=0.25)
    assert _value_at(lab, les["centre_lps"][1]) == 1
    p_lps = ras_to_lps(np.array(doc["lesions"][0]["point_ras"])[None])[0]
    assert _value_at(_read(m, doc["scans"][0]["label"]), p_lps) == 1
