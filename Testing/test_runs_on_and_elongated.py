"""Flags a segment's own shape raises, whatever the other scans say.

``runs_on``: its outline, where it lies in the lung, runs on into tissue as dense as it. A nodule
on a vessel as thick as itself (held out, session 15: 2.1x on every scan, nothing flagged) is cut
out of the vessel over a third of its outline; one on a vessel 0.8 or a third as thick is not.
``elongated``: drawn out along one axis as a stretch of vessel taken in makes it (a ground-glass
nodule on a vessel on 5 mm slices at its click: 1.77x, unflagged, full kind plan seed 84)."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from LinGuinELib.propagation.result import MaskCrop
from LinGuinELib.quality import Reason, scan_checks
from LinGuinELib.quality.baseline import baseline_doubt
from LinGuinELib.quality.image_checks import ELONGATED, MAX_OPEN_IN_LUNG

LUNG_HU, TISSUE_HU = -850.0, 30.0


def _nodule_on_vessel(vessel_radius_mm: float, spacing_mm: float = 0.7) -> tuple[sitk.Image, np.ndarray, np.ndarray]:
    """A 9 mm solid ball in lung with a straight vessel through its centre along x; the ball alone,
    and the vessel alone."""
    n = int(round(40.0 / spacing_mm))
    zyx = (np.indices((n, n, n)) - (n - 1) / 2.0) * spacing_mm
    ball = (zyx**2).sum(axis=0) <= 4.5**2
    vessel = zyx[0] ** 2 + zyx[1] ** 2 <= vessel_radius_mm**2
    rng = np.random.default_rng(0)
    hu = np.where(ball | vessel, TISSUE_HU, LUNG_HU) + rng.normal(0.0, 20.0, ball.shape)
    image = sitk.GetImageFromArray(hu.astype(np.int16))
    image.SetSpacing((spacing_mm,) * 3)
    return image, ball, vessel & ~ball


@pytest.mark.parametrize("vessel_radius_mm, flagged", [(4.0, True), (3.5, False), (1.5, False), (0.0, False)])
def test_a_nodule_cut_from_a_vessel_as_thick_is_flagged(vessel_radius_mm, flagged):
    image, ball, _ = _nodule_on_vessel(vessel_radius_mm)
    signals, findings = scan_checks(image, MaskCrop.from_full(ball), is_prompt=True)
    assert (Reason.RUNS_ON in {f.reason for f in findings}) is flagged, signals["open_in_lung"]
    assert (signals["open_in_lung"] > MAX_OPEN_IN_LUNG) is flagged


@pytest.mark.parametrize("stretch_mm, flagged", [(0.0, False), (4.0, False), (8.0, False), (10.0, True)])
def test_a_nodule_with_a_stretch_of_its_vessel_taken_in_is_elongated(stretch_mm, flagged):
    """The ball with its 3 mm vessel taken in up to ``stretch_mm`` beyond its surface on each side:
    stubs of up to 8 mm leave it round enough (elongation 2.3); 10 mm (2.85) do not."""
    image, ball, vessel = _nodule_on_vessel(1.5)
    n = ball.shape[2]
    x = (np.arange(n) - (n - 1) / 2.0) * 0.7
    segment = ball | (vessel & (np.abs(x) <= 4.5 + stretch_mm)[None, None, :])
    signals, findings = scan_checks(image, MaskCrop.from_full(segment), is_prompt=True)
    assert (Reason.ELONGATED in {f.reason for f in findings}) is flagged, signals["elongation"]
    assert (signals["elongation"] >= ELONGATED) is flagged
    carried = baseline_doubt(findings)  # a baseline drawn out so reads every follow-up against a vessel
    assert (carried is not None and "elongated" in carried.detail) is flagged
