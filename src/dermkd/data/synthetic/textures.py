"""Dermoscopic structures as texture layers, and the per-class recipe that picks them.

A texture factory makes all of its random draws when it is called and returns a
`Layer`: a function (frame, lu, lv, d) -> (colour, weight map, extends_outside_mask),
where (lu, lv) are pixel coordinates in the unit lesion frame and d is the normalised
distance to the lesion border (1 on the border).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from dermkd.data.synthetic.primitives import (
    Frame,
    Noise,
    blobs,
    col,
    line,
    points_in,
    seg_dist,
    tree,
)
from dermkd.data.taxonomy import ISIC9

Layer = Callable[[Frame, np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, bool]]
Shade = Callable[[float], np.ndarray]  # k -> the lesion base colour darkened by k, jittered


def _network(rng: np.random.Generator, colour: np.ndarray, freq: float, width: float, strength: float,
             extent: float = 1.0, inner: float = 0.0) -> Layer:
    """Pigment network: a warped honeycomb of lines, between `inner` and `extent`."""
    warp = Noise(rng, 8)
    warp_amp = rng.uniform(0.05, 0.25)
    angs = rng.uniform(0.0, np.pi) + np.array([0.0, np.pi / 3, 2 * np.pi / 3])
    ph = rng.uniform(0.0, 2 * np.pi, 3)

    def f(fr, lu, lv, d):
        wu = lu + warp_amp * warp.at(fr.x, fr.y)
        wv = lv + warp_amp * warp.at(fr.y, fr.x)
        g = sum(np.cos(freq * (np.cos(a) * wu + np.sin(a) * wv) + p) for a, p in zip(angs, ph))
        lines = np.clip((width - g) / 1.2, 0.0, 1.0)  # g ~ -1.5 on lines, 3 in holes
        zone = np.clip((extent - d) / 0.15, 0.0, 1.0) * np.clip((d - inner) / 0.15 + (inner <= 0), 0.0, 1.0)
        return colour, strength * lines * zone, False

    return f


def _dots(rng: np.random.Generator, colour: np.ndarray, m: int, rad: tuple[float, float], rmax: float = 0.85,
          rmin: float = 0.0, strength: float = 1.0, outside: bool = False) -> Layer:
    """m round dots / globules of radius in `rad`, scattered in an annulus."""
    centres = points_in(rng, m, rmax, rmin)
    radii = rng.uniform(rad[0], rad[1], m)

    def f(fr, lu, lv, d):
        return colour, strength * blobs(lu, lv, centres, radii, fr.lpx), outside

    return f


def _blotches(rng: np.random.Generator, colour: np.ndarray, cells: int, thresh: float, strength: float,
              inner: float = 0.95) -> Layer:
    """Irregular patches where smooth noise exceeds `thresh`, inside the lesion."""
    nz = Noise(rng, cells)
    off = rng.uniform(-1.0, 1.0, 2)

    def f(fr, lu, lv, d):
        v = nz.at(np.clip(lu * 0.5 + off[0] * 0.3, -1, 1), np.clip(lv * 0.5 + off[1] * 0.3, -1, 1))
        w = np.clip((v - thresh) / 0.35, 0.0, 1.0) * np.clip((inner - d) / 0.2, 0.0, 1.0)
        return colour, strength * w, False

    return f


def _streaks(rng: np.random.Generator, colour: np.ndarray, count: int, strength: float) -> Layer:
    """Radial streaks across the border, over part of the circumference."""
    ph = rng.uniform(0.0, 2 * np.pi)
    wob = rng.uniform(0.0, 2 * np.pi, 3)
    reach = rng.uniform(1.15, 1.35)
    sector = rng.uniform(0.0, 2 * np.pi)
    cover = rng.uniform(0.4, 1.0)  # fraction of the circumference with streaks

    def f(fr, lu, lv, d):
        th = fr.theta + 0.08 * np.sin(3 * fr.theta + wob[0])
        s = np.cos(count * th + ph)
        lines = np.clip((s - 0.55) / 0.3, 0.0, 1.0)
        radial = np.clip((d - 0.7) / 0.1, 0.0, 1.0) * np.clip((reach - d) / 0.12, 0.0, 1.0)
        sect = np.clip((np.cos(fr.theta - sector) - (1 - 2 * cover)) / 0.3, 0.0, 1.0)
        return colour, strength * lines * radial * sect, True

    return f


def _ridges(rng: np.random.Generator, colour: np.ndarray, freq: float, strength: float, width: float = 0.4) -> Layer:
    """Fingerprint-like parallel curved ridges (or cerebriform fissures)."""
    ang = rng.uniform(0.0, np.pi)
    warp = Noise(rng, 5)
    warp_amp = rng.uniform(0.5, 2.0)

    def f(fr, lu, lv, d):
        s = np.cos(freq * (np.cos(ang) * lu + np.sin(ang) * lv) + warp_amp * warp.at(fr.x, fr.y) * 3.0)
        w = np.clip((s - (1 - 2 * width)) / 0.5, 0.0, 1.0) * np.clip((0.95 - d) / 0.2, 0.0, 1.0)
        return colour, strength * w, False

    return f


def _fissures(rng: np.random.Generator, colour: np.ndarray, cells: int, strength: float) -> Layer:
    """Cerebriform fissures: thin lines along the zero set of smooth noise."""
    nz = Noise(rng, cells)

    def f(fr, lu, lv, d):
        v = nz.at(np.clip(lu * 0.55, -1, 1), np.clip(lv * 0.55, -1, 1))
        w = np.exp(-((v / 0.18) ** 2)) * np.clip((0.9 - d) / 0.2, 0.0, 1.0)
        return colour, strength * w, False

    return f


def _vessels(rng: np.random.Generator, colour: np.ndarray, roots: int, depth: int, width: float,
             strength: float) -> Layer:
    """Branching (arborising) vessels that thin with each generation."""
    segs = tree(rng, roots, depth, (0.25, 0.45), 0.6)

    def f(fr, lu, lv, d):
        if len(segs) == 0:
            return colour, np.zeros_like(d), False
        dist = seg_dist(lu, lv, segs[:, :4])
        hw = (width * 0.75 ** segs[:, 4])[:, None, None]
        cov = line(dist, hw, fr.lpx).max(0)
        return colour, strength * cov * np.clip((1.1 - d) / 0.2, 0.0, 1.0), False

    return f


def _radial(colour: np.ndarray, lo: float, hi: float, strength: float, soft: float = 0.15,
            noise: Noise | None = None, amp: float = 0.0) -> Layer:
    """Weight peaking for lo < d < hi (a ring, or a central patch when lo < 0)."""

    def f(fr, lu, lv, d):
        dd = d + (amp * noise.at(fr.x, fr.y) if noise is not None else 0.0)
        w = np.clip((dd - lo) / soft, 0.0, 1.0) * np.clip((hi - dd) / soft, 0.0, 1.0)
        return colour, strength * w, False

    return f


def _lobules(rng: np.random.Generator, colours: list[np.ndarray], m: int, strength: float) -> Layer:
    """m round lobules (lacunae) in the given colours, separated by pale pink septa."""
    centres = points_in(rng, m, 0.7)
    radii = rng.uniform(0.22, 0.45, m)
    which = rng.integers(len(colours), size=m)
    cols = np.stack(colours)[which]
    septum_col = col(rng, "pink")
    septa = rng.uniform(0.4, 0.9)

    def f(fr, lu, lv, d):
        dist = np.hypot(lu - centres[:, 0, None, None], lv - centres[:, 1, None, None]) / radii[:, None, None]
        near = dist.argmin(0)
        d1 = np.take_along_axis(dist, near[None], 0)[0]
        colour = cols[near]
        if len(dist) > 1:
            d2 = np.partition(dist, 1, axis=0)[1]
            sep = septa * np.clip(1.0 - (d2 - d1) / 0.15, 0.0, 1.0)
            colour = colour * (1.0 - sep[..., None]) + septum_col * sep[..., None]
        w = np.clip((1.1 - d1) / 0.35, 0.0, 1.0) * strength
        return colour, w * np.clip((1.05 - d) / 0.15, 0.0, 1.0), False

    return f


def _ak(rng: np.random.Generator, darker: Shade) -> list[Layer]:
    """Actinic keratosis: red "strawberry" pseudo-network with white scale and follicle openings."""
    L = [_blotches(rng, col(rng, "red"), 6, rng.uniform(-0.2, 0.6), rng.uniform(0.3, 0.7))]
    if rng.random() < 0.7:
        L.append(_network(rng, col(rng, "red"), rng.uniform(14, 20), rng.uniform(-0.2, 0.6), rng.uniform(0.3, 0.6)))
    L.append(_dots(rng, col(rng, "white"), int(rng.integers(6, 20)), (0.03, 0.06), strength=rng.uniform(0.5, 0.9)))
    if rng.random() < 0.8:
        L.append(_blotches(rng, col(rng, "white"), 12, rng.uniform(0.5, 1.1), rng.uniform(0.5, 0.9)))
    if rng.random() < 0.15:
        L.append(_network(rng, darker(0.7), 14, 0.0, 0.4))
    return L


def _bcc(rng: np.random.Generator, darker: Shade) -> list[Layer]:
    """Basal cell carcinoma: arborising vessels, sometimes blue-grey nests or an ulceration."""
    L = [_vessels(rng, col(rng, "red"), int(rng.integers(1, 4)), int(rng.integers(3, 6)), rng.uniform(0.02, 0.04), rng.uniform(0.6, 1.0))]
    if rng.random() < 0.65:
        L.append(_dots(rng, col(rng, "blue_grey"), int(rng.integers(2, 7)), (0.08, 0.2), strength=rng.uniform(0.6, 0.95)))
    if rng.random() < 0.25:
        L.append(_blotches(rng, col(rng, "dark_red"), 5, rng.uniform(0.6, 1.2), 0.9))
    if rng.random() < 0.35:
        L.append(_blotches(rng, col(rng, "white"), 6, rng.uniform(0.6, 1.2), 0.5))
    if rng.random() < 0.2:
        L.append(_dots(rng, col(rng, "brown"), int(rng.integers(3, 10)), (0.03, 0.07)))
    return L


def _df(rng: np.random.Generator, darker: Shade) -> list[Layer]:
    """Dermatofibroma: central white scar inside a brown ring fading into a peripheral network."""
    ring = col(rng, rng.choice(["brown", "brown", "dark_brown", "light_brown"]))
    L = [_radial(ring, 0.35, rng.uniform(0.85, 1.05), rng.uniform(0.6, 0.95), soft=0.2)]
    if rng.random() < 0.7:
        L.append(_network(rng, darker(0.6), rng.uniform(16, 24), rng.uniform(-0.3, 0.3), 0.6, extent=1.0, inner=0.5))
    L.append(_radial(col(rng, "white"), -1.0, rng.uniform(0.35, 0.6), rng.uniform(0.7, 1.0), soft=0.2, noise=Noise(rng, 8), amp=0.15))
    if rng.random() < 0.2:
        L.append(_dots(rng, col(rng, "red"), int(rng.integers(3, 10)), (0.02, 0.05), rmax=0.5))
    return L


def _mel(rng: np.random.Generator, darker: Shade) -> list[Layer]:
    """Melanoma: multicolour blotches, atypical network, streaks, regression, peripheral dots."""
    opts = ["dark_brown", "black", "blue_grey", "brown", "light_brown"]
    L = [_blotches(rng, col(rng, str(c)), 5, rng.uniform(-0.1, 0.7), rng.uniform(0.6, 1.0))
         for c in rng.choice(opts, size=int(rng.integers(2, 4)), replace=False)]
    if rng.random() < 0.55:
        L.append(_network(rng, col(rng, "dark_brown"), rng.uniform(9, 14), rng.uniform(-0.2, 0.8), rng.uniform(0.5, 0.9)))
    if rng.random() < 0.5:
        L.append(_streaks(rng, col(rng, "dark_brown"), int(rng.integers(8, 20)), rng.uniform(0.6, 1.0)))
    if rng.random() < 0.4:
        L.append(_blotches(rng, col(rng, "white"), 6, rng.uniform(0.5, 1.1), rng.uniform(0.4, 0.8)))
    if rng.random() < 0.4:
        L.append(_dots(rng, col(rng, "black"), int(rng.integers(4, 20)), (0.02, 0.06), rmax=1.0, rmin=0.3))
    return L


def _nv(rng: np.random.Generator, darker: Shade) -> list[Layer]:
    """Nevus: fine regular network, sometimes globules, a darker centre or a blotch."""
    L = [_network(rng, darker(rng.uniform(0.55, 0.8)), rng.uniform(14, 22), rng.uniform(-0.4, 0.4), rng.uniform(0.5, 0.9), extent=rng.uniform(0.9, 1.05))]
    if rng.random() < 0.35:
        L.append(_dots(rng, darker(0.6), int(rng.integers(5, 25)), (0.03, 0.07)))
    if rng.random() < 0.2:
        L.append(_radial(darker(0.7), -1.0, 0.5, 0.6, soft=0.3))
    if rng.random() < 0.1:
        L.append(_blotches(rng, col(rng, "dark_brown"), 4, 0.9, 0.6))
    return L


def _pbk(rng: np.random.Generator, darker: Shade) -> list[Layer]:
    """Pigmented benign keratosis: fingerprint ridges, sometimes blotches, streaks or network."""
    L = [_ridges(rng, darker(rng.uniform(0.6, 0.8)), rng.uniform(14, 24), rng.uniform(0.5, 0.9))]
    if rng.random() < 0.4:
        L.append(_blotches(rng, darker(0.75), 5, rng.uniform(0.0, 0.8), 0.6))
    if rng.random() < 0.25:
        L.append(_streaks(rng, darker(0.7), int(rng.integers(10, 24)), 0.5))
    if rng.random() < 0.2:
        L.append(_network(rng, darker(0.7), rng.uniform(14, 20), 0.0, 0.5))
    return L


def _sk(rng: np.random.Generator, darker: Shade) -> list[Layer]:
    """Seborrheic keratosis: cerebriform fissures, milia-like dots, comedo-like openings."""
    L = [_fissures(rng, darker(rng.uniform(0.5, 0.75)), int(rng.integers(4, 8)), rng.uniform(0.5, 0.9))]
    L.append(_dots(rng, col(rng, "keratin"), int(rng.integers(5, 16)), (0.04, 0.08), strength=rng.uniform(0.7, 1.0)))
    if rng.random() < 0.6:
        L.append(_dots(rng, col(rng, "dark_brown"), int(rng.integers(3, 12)), (0.03, 0.06)))
    if rng.random() < 0.25:
        L.append(_ridges(rng, darker(0.7), rng.uniform(10, 18), 0.5))
    return L


def _scc(rng: np.random.Generator, darker: Shade) -> list[Layer]:
    """Squamous cell carcinoma: keratin centre, dotted vessels, sometimes a blood crust."""
    L = [_radial(col(rng, "keratin"), -1.0, rng.uniform(0.4, 0.75), rng.uniform(0.7, 1.0), soft=0.25, noise=Noise(rng, 8), amp=0.25)]
    L.append(_dots(rng, col(rng, "red"), int(rng.integers(6, 30)), (0.025, 0.05), rmin=0.3, strength=rng.uniform(0.6, 1.0)))
    if rng.random() < 0.35:
        L.append(_blotches(rng, col(rng, "dark_red"), 5, rng.uniform(0.5, 1.1), 0.9))
    if rng.random() < 0.25:
        L.append(_vessels(rng, col(rng, "red"), 1, 3, 0.02, 0.6))
    if rng.random() < 0.2:
        L.append(_blotches(rng, col(rng, "light_brown"), 5, 0.6, 0.5))
    return L


def _vasc(rng: np.random.Generator, darker: Shade) -> list[Layer]:
    """Vascular lesion: red to purple lobules separated by pale septa."""
    cols = [col(rng, c) for c in ("red", "purple", "dark_red")]
    L = [_lobules(rng, cols, int(rng.integers(4, 12)), rng.uniform(0.7, 1.0))]
    if rng.random() < 0.3:
        L.append(_blotches(rng, col(rng, "blue_grey"), 5, 0.6, 0.5))
    if rng.random() < 0.2:
        L.append(_blotches(rng, col(rng, "white"), 6, 0.9, 0.5))
    return L


# per-class recipe, by short code: each draws its layers in a fixed order from the texture stream
_RECIPES: dict[str, Callable[[np.random.Generator, Shade], list[Layer]]] = dict(
    AK=_ak, BCC=_bcc, DF=_df, MEL=_mel, NV=_nv, PBK=_pbk, SK=_sk, SCC=_scc, VASC=_vasc)
assert set(_RECIPES) == {c.code for c in ISIC9}


def class_textures(ci: int, rng: np.random.Generator, base: np.ndarray) -> list[Layer]:
    """Per-class texture layers (each drawn with a class-dependent probability)."""

    def darker(k: float) -> np.ndarray:
        """A jittered shade of the base colour, so a texture stays in the lesion's own hue."""
        return np.clip(base * k + rng.normal(0, 0.02, 3), 0, 1)

    return _RECIPES[ISIC9[ci].code](rng, darker)
