"""An analytic chest (HU) that can be sampled on any box at any resolution.

Built for lesion-kind tests and benchmarks, where what a segmenter meets next to a lesion matters
more than whole-body fidelity. Coordinates are mm relative to the chest centre, LPS-oriented
(x to the patient's left, y posterior, z superior). From the skin inwards: skin, subcutaneous fat,
chest-wall muscle (thicker at the back), a rib layer (ribs with cortex and marrow between
intercostal muscle), an optional thin extrapleural fat line, then the lungs. The lungs are bounded
medially by the mediastinum (fat, heart, descending aorta, spine) and below by the diaphragm domes
(muscle, then liver on the right, spleen on the left). Inside: parenchyma with a gravity gradient
and texture, branching vessel trees from each hilum, an oblique (major) fissure per lung.

Every boundary is an approximate signed distance (mm, negative inside), so occupancy is partial at
the sampling scale (``soft``) and lesions can be placed *on* a boundary by following it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

HU_AIR, HU_FAT, HU_MUSCLE, HU_SKIN, HU_LIVER = -1000.0, -95.0, 48.0, 30.0, 58.0
HU_CORTEX, HU_MARROW = 750.0, 230.0


def soft(sdf, h: float):
    """Partial-volume occupancy (0-1) of the inside (sdf < 0) at a sampling scale of h mm."""
    return np.clip(0.5 - sdf / h, 0.0, 1.0)


def ellipse_sdf(x, y, cx: float, cy: float, a: float, b: float):
    """First-order signed distance (mm) to the ellipse ((x-cx)/a)^2 + ((y-cy)/b)^2 = 1."""
    u, v = (x - cx) / a, (y - cy) / b
    f = np.sqrt(u * u + v * v) + 1e-6
    grad = np.sqrt((u / a) ** 2 + (v / b) ** 2) / f + 1e-9
    return (f - 1.0) / grad


def segment_sdf(X, Y, Z, a: np.ndarray, b: np.ndarray, r: float):
    """Signed distance to a capsule from a to b of radius r."""
    ab = b - a
    t = ((X - a[0]) * ab[0] + (Y - a[1]) * ab[1] + (Z - a[2]) * ab[2]) / max(float(ab @ ab), 1e-9)
    t = np.clip(t, 0.0, 1.0)
    d2 = (X - a[0] - t * ab[0]) ** 2 + (Y - a[1] - t * ab[1]) ** 2 + (Z - a[2] - t * ab[2]) ** 2
    return np.sqrt(d2) - r


@dataclass
class Chest:
    """One patient's chest: dimensions drawn from ``rng``; vessels grown on construction."""

    rng: np.random.Generator
    contrast: bool = False
    a: float = field(init=False)  # body half-width (x), mm
    b: float = field(init=False)  # body half-depth (y)
    fat: float = field(init=False)  # subcutaneous fat thickness
    muscle: float = field(init=False)
    rib_layer: float = field(init=False)
    extrapleural: float = field(init=False)  # fat line between ribs and pleura (often absent)
    med_half: float = field(init=False)  # mediastinum half-width at the heart
    dome: tuple[float, float] = field(init=False)  # dome tops (right, left), z mm
    rib_period: float = field(init=False)
    fissure: list[tuple[np.ndarray, np.ndarray]] = field(init=False)  # (point, normal) per lung
    vessels: list[tuple[np.ndarray, np.ndarray, float]] = field(init=False)

    def __post_init__(self) -> None:
        r = self.rng
        self.a, self.b = r.uniform(158, 185), r.uniform(112, 130)
        self.fat, self.muscle = r.uniform(8, 22), r.uniform(8, 16)
        self.rib_layer = r.uniform(9, 12)
        self.extrapleural = float(r.choice([0.0, 0.0, 1.5]))
        self.med_half = r.uniform(38, 48)
        top = r.uniform(-75, -55)
        self.dome = (top, top - r.uniform(10, 20))
        self.rib_period = r.uniform(22, 27)
        self.fissure = []
        for s in (-1.0, 1.0):
            n = np.array([r.normal(0, 0.1), -r.uniform(0.8, 1.2), 1.0])
            self.fissure.append((np.array([s * 90.0, 10.0, r.uniform(-10, 10)]), n / np.linalg.norm(n)))
        self.vessels = []
        for s in (-1.0, 1.0):
            for z0 in (40.0, 0.0, -35.0):
                hilum = np.array([s * (self.med_half + 2.0), r.uniform(-15, 5), z0])
                for d in ([s, -0.6, 0.5], [s, 0.5, 0.2], [s * 0.7, 0.2, -0.8]):
                    dv = np.asarray(d, float) + r.normal(0, 0.15, 3)
                    self._grow(hilum, dv / np.linalg.norm(dv), 4.5, 5)

    # ----------------------------------------------------------------- boundaries (sdf, mm)
    def wall_depth(self, x, y):
        """Depth below the skin (mm; negative outside the body)."""
        return -ellipse_sdf(x, y, 0.0, 0.0, self.a, self.b)

    def inner_wall(self, y):
        """Depth of the pleura below the skin (the back's muscles are thicker)."""
        back = np.clip((y - 0.3 * self.b) / (0.5 * self.b), 0.0, 1.0)
        return self.fat + self.muscle + self.rib_layer + self.extrapleural + 18.0 * back

    def mediastinum_sdf(self, x, y, z):
        half = self.med_half + 8.0 * np.clip(-z / 80.0, 0.0, 1.0)  # wider at the heart
        body = ellipse_sdf(x, y, 8.0, -5.0, half, 1.35 * self.b)
        spine = ellipse_sdf(x, y, 0.0, 0.62 * self.b, 34.0, 34.0)
        return np.minimum(body, spine)

    def diaphragm_sdf(self, x, z):
        """Distance below the dome surface (positive above it, in the chest)."""
        top = np.where(x < 0, self.dome[0], self.dome[1])
        surface = top - (np.abs(x) - 85.0) ** 2 / 260.0
        return surface - z

    def lung_sdf(self, x, y, z):
        """Negative inside either lung."""
        wall = self.inner_wall(y) - self.wall_depth(x, y)
        return np.maximum(np.maximum(wall, -self.mediastinum_sdf(x, y, z)), self.diaphragm_sdf(x, z))

    # ----------------------------------------------------------------- rendering
    def render(self, X, Y, Z, h: float, texture) -> tuple[np.ndarray, np.ndarray]:
        """HU and lung occupancy on broadcastable coordinates (mm); ``h`` the sampling scale,
        ``texture`` a zero-mean unit-sd field (full shape) for the parenchyma."""
        depth = self.wall_depth(X, Y)
        shape = np.broadcast_shapes(X.shape, Y.shape, Z.shape)
        hu = np.full(shape, HU_AIR, np.float32)
        body = soft(-depth, h)
        fat = soft(self.fat + 2.0 - depth, h)
        layer = np.where(depth < 2.0, HU_SKIN, HU_FAT + (HU_MUSCLE - HU_FAT) * (1 - fat))
        hu = hu * (1 - body) + layer * body
        # ribs in the rib layer (tilted: higher at the back), cortex around marrow
        inner = self.inner_wall(Y) - self.extrapleural
        centre = inner - 0.5 * self.rib_layer
        zc = np.mod(Z - 0.35 * Y, self.rib_period) - 0.5 * self.rib_period
        q = np.sqrt(((depth - centre) / (0.45 * self.rib_layer)) ** 2 + (zc / 6.0) ** 2)
        rib = soft((q - 1.0) * 5.0, h) * (1 - soft(ellipse_sdf(X, Y, 0.0, -self.b, 30.0, 60.0), h))
        hu = hu * (1 - rib) + np.where(q > 0.72, HU_CORTEX, HU_MARROW) * rib
        efat = soft(depth - (self.inner_wall(Y)), h) * (self.extrapleural > 0)
        hu = hu * (1 - efat) + HU_FAT * efat
        # inside the pleura: abdomen below the domes, mediastinum, lungs
        cavity = soft(self.inner_wall(Y) - depth, h)
        blood = 170.0 if self.contrast else 42.0
        below = soft(self.diaphragm_sdf(X, Z), h)  # 1 below the dome surface
        organ = np.where(X < 0, HU_LIVER, 45.0) * soft(-self.diaphragm_sdf(X, Z) - 5.0, h)
        organ = organ + HU_MUSCLE * (1 - soft(-self.diaphragm_sdf(X, Z) - 5.0, h))
        heart = soft(ellipse_sdf(X, Y, 18.0, -30.0, 55.0, 50.0)
                     + np.clip(np.abs(Z + 40.0) - 55.0, 0, None), h)
        aorta = soft(ellipse_sdf(X, Y, 22.0, 0.42 * self.b, 12.0, 12.0), h)
        spine_d = ellipse_sdf(X, Y, 0.0, 0.62 * self.b, 20.0, 20.0)
        spine = soft(spine_d, h)
        med_hu = HU_FAT * (1 - np.maximum(heart, aorta)) + blood * np.maximum(heart, aorta)
        med_hu = med_hu * (1 - spine) + np.where(spine_d > -2.5, HU_CORTEX, 280.0) * spine
        lung = soft(self.lung_sdf(X, Y, Z), h)
        parenchyma = -875.0 + 45.0 * np.clip(Y / self.b, -1, 1) + 22.0 * texture
        for point, normal in self.fissure:
            dist = np.abs((X - point[0]) * normal[0] + (Y - point[1]) * normal[1] + (Z - point[2]) * normal[2])
            sheet = soft(dist - 0.35, h) * (np.sign(X) == np.sign(point[0]))
            parenchyma = parenchyma * (1 - sheet) + HU_MUSCLE * sheet
        vessel = self._vessel_occupancy(X, Y, Z, shape, h)
        parenchyma = parenchyma * (1 - vessel) + blood * vessel
        inside = below * organ + (1 - below) * med_hu
        inside = inside * (1 - lung) + parenchyma * lung
        hu = hu * (1 - cavity) + inside * cavity
        return hu.astype(np.float32), (lung * cavity).astype(np.float32)

    def _vessel_occupancy(self, X, Y, Z, shape, h: float) -> np.ndarray:
        """Occupancy of the vessel trees on separable axes X (1,1,nx), Y (1,ny,1), Z (nz,1,1);
        only the segments meeting the box are evaluated, each in its own sub-box."""
        axes = [np.ravel(X), np.ravel(Y), np.ravel(Z)]
        occ = np.zeros(shape, np.float32)
        for a, b, r in self.vessels:
            smin, smax = np.minimum(a, b) - r - 2 * h, np.maximum(a, b) + r + 2 * h
            sel = []
            for k, ax in enumerate(axes):
                idx = np.flatnonzero((ax >= smin[k]) & (ax <= smax[k]))
                if not idx.size:
                    break
                sel.append(slice(idx.min(), idx.max() + 1))
            else:
                sx, sy, sz = sel
                sub = soft(segment_sdf(X[:, :, sx], Y[:, sy, :], Z[sz, :, :], a, b, r), h)
                np.maximum(occ[sz, sy, sx], sub, out=occ[sz, sy, sx])
        return occ

    def _grow(self, start: np.ndarray, direction: np.ndarray, radius: float, depth: int) -> None:
        """A branching tree: each branch shorter and thinner, kept inside the lung."""
        length = self.rng.uniform(28.0, 45.0) * 0.82 ** (5 - depth)
        for f in (1.0, 0.7, 0.45):
            end = start + direction * length * f
            if float(self.lung_sdf(*end)) < -1.5 - radius:
                break
        else:
            return
        self.vessels.append((start, end, radius))
        if depth == 0 or radius < 0.8:
            return
        for _ in range(2):
            d = direction + self.rng.normal(0.0, 0.5, 3)
            self._grow(end, d / np.linalg.norm(d), radius * 0.74, depth - 1)

    # ----------------------------------------------------------------- sites on boundaries
    def boundary_point(self, start: np.ndarray, direction: np.ndarray) -> np.ndarray | None:
        """Where a ray from a lung point first leaves the lung (bisection on lung_sdf)."""
        d = direction / np.linalg.norm(direction)
        if float(self.lung_sdf(*start)) >= 0:
            return None
        lo, hi = 0.0, 1.0
        while float(self.lung_sdf(*(start + hi * d))) < 0:
            lo, hi = hi, hi * 2
            if hi > 600:
                return None
        for _ in range(40):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if float(self.lung_sdf(*(start + mid * d))) < 0 else (lo, mid)
        return start + lo * d

    def lung_normal(self, p: np.ndarray, eps: float = 0.5) -> np.ndarray:
        """Outward normal of the lung boundary near p."""
        g = np.array([float(self.lung_sdf(*(p + e)) - self.lung_sdf(*(p - e))) for e in np.eye(3) * eps])
        return g / (np.linalg.norm(g) + 1e-9)
