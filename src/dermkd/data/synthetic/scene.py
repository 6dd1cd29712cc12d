"""The scene: per-class lesion parameter ranges, and the draw-then-paint of one image.

`draw_scene` makes every random draw that does not depend on the resolution and returns
a painter that renders the scene at any pixel size, so the same image at 64 and 112 px
shows the same scene.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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
from dermkd.data.synthetic.textures import class_textures
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


def draw_scene(class_index: int, rngs: list[np.random.Generator]) -> Callable[[int, np.random.Generator], np.ndarray]:
    """Draw every resolution-independent parameter; return a painter closure.

    rngs are the background, lesion, texture, hair and photometric streams; the painter
    maps (pixel size n, pixel-noise rng) to an (n, n, 3) float RGB image.
    """
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
    mottle = Noise(r_bg, 6)
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
    edge_noise = Noise(r_les, 10)
    edge_amp = border * r_les.uniform(0.5, 2.0)
    alt = r_les.random() >= MAIN_COLOUR_P
    base = col(r_les, spec.base[1 + r_les.integers(len(spec.base) - 1)] if alt else spec.base[0])
    centre_shift = r_les.normal(0.0, 0.06) - 0.04  # darker (neg) or lighter centre

    tex = class_textures(class_index, r_tex, base)

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
    hue = hue_matrix(r_glob.normal(0.0, 0.04))
    noise_sd = r_glob.uniform(0.005, 0.03)

    def paint(n: int, r_pix: np.random.Generator) -> np.ndarray:
        f = Frame(n, cx, cy, rot, aspect)
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
            les = mix(les, colour, weight)
            if outside:
                extra = np.maximum(extra, weight)
        mask = np.maximum(mask, extra * opacity)
        img = mix(img, les, mask)
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
            excess = seg_dist(x, y, np.concatenate(segs)) - hw_a[:, None, None]
            k = excess.argmin(0)
            hw_k = hw_a[k]
            cov = line(np.take_along_axis(excess, k[None], 0)[0] + hw_k, hw_k, f.px)
            tone_k = tone_a[k][..., None]
            img = mix(img, tone_k * np.array([1.0, 0.8, 0.7]), cov)
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
