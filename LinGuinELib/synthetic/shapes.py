"""Lesion shapes beyond the lobulated ellipsoid, for kinds nobody developed the segmenter on.

- ``flat``: a plate (about 2.5 : 2.5 : 1) lying on the surface it is attached to (a ground-glass
  nodule spread along the pleura, a lentiform perifissural nodule): two long axes, one short.
- ``spiculated``: thin spicules radiating from the body (part of the lesion and of its truth).
- ``cavitating``: a thick-walled lesion around an air-filled cavity; the truth is the whole
  lesion, cavity included, as RECIST and volumetry outline it.

Each shape's random draws come after the base lesion's, so ``round`` lesions are unchanged.
"""

from __future__ import annotations

import numpy as np

SHAPES = ("round", "flat", "spiculated", "cavitating")
FLAT_RATIO = 0.4  # short / long half-axis of a flat lesion
CAVITY_HU = -985.0


def flat_axes(r: float) -> np.ndarray:
    """Half-axes (long, long, short) of a plate with the volume of a sphere of radius r."""
    return r * np.array([FLAT_RATIO ** (-1 / 3), FLAT_RATIO ** (-1 / 3), FLAT_RATIO ** (2 / 3)])


def normal_half_axis(shape: str, r: float) -> float:
    """How far the lesion reaches along the normal of the surface it lies on."""
    return float(flat_axes(r)[2]) if shape == "flat" else r


def frame_with_normal(normal: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A rotation whose third row is ``normal`` (the plate's short axis), in-plane angle random."""
    n = normal / np.linalg.norm(normal)
    u = np.cross(n, rng.normal(size=3))
    u /= np.linalg.norm(u)
    return np.stack([u, np.cross(n, u), n])


def spicules(centre: np.ndarray, r: float, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Capsules (start, end, radius) radiating from inside the body to 1.4-1.9 radii out."""
    out = []
    for _ in range(int(rng.integers(8, 14))):
        d = rng.normal(size=3)
        d /= np.linalg.norm(d)
        out.append((centre + 0.5 * r * d, centre + rng.uniform(1.4, 1.9) * r * d,
                    float(rng.uniform(0.45, 0.75))))
    return out


def cavity(centre: np.ndarray, r: float, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """(centre, radius) of an air cavity leaving a wall at least about a quarter radius thick."""
    rc = r * rng.uniform(0.4, 0.55)
    return centre + rng.normal(size=3) * 0.08 * r, rc
