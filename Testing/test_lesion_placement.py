"""A lesion placed by its surroundings (``registration.changing``) on a dense-field backend.

The uniGradICON family maps points through ``DisplacementFieldMapper``, built here from known
maps (no network: the mapper only reads the field). A field that moves the lesion with its
surroundings keeps the field's own answer, as the paper does; one that carries the lesion alone
elsewhere (what a network does when the lesion has gone and something else looks like it) is
overruled by its surroundings and reported with no confidence.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import SimpleITK as sitk

from LinGuinELib.registration.changing import DRIFT, SETTLED, Changing, around_from_shell, choose, unsettled
from LinGuinELib.registration.icon import DisplacementFieldMapper, GridGeometry, index_to_unit, unit_to_index

GRID = 40
SPACING = (2.0, 2.0, 2.5)
CENTRE = np.array([38.0, 42.0, 47.0])  # LPS mm, inside the 80 x 80 x 100 mm source box
RADIUS = 8.0


def image(spacing: tuple[float, float, float] = SPACING, origin=(0.0, 0.0, 0.0)) -> sitk.Image:
    img = sitk.Image([GRID, GRID, GRID], sitk.sitkUInt8)
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    return img


def field_mapper(move: Callable[[np.ndarray], np.ndarray], source: sitk.Image, target: sitk.Image
                 ) -> DisplacementFieldMapper:
    """A mapper whose field sends each source point p to ``move(p)`` (both LPS mm), written on the
    network grid with the module's own index <-> [0, 1] conversions."""
    src, tgt = GridGeometry.of(source), GridGeometry.of(target)
    grid = np.array([GRID] * 3, dtype=float)
    nodes = np.stack(np.meshgrid(*[np.arange(GRID)] * 3, indexing="ij"), axis=-1).reshape(-1, 3).astype(float)
    points = src.to_physical(unit_to_index(nodes / (grid - 1), src.size_zyx, grid))
    unit = index_to_unit(tgt.to_index_zyx(move(points)), tgt.size_zyx, grid)
    return DisplacementFieldMapper(unit.T.reshape(3, GRID, GRID, GRID), src, tgt)


def ball(reference: sitk.Image, centre: np.ndarray, radius: float) -> sitk.Image:
    zyx = np.stack(np.meshgrid(*[np.arange(n) for n in reference.GetSize()[::-1]], indexing="ij"), axis=-1)
    xyz = zyx[..., ::-1] * np.array(reference.GetSpacing()) + np.array(reference.GetOrigin())
    mask = sitk.GetImageFromArray((np.linalg.norm(xyz - centre, axis=-1) <= radius).astype(np.uint8))
    mask.CopyInformation(reference)
    return mask


SHIFT = np.array([3.0, -4.0, 5.0])


def shifted(points: np.ndarray) -> np.ndarray:
    return points + SHIFT


def pulled_away(points: np.ndarray) -> np.ndarray:
    """The shift, plus a smooth 20 mm pull in x confined to the lesion: the field has carried
    the lesion (and only it) onto something 20 mm away."""
    weight = np.exp(-0.5 * (np.linalg.norm(points - CENTRE, axis=1) / (0.5 * RADIUS)) ** 2)
    return points + SHIFT + 20.0 * weight[:, None] * np.array([1.0, 0.0, 0.0])


def grown(points: np.ndarray) -> np.ndarray:
    """The shift, plus the lesion growing: points near it pushed outwards (volume x1.7 at the centre)."""
    offset = points - CENTRE
    weight = np.exp(-0.5 * (np.linalg.norm(offset, axis=1) / RADIUS) ** 2)
    return points + SHIFT + 0.2 * weight[:, None] * offset


def test_a_field_that_moves_the_lesion_with_its_surroundings_keeps_its_own_answer() -> None:
    source, target = image(), image(origin=(-5.0, 3.0, 2.0))
    lesion = ball(source, CENTRE, RADIUS)
    for move in (shifted, grown):
        mapper = field_mapper(move, source, target)
        placed, confidence = mapper.map_lesion(CENTRE, lesion)
        np.testing.assert_allclose(placed, mapper.map_points(CENTRE)[0], atol=1e-9)
        assert np.linalg.norm(placed - move(CENTRE[None])[0]) < 0.3, (move.__name__, placed)
        assert confidence > 0.9, (move.__name__, confidence)


def test_a_field_that_carries_the_lesion_alone_elsewhere_is_overruled_by_its_surroundings() -> None:
    source, target = image(), image(origin=(-5.0, 3.0, 2.0))
    mapper = field_mapper(pulled_away, source, target)
    own = mapper.map_points(CENTRE)[0]
    assert np.linalg.norm(own - shifted(CENTRE[None])[0]) > 15.0  # the field alone: 20 mm off
    placed, confidence = mapper.map_lesion(CENTRE, ball(source, CENTRE, RADIUS))
    assert np.linalg.norm(placed - shifted(CENTRE[None])[0]) < 1.5, placed
    assert confidence == 0.0
    assert np.isnan(mapper.map_lesion(CENTRE)[1])  # no lesion given: the field alone, no vouching


def test_the_surroundings_ring_the_widened_lesion_on_every_side() -> None:
    source = image()
    changing = Changing.of(ball(source, CENTRE, RADIUS), CENTRE)
    shell = changing.shell()
    distance = np.linalg.norm(shell - CENTRE, axis=1)
    assert 8 <= len(shell) and distance.min() > RADIUS and distance.max() < changing.reach_mm + 3.0
    assert np.linalg.norm((shell - CENTRE).mean(axis=0)) < 1.0  # all around the centre, not one side
    np.testing.assert_allclose(around_from_shell(CENTRE, shell, shell * 1.1 + 2.0), CENTRE * 1.1 + 2.0)


def test_which_estimate_places_the_lesion() -> None:
    def pick(apart_radii: float, own_confidence: float, around_confidence: float) -> str:
        own, around = (np.zeros(3), own_confidence), (np.array([10.0 * apart_radii, 0, 0]), around_confidence)
        chosen, apart = choose(own, around, 10.0)
        assert apart == apart_radii
        return "own" if chosen is own else "around"

    assert pick(0.3, 0.2, 0.9) == "own"  # close enough to both be on the centre
    assert pick(0.6, 0.5, 0.9) == "around"  # parted: the better vouched
    assert pick(0.6, 0.9, 0.5) == "own"
    assert pick(0.6, np.nan, np.nan) == "own"  # a backend that cannot tell keeps its own
    assert pick(1.2, 0.9, 0.1) == "around"  # the lesion's own match is outside its place


def test_when_the_surroundings_estimate_is_made() -> None:
    """Only for an own estimate vouched for less than SETTLED (or not at all) or moved more than
    DRIFT radii by the smaller boxes: elsewhere ``choose`` keeps the own estimate anyway."""
    assert not unsettled(SETTLED, DRIFT * 10.0, 10.0)
    assert unsettled(SETTLED - 0.01, 0.0, 10.0)
    assert unsettled(np.nan, 0.0, 10.0)
    assert unsettled(1.0, DRIFT * 10.0 + 0.1, 10.0)
    assert not unsettled(1.0, DRIFT * 40.0, 40.0)  # the same mm on a larger lesion: within its tolerance
