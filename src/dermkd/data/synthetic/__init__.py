"""Procedural 9-class "lesion-like" dermoscopy images: the project's embedded data set.

No real data can be downloaded in every environment, so `make demo` and the test suite
train on images drawn by this package. Each image is a skin-tone field (tone varies from
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

Layout: `primitives` (palette, noise, distance fields, lines, dots, trees, pixel frame),
`textures` (dermoscopic structures and the per-class recipe), `scene` (per-class
parameter ranges, draw-then-paint of one image); the public API lives here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from dermkd.data.synthetic.scene import MAIN_COLOUR_P, draw_scene
from dermkd.data.taxonomy import ISIC9
from dermkd.errors import DermkdError
from dermkd.io import atomic_open

__all__ = ["GENERATOR_VERSION", "MAIN_COLOUR_P", "MARKER_NAME", "MIN_SIZE", "generate_dataset", "render_lesion"]

GENERATOR_VERSION = 1
MARKER_NAME = ".dermkd-synthetic.json"
MIN_SIZE = 16


def _check_int(name: str, value: object, lo: int) -> int:
    """`value` as an int, or a one-line DermkdError unless it is an integer >= lo."""
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
    paint = draw_scene(ci, rngs[:5])
    ss = 2 if size < 64 else 1
    img = paint(size * ss, rngs[5])
    if ss > 1:
        img = img.reshape(size, ss, size, ss, 3).mean(axis=(1, 3))
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _marker(per_class: int, size: int, seed: int) -> dict:
    """The marker content that identifies a complete data set."""
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
