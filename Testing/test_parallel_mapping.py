"""Points of one registered pair refine side by side, with the answers of a serial run; a lesion
that did not change is refined once.

The classical mapper used to hold one lock over each whole refinement, so the lesions of one
pair were refined one after the other however many workers the engine had. Each point now has
its own lock. A lesion's second placement (by its surroundings) is made only where its own
estimate is unsettled (``changing.unsettled``).
"""

from __future__ import annotations

import threading

import numpy as np
import SimpleITK as sitk
from test_registration_classical import _known_target, _phantom, _points_inside, counting_mapper

from LinGuinELib.registration.classical import ClassicalRegistration, LocalRefinementMapper


def _pair() -> tuple[sitk.Image, sitk.Image]:
    source = _phantom()
    target, _ = _known_target(source, (0.06, -0.08, 0.12), np.array([12.0, -18.0, 9.0]), 5.0,
                              (1.6, 1.6, 2.2), crop_z_mm=12.0)
    return source, target


def _ball(reference: sitk.Image, centre: np.ndarray, radius_mm: float) -> sitk.Image:
    zyx = np.stack(np.meshgrid(*[np.arange(n) for n in reference.GetSize()[::-1]], indexing="ij"), axis=-1)
    points = np.array([reference.TransformContinuousIndexToPhysicalPoint(tuple(map(float, v[::-1])))
                       for v in zyx.reshape(-1, 3)])
    inside = (np.linalg.norm(points - centre, axis=1) <= radius_mm).reshape(zyx.shape[:3])
    mask = sitk.GetImageFromArray(inside.astype(np.uint8))
    mask.CopyInformation(reference)
    return mask


def test_two_points_of_one_pair_refine_at_once() -> None:
    """The first point's refinement waits (up to 20 s) until the second one's has started: with one
    lock over every refinement the second could not start, and the wait runs out."""
    source, target = _pair()
    first, second = _points_inside(source)[:2]
    started = {"first": threading.Event(), "second": threading.Event()}
    overlapped: list[bool] = []

    class Probe(LocalRefinementMapper):
        def _refine(self, point, coarse, changing=None):
            if np.allclose(point, first):
                started["first"].set()
                overlapped.append(started["second"].wait(20.0))
            else:
                started["second"].set()
            return super()._refine(point, coarse, changing)

    plain = ClassicalRegistration().register(source, target)
    probe = Probe(source, target, plain.global_transform, lung_transform=plain.lung_transform)
    worker = threading.Thread(target=probe.map_points, args=(first,))
    worker.start()
    assert started["first"].wait(20.0)
    second_mapped = probe.map_points(second)
    worker.join()
    assert overlapped == [True]
    np.testing.assert_array_equal(probe.map_points(np.array([first, second])),
                                  plain.map_points(np.array([first, second])))
    np.testing.assert_array_equal(second_mapped, plain.map_points(second))


def test_a_settled_lesion_is_placed_by_its_own_estimate_alone() -> None:
    """A lesion that did not change (the target is the source moved by a known affine): its own
    estimate is vouched for and the small boxes leave it where the coarse box put it, so it is
    refined once, without the second estimate by its surroundings (``changing.unsettled``), and
    placed where the point alone maps, with the point's confidence."""
    source, target = _pair()
    centre = _points_inside(source)[0]
    plain, mapper, refined = counting_mapper(source, target)
    placed, confidence = mapper.map_lesion(centre, _ball(source, centre, 7.0))
    assert refined == [True] and confidence >= 0.5, (refined, confidence)
    np.testing.assert_array_equal(placed, plain.map_points(centre)[0])
    assert confidence == plain.confidence(centre)[0]
