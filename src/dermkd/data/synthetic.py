"""Procedural 9-class "lesion-like" dermoscopy images: the project's embedded data set.

No real data can be downloaded in every environment, so `make demo` and the test suite
train on images drawn by this module. Each image is a skin-tone field (tone varies from
light to dark, with an illumination gradient, a soft vignette, sometimes the dark round
field stop of a dermatoscope, low-frequency mottling, fine sensor noise and a few thin
dark hairs) with one lesion near the centre (position jitter, size, aspect, rotation).
The lesion outline is r(theta) = R * (1 + sum_k a_k sin(k*theta + phi_k)) with
class-dependent amplitudes a_k, and the border is a sigmoid of r/r(theta) whose width
sets how sharp it is. The classes, in `ISIC9` order, look like this:

- actinic keratosis: pink-red, poorly defined border, faint; white scale flakes, white
  follicle openings in a red "strawberry" pseudo-network.
- basal cell carcinoma: pearly pink, fairly sharp; branching red (arborising) vessels,
  sometimes blue-grey ovoid nests or a dark red ulceration.
- dermatofibroma: small; a central white scar-like patch inside a brown ring that fades
  into a delicate peripheral network.
- melanoma: large, asymmetric, irregular border; several colours (brown, dark brown,
  black, blue-grey) in blotches, atypical thick network, peripheral streaks, whitish
  regression areas.
- nevus: regular, round-to-oval, sharp border; homogeneous brown with a fine reticular
  network, sometimes darker centre or a few globules.
- pigmented benign keratosis: light brown, moderately irregular ("moth-eaten") border;
  fingerprint-like parallel ridges.
- seborrheic keratosis: waxy tan to brown, sharp "stuck-on" border; cerebriform
  fissures, white milia-like dots and dark comedo-like openings.
- squamous cell carcinoma: pink, irregular; white-yellow keratin centre, dotted /
  glomerular red vessels, sometimes a dark blood crust.
- vascular lesion: red to purple lobules (lacunae) separated by paler septa, sharp.

Why the classes overlap (on purpose, so the task is learnable but not trivial): colour
palettes are shared (nevus/melanoma/dermatofibroma are brown, PBK/SK are tan, AK/BCC/SCC
are pink), every texture appears in more than one class with class-dependent
probability, every parameter is jittered, and every image gets a random global
brightness, contrast, saturation, white-balance and hue shift plus skin tone and
illumination that are independent of the class. A colour-histogram classifier is well
above chance but clearly imperfect; shape and texture carry the rest of the signal.

Determinism: image (seed, class, index) is drawn from `SeedSequence([seed, class,
index])`, so it never depends on how many other images are generated. All scene
parameters are drawn before anything whose size depends on the resolution, so the same
image at 64 and 112 px shows the same scene. Sizes under 64 px are rendered at twice
the size and box-downsampled (anti-aliasing).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from dermkd.data.taxonomy import ISIC9
from dermkd.errors import DermkdError
from dermkd.io import atomic_open

GENERATOR_VERSION = 1
MARKER_NAME = ".dermkd-synthetic.json"
MIN_SIZE = 16
MAIN_COLOUR_P = 0.8  # share of a class drawn in its own typical colour

# --------------------------------------------------------------------------- colours
# RGB in [0, 1].
_C = {
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


@dataclass(frozen=True)
class _Spec:
    """Per-class distribution of lesion parameters (ranges are uniform unless noted)."""

    base: tuple[str, ...]  # base colours: the first with p=MAIN_COLOUR_P, else one of the others
    radius: tuple[float, float]  # R in normalised units (image half-width = 1)
    irregular: tuple[float, float]  # scale of the border harmonics a_k
    asym: tuple[float, float]  # k=1 harmonic (asymmetry / off-centre bulge)
    border: tuple[float, float]  # sigmoid width in units of r/r(theta): small = sharp
    opacity: tuple[float, float]  # how strongly the lesion covers the skin
    aspect: tuple[float, float]  # ellipse aspect ratio


_SPECS: tuple[_Spec, ...] = (
    # 0 actinic keratosis
    _Spec(base=("red", "pink", "pink_brown"),
          radius=(0.59, 0.92), irregular=(0.06, 0.16), asym=(0.0, 0.10),
          border=(0.10, 0.22), opacity=(0.60, 0.90), aspect=(0.75, 1.0)),
    # 1 basal cell carcinoma
    _Spec(base=("pearl", "pink", "grey_brown"),
          radius=(0.47, 0.85), irregular=(0.04, 0.12), asym=(0.0, 0.08),
          border=(0.04, 0.10), opacity=(0.55, 0.90), aspect=(0.75, 1.0)),
    # 2 dermatofibroma
    _Spec(base=("light_brown", "pink_brown", "brown"),
          radius=(0.40, 0.62), irregular=(0.02, 0.07), asym=(0.0, 0.05),
          border=(0.08, 0.16), opacity=(0.60, 0.90), aspect=(0.80, 1.0)),
    # 3 melanoma
    _Spec(base=("dark_brown", "brown", "black", "grey_brown"),
          radius=(0.66, 0.92), irregular=(0.10, 0.26), asym=(0.08, 0.25),
          border=(0.02, 0.08), opacity=(0.80, 1.00), aspect=(0.65, 1.0)),
    # 4 nevus
    _Spec(base=("brown", "light_brown", "dark_brown", "orange_brown"),
          radius=(0.44, 0.80), irregular=(0.01, 0.05), asym=(0.0, 0.04),
          border=(0.02, 0.06), opacity=(0.70, 1.00), aspect=(0.80, 1.0)),
    # 5 pigmented benign keratosis
    _Spec(base=("orange_brown", "light_brown", "tan", "brown"),
          radius=(0.54, 0.92), irregular=(0.06, 0.16), asym=(0.0, 0.10),
          border=(0.03, 0.08), opacity=(0.60, 0.95), aspect=(0.65, 1.0)),
    # 6 seborrheic keratosis
    _Spec(base=("grey_brown", "tan", "dark_brown", "light_brown"),
          radius=(0.49, 0.90), irregular=(0.03, 0.10), asym=(0.0, 0.08),
          border=(0.015, 0.05), opacity=(0.75, 1.00), aspect=(0.70, 1.0)),
    # 7 squamous cell carcinoma
    _Spec(base=("pink", "pearl", "red"),
          radius=(0.49, 0.90), irregular=(0.08, 0.20), asym=(0.02, 0.12),
          border=(0.05, 0.12), opacity=(0.60, 0.95), aspect=(0.70, 1.0)),
    # 8 vascular lesion
    _Spec(base=("purple", "red", "dark_red", "pink"),
          radius=(0.39, 0.75), irregular=(0.02, 0.08), asym=(0.0, 0.06),
          border=(0.02, 0.06), opacity=(0.80, 1.00), aspect=(0.75, 1.0)),
)

assert len(_SPECS) == len(ISIC9)


# --------------------------------------------------------------------------- helpers
def _col(rng: np.random.Generator, name: str, jitter: float = 0.02) -> np.ndarray:
    """A palette colour with per-image lightness and per-channel jitter."""
    c = np.asarray(_C[name], dtype=np.float64) * rng.uniform(0.92, 1.08) + rng.normal(0.0, jitter, 3)
    return np.clip(c, 0.0, 1.0)


def _mix(img: np.ndarray, colour: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Alpha-blend `colour` (3,) or (n, n, 3) onto img with a (n, n) weight map."""
    w = np.clip(weight, 0.0, 1.0)[..., None]
    return img * (1.0 - w) + colour * w


class _Noise:
    """Smooth value noise: a coarse Gaussian grid drawn now, bilinearly sampled later.

    The grid is drawn from the rng at construction, so the draw does not depend on the
    output resolution; `at(x, y)` samples it at normalised coordinates in [-1, 1].
    """

    def __init__(self, rng: np.random.Generator, cells: int):
        self.cells = cells
        self.grid = rng.standard_normal((cells + 1, cells + 1))

    def at(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
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


def _seg_dist(x: np.ndarray, y: np.ndarray, segs: np.ndarray) -> np.ndarray:
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


def _line(dist: np.ndarray, half_width: np.ndarray | float, px: float) -> np.ndarray:
    """Anti-aliased coverage of a line of given half width (normalised units)."""
    hw = np.maximum(half_width, 0.25 * px)
    cov = np.clip((hw + 0.5 * px - dist) / px, 0.0, 1.0)
    return cov * np.minimum(1.0, 2.0 * hw / px)


def _blobs(x, y, centres: np.ndarray, radii: np.ndarray, px: float) -> np.ndarray:
    """Soft round dots: max coverage over dots, centres (m, 2), radii (m,)."""
    if len(centres) == 0:
        return np.zeros_like(x)
    d = np.hypot(x - centres[:, 0, None, None], y - centres[:, 1, None, None])
    r = np.maximum(radii, 0.5 * px)[:, None, None]
    return np.clip((r + 0.5 * px - d) / (px + 0.3 * r), 0.0, 1.0).max(axis=0)


def _points_in(rng: np.random.Generator, m: int, rmax: float, rmin: float = 0.0) -> np.ndarray:
    """m points uniformly in an annulus of the unit lesion frame, as (m, 2) (u, v)."""
    rr = np.sqrt(rng.uniform(rmin * rmin, rmax * rmax, m))
    th = rng.uniform(0.0, 2.0 * np.pi, m)
    return np.stack([rr * np.cos(th), rr * np.sin(th)], axis=1)


def _tree(rng: np.random.Generator, roots: int, depth: int, step: tuple[float, float], spread: float) -> np.ndarray:
    """Segments (m, 5) = x0, y0, x1, y1, generation of a randomly branching tree."""
    segs: list[tuple[float, float, float, float, float]] = []
    frontier = []
    for _ in range(roots):
        p = _points_in(rng, 1, 0.7)[0]
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


def _hue_matrix(angle: float) -> np.ndarray:
    """Rotation of RGB about the grey axis (a hue shift)."""
    k = np.ones(3) / np.sqrt(3.0)
    kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + np.sin(angle) * kx + (1.0 - np.cos(angle)) * (kx @ kx)


# --------------------------------------------------------------------------- scene
class _Frame:
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


def _draw_scene(class_index: int, rngs: list[np.random.Generator]):
    """Draw every resolution-independent parameter; return a painter closure."""
    spec = _SPECS[class_index]
    r_bg, r_les, r_tex, r_hair, r_glob = rngs[:5]

    # ---- background skin ----
    t = r_bg.beta(1.3, 3.5)  # mostly fair skin, as in ISIC
    light, dark = np.array([0.94, 0.80, 0.70]), np.array([0.66, 0.47, 0.36])
    skin = light * (1 - t) + dark * t + r_bg.normal(0.0, 0.025, 3)
    skin = skin + np.array([0.03, -0.01, -0.01]) * r_bg.uniform(-0.5, 1.5)  # redness
    grad_ang = r_bg.uniform(0.0, 2.0 * np.pi)
    grad_amp = r_bg.uniform(0.0, 0.12)
    vignette = r_bg.uniform(0.05, 0.3)
    field_stop = r_bg.random() < 0.15
    stop_r = r_bg.uniform(0.95, 1.3)
    mottle = _Noise(r_bg, 6)
    mottle_amp = r_bg.uniform(0.01, 0.05)

    # ---- lesion geometry ----
    cx, cy = np.clip(r_les.normal(0.0, 0.09, 2), -0.25, 0.25)
    rot = r_les.uniform(0.0, 2.0 * np.pi)
    aspect = r_les.uniform(*spec.aspect)
    if r_les.random() < 0.5:
        aspect = 1.0 / aspect
    R = r_les.uniform(*spec.radius)
    irr = r_les.uniform(*spec.irregular)
    ks = np.arange(1, 9)
    amps = irr * r_les.uniform(0.2, 1.0, ks.size) / ks**0.7
    amps[0] = r_les.uniform(*spec.asym)
    phases = r_les.uniform(0.0, 2.0 * np.pi, ks.size)
    scale = 1.0 + np.abs(amps).sum()
    amps = amps / max(scale / 1.6, 1.0)  # keep r(theta) > 0
    border = r_les.uniform(*spec.border)
    opacity = r_les.uniform(*spec.opacity)
    edge_noise = _Noise(r_les, 10)
    edge_amp = border * r_les.uniform(0.5, 2.0)
    alt = r_les.random() >= MAIN_COLOUR_P
    base = _col(r_les, spec.base[1 + r_les.integers(len(spec.base) - 1)] if alt else spec.base[0])
    centre_shift = r_les.normal(0.0, 0.06) - 0.04  # darker (neg) or lighter centre

    tex = _textures(class_index, r_tex, base)

    # ---- hairs ----
    n_hairs = int(r_hair.choice([0, 0, 0, 1, 2, 3, 5]))
    hairs = []
    for _ in range(n_hairs):
        p0 = r_hair.uniform(-1.2, 1.2, 2)
        ang = r_hair.uniform(0.0, 2.0 * np.pi)
        length = r_hair.uniform(0.6, 2.0)
        p2 = p0 + length * np.array([np.cos(ang), np.sin(ang)])
        p1 = (p0 + p2) / 2 + r_hair.normal(0.0, 0.25, 2)
        hairs.append((p0, p1, p2, r_hair.uniform(0.006, 0.014), r_hair.uniform(0.05, 0.25)))

    # ---- global photometric shift ----
    bright = r_glob.uniform(0.93, 1.07)
    contrast = r_glob.uniform(0.9, 1.1)
    sat = r_glob.uniform(0.9, 1.1)
    wb = r_glob.normal(1.0, 0.02, 3)
    hue = _hue_matrix(r_glob.normal(0.0, 0.04))
    noise_sd = r_glob.uniform(0.005, 0.03)

    def paint(n: int, r_pix: np.random.Generator) -> np.ndarray:
        f = _Frame(n, cx, cy, rot, aspect)
        x, y = f.x, f.y
        # skin
        img = np.broadcast_to(skin, (n, n, 3)).copy()
        img = img * (1.0 + mottle_amp * mottle.at(x, y))[..., None]
        # lesion mask
        r_th = R * (1.0 + (amps[:, None, None] * np.sin(ks[:, None, None] * f.theta + phases[:, None, None])).sum(0))
        d = f.rho / r_th + edge_amp * edge_noise.at(x, y)
        mask = opacity / (1.0 + np.exp(np.clip((d - 1.0) / border, -50, 50)))
        # lesion colour: base, radial lightness, then texture layers in its frame
        les = np.broadcast_to(base, (n, n, 3)) * (1.0 + centre_shift * np.clip(1.0 - d, 0.0, 1.0))[..., None]
        lu, lv = f.u / R, f.v / R  # unit lesion frame
        f.lpx = f.px / R
        extra = np.zeros((n, n))
        for layer in tex:
            colour, weight, outside = layer(f, lu, lv, d)
            les = _mix(les, colour, weight)
            if outside:
                extra = np.maximum(extra, weight)
        mask = np.maximum(mask, extra * opacity)
        img = _mix(img, les, mask)
        # illumination: gradient and vignette
        r2 = x * x + y * y
        shade = 1.0 + grad_amp * (np.cos(grad_ang) * x + np.sin(grad_ang) * y) - vignette * (r2 / 2.0) ** 1.5
        img = img * shade[..., None]
        # hairs
        if hairs:  # all hairs at once: the nearest segment decides width and tone
            ts = np.linspace(0.0, 1.0, 9)[:, None]
            segs, hws, tones = [], [], []
            for p0, p1, p2, hw, tone in hairs:
                pts = (1 - ts) ** 2 * p0 + 2 * (1 - ts) * ts * p1 + ts**2 * p2
                segs.append(np.concatenate([pts[:-1], pts[1:]], axis=1))
                hws += [hw] * (len(ts) - 1)
                tones += [tone] * (len(ts) - 1)
            hw_a, tone_a = np.asarray(hws), np.asarray(tones)
            excess = _seg_dist(x, y, np.concatenate(segs)) - hw_a[:, None, None]
            k = excess.argmin(0)
            hw_k = hw_a[k]
            cov = _line(np.take_along_axis(excess, k[None], 0)[0] + hw_k, hw_k, f.px)
            tone_k = tone_a[k][..., None]
            img = _mix(img, tone_k * np.array([1.0, 0.8, 0.7]), cov)
        if field_stop:
            img = img * np.clip((stop_r - np.sqrt(r2)) / (3 * f.px) + 0.5, 0.0, 1.0)[..., None]
        # global photometric shift
        grey = img.mean(axis=2, keepdims=True)
        img = grey + sat * (img - grey)
        img = img @ hue.T * wb
        m = img.mean()
        img = (m + contrast * (img - m)) * bright
        img = img + r_pix.normal(0.0, noise_sd, img.shape)
        return img

    return paint


# --------------------------------------------------------------------------- textures
# A texture layer is drawn now (all random draws happen here) and returns a function
# (frame, lu, lv, d) -> (colour, weight map, extends_outside_mask).


def _network(rng, colour, freq, width, strength, extent=1.0, inner=0.0):
    warp = _Noise(rng, 8)
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


def _dots(rng, colour, m, rad, rmax=0.85, rmin=0.0, strength=1.0, outside=False):
    centres = _points_in(rng, m, rmax, rmin)
    radii = rng.uniform(rad[0], rad[1], m)

    def f(fr, lu, lv, d):
        return colour, strength * _blobs(lu, lv, centres, radii, fr.lpx), outside

    return f


def _blotches(rng, colour, cells, thresh, strength, inner=0.95):
    nz = _Noise(rng, cells)
    off = rng.uniform(-1.0, 1.0, 2)

    def f(fr, lu, lv, d):
        v = nz.at(np.clip(lu * 0.5 + off[0] * 0.3, -1, 1), np.clip(lv * 0.5 + off[1] * 0.3, -1, 1))
        w = np.clip((v - thresh) / 0.35, 0.0, 1.0) * np.clip((inner - d) / 0.2, 0.0, 1.0)
        return colour, strength * w, False

    return f


def _streaks(rng, colour, count, strength):
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


def _ridges(rng, colour, freq, strength, width=0.4):
    """Fingerprint-like parallel curved ridges (or cerebriform fissures)."""
    ang = rng.uniform(0.0, np.pi)
    warp = _Noise(rng, 5)
    warp_amp = rng.uniform(0.5, 2.0)

    def f(fr, lu, lv, d):
        s = np.cos(freq * (np.cos(ang) * lu + np.sin(ang) * lv) + warp_amp * warp.at(fr.x, fr.y) * 3.0)
        w = np.clip((s - (1 - 2 * width)) / 0.5, 0.0, 1.0) * np.clip((0.95 - d) / 0.2, 0.0, 1.0)
        return colour, strength * w, False

    return f


def _fissures(rng, colour, cells, strength):
    nz = _Noise(rng, cells)

    def f(fr, lu, lv, d):
        v = nz.at(np.clip(lu * 0.55, -1, 1), np.clip(lv * 0.55, -1, 1))
        w = np.exp(-((v / 0.18) ** 2)) * np.clip((0.9 - d) / 0.2, 0.0, 1.0)
        return colour, strength * w, False

    return f


def _vessels(rng, colour, roots, depth, width, strength):
    segs = _tree(rng, roots, depth, (0.25, 0.45), 0.6)

    def f(fr, lu, lv, d):
        if len(segs) == 0:
            return colour, np.zeros_like(d), False
        dist = _seg_dist(lu, lv, segs[:, :4])
        hw = (width * 0.75 ** segs[:, 4])[:, None, None]
        cov = _line(dist, hw, fr.lpx).max(0)
        return colour, strength * cov * np.clip((1.1 - d) / 0.2, 0.0, 1.0), False

    return f


def _radial(colour, lo, hi, strength, soft=0.15, noise=None, amp=0.0):
    """Weight peaking for lo < d < hi (a ring, or a central patch when lo < 0)."""

    def f(fr, lu, lv, d):
        dd = d + (amp * noise.at(fr.x, fr.y) if noise is not None else 0.0)
        w = np.clip((dd - lo) / soft, 0.0, 1.0) * np.clip((hi - dd) / soft, 0.0, 1.0)
        return colour, strength * w, False

    return f


def _lobules(rng, colours, m, strength):
    centres = _points_in(rng, m, 0.7)
    radii = rng.uniform(0.22, 0.45, m)
    which = rng.integers(len(colours), size=m)
    cols = np.stack(colours)[which]
    septum_col = _col(rng, "pink")
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


def _textures(ci: int, rng: np.random.Generator, base: np.ndarray) -> list:
    """Per-class texture layers (each drawn with a class-dependent probability)."""
    L: list = []
    p = rng.random  # p() < prob decides each optional layer

    def darker(k):
        return np.clip(base * k + rng.normal(0, 0.02, 3), 0, 1)

    name = ISIC9[ci].code
    if name == "AK":
        L.append(_blotches(rng, _col(rng, "red"), 6, rng.uniform(-0.2, 0.6), rng.uniform(0.3, 0.7)))
        if p() < 0.7:
            L.append(_network(rng, _col(rng, "red"), rng.uniform(14, 20), rng.uniform(-0.2, 0.6), rng.uniform(0.3, 0.6)))
        L.append(_dots(rng, _col(rng, "white"), int(rng.integers(6, 20)), (0.03, 0.06), strength=rng.uniform(0.5, 0.9)))
        if p() < 0.8:
            L.append(_blotches(rng, _col(rng, "white"), 12, rng.uniform(0.5, 1.1), rng.uniform(0.5, 0.9)))
        if p() < 0.15:
            L.append(_network(rng, darker(0.7), 14, 0.0, 0.4))
    elif name == "BCC":
        L.append(_vessels(rng, _col(rng, "red"), int(rng.integers(1, 4)), int(rng.integers(3, 6)), rng.uniform(0.02, 0.04), rng.uniform(0.6, 1.0)))
        if p() < 0.65:
            L.append(_dots(rng, _col(rng, "blue_grey"), int(rng.integers(2, 7)), (0.08, 0.2), strength=rng.uniform(0.6, 0.95)))
        if p() < 0.25:
            L.append(_blotches(rng, _col(rng, "dark_red"), 5, rng.uniform(0.6, 1.2), 0.9))
        if p() < 0.35:
            L.append(_blotches(rng, _col(rng, "white"), 6, rng.uniform(0.6, 1.2), 0.5))
        if p() < 0.2:
            L.append(_dots(rng, _col(rng, "brown"), int(rng.integers(3, 10)), (0.03, 0.07)))
    elif name == "DF":
        ring = _col(rng, rng.choice(["brown", "brown", "dark_brown", "light_brown"]))
        L.append(_radial(ring, 0.35, rng.uniform(0.85, 1.05), rng.uniform(0.6, 0.95), soft=0.2))
        if p() < 0.7:
            L.append(_network(rng, darker(0.6), rng.uniform(16, 24), rng.uniform(-0.3, 0.3), 0.6, extent=1.0, inner=0.5))
        L.append(_radial(_col(rng, "white"), -1.0, rng.uniform(0.35, 0.6), rng.uniform(0.7, 1.0), soft=0.2, noise=_Noise(rng, 8), amp=0.15))
        if p() < 0.2:
            L.append(_dots(rng, _col(rng, "red"), int(rng.integers(3, 10)), (0.02, 0.05), rmax=0.5))
    elif name == "MEL":
        opts = ["dark_brown", "black", "blue_grey", "brown", "light_brown"]
        for c in rng.choice(opts, size=int(rng.integers(2, 4)), replace=False):
            L.append(_blotches(rng, _col(rng, str(c)), 5, rng.uniform(-0.1, 0.7), rng.uniform(0.6, 1.0)))
        if p() < 0.55:
            L.append(_network(rng, _col(rng, "dark_brown"), rng.uniform(9, 14), rng.uniform(-0.2, 0.8), rng.uniform(0.5, 0.9)))
        if p() < 0.5:
            L.append(_streaks(rng, _col(rng, "dark_brown"), int(rng.integers(8, 20)), rng.uniform(0.6, 1.0)))
        if p() < 0.4:
            L.append(_blotches(rng, _col(rng, "white"), 6, rng.uniform(0.5, 1.1), rng.uniform(0.4, 0.8)))
        if p() < 0.4:
            L.append(_dots(rng, _col(rng, "black"), int(rng.integers(4, 20)), (0.02, 0.06), rmax=1.0, rmin=0.3))
    elif name == "NV":
        L.append(_network(rng, darker(rng.uniform(0.55, 0.8)), rng.uniform(14, 22), rng.uniform(-0.4, 0.4), rng.uniform(0.5, 0.9), extent=rng.uniform(0.9, 1.05)))
        if p() < 0.35:
            L.append(_dots(rng, darker(0.6), int(rng.integers(5, 25)), (0.03, 0.07)))
        if p() < 0.2:
            L.append(_radial(darker(0.7), -1.0, 0.5, 0.6, soft=0.3))
        if p() < 0.1:
            L.append(_blotches(rng, _col(rng, "dark_brown"), 4, 0.9, 0.6))
    elif name == "PBK":
        L.append(_ridges(rng, darker(rng.uniform(0.6, 0.8)), rng.uniform(14, 24), rng.uniform(0.5, 0.9)))
        if p() < 0.4:
            L.append(_blotches(rng, darker(0.75), 5, rng.uniform(0.0, 0.8), 0.6))
        if p() < 0.25:
            L.append(_streaks(rng, darker(0.7), int(rng.integers(10, 24)), 0.5))
        if p() < 0.2:
            L.append(_network(rng, darker(0.7), rng.uniform(14, 20), 0.0, 0.5))
    elif name == "SK":
        L.append(_fissures(rng, darker(rng.uniform(0.5, 0.75)), int(rng.integers(4, 8)), rng.uniform(0.5, 0.9)))
        L.append(_dots(rng, _col(rng, "keratin"), int(rng.integers(5, 16)), (0.04, 0.08), strength=rng.uniform(0.7, 1.0)))
        if p() < 0.6:
            L.append(_dots(rng, _col(rng, "dark_brown"), int(rng.integers(3, 12)), (0.03, 0.06)))
        if p() < 0.25:
            L.append(_ridges(rng, darker(0.7), rng.uniform(10, 18), 0.5))
    elif name == "SCC":
        L.append(_radial(_col(rng, "keratin"), -1.0, rng.uniform(0.4, 0.75), rng.uniform(0.7, 1.0), soft=0.25, noise=_Noise(rng, 8), amp=0.25))
        L.append(_dots(rng, _col(rng, "red"), int(rng.integers(6, 30)), (0.025, 0.05), rmin=0.3, strength=rng.uniform(0.6, 1.0)))
        if p() < 0.35:
            L.append(_blotches(rng, _col(rng, "dark_red"), 5, rng.uniform(0.5, 1.1), 0.9))
        if p() < 0.25:
            L.append(_vessels(rng, _col(rng, "red"), 1, 3, 0.02, 0.6))
        if p() < 0.2:
            L.append(_blotches(rng, _col(rng, "light_brown"), 5, 0.6, 0.5))
    elif name == "VASC":
        cols = [_col(rng, c) for c in ("red", "purple", "dark_red")]
        L.append(_lobules(rng, cols, int(rng.integers(4, 12)), rng.uniform(0.7, 1.0)))
        if p() < 0.3:
            L.append(_blotches(rng, _col(rng, "blue_grey"), 5, 0.6, 0.5))
        if p() < 0.2:
            L.append(_blotches(rng, _col(rng, "white"), 6, 0.9, 0.5))
    return L


# --------------------------------------------------------------------------- API
def _check_int(name: str, value: object, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
        raise DermkdError(f"synthetic data: {name} must be an integer >= {lo}, got {value!r}")
    return int(value)


def render_lesion(class_index: int, index: int, size: int, seed: int = 0) -> np.ndarray:
    """One synthetic image of class `ISIC9[class_index]`: (size, size, 3) uint8 RGB.

    The same (seed, class_index, index, size) always gives identical pixels.
    """
    ci = _check_int("class_index", class_index, 0)
    if ci >= len(ISIC9):
        raise DermkdError(f"synthetic data: class_index must be < {len(ISIC9)}, got {class_index!r}")
    idx = _check_int("index", index, 0)
    size = _check_int("size", size, MIN_SIZE)
    seed = _check_int("seed", seed, 0)

    children = np.random.SeedSequence([seed, ci, idx]).spawn(6)
    rngs = [np.random.default_rng(s) for s in children]
    paint = _draw_scene(ci, rngs[:5])
    ss = 2 if size < 64 else 1
    img = paint(size * ss, rngs[5])
    if ss > 1:
        img = img.reshape(size, ss, size, ss, 3).mean(axis=(1, 3))
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _marker(per_class: int, size: int, seed: int) -> dict:
    return {
        "per_class": per_class,
        "size": size,
        "seed": seed,
        "generator_version": GENERATOR_VERSION,
        "classes": [c.name for c in ISIC9],
    }


def generate_dataset(out_dir: str | Path, per_class: int, size: int, seed: int = 0) -> Path:
    """Write `<out_dir>/<class name>/synth_<index:04d>.png` for the 9 classes.

    The marker `<out_dir>/.dermkd-synthetic.json` is written last; if it already holds
    the same parameters nothing is rewritten. Returns `out_dir` as a Path.
    """
    per_class = _check_int("per_class", per_class, 1)
    size = _check_int("size", size, MIN_SIZE)
    seed = _check_int("seed", seed, 0)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise DermkdError(f"synthetic data: {out} exists and is not a folder")
    marker_path = out / MARKER_NAME
    want = _marker(per_class, size, seed)
    if marker_path.is_file():
        try:
            have = json.loads(marker_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            have = None
        if have == want:
            return out
        marker_path.unlink()  # a half-regenerated folder must not look complete

    for ci, cls in enumerate(ISIC9):
        folder = out / cls.name
        folder.mkdir(parents=True, exist_ok=True)
        keep = set()
        for i in range(per_class):
            p = folder / f"synth_{i:04d}.png"
            keep.add(p.name)
            arr = render_lesion(ci, i, size, seed)
            with atomic_open(p, "wb") as fh:
                Image.fromarray(arr).save(fh, format="PNG")
        # images of an earlier, larger run would otherwise leak into this data set
        for stale in folder.glob("synth_*.png"):
            if stale.name not in keep:
                stale.unlink()

    with atomic_open(marker_path, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(want, indent=2) + "\n")
    return out
