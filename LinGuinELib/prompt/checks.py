"""A lesion's prompt checked before any work: its points on its scan's grid, not in air, not on
NaN/inf voxels, and a mask prompt not over NaN/inf voxels; and, once the prompts are segmented, a
request in which no click gave anything (``check_something_segmented``).

Written once for every way in: the CLI (``study.manifest.validate_study`` checks the points
against the scans' headers, ``study.preflight`` the voxels of the prompted scans) and the Slicer
module (``LinGuinELogic.prepare``, on the volumes' own voxels, for its in-process and child-process
runs alike). Each refusal is one ``InputError`` line naming the lesion and the scan.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..geometry import inside_image, lps_to_ras, physical_to_continuous_index_zyx
from ..study.model import Lesion
from ..voxels import voxels

# A click whose surroundings are darker than this (HU) is in air or aerated lung, not on a lesion:
# ground-glass nodules are about -300 to -700 HU, aerated lung about -850, air -1000.
AIR_HU = -900.0


def check_points_inside(lesion: Lesion, grid, where: str = "") -> None:
    """Refuse a point prompt off its scan's voxel grid (``grid``: the scan's image or geometry);
    ``where`` prefixes the message (the manifest's path)."""
    if lesion.points_lps is None:
        return
    outside = ~inside_image(grid, lesion.points_lps)
    if outside.any():
        p = np.round(lps_to_ras(lesion.points_lps[outside][0]), 1).tolist()
        raise InputError(f"{where}lesion '{lesion.id}': point RAS {p} is outside scan '{lesion.scan_id}'")


def check_prompt_voxels(lesion: Lesion, grid, voxels_zyx: np.ndarray) -> None:
    """Refuse point prompts on NaN/inf voxels or in air, and masks over NaN/inf voxels.

    ``voxels_zyx``: the scan's voxels on ``grid``, (z, y, x) (a SimpleITK array view, or a Slicer
    volume's buffer: nothing is copied). Air: the median of the 3x3x3 voxels around the click is
    below ``AIR_HU`` on a scan in Hounsfield units (one that holds air at -1000); no lesion is that
    dark, so the click missed.
    """
    arr = voxels_zyx
    if lesion.points_lps is not None:
        idx = np.round(physical_to_continuous_index_zyx(grid, lesion.points_lps)).astype(int)
        idx = np.clip(idx, 0, np.array(arr.shape) - 1)
        for z, y, x in idx:
            near = np.asarray(arr[max(z - 1, 0):z + 2, max(y - 1, 0):y + 2, max(x - 1, 0):x + 2], float)
            if not np.all(np.isfinite(near)):
                _refuse(lesion, "lies on non-finite (NaN/inf) voxels")
            if np.median(near) < AIR_HU and np.nanmin(arr) <= -1000 + 50:
                _refuse(lesion, f"lies in air or aerated lung (median {np.median(near):.0f} HU around it); "
                                "click inside the lesion")
    elif lesion.mask is not None and arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr[voxels(lesion.mask) != 0])):
            _refuse(lesion, "covers non-finite (NaN/inf) voxels")


def _refuse(lesion: Lesion, what: str) -> None:
    raise InputError(f"lesion '{lesion.id}': its prompt on scan '{lesion.scan_id}' {what}")


def check_something_segmented(answers: list[tuple[Lesion, bool]]) -> list[Lesion]:
    """Refuse a request in which no click gave a segment: nothing to track (a click in air or beside
    the lesion). ``answers``: each lesion of the request with whether its click gave nothing (the
    engine counts a session's reused lesions with their earlier prompts). The lesions whose click
    gave nothing, when others did: they are tracked from the click and flagged."""
    empty = [lesion for lesion, nothing in answers if nothing]
    if empty and len(empty) == len(answers):
        first = empty[0]
        where = np.round(lps_to_ras(first.points_lps[0]), 1).tolist()
        more = f" (and at the prompts of {len(empty) - 1} other lesion(s))" if len(empty) > 1 else ""
        raise InputError(f"lesion '{first.id}': nothing could be segmented at its prompt (RAS {where}) "
                         f"on scan '{first.scan_id}'; click inside the lesion{more}")
    return empty
