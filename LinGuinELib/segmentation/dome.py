"""Lesions in a corner of the pleura (the dome's lateral slope meeting the chest wall): the lung
envelope's closing cannot give them back, their own round outline in the slice can.

The lung envelope closes the lung with a ball wider than the lesion: a lesion bulging from one
smooth wall is a dent the ball bridges. A lesion filling a corner where two walls meet is no
dent: the ball, resting on both walls, covers the corner's half of the lesion as if it were wall,
and the envelope cuts the lesion through its middle (a 14 mm nodule on 5 mm slices came out
0.2-0.5x its volume). No closing or hull of the lung tells such a lesion from a rounded corner.
Its outline towards the lung does: in a slice it is an arc of the lesion's cross-section, and
the circle through that arc says how far the lesion reaches into the corner. The walls bound it
there: the slice's lung and lesion near it, made convex, stop at the pleura on either side. The
corner's crease runs along the slices or across them (the costophrenic sulcus, round the dome), so
the slices are read in all three orientations.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..filtering.components import components_touching
from ..filtering.hull import filled_hull
from ..geometry import fit_sphere
from .end_slices import rests_on_wall
from .roi import Roi

MIN_ARC_PIXELS = 8  # fewer rim pixels facing the lung: no circle to fit
MIN_CUT_SHARE = 0.2  # share of the rim the envelope cut: less, and the envelope only trimmed an edge
HOLD_SHARE = 0.9  # the circle must hold this share of the cross-section it was fitted to
WINDOW = 2.0  # the pleura is read within this many circle radii of its centre
MAX_RADIUS_MM = 20.0  # larger cross-sections: the pleura is not flat across the window (a tumour
# spanning the chest wall's curve, or invading it, is no corner filling)
_CROSS = ndimage.generate_binary_structure(2, 1)


def fill_corner(lesion: np.ndarray, free: np.ndarray | None, roi: Roi) -> np.ndarray:
    """The lesion with, in each slice where the lung envelope cut its cross-section, the voxels
    of ``free`` (the thresholded region before the envelope) that the envelope left out and that
    lie inside the circle through its outline towards the lung and inside the slice's pleura.

    Slices in all three orientations, axial first: the corner's crease can run along any of them.
    The costophrenic sulcus runs round the dome, across the axial slices' plane, so it is a corner
    in coronal and sagittal slices, where an axial slice shows a crescent of lung (a 13 mm nodule on
    0.625 mm slices: 0.67x, its part in the sulcus cut; 0.91x with the other orientations).

    The voxels given back join ``roi.allowed`` (the envelope). The axial pass skips an end slice
    that rests on a wall along the slices (the dome on thick slices): a slice crossing the dome is a
    mix of lesion and dome, its outline the dome's as much as the lesion's. The other orientations
    do reach into such a slice (on 5 mm slices most of what they give back lies there); the caller
    then settles its pixels by their partial volume (:mod:`.end_slices`), which keeps a few of them."""
    if roi.allowed is None or free is None or not lesion.any():
        return lesion
    out = lesion.copy()
    for axis in range(3):
        order = [axis] + [a for a in range(3) if a != axis]
        # views: what one orientation gives back is in ``out`` and ``roi.allowed`` for the next
        _fill_slices(np.moveaxis(out, axis, 0), np.moveaxis(free, axis, 0), np.moveaxis(roi.allowed, axis, 0),
                     roi.spacing[order], along_slices=axis == 0)
    return out


def _fill_slices(out: np.ndarray, free: np.ndarray, allowed: np.ndarray, spacing: np.ndarray,
                 along_slices: bool) -> None:
    """:func:`fill_corner` in the slices along the first axis of these views (changed in place);
    ``along_slices``: they are the image's slices (their end slices may rest on a wall)."""
    sp = spacing[1:]
    lesion = out.copy()
    cut_off = free & ~allowed
    zs = np.flatnonzero(lesion.any(axis=(1, 2)))
    yy, xx = np.indices(lesion.shape[1:])
    for k in zs:
        if not cut_off[k].any():
            continue  # the envelope cut nothing in this slice
        les = lesion[k]
        rim = les & ~ndimage.binary_erosion(les, _CROSS, border_value=1)
        near_cut = ndimage.binary_dilation(cut_off[k], _CROSS)
        bottom = k == zs[0]
        if along_slices and zs.size > 1 and k in (zs[0], zs[-1]) and \
                rests_on_wall(lesion, allowed, k, k - 1 if bottom else k + 1):
            continue  # a mix of lesion and the wall along the slices: end_slices settles it
        arc = rim & ndimage.binary_dilation(~free[k], _CROSS) & ~near_cut
        if arc.sum() < MIN_ARC_PIXELS or (rim & near_cut).sum() < MIN_CUT_SHARE * rim.sum():
            continue
        fit = fit_sphere(np.argwhere(arc) * sp)
        if fit is None:
            continue
        centre, radius = fit
        radius += 0.5 * float(sp.max())  # the rim's pixel centres lie half a pixel inside the edge
        d2 = (yy * sp[0] - centre[0]) ** 2 + (xx * sp[1] - centre[1]) ** 2
        disc = d2 <= radius**2
        if radius > MAX_RADIUS_MM or (les & disc).sum() < HOLD_SHARE * les.sum():
            continue  # not a round outline (a flat or lobulated lesion)
        # the lung beside the outline, not air or fat beyond the wall. Made convex with the lesion in
        # the image's slices only: in the other orientations a wall crosses the slice obliquely, the
        # lesion's rim given back beyond the pleura (the envelope's margin) reaches farther past the
        # pleura's trace there, and the hull's tangents to it took a layer of wall (a 40 mm chest-wall
        # tumour on 2.5 mm slices 1.10-1.13x -> 1.16-1.19x)
        lung = components_touching(~free[k] & (d2 <= (WINDOW * radius) ** 2), ndimage.binary_dilation(arc, _CROSS),
                                   connectivity=8)
        pleura = filled_hull(lung | les if along_slices else lung)
        both = les | (disc & cut_off[k] & pleura)
        out[k] |= components_touching(both, les, connectivity=8)
    allowed |= out  # what the lesion's shape gave back is lung envelope too
