"""What the global stage derives from the source alone is computed once per scan, with the same result."""

from __future__ import annotations

import logging

import numpy as np
import SimpleITK as sitk
from test_registration_classical import _known_target, _phantom

from LinGuinELib.registration import classical_global as cg
from LinGuinELib.registration.classical import ClassicalRegistration


def test_a_given_source_side_gives_the_same_affine_as_one_computed_each_time() -> None:
    source = _phantom()
    target, _ = _known_target(source, (0.06, -0.08, 0.12), np.array([12.0, -18.0, 9.0]), 5.0,
                              (1.6, 1.6, 2.2), crop_z_mm=12.0)
    prepared = cg.prepare(source, target, 4.0)
    side = cg.source_side(source, *prepared[:2])
    alone = cg.global_affine(source, target, 4.0, prepared=prepared)
    shared = cg.global_affine(source, target, 4.0, prepared=prepared, side=side)
    assert alone.GetParameters() == shared.GetParameters() and alone.GetCenter() == shared.GetCenter()


def test_a_source_in_two_pairs_is_checked_and_masked_once(caplog) -> None:
    """The source's warnings come once, not once per pair; the target's come with each pair."""
    source = _phantom()
    padded = sitk.GetArrayFromImage(source)
    padded[:, :, :6] = -3024  # a strip outside the reconstruction circle
    src = sitk.GetImageFromArray(padded)
    src.CopyInformation(source)
    backend = ClassicalRegistration(refine=False)
    with caplog.at_level(logging.WARNING, logger="LinGuinELib.registration.classical_global"):
        backend.register(src, source)
        backend.register(src, source)
    assert caplog.text.count("source: ") == 1 and caplog.text.count("padding (-3024)") == 1, caplog.text


def test_valid_mask_marks_padding_only_where_there_is_some() -> None:
    for pixel in (sitk.sitkInt16, sitk.sitkFloat32):
        image = sitk.Image([8, 8, 8], pixel) - 1000
        assert cg.valid_mask(image, [2, 2, 2]) is None
        image[0, 0, 0] = -2048
        valid = sitk.GetArrayFromImage(cg.valid_mask(image, [2, 2, 2]))
        assert valid.shape == (4, 4, 4) and valid[0, 0, 0] == 0 and valid.sum() == 63
