"""Drawing primitives: the colour palette, value noise, distance fields, anti-aliased
lines and dots, random point sets and branching trees, and the pixel frame they use.

Coordinates are normalised: the image spans [-1, 1] on both axes (y down the rows).
"""

from __future__ import annotations

import numpy as np

# RGB in [0, 1].
PALETTE: dict[str, tuple[float, float, float]] = {
    "tan": (0.80, 0.64, 0.40),
    "light_brown": (0.66, 0.45, 0.27),
    "brown": (0.50, 0.30, 0.18),
    "orange_brown": (0.76, 0.50, 0.26),
    "grey_brown": (0.60, 0.50, 0.41),
    "pink_brown": (0.70, 0.46, 0.40),
    "dark_brown": (0.30, 0.17, 0.11),
    "black": (0.14, 0.10, 0.09),
    "blue_grey": (0.42, 0.45, 0.54),
    "pink": (0.90, 0.55, 0.56),
    "pearl": (0.92, 0.78, 0.80),
    "red": (0.80, 0.26, 0.28),
    "dark_red": (0.50, 0.14, 0.18),
    "purple": (0.48, 0.22, 0.36),
    "white": (0.95, 0.92, 0.88),
    "keratin": (0.94, 0.86, 0.60),
}


def col(rng: np.random.Generator, name: str, jitter: float = 0.02) -> np.ndarray:
    """A palette colour with per-image lightness and per-channel jitter."""
    c = np.asarray(PALETTE[name], dtype=np.float64) * rng.uniform(0.92, 1.08) + rng.normal(0.0, jitter, 3)
    return np.clip(c, 0.0, 1.0)


def mix(img: np.ndarray, colour: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Alpha-blend `colour` (3,) or (n, n, 3) onto img with a (n, n) weight map."""
    w = np.clip(weight, 0.0, 1.0)[..., None]
    return img * (1.0 - w) + colour * w


def hue_matrix(angle: float) -> np.ndarray:
    """Rotation of RGB about the grey axis (a hue shift)."""
    k = np.ones(3) / np.sqrt(3.0)
    kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + np.sin(angle) * kx + (1.0 - np.cos(angle)) * (kx @ kx)


class Noise:
    """Smooth value noise: a coarse Gaussian grid drawn now, bilinearly sampled later.

    The grid is drawn from the rng at construction, so the draw does not depend on the
    output resolution; `at(x, y)` samples it at normalised coordinates in [-1, 1].
    """

    def __init__(self, rng: np.random.Generator, cells: int):
        self.cells = cells
        self.grid = rng.standard_normal((cells + 1, cells + 1))

    def at(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The noise at normalised coordinates (x, y), same shape as x."""
        g = self.cells
        fx = np.clip((x + 1.0) * 0.5, 0.0, 1.0) * g
        fy = np.clip((y + 1.0) * 0.5, 0.0, 1.0) * g
        ix = np.minimum(fx.astype(np.int64), g - 1)
        iy = np.minimum(fy.astype(np.int64), g - 1)
        tx = fx - ix
        ty = fy - iy
        tx = tx * tx * (3.0 - 2.0 * tx)  # smoothstep: no visible grid creases
        ty = ty * ty * (3.0 - 2.0 * ty)
        v = self.grid
        top = v[iy, ix] * (1.0 - tx) + v[iy, ix + 1] * tx
        bot = v[iy + 1, ix] * (1.0 - tx) + v[iy + 1, ix + 1] * tx
        return top * (1.0 - ty) + bot * ty


class Frame:
    """Pixel grid in normalised image coordinates and in the lesion's own frame."""

    def __init__(self, n: int, cx: float, cy: float, rot: float, aspect: float):
        self.n = n
        self.px = 2.0 / n
        self.lpx = self.px  # pixel size in the unit lesion frame (set by the painter)
        c = (np.arange(n, dtype=np.float64) + 0.5) * self.px - 1.0
        self.x, self.y = np.meshgrid(c, c)  # y down the rows
        dx, dy = self.x - cx, self.y - cy
        cr, sr = np.cos(rot), np.sin(rot)
        self.u = (cr * dx + sr * dy) / np.sqrt(aspect)
        self.v = (-sr * dx + cr * dy) * np.sqrt(aspect)
        self.rho = np.hypot(self.u, self.v)
        self.theta = np.arctan2(self.v, self.u)


def seg_dist(x: np.ndarray, y: np.ndarray, segs: np.ndarray) -> np.ndarray:
    """Distance from every pixel to each segment: segs (m, 4) -> (m, n, n)."""
    x0, y0, x1, y1 = (segs[:, i][:, None, None] for i in range(4))
    dx, dy = x1 - x0, y1 - y0
    inv = 1.0 / np.maximum(dx * dx + dy * dy, 1e-12)
    ax, ay = x - x0, y - y0
    t = (ax * dx + ay * dy) * inv
    np.clip(t, 0.0, 1.0, out=t)
    ax -= t * dx
    ay -= t * dy
    return np.hypot(ax, ay, out=ax)


def line(dist: np.ndarray, half_width: np.ndarray | float, px: float) -> np.ndarray:
    """Anti-aliased coverage of a line of given half width (normalised units)."""
    hw = np.maximum(half_width, 0.25 * px)
    cov = np.clip((hw + 0.5 * px - dist) / px, 0.0, 1.0)
    return cov * np.minimum(1.0, 2.0 * hw / px)


def blobs(x: np.ndarray, y: np.ndarray, centres: np.ndarray, radii: np.ndarray, px: float) -> np.ndarray:
    """Soft round dots: max coverage over dots, centres (m, 2), radii (m,)."""
    if len(centres) == 0:
        return np.zeros_like(x)
    d = np.hypot(x - centres[:, 0, None, None], y - centres[:, 1, None, None])
    r = np.maximum(radii, 0.5 * px)[:, None, None]
    return np.clip((r + 0.5 * px - d) / (px + 0.3 * r), 0.0, 1.0).max(axis=0)


def points_in(rng: np.random.Generator, m: int, rmax: float, rmin: float = 0.0) -> np.ndarray:
    """m points uniformly in an annulus of the unit lesion frame, as (m, 2) (u, v)."""
    rr = np.sqrt(rng.uniform(rmin * rmin, rmax * rmax, m))
    th = rng.uniform(0.0, 2.0 * np.pi, m)
    return np.stack([rr * np.cos(th), rr * np.sin(th)], axis=1)


def tree(rng: np.random.Generator, roots: int, depth: int, step: tuple[float, float], spread: float) -> np.ndarray:
    """Segments (m, 5) = x0, y0, x1, y1, generation of a randomly branching tree."""
    segs: list[tuple[float, float, float, float, float]] = []
    frontier = []
    for _ in range(roots):
        p = points_in(rng, 1, 0.7)[0]
        frontier.append((p[0], p[1], rng.uniform(0.0, 2.0 * np.pi), 0))
    while frontier:
        x0, y0, ang, gen = frontier.pop()
        length = rng.uniform(*step) * (0.8**gen)
        x1, y1 = x0 + length * np.cos(ang), y0 + length * np.sin(ang)
        segs.append((x0, y0, x1, y1, gen))
        if gen + 1 < depth and np.hypot(x1, y1) < 1.0:
            nkids = 2 if rng.random() < 0.55 else 1
            for _ in range(nkids):
                frontier.append((x1, y1, ang + rng.normal(0.0, spread), gen + 1))
    return np.asarray(segs, dtype=np.float64).reshape(-1, 5)
