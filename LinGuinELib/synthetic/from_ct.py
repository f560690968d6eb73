"""A longitudinal study built from ONE real CT and its lesion mask: the realistic benchmark.

Scan T0 is the original CT (file copied unchanged) with the mask's components as truth labels.
Every later scan is the same CT pulled through a new pose, a smooth warp and one radial growth
warp per lesion (see :mod:`.deform`), sampled at another slice spacing, with extra noise; a lesion
whose volume factor is 0 is erased (filled from the surrounding lung) before warping.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

import cc3d
import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from ..errors import InputError
from ..geometry import same_grid, voxel_volume_ml
from ..voxels import voxels
from .manifest import SLICE_SPACINGS_MM, SynthLesion, prompt_index_of, synthesize_study

log = logging.getLogger(__name__)

DEFAULT_GROWTH = (1.0, 1.4, 1.9, 0.7)


def _volume_factors(growth, n_lesions: int, n_scans: int) -> np.ndarray:
    """(n_lesions, n_scans) volume factors from one sequence (all lesions) or one per lesion."""
    if growth is None:
        seq = [DEFAULT_GROWTH[t % len(DEFAULT_GROWTH)] if t < len(DEFAULT_GROWTH)
               else DEFAULT_GROWTH[1 + (t - 1) % (len(DEFAULT_GROWTH) - 1)] for t in range(n_scans)]
        return np.tile(np.asarray(seq, float), (n_lesions, 1))
    arr = np.asarray(growth, dtype=float)
    if arr.ndim == 1:
        arr = np.tile(arr, (n_lesions, 1))
    if arr.shape != (n_lesions, n_scans):
        raise InputError(f"growth: expected {n_scans} volume factors per lesion "
                         f"({n_lesions} lesions), got shape {arr.shape}")
    if np.any(arr < 0) or not np.all(np.isfinite(arr)):
        raise InputError("growth: volume factors must be finite and >= 0 (0 = vanished)")
    return arr


def select_lesions(mask: np.ndarray, spacing_xyz: Sequence[float], mode: str = "largest",
                   min_volume_ml: float = 0.1) -> list[np.ndarray]:
    """Boolean (z, y, x) masks of the lesions: the largest 26-connected component, or every
    component of at least ``min_volume_ml`` (largest first)."""
    labels = cc3d.connected_components(np.ascontiguousarray(mask > 0).astype(np.uint8),
                                       connectivity=26)
    counts = np.bincount(labels.ravel())[1:]
    if len(counts) == 0:
        raise InputError("lesion mask: no foreground voxels")
    vox_ml = float(np.prod(spacing_xyz)) / 1000.0
    order = np.argsort(counts)[::-1]
    if mode == "largest":
        keep = order[:1]
    elif mode == "all":
        keep = [i for i in order if counts[i] * vox_ml >= min_volume_ml]
        if not keep:
            raise InputError(f"lesion mask: no component of at least {min_volume_ml} mL")
    else:
        raise InputError(f"lesions: 'largest' or 'all', not {mode!r}")
    return [labels == (i + 1) for i in keep]


def _lesion_record(k: int, lesion: np.ndarray, ct: np.ndarray, factors: np.ndarray,
                   rng: np.random.Generator) -> SynthLesion:
    """Box, occupancy and (when it must vanish) an erase fill sampled from nearby lung."""
    idx = np.argwhere(lesion)
    lo = np.maximum(idx.min(axis=0) - 6, 0)
    hi = np.minimum(idx.max(axis=0) + 7, lesion.shape)
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    sub = lesion[box]
    background = erase = None
    if np.any(factors == 0):
        erase_mask = ndimage.binary_dilation(sub, iterations=1)
        shell = ndimage.binary_dilation(sub, iterations=4) & ~erase_mask
        vals = ct[box][shell]
        lung = vals[vals < -400]
        pool = lung if lung.size >= 20 else vals
        med = float(np.median(pool)) if pool.size else -850.0
        # robust spread (vessels in the shell would inflate a plain std), as smooth-ish noise
        mad = float(np.median(np.abs(pool - med))) * 1.4826 if pool.size else 20.0
        noise = ndimage.gaussian_filter(rng.standard_normal(sub.shape), 0.8)
        noise /= noise.std() + 1e-6
        background = (med + min(mad, 40.0) * noise).astype(np.float32)
        erase = ndimage.gaussian_filter(erase_mask.astype(np.float32), 0.6)
        erase = np.maximum(erase, sub).astype(np.float32)
    return SynthLesion(id=f"L{k}", truth_label=k, box=box, occupancy=sub.astype(np.float32),
                       volume_factors=factors, background=background, erase=erase, kind="real")


def make_study_from_ct(
    ct_path: Path,
    lesion_mask_path: Path,
    out_dir: Path,
    n_scans: int = 4,
    seed: int = 0,
    growth: Sequence[float] | Sequence[Sequence[float]] | None = None,
    lesions: str = "largest",
    min_lesion_ml: float = 0.1,
    prompt_scan: str | int = 0,
    prompt_kind: str = "point",
    patient_id: str | None = None,
    deform_mm: float = 2.5,
    max_rotation_deg: float = 3.0,
    max_translation_mm: float = 8.0,
    noise_sd: tuple[float, float] = (4.0, 12.0),
    inplane_jitter: float = 0.0,
    slice_spacings_mm: Sequence[float] | None = None,
    kinds: Sequence[dict] | None = None,
) -> Path:
    """Write a longitudinal study made from one CT + lesion mask; return the manifest path.

    ``growth``: lesion volume / original volume per scan (first usually 1.0; 0 = vanished),
    one sequence for all lesions or one per lesion; default 1.0, 1.4, 1.9, 0.7, (1.4, 1.9, 0.7)...
    ``lesions``: "largest" component or "all" components >= ``min_lesion_ml``.
    ``inplane_jitter`` (e.g. 0.1) varies the pixel spacing of later scans (then not 512x512).
    ``slice_spacings_mm``: the later scans' slice spacings to draw from; by default 1.25-3 mm,
    or the CT's own when it is thicker than those (thin slices cannot be made from thick ones).
    ``kinds``: one descriptor per lesion (e.g. ``{"label": "30-60mm/chest_wall/solid", ...}``),
    written to ``truth.json`` as ``kind`` (its label) and ``kind_detail``; default "real".
    """
    t0 = time.perf_counter()
    ct_path, lesion_mask_path = Path(ct_path), Path(lesion_mask_path)
    for p, what in ((ct_path, "ct_path"), (lesion_mask_path, "lesion_mask_path")):
        if not p.exists():
            raise InputError(f"{what}: {p} does not exist")
    if n_scans < 1:
        raise InputError("n_scans must be >= 1")
    ct = sitk.ReadImage(str(ct_path), sitk.sitkFloat32)
    mask_img = sitk.ReadImage(str(lesion_mask_path))
    if not same_grid(ct, mask_img):
        raise InputError(f"lesion_mask_path: {lesion_mask_path.name} is not on the CT's grid")
    rng = np.random.default_rng(seed)
    comps = select_lesions(voxels(mask_img), ct.GetSpacing(), lesions,
                           min_lesion_ml)
    factors = _volume_factors(growth, len(comps), n_scans)
    scan_ids = [f"T{i}" for i in range(n_scans)]
    prompt_index = prompt_index_of(prompt_scan, scan_ids)
    ct_arr = voxels(ct)
    records = [_lesion_record(k, c, ct_arr, factors[k - 1], rng)
               for k, c in enumerate(comps, start=1)]
    if kinds is not None:
        if len(kinds) != len(records):
            raise InputError(f"kinds: one descriptor per lesion ({len(records)}), got {len(kinds)}")
        for rec, detail in zip(records, kinds, strict=True):
            rec.kind, rec.kind_detail = str(detail.get("label", "real")), dict(detail)
    if slice_spacings_mm is None:
        own = float(ct.GetSpacing()[2])
        slice_spacings_mm = SLICE_SPACINGS_MM if own <= max(SLICE_SPACINGS_MM) + 0.01 else (own,)
    log.info("from_ct: %d lesion(s), %s mL", len(records),
             [round(float(c.sum()) * voxel_volume_ml(ct), 3) for c in comps])
    del comps
    manifest = synthesize_study(
        out_dir, reference=ct, lesions=records, scan_ids=scan_ids, rng=rng,
        prompt_index=prompt_index, prompt_kind=prompt_kind,
        patient_id=patient_id or ct_path.name.split(".")[0].removesuffix("_ct"),
        generator=f"from_ct:{ct_path.name}", seed=seed, deform_mm=deform_mm,
        max_rotation_deg=max_rotation_deg, max_translation_mm=max_translation_mm,
        noise_sd=noise_sd, identity_first=True, first_image_file=ct_path,
        inplane_jitter=inplane_jitter, slice_spacings_mm=tuple(float(v) for v in slice_spacings_mm),
    )
    log.info("from_ct study %s: %d scans in %.1f s", manifest, n_scans, time.perf_counter() - t0)
    return manifest
