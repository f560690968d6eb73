"""A lesion is the one thing in a scan expected to change: placing it by its surroundings.

A registration matches the lesion itself while it is there, but where it has shrunk a lot or
gone the match pulls its point onto whatever looks like it on the target (a mass onto the chest
wall, a nodule on the diaphragm into the dome). Each backend therefore makes a second estimate
of the lesion's centre from its surroundings alone, the lesion widened first by the radius that
doubling its volume adds (``GROWTH_MARGIN``):

- ``classical`` re-runs its local boxes with the widened lesion left out of their metric;
- a dense-field backend (the ``*gradicon`` ones) fits an affine to where the field sends a shell
  of points just outside the widened lesion and applies it to the centre.

``choose`` then keeps one of the two (rule below, one place for every backend). A backend whose
second estimate costs as much as the first (``classical``) makes it only where the lesion's own
estimate is ``unsettled``: elsewhere ``choose`` keeps the lesion's own anyway.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from ..filtering.components import dilate_mm
from ..geometry import equivalent_radius_mm, index_zyx_to_physical
from ..voxels import voxels

GROWTH_MARGIN = 2 ** (1 / 3) - 1  # a lesion is widened by the share of its radius that doubling its volume adds
PARTED = 0.5  # estimates this many lesion radii apart cannot both be on its centre
LEFT_ITS_PLACE = 1.0  # ... and this many: the lesion's own match is outside the lesion
SHELL_POINTS = 400  # at most this many surroundings points are mapped (a field maps them in one call)
SETTLED = 0.5  # an own estimate vouched for less (the quality flag's MIN_CONFIDENCE) is unsettled
DRIFT = 0.25  # ... and one the small boxes moved more radii than this (half the least seen where it mattered)


@dataclass(frozen=True)
class Changing:
    """A lesion on the source, widened (``GROWTH_MARGIN``): what the surroundings' estimate leaves out."""

    mask: sitk.Image
    radius_mm: float  # of the sphere of the lesion's volume
    reach_mm: float  # farthest widened voxel from the lesion's centre
    key: tuple

    @classmethod
    def of(cls, lesion: sitk.Image, centre: np.ndarray) -> Changing | None:
        """None for an empty mask (nothing to leave out)."""
        arr = voxels(lesion) > 0
        count = int(arr.sum())
        if not count:
            return None
        spacing_zyx = np.array(lesion.GetSpacing())[::-1]
        radius = equivalent_radius_mm(count * float(np.prod(spacing_zyx)) / 1000.0)
        margin = GROWTH_MARGIN * radius
        pad = np.ceil(margin / spacing_zyx).astype(int) + 2  # room for the shell one voxel outside
        inside = dilate_mm(np.pad(arr, [(p, p) for p in pad]), margin, spacing_zyx)
        grown = sitk.GetImageFromArray(inside.astype(np.uint8))
        grown.SetSpacing(lesion.GetSpacing())
        grown.SetDirection(lesion.GetDirection())
        grown.SetOrigin(lesion.TransformIndexToPhysicalPoint([-int(p) for p in pad[::-1]]))
        zyx = np.argwhere(inside)
        reach = float(np.sqrt(((index_zyx_to_physical(grown, zyx) - centre) ** 2).sum(axis=1)).max())
        return cls(grown, radius, reach, (lesion.GetOrigin(), lesion.GetSize(), count))

    def shell(self) -> np.ndarray:
        """(N, 3) LPS mm: voxels just outside the widened lesion (at most ``SHELL_POINTS``,
        evenly thinned), the nearest surroundings that do not change with it."""
        inside = voxels(self.mask) > 0
        ring = np.argwhere(ndimage.binary_dilation(inside) & ~inside)
        step = max(1, math.ceil(len(ring) / SHELL_POINTS))
        return index_zyx_to_physical(self.mask, ring[::step])


def around_from_shell(centre: np.ndarray, shell: np.ndarray, mapped: np.ndarray) -> np.ndarray:
    """The centre carried by the least-squares affine that takes ``shell`` to ``mapped``
    (points on all sides of the centre, so the affine is well posed; a mean shift if too few)."""
    if len(shell) < 8:
        return centre + (mapped - shell).mean(axis=0)
    design = np.hstack([shell - centre, np.ones((len(shell), 1))])
    coef, *_ = np.linalg.lstsq(design, mapped, rcond=None)
    return coef[-1]  # the affine at the centre itself: its offset row


def unsettled(confidence: float, drift_mm: float, radius_mm: float) -> bool:
    """Whether the lesion's own estimate may be one ``choose`` overrules, so the surroundings'
    estimate must be made (where it is not, ``choose`` keeps the own one anyway and the second
    estimate, as costly as the first for ``classical``, is saved).

    Unsettled: vouched for less than ``SETTLED`` (its two fine starts part, its box matches
    poorly, or, for a lesion larger than the fine box, no fine box holds), or moved by the
    smaller boxes more than ``DRIFT`` lesion radii (``drift_mm``) from the coarse box's estimate,
    which is made mostly of the surroundings. A lesion that went or shrank pulls the smaller
    boxes onto whatever looks like it. Read on the dev benchmark (session 10, seeds 1-4, 176
    placements): the 10 placed by their surroundings (all on the scan where the lesion had gone)
    had a drift of 0.53-1.64 radii, four of them a confidence of 0.5 or more; every other one
    kept its own estimate. 76 of the 176 are unsettled. On a deep-response set (seed 0, volumes
    1, 0.4, 0.15, 0.06, 0) the 3 of 44 placed by their surroundings (the mass at 0.06 and gone,
    a nodule gone) drifted 1.0-1.35 radii; outputs there and on the dev seeds 0-4 are unchanged.
    """
    return not confidence >= SETTLED or drift_mm > DRIFT * radius_mm


def choose(own: tuple[np.ndarray, float], around: tuple[np.ndarray, float], radius_mm: float
           ) -> tuple[tuple[np.ndarray, float], float]:
    """Which estimate places the lesion, and how far apart the two are (in lesion radii).

    The lesion's own estimate is kept unless the two lie more than ``PARTED`` radii apart (they
    cannot both be on its centre); beyond ``LEFT_ITS_PLACE`` the surroundings' is taken; in
    between, the one its backend vouches for more (its confidence; the lesion's own on ties or
    when a backend cannot tell). Measured on the benchmark (README): present lesions part by at
    most 0.5 radii, vanished ones by 0.5-2.1."""
    apart = float(np.linalg.norm(own[0] - around[0])) / radius_mm
    if apart > LEFT_ITS_PLACE or (apart > PARTED and around[1] > own[1]):
        return around, apart
    return own, apart
