"""Deterministic backends and tiny studies for exact engine tests.

``ShiftRegistration`` knows the true motion between scans (a translation per scan, stored on
the image as metadata) and maps points through a real SimpleITK TranslationTransform.
``ThresholdSegmenter`` returns the connected bright region under the prompt. Both implement
the real backend interfaces, so the engine's loop, filtering and outputs are checked exactly.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from LinGuinELib.geometry import physical_to_continuous_index_zyx
from LinGuinELib.registration.base import Registration, TransformMapper
from LinGuinELib.registry import register_registration, register_segmentation
from LinGuinELib.segmentation.base import Segmenter

SHIFT_KEY = "test_shift_lps"


def _meta(image: sitk.Image, key: str, default: str) -> str:
    """A scan's metadata (written DICOM series carry none: no shift)."""
    return image.GetMetaData(key) if image.HasMetaDataKey(key) else default


@register_registration("test-shift")
class ShiftRegistration(Registration):
    calls: list[tuple[str, str]] = []

    def register(self, source: sitk.Image, target: sitk.Image) -> TransformMapper:
        s, t = (np.array(json.loads(_meta(image, SHIFT_KEY, "[0, 0, 0]"))) for image in (source, target))
        ShiftRegistration.calls.append((_meta(source, "id", ""), _meta(target, "id", "")))
        return TransformMapper(sitk.TranslationTransform(3, tuple(map(float, t - s))))


@register_segmentation("test-threshold")
class ThresholdSegmenter(Segmenter):
    def segment(self, image, positive_lps, negative_lps=None):
        arr = sitk.GetArrayViewFromImage(image)
        bright = arr > 0
        labels, _ = ndimage.label(bright)
        out = np.zeros(arr.shape, bool)
        for p in positive_lps:
            z, y, x = np.round(physical_to_continuous_index_zyx(image, p[None])[0]).astype(int)
            if 0 <= z < arr.shape[0] and 0 <= y < arr.shape[1] and 0 <= x < arr.shape[2] and labels[z, y, x]:
                out |= labels == labels[z, y, x]
        return out


def ball_scan(scan_id: str, shift_lps, radii_mm, centres_lps, spacing=(1.0, 1.0, 2.0),
              size=(40, 40, 20)) -> sitk.Image:
    """A scan with bright balls at centres (LPS, before the shift), everything moved by shift."""
    img = sitk.Image(size, sitk.sitkInt16)
    img.SetSpacing(spacing)
    img.SetOrigin((-20.0, -20.0, -20.0))
    zyx = np.indices(size[::-1]).reshape(3, -1).T
    from LinGuinELib.geometry import index_zyx_to_physical

    pts = index_zyx_to_physical(img, zyx)
    arr = np.full(len(pts), -800, np.int16)
    for r, c in zip(radii_mm, centres_lps):
        if r > 0:
            arr[np.linalg.norm(pts - (np.asarray(c) + shift_lps), axis=1) <= r] = 50
    # Two real scans never hold the same voxels (LinGuinE refuses the same image given twice): a
    # corner voxel per scan id, in the air far from any lesion, keeps two timepoints distinct.
    arr[0] = -801 - zlib.crc32(scan_id.encode()) % 97
    out = sitk.GetImageFromArray(arr.reshape(size[::-1]))
    out.CopyInformation(img)
    out.SetMetaData(SHIFT_KEY, json.dumps([float(v) for v in shift_lps]))
    out.SetMetaData("id", scan_id)
    return out


def write_ball_study(folder: Path, radii_per_scan, shifts, centres, prompt_scan=0, dates=None,
                     lesion_prompt="point") -> Path:
    """Write scans as .mha (keeps metadata) and a manifest; returns the manifest path."""
    folder.mkdir(parents=True, exist_ok=True)
    scans = []
    for k, (radii, shift) in enumerate(zip(radii_per_scan, shifts)):
        sid = f"T{k}"
        sitk.WriteImage(ball_scan(sid, np.array(shift, float), radii, centres), str(folder / f"{sid}.mha"))
        scans.append({"id": sid, "image": f"{sid}.mha",
                      "date": (dates[k] if dates else f"2024-0{k + 1}-01")})
    lesions = []
    for j, c in enumerate(centres):
        p = np.asarray(c, float) + np.asarray(shifts[prompt_scan], float)
        rec = {"id": f"L{j + 1}", "scan": f"T{prompt_scan}", "point_lps": p.tolist()}
        lesions.append(rec)
    manifest = folder / "study.json"
    manifest.write_text(json.dumps({"patient_id": "P1", "scans": scans, "lesions": lesions}))
    return manifest
