"""LungGradICON's lung mask: lungs joined to the trachea that leaves the top slice are kept,
juxta-pleural nodules included, the air around the patient and bowel gas left out; a scan with no
plausible lung is an error. On the shared LIDC CTs (skipped without them): both lungs, plausible
volume, the nodule kept."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from LinGuinELib.errors import InputError
from LinGuinELib.registration import icon
from LinGuinELib.registration.lung_mask import checked_lung_mask, lung_mask_zyx

SPACING = (2.0, 1.0, 1.0)  # z, y, x mm


def chest() -> dict[str, np.ndarray]:
    """(z, y, x) HU volume and its parts: lungs joined by a trachea reaching the top slice."""
    z, y, x = np.indices((50, 112, 128)).astype(float)
    hu = np.full(z.shape, -1000.0)  # air around the patient touches the in-plane borders
    body = ((x - 64) / 60) ** 2 + ((y - 56) / 45) ** 2 < 1
    hu[body] = 40.0
    lungs = np.zeros(z.shape, bool)
    for cx in (36, 92):
        lungs |= ((x - cx) / 22) ** 2 + ((y - 56) / 32) ** 2 + ((z - 22) / 18) ** 2 < 1
    trachea = ((x - 64) ** 2 + (y - 48) ** 2 < 16) & (z >= 10)
    bronchi = (np.abs(z - 10) < 2) & (np.abs(y - 48) < 3) & (x > 36) & (x < 92)
    hu[lungs | trachea | bronchi] = -850.0
    # a 12 mm nodule on the lateral wall of one lung: half in the lung, half in the wall
    nodule = (x - 14) ** 2 + (y - 56) ** 2 + ((z - 22) * 2) ** 2 < 36
    hu[nodule] = 30.0
    gas = (x - 64) ** 2 + (y - 80) ** 2 + ((z - 45) * 2) ** 2 < 16  # bowel gas, below the lungs
    hu[gas] = -950.0
    airways = trachea | bronchi
    return {"hu": hu, "lungs": lungs, "nodule": nodule & lungs, "body": body & ~lungs & ~airways,
            "outside": ~body, "gas": gas, "airways": airways}


def test_lungs_with_trachea_nodule_kept_outside_and_gas_dropped():
    c = chest()
    mask = lung_mask_zyx(c["hu"], SPACING)
    assert mask.shape == c["hu"].shape and mask.dtype == bool
    # The mask is drawn on a ~2 mm grid (the network's): judge it one coarse voxel inside.
    inside = ndimage.binary_erosion(c["lungs"], structure=np.ones((1, 5, 5)))
    assert mask[c["lungs"]].mean() > 0.95 and mask[inside].all()
    assert mask[c["nodule"] & inside].all()  # juxta-pleural: attached to the wall, no hole
    assert not mask[c["outside"]].any()
    assert not mask[c["gas"]].any()
    air_inside = c["lungs"] | c["airways"]
    far_body = c["body"] & (ndimage.distance_transform_edt(~air_inside, sampling=SPACING) > 15)
    assert not mask[far_body & ~c["gas"]].any()
    # The network input: lungs at their [-1000, 0] window value, everything else zero.
    out = icon.LungGradICON(weights="unused").intensities(c["hu"], SPACING)
    lung_core = ndimage.binary_erosion(c["lungs"], iterations=3)
    assert np.allclose(out[lung_core & (c["hu"] == -850.0)], 0.15)
    assert out[c["outside"]].max() == 0.0


def test_no_lung_is_an_error_naming_the_way_out():
    hu = chest()["hu"]
    hu[hu < -400] = np.where(chest()["outside"], -1000.0, 40.0)[hu < -400]  # lungs filled in
    assert not lung_mask_zyx(hu, SPACING)[~chest()["outside"]].any()
    with pytest.raises(InputError, match="0 mL of lung.*lung_mask=false"):
        checked_lung_mask(hu, SPACING, "registration backend 'lunggradicon'")
    with pytest.raises(InputError, match="lung_mask=false"):
        icon.LungGradICON(weights="unused").intensities(hu, SPACING)
    # lung_mask=false: the plain window, no error
    out = icon.LungGradICON(weights="unused", lung_mask=False).intensities(hu, SPACING)
    assert out.max() == 1.0


@pytest.mark.lidc
@pytest.mark.parametrize("patient", ["LIDC-IDRI-0001", "LIDC-IDRI-0002"])
def test_lidc_both_lungs_plausible_volume_nodule_kept(lidc_dir, patient):
    img = sitk.ReadImage(str(lidc_dir / f"{patient}_ct.nii.gz"))
    hu = sitk.GetArrayFromImage(img)
    truth = sitk.GetArrayFromImage(sitk.ReadImage(str(lidc_dir / f"{patient}_consensus2.nii.gz")))
    labels, _ = ndimage.label(truth > 0)
    nodule = labels == np.argmax(np.bincount(labels.ravel())[1:]) + 1
    spacing = img.GetSpacing()[::-1]
    mask = checked_lung_mask(hu, spacing, "test")
    ml = np.prod(spacing) / 1000.0
    # Measured 2026-11-30: 4.0 L and 5.5 L; 9.4% and 13.7% of the volume; nodule 99.6%, 95.6%.
    assert 3000 < mask.sum() * ml < 8000
    left, right = mask[:, :, : mask.shape[2] // 2], mask[:, :, mask.shape[2] // 2:]
    assert left.sum() * ml > 1500 and right.sum() * ml > 1500  # both lungs
    assert 0.05 < mask.mean() < 0.25
    assert mask[nodule].mean() > 0.9
    border = np.zeros(mask.shape, bool)
    border[:, [0, -1], :] = border[:, :, [0, -1]] = True
    assert not mask[border].any()
