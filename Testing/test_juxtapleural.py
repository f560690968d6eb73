"""A lesion on a chest wall thinner than the wall-finding ball, at the wall's density (the
phantom's lesion L2): the lung-envelope retry must keep the lesion. Before it, the region spread
along the wall and the segmenter returned an empty mask (Dice 0)."""

import SimpleITK as sitk

from LinGuinELib.segmentation.classical import ClassicalSegmenter
from LinGuinELib.study.manifest import load_manifest
from LinGuinELib.synthetic import make_study


def test_phantom_juxtapleural_lesion_is_segmented(tmp_path):
    study = load_manifest(make_study(tmp_path / "s", n_scans=2, seed=0))
    lesion = study.lesions[1]
    scan = study.scan(lesion.scan_id)
    image = sitk.ReadImage(str(scan.path))
    truth = sitk.GetArrayFromImage(sitk.ReadImage(str(scan.truth_path))) == lesion.truth_label
    mask = ClassicalSegmenter().segment(image, lesion.points_lps)
    dice = 2 * (mask & truth).sum() / (mask.sum() + truth.sum())
    assert dice > 0.75, dice
    assert mask.sum() < 2 * truth.sum()  # no wall
