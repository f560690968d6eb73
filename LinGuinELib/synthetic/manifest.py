"""Turn a reference volume + lesions into a written longitudinal study with known truth.

Layout of a study folder (all paths in the manifest relative to it)::

    study.json            the manifest the rest of LinGuinE reads (format below)
    truth.json            evaluation-only truth: per-scan lesion centres, volumes, landmarks, poses
    scans/T0.nii.gz ...   int16 HU images, each on its own grid
    truth/T0.nii.gz ...   uint16 labelmaps on the same grid as the scan (value = truth_label)
    masks/L1.nii.gz       prompt masks (prompt_kind="mask"), on the prompt scan's grid

``study.json``: {"patient_id", "scans": [{"id", "image", "date", "label"}],
"lesions": [{"id", "scan", "point_ras" | "mask", "truth_label"}]}; points are Slicer RAS mm.

``truth.json`` (benchmarks): per lesion ``centre_lps`` / ``centre_ras`` on every scan (the
reference centre pushed through that scan's transform; given even where the lesion has vanished,
see ``present``), ``volume_factor`` (requested), ``expected_volume_ml`` (reference volume divided
by the pull map's Jacobian at the centre), ``truth_volume_ml`` (voxels of the written label);
per scan the slice spacing, noise, pose and ``landmarks_lps``: the same reference landmarks on
that scan (None when outside it). Registration error = distance between mapped and true points.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from ..errors import InputError
from ..geometry import (
    index_zyx_to_physical,
    inside_image,
    lps_to_ras,
    physical_to_continuous_index_zyx,
    voxel_volume_ml,
)
from ..voxels import voxel_copy, voxels
from . import deform

log = logging.getLogger(__name__)

SLICE_SPACINGS_MM = (1.25, 1.5, 2.0, 2.5, 3.0)
FIRST_DATE = dt.date(2023, 1, 9)


@dataclass
class SynthLesion:
    """A lesion of the reference volume, as an occupancy (0-1) in an index box (z, y, x slices).

    ``hu`` (box-shaped) is blended in where the lesion is present (phantom: the reference has no
    lesions); ``background`` is blended in where it has vanished (real CT: the lesion is already
    in the reference). ``volume_factors``: per scan, lesion volume / reference volume; 0 = gone.
    """

    id: str
    truth_label: int
    box: tuple[slice, slice, slice]
    occupancy: np.ndarray
    volume_factors: np.ndarray
    hu: np.ndarray | None = None
    background: np.ndarray | None = None
    erase: np.ndarray | None = None  # weights for ``background`` (default: occupancy)
    kind: str = ""
    kind_detail: dict | None = None  # descriptor to group results by (size class, attachment...)


def write_manifest(path: Path, patient_id: str, scans: list[dict], lesions: list[dict]) -> Path:
    """Validate and write ``study.json``; file entries must already be relative to its folder."""
    ids = [s.get("id") for s in scans]
    if not scans or len(set(ids)) != len(ids):
        raise InputError(f"{path}: scans must be a non-empty list with unique ids")
    for s in scans:
        if not {"id", "image"} <= s.keys():
            raise InputError(f"{path}: every scan needs 'id' and 'image'")
    for les in lesions:
        if les.get("scan") not in ids:
            raise InputError(f"{path}: lesion {les.get('id')} refers to unknown scan {les.get('scan')}")
        if "point_ras" not in les and "mask" not in les:
            raise InputError(f"{path}: lesion {les.get('id')} needs 'point_ras' or 'mask'")
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"patient_id": patient_id, "scans": scans, "lesions": lesions}
    path.write_text(json.dumps(doc, indent=1))
    return path


def prompt_index_of(prompt_scan: str | int, scan_ids: list[str]) -> int:
    """Index of the prompt scan given as a scan id ("T2") or an index (2, -1, "2")."""
    if isinstance(prompt_scan, str) and not prompt_scan.lstrip("-").isdigit():
        if prompt_scan not in scan_ids:
            raise InputError(f"prompt_scan: unknown scan id {prompt_scan!r}")
        return scan_ids.index(prompt_scan)
    i = int(prompt_scan)
    if not -len(scan_ids) <= i < len(scan_ids):
        raise InputError(f"prompt_scan: index {i} out of range for {len(scan_ids)} scans")
    return i % len(scan_ids)


def lesion_centre_zyx(mask_zyx: np.ndarray, spacing_zyx) -> np.ndarray:
    """Index (z, y, x) of the mask voxel deepest inside it (largest distance to the outside, mm)."""
    padded = np.pad(mask_zyx.astype(bool), 1)
    edt = ndimage.distance_transform_edt(padded, sampling=spacing_zyx)[1:-1, 1:-1, 1:-1]
    return np.array(np.unravel_index(int(np.argmax(edt)), mask_zyx.shape), dtype=float)


def _reference_at(ref: np.ndarray, lesions: list[SynthLesion], t: int):
    """Modify ``ref`` in place for scan t; return the label array and an undo list."""
    label = np.zeros(ref.shape, np.uint16)
    undo = []
    for les in lesions:
        present = les.volume_factors[t] > 0
        blend = les.hu if present else les.background
        weight = les.occupancy if present or les.erase is None else les.erase
        if blend is not None:
            undo.append((les.box, ref[les.box].copy()))
            ref[les.box] = ref[les.box] * (1 - weight) + blend * weight
        if present:
            sub = label[les.box]
            sub[les.occupancy >= 0.5] = les.truth_label
    return label, undo


def _landmarks(ref_img: sitk.Image, arr: np.ndarray, rng, n: int = 24) -> np.ndarray:
    """Random body points (HU -950..400) away from the grid border: registration truth."""
    step = 4
    sub = arr[::step, ::step, ::step]
    margin = np.ceil(25.0 / (np.array(ref_img.GetSpacing())[::-1] * step)).astype(int)
    ok = (sub > -950) & (sub < 400)
    inner = np.zeros_like(ok)
    sl = tuple(slice(m, max(s - m, m)) for m, s in zip(margin, sub.shape, strict=True))
    inner[sl] = True
    cand = np.argwhere(ok & inner)
    if len(cand) == 0:
        return np.zeros((0, 3))
    pick = cand[rng.choice(len(cand), size=min(n, len(cand)), replace=False)] * step
    return index_zyx_to_physical(ref_img, pick)


def _save(img: sitk.Image, path: Path) -> str:
    """Write NIfTI; .nii.gz through gzip level 1 (ITK's writer uses level 6: ~1.5x slower for
    ~5% smaller CT files)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.name.endswith(".nii.gz"):
        sitk.WriteImage(img, str(path), True)
        return path.as_posix()
    raw = path.with_name(path.name[: -len(".gz")] + ".tmp.nii")
    try:
        sitk.WriteImage(img, str(raw), False)
        with open(raw, "rb") as src, gzip.open(path, "wb", compresslevel=1) as dst:
            shutil.copyfileobj(src, dst, 1 << 22)
    finally:
        raw.unlink(missing_ok=True)
    return path.as_posix()


def synthesize_study(
    out_dir: Path,
    reference: sitk.Image,
    lesions: list[SynthLesion],
    scan_ids: list[str],
    rng: np.random.Generator,
    prompt_index: int = 0,
    prompt_kind: str = "point",
    patient_id: str = "P001",
    generator: str = "",
    seed: int = 0,
    deform_mm: float = 2.0,
    max_rotation_deg: float = 4.0,
    max_translation_mm: float = 8.0,
    noise_sd: tuple[float, float] = (8.0, 20.0),
    identity_first: bool = False,
    first_image_file: Path | None = None,
    inplane_jitter: float = 0.0,
    slice_spacings_mm: tuple[float, ...] = SLICE_SPACINGS_MM,
    slice_profile: str = "gaussian",
    noise_corr_mm: float = 0.0,
    psf_mm: float = 0.0,
) -> Path:
    """Write every scan (pose + smooth warp + growth warps + slice spacing + noise), the truth
    labels through the same pull maps, the prompt and ``truth.json``; return the manifest path.

    With ``identity_first`` scan 0 is the reference itself (no warp, no noise); its file is
    copied from ``first_image_file`` when given (a real CT stays byte-identical).
    ``inplane_jitter`` > 0 also varies the pixel spacing (x ``1 +- jitter``, same field of view),
    as reconstructions of follow-up scans often do.
    Each generated scan's slice spacing is drawn from ``slice_spacings_mm``; its slice profile is
    a Gaussian of that FWHM (``"gaussian"``) or the average over the slice (``"box"``, for a fine
    reference: partial volume as a scanner integrates it). ``psf_mm`` blurs in-plane (Gaussian
    sigma) and ``noise_corr_mm`` correlates the noise in-plane, as reconstruction kernels do.
    """
    if slice_profile not in ("gaussian", "box"):
        raise InputError(f"slice_profile must be 'gaussian' or 'box', not {slice_profile!r}")
    if prompt_kind not in ("point", "mask"):
        raise InputError(f"prompt_kind must be 'point' or 'mask', not {prompt_kind!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ref_arr = voxels(reference).astype(np.float32)
    sp_zyx = np.array(reference.GetSpacing())[::-1]
    centres, radii, ref_vol = [], [], []
    for les in lesions:
        inside = les.occupancy >= 0.5
        if not inside.any():
            raise InputError(f"lesion {les.id}: empty after rendering (too small for the grid)")
        c = lesion_centre_zyx(inside, sp_zyx)  # in the box
        pts = np.argwhere(inside)
        radii.append(float(np.max(np.linalg.norm((pts - c) * sp_zyx, axis=1)) + 0.5 * sp_zyx.max()))
        c_full = c + [s.start for s in les.box]
        centres.append(index_zyx_to_physical(reference, c_full[None])[0])
        ref_vol.append(float(inside.sum()) * voxel_volume_ml(reference))
        if les.volume_factors[prompt_index] <= 0:
            raise InputError(f"lesion {les.id}: absent on the prompt scan {scan_ids[prompt_index]}")
    centres_a = np.array(centres)
    landmarks = _landmarks(reference, ref_arr, rng)
    ref_centre = index_zyx_to_physical(reference, (np.array(ref_arr.shape) - 1)[None] / 2)[0]
    date = FIRST_DATE
    scans_doc, truth_scans = [], []
    les_truth = [{"id": les.id, "truth_label": les.truth_label, "kind": les.kind,
                  **({"kind_detail": les.kind_detail} if les.kind_detail else {}),
                  "reference_centre_lps": centres_a[i].round(3).tolist(),
                  "reference_volume_ml": round(ref_vol[i], 4),
                  "volume_factor": [float(f) for f in les.volume_factors], "present": [],
                  "centre_lps": [],
                  "centre_ras": [], "expected_volume_ml": [], "truth_volume_ml": []}
                 for i, les in enumerate(lesions)]
    prompt_label = reference
    for t, sid in enumerate(scan_ids):
        if t:
            date = date + dt.timedelta(weeks=int(rng.integers(6, 16)))
        label_arr, undo = _reference_at(ref_arr, lesions, t)
        label_ref = sitk.GetImageFromArray(label_arr)
        label_ref.CopyInformation(reference)
        info: dict = {"id": sid, "date": date.isoformat()}
        if identity_first and t == 0:
            transform = sitk.Transform()
            grid = reference
            if (first_image_file is not None and str(first_image_file).endswith(".nii.gz")
                    and not undo):
                (out_dir / "scans").mkdir(parents=True, exist_ok=True)
                shutil.copyfile(first_image_file, out_dir / "scans" / f"{sid}.nii.gz")
            else:
                img = sitk.GetImageFromArray(np.clip(np.rint(ref_arr), -1024, 3071).astype(np.int16))
                img.CopyInformation(reference)
                _save(img, out_dir / "scans" / f"{sid}.nii.gz")
            label = label_ref
            info.update(identity=True, slice_spacing_mm=float(reference.GetSpacing()[2]),
                        noise_sd_hu=0.0)
        else:
            pose = deform.random_pose(rng, ref_centre, max_rotation_deg, max_translation_mm)
            smooth = deform.random_smooth_field(rng, reference, deform_mm) if deform_mm > 0 else None
            choices = [s for s in slice_spacings_mm if abs(s - reference.GetSpacing()[2]) > 0.01]
            sz = float(rng.choice(choices if identity_first and choices else slice_spacings_mm))
            inplane = np.array(reference.GetSpacing()[:2])
            if inplane_jitter > 0:
                inplane = inplane * rng.uniform(1 - inplane_jitter, 1 + inplane_jitter)
            grid = deform.regrid(reference, (*inplane, sz))
            base = deform.bake(deform.compose(pose, smooth), grid)
            growth = [deform.growth_warp(centres_a[i], radii[i], float(np.cbrt(les.volume_factors[t])))
                      for i, les in enumerate(lesions) if les.volume_factors[t] > 0]
            transform = deform.compose(base, *growth)
            sd = float(rng.uniform(*noise_sd))
            src = sitk.GetImageFromArray(ref_arr)
            src.CopyInformation(reference)
            thick = deform.slice_blur(src, sz) if slice_profile == "gaussian" else deform.slice_average(src, sz)
            img = deform.resample_image(thick, transform, grid)
            del src, thick
            arr = voxel_copy(img)
            del img
            if psf_mm > 0:
                arr = _inplane_blur(arr, psf_mm, grid.GetSpacing())
            arr += _noise(rng, arr.shape, sd, noise_corr_mm, grid.GetSpacing())
            np.rint(arr, out=arr)
            np.clip(arr, -1024, 3071, out=arr)
            out = sitk.GetImageFromArray(arr.astype(np.int16))
            out.CopyInformation(grid)
            del arr
            _save(out, out_dir / "scans" / f"{sid}.nii.gz")
            label = deform.resample_label(label_ref, transform, grid, smooth=True)
            info.update(identity=False, slice_spacing_mm=sz, noise_sd_hu=round(sd, 2),
                        pose_rotation_rad=[pose.GetAngleX(), pose.GetAngleY(), pose.GetAngleZ()],
                        pose_translation_mm=list(pose.GetTranslation()))
        for box, saved in undo:
            ref_arr[box] = saved
        _save(label, out_dir / "truth" / f"{sid}.nii.gz")
        if t == prompt_index:
            prompt_label = label
        lab_arr = voxels(label)
        counts = np.bincount(lab_arr.ravel(), minlength=max(les.truth_label for les in lesions) + 1)
        for i, les in enumerate(lesions):
            lt = les_truth[i]
            lt["truth_volume_ml"].append(round(float(counts[les.truth_label]) * voxel_volume_ml(label), 4))
            try:
                y = deform.push_points(transform, centres_a[i][None])
            except RuntimeError as exc:
                raise InputError(f"lesion {les.id}: carried out of scan {sid}'s field of view; "
                                 "try another seed or a smaller pose change") from exc
            lt["present"].append(bool(les.volume_factors[t] > 0))
            lt["centre_lps"].append(y[0].round(3).tolist())
            lt["centre_ras"].append(lps_to_ras(y)[0].round(3).tolist())
            jac = float(deform.jacobian_determinant(transform, y)[0])
            lt["expected_volume_ml"].append(round(ref_vol[i] / jac, 4) if lt["present"][-1] else 0.0)
        lm = deform.push_points(transform, landmarks, strict=False) if len(landmarks) \
            else np.zeros((0, 3))
        inside = np.isfinite(lm).all(axis=1)
        inside[inside] = inside_image(label, lm[inside])
        info["landmarks_lps"] = [p.round(3).tolist() if ok else None
                                 for p, ok in zip(lm, inside, strict=True)]
        truth_scans.append(info)
        scans_doc.append({"id": sid, "image": f"scans/{sid}.nii.gz", "date": date.isoformat(),
                          "label": f"truth/{sid}.nii.gz"})
        log.debug("scan %s written (slice %.2f mm)", sid, info["slice_spacing_mm"])

    lesions_doc = []
    for i, les in enumerate(lesions):
        entry: dict = {"id": les.id, "scan": scan_ids[prompt_index]}
        if prompt_kind == "mask":
            m = (voxels(prompt_label) == les.truth_label).astype(np.uint8)
            mimg = sitk.GetImageFromArray(m)
            mimg.CopyInformation(prompt_label)
            _save(mimg, out_dir / "masks" / f"{les.id}.nii.gz")
            entry["mask"] = f"masks/{les.id}.nii.gz"
        else:
            p = np.array(les_truth[i]["centre_lps"][prompt_index])
            p = _point_inside(prompt_label, p, les.truth_label)
            entry["point_ras"] = lps_to_ras(p[None])[0].round(3).tolist()
        entry["truth_label"] = les.truth_label
        lesions_doc.append(entry)

    truth = {"generator": generator, "seed": seed, "prompt_scan": scan_ids[prompt_index],
             "direction": "pull maps: scan point -> reference point; centres pushed by Newton",
             "reference_landmarks_lps": landmarks.round(3).tolist(),
             "scans": truth_scans, "lesions": les_truth}
    (out_dir / "truth.json").write_text(json.dumps(truth, indent=1))
    return write_manifest(out_dir / "study.json", patient_id, scans_doc, lesions_doc)


def _inplane_blur(arr: np.ndarray, sigma_mm: float, spacing_xyz) -> np.ndarray:
    """Gaussian blur within each slice (sigma in mm), float32."""
    sigma = (0.0, sigma_mm / spacing_xyz[1], sigma_mm / spacing_xyz[0])
    return ndimage.gaussian_filter(arr, sigma).astype(np.float32, copy=False)


def _noise(rng: np.random.Generator, shape, sd: float, corr_mm: float, spacing_xyz) -> np.ndarray:
    """Gaussian noise of standard deviation ``sd``, white or correlated in-plane over corr_mm."""
    noise = rng.standard_normal(shape, dtype=np.float32)
    if corr_mm > 0:
        noise = _inplane_blur(noise, corr_mm, spacing_xyz)
        noise /= noise.std() + 1e-6
    return noise * np.float32(sd)


def _point_inside(label: sitk.Image, p_lps: np.ndarray, value: int) -> np.ndarray:
    """The pushed centre if its voxel carries ``value``, else the deepest voxel of that label."""
    idx = np.rint(physical_to_continuous_index_zyx(label, p_lps[None])[0]).astype(int)
    arr = voxels(label)
    if np.all(idx >= 0) and np.all(idx < arr.shape) and arr[tuple(idx)] == value:
        return p_lps
    mask = arr == value
    if not mask.any():
        raise InputError(f"label {value}: empty on the prompt scan (lesion left the field of view)")
    log.warning("label %d: pushed centre falls outside the lesion; using its deepest voxel", value)
    c = lesion_centre_zyx(mask, np.array(label.GetSpacing())[::-1])
    return index_zyx_to_physical(label, c[None])[0]
