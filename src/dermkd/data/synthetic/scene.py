"""The scene: per-class lesion parameter ranges, and the draw-then-paint of one image.

`draw_scene` makes every random draw that does not depend on the resolution and returns
a painter that renders the scene at any pixel size, so the same image at 64 and 112 px
shows the same scene.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from dermkd.data.synthetic.primitives import (
    Frame,
    Noise,
    col,
    hue_matrix,
    line,
    mix,
    seg_dist,
)
from dermkd.data.synthetic.textures import Layer, class_textures
from dermkd.data.taxonomy import ISIC9

MAIN_COLOUR_P = 0.8  # share of a class drawn in its own typical colour


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


_HARMONICS = np.arange(1, 9)  # k of the border harmonics a_k sin(k*theta + phi_k)


@dataclass(frozen=True)
class _Skin:
    """Background skin and illumination, kept apart so they never depend on the class."""

    colour: np.ndarray  # RGB skin tone
    grad_ang: float  # direction of the illumination gradient
    grad_amp: float  # strength of the illumination gradient
    vignette: float  # darkening towards the corners
    field_stop: bool  # whether the dark round field stop of a dermatoscope shows
    stop_r: float  # radius of that field stop
    mottle: Noise  # low-frequency skin mottling
    mottle_amp: float


def _draw_skin(rng: np.random.Generator) -> _Skin:
    """Skin tone and illumination from the background stream (keywords are drawn in order)."""
    t = rng.beta(1.3, 3.5)  # mostly fair skin, as in ISIC
    light, dark = np.array([0.94, 0.80, 0.70]), np.array([0.66, 0.47, 0.36])
    skin = light * (1 - t) + dark * t + rng.normal(0.0, 0.025, 3)
    skin = skin + np.array([0.03, -0.01, -0.01]) * rng.uniform(-0.5, 1.5)  # redness
    return _Skin(colour=skin, grad_ang=rng.uniform(0.0, 2.0 * np.pi), grad_amp=rng.uniform(0.0, 0.12),
                 vignette=rng.uniform(0.05, 0.3), field_stop=rng.random() < 0.15, stop_r=rng.uniform(0.95, 1.3),
                 mottle=Noise(rng, 6), mottle_amp=rng.uniform(0.01, 0.05))


@dataclass(frozen=True)
class _Lesion:
    """Lesion geometry and colour, everything the class decides apart from the textures."""

    cx: float  # centre
    cy: float
    rot: float  # rotation of the lesion frame
    aspect: float  # ellipse aspect ratio
    radius: float  # R
    amps: np.ndarray  # border harmonic amplitudes a_k
    phases: np.ndarray  # border harmonic phases phi_k
    border: float  # sigmoid width of the border
    opacity: float
    edge_noise: Noise  # small-scale raggedness of the border
    edge_amp: float
    base: np.ndarray  # RGB base colour
    centre_shift: float  # darker (neg) or lighter centre


def _draw_lesion(spec: _Spec, rng: np.random.Generator) -> _Lesion:
    """Lesion geometry and base colour from the lesion stream, in a fixed draw order."""
    cx, cy = np.clip(rng.normal(0.0, 0.09, 2), -0.25, 0.25)
    rot = rng.uniform(0.0, 2.0 * np.pi)
    aspect = rng.uniform(*spec.aspect)
    if rng.random() < 0.5:
        aspect = 1.0 / aspect
    R = rng.uniform(*spec.radius)
    irr = rng.uniform(*spec.irregular)
    amps = irr * rng.uniform(0.2, 1.0, _HARMONICS.size) / _HARMONICS**0.7
    amps[0] = rng.uniform(*spec.asym)
    phases = rng.uniform(0.0, 2.0 * np.pi, _HARMONICS.size)
    scale = 1.0 + np.abs(amps).sum()
    amps = amps / max(scale / 1.6, 1.0)  # keep r(theta) > 0
    border = rng.uniform(*spec.border)
    opacity = rng.uniform(*spec.opacity)
    edge_noise = Noise(rng, 10)
    edge_amp = border * rng.uniform(0.5, 2.0)
    alt = rng.random() >= MAIN_COLOUR_P
    base = col(rng, spec.base[1 + rng.integers(len(spec.base) - 1)] if alt else spec.base[0])
    centre_shift = rng.normal(0.0, 0.06) - 0.04
    return _Lesion(cx=cx, cy=cy, rot=rot, aspect=aspect, radius=R, amps=amps, phases=phases, border=border,
                   opacity=opacity, edge_noise=edge_noise, edge_amp=edge_amp, base=base, centre_shift=centre_shift)


class _Hair(NamedTuple):
    """One thin dark hair: a quadratic Bezier curve with a half-width and a grey tone."""

    p0: np.ndarray
    p1: np.ndarray  # control point
    p2: np.ndarray
    half_width: float
    tone: float


def _draw_hairs(rng: np.random.Generator) -> tuple[_Hair, ...]:
    """A few hairs (often none) from the hair stream, so they never shift the lesion draws."""
    hairs = []
    for _ in range(int(rng.choice([0, 0, 0, 1, 2, 3, 5]))):
        p0 = rng.uniform(-1.2, 1.2, 2)
        ang = rng.uniform(0.0, 2.0 * np.pi)
        length = rng.uniform(0.6, 2.0)
        p2 = p0 + length * np.array([np.cos(ang), np.sin(ang)])
        p1 = (p0 + p2) / 2 + rng.normal(0.0, 0.25, 2)
        hairs.append(_Hair(p0, p1, p2, rng.uniform(0.006, 0.014), rng.uniform(0.05, 0.25)))
    return tuple(hairs)


@dataclass(frozen=True)
class _Photometric:
    """Global camera shift, independent of the class so colour alone cannot tell classes apart."""

    bright: float
    contrast: float
    sat: float  # saturation
    wb: np.ndarray  # per-channel white balance
    hue: np.ndarray  # 3x3 hue rotation
    noise_sd: float  # sensor noise


def _draw_photometric(rng: np.random.Generator) -> _Photometric:
    """The photometric shift from the global stream (keywords are drawn in order)."""
    return _Photometric(bright=rng.uniform(0.93, 1.07), contrast=rng.uniform(0.9, 1.1), sat=rng.uniform(0.9, 1.1),
                        wb=rng.normal(1.0, 0.02, 3), hue=hue_matrix(rng.normal(0.0, 0.04)),
                        noise_sd=rng.uniform(0.005, 0.03))


def _paint_lesion(img: np.ndarray, f: Frame, les: _Lesion, tex: list[Layer]) -> np.ndarray:
    """Blend the lesion (outline mask, radial lightness, texture layers) over the skin image."""
    n = f.n
    arg = _HARMONICS[:, None, None] * f.theta + les.phases[:, None, None]
    r_th = les.radius * (1.0 + (les.amps[:, None, None] * np.sin(arg)).sum(0))
    d = f.rho / r_th + les.edge_amp * les.edge_noise.at(f.x, f.y)
    mask = les.opacity / (1.0 + np.exp(np.clip((d - 1.0) / les.border, -50, 50)))
    # lesion colour: base, radial lightness, then texture layers in its frame
    colour = np.broadcast_to(les.base, (n, n, 3)) * (1.0 + les.centre_shift * np.clip(1.0 - d, 0.0, 1.0))[..., None]
    lu, lv = f.u / les.radius, f.v / les.radius  # unit lesion frame
    f.lpx = f.px / les.radius
    extra = np.zeros((n, n))
    for layer in tex:
        layer_colour, weight, outside = layer(f, lu, lv, d)
        colour = mix(colour, layer_colour, weight)
        if outside:
            extra = np.maximum(extra, weight)
    mask = np.maximum(mask, extra * les.opacity)
    return mix(img, colour, mask)


def _paint_hairs(img: np.ndarray, f: Frame, hairs: tuple[_Hair, ...]) -> np.ndarray:
    """All hairs at once, as polylines, so the nearest segment decides width and tone."""
    ts = np.linspace(0.0, 1.0, 9)[:, None]
    segs, hws, tones = [], [], []
    for p0, p1, p2, hw, tone in hairs:
        pts = (1 - ts) ** 2 * p0 + 2 * (1 - ts) * ts * p1 + ts**2 * p2
        segs.append(np.concatenate([pts[:-1], pts[1:]], axis=1))
        hws += [hw] * (len(ts) - 1)
        tones += [tone] * (len(ts) - 1)
    hw_a, tone_a = np.asarray(hws), np.asarray(tones)
    excess = seg_dist(f.x, f.y, np.concatenate(segs)) - hw_a[:, None, None]
    k = excess.argmin(0)
    hw_k = hw_a[k]
    cov = line(np.take_along_axis(excess, k[None], 0)[0] + hw_k, hw_k, f.px)
    tone_k = tone_a[k][..., None]
    return mix(img, tone_k * np.array([1.0, 0.8, 0.7]), cov)


def _apply_photometric(img: np.ndarray, ph: _Photometric) -> np.ndarray:
    """Saturation, hue and white balance, contrast and brightness, as a camera would shift them."""
    grey = img.mean(axis=2, keepdims=True)
    img = grey + ph.sat * (img - grey)
    img = img @ ph.hue.T * ph.wb
    m = img.mean()
    return (m + ph.contrast * (img - m)) * ph.bright


def draw_scene(class_index: int, rngs: list[np.random.Generator]) -> Callable[[int, np.random.Generator], np.ndarray]:
    """Draw every resolution-independent parameter; return a painter closure.

    rngs are the background, lesion, texture, hair and photometric streams; the painter
    maps (pixel size n, pixel-noise rng) to an (n, n, 3) float RGB image.
    """
    r_bg, r_les, r_tex, r_hair, r_glob = rngs[:5]
    skin = _draw_skin(r_bg)
    lesion = _draw_lesion(_SPECS[class_index], r_les)
    tex = class_textures(class_index, r_tex, lesion.base)
    hairs = _draw_hairs(r_hair)
    photo = _draw_photometric(r_glob)

    def paint(n: int, r_pix: np.random.Generator) -> np.ndarray:
        """Render the drawn scene at n px; r_pix feeds only the sensor noise, drawn last."""
        f = Frame(n, lesion.cx, lesion.cy, lesion.rot, lesion.aspect)
        x, y = f.x, f.y
        img = np.broadcast_to(skin.colour, (n, n, 3)).copy()
        img = img * (1.0 + skin.mottle_amp * skin.mottle.at(x, y))[..., None]
        img = _paint_lesion(img, f, lesion, tex)
        # illumination: gradient and vignette
        r2 = x * x + y * y
        grad = np.cos(skin.grad_ang) * x + np.sin(skin.grad_ang) * y
        img = img * (1.0 + skin.grad_amp * grad - skin.vignette * (r2 / 2.0) ** 1.5)[..., None]
        if hairs:
            img = _paint_hairs(img, f, hairs)
        if skin.field_stop:
            img = img * np.clip((skin.stop_r - np.sqrt(r2)) / (3 * f.px) + 0.5, 0.0, 1.0)[..., None]
        img = _apply_photometric(img, photo)
        return img + r_pix.normal(0.0, photo.noise_sd, img.shape)

    return paint
