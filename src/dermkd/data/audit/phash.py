"""Perceptual hashing of one image: a 64-bit DCT pHash for 20 views of it.

The views are 5 centred crops (0, 2.5, 5, 7.5 and 10% cut from every border) x 4 flips
(none, horizontal, vertical, both); view 0 is the whole, unflipped image. For each view:
grayscale, resize to 32x32 (Lanczos, exact fractional crop box), 2-D DCT-II
(`scipy.fft.dctn`, orthonormal), keep the top-left 8x8 block (all 64 coefficients, DC
included) and set a bit where a coefficient is above the median of the 63 non-DC ones.

Two images are compared as `distance(a, b) = min(min_v H(a_v, b_0), min_v H(b_v, a_0))`
(H = Hamming distance): one side's views against the other side's plain view, both ways.
A flipped copy matches the flipped view of its original (distance 0 for an exact flip), a
copy with a 5-8% border cut matches the nearest crop view (the grid leaves at most 1.25%
of mismatch), a resized or re-encoded copy matches view 0.

Since the median splits the 63 AC coefficients 31/32, every hash has (almost always) 32
set bits, so distances are even: a threshold of 5 behaves like 4.

Decoding is lazy where it is cheap to be: JPEGs of 1024+ px are decoded at a reduced
scale (`Image.draft`) and any image over 512 px is box-reduced to >= 256 px before the 20
resizes, so a 4000 px photo costs about as much as a 256 px one.
"""

from __future__ import annotations

import io
import re

import numpy as np
from PIL import Image
from scipy.fft import dctn

CROPS = (0.0, 0.025, 0.05, 0.075, 0.10)  # fraction cut from each border
FLIPS = ("none", "hflip", "vflip", "hvflip")
N_VARIANTS = len(CROPS) * len(FLIPS)  # index = crop_index * 4 + flip_index; 0 = plain image
HASH_SIZE = 32  # resize target before the DCT
LOW = 8  # kept low-frequency block: LOW x LOW = 64 bits
WORK_SIZE = 256  # large images are reduced to at least this before hashing

_BIT_WEIGHTS = np.left_shift(np.uint64(1), np.arange(LOW * LOW - 1, -1, -1, dtype=np.uint64))


def _gray(img: Image.Image) -> Image.Image:
    """8-bit grayscale; 16-bit / float images are scaled to 0..255 rather than clipped."""
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        return Image.fromarray(arr.astype(np.uint8), "L")
    return img.convert("L")


def phash_variants(img: Image.Image) -> np.ndarray:
    """The 20 64-bit hashes of `img` (uint64, shape (N_VARIANTS,)), view 0 = plain image."""
    g = _gray(img)
    w, h = g.size
    if min(w, h) > 2 * WORK_SIZE:
        g = g.reduce(min(w, h) // WORK_SIZE)
        w, h = g.size
    tiles = [
        np.asarray(
            g.resize((HASH_SIZE, HASH_SIZE), Image.Resampling.LANCZOS,
                     box=(w * c, h * c, w * (1 - c), h * (1 - c)), reducing_gap=None),
            dtype=np.float64,
        )
        for c in CROPS
    ]
    a = np.stack(tiles)  # (crops, 32, 32)
    views = np.stack([a, a[:, :, ::-1], a[:, ::-1, :], a[:, ::-1, ::-1]], axis=1)
    coef = dctn(views.reshape(-1, HASH_SIZE, HASH_SIZE), type=2, axes=(1, 2), norm="ortho")
    low = coef[:, :LOW, :LOW].reshape(N_VARIANTS, LOW * LOW)
    med = np.median(low[:, 1:], axis=1, keepdims=True)
    bits = (low > med).astype(np.uint64)
    return (bits * _BIT_WEIGHTS).sum(axis=1, dtype=np.uint64)


def analyse_bytes(data: bytes) -> dict:
    """Decode one file's bytes: {width, height, format, mode, phash (hex list), error}.

    Never raises for bad image data: an unreadable or truncated file gets `error` set and
    no hashes. Pillow's default (LOAD_TRUNCATED_IMAGES off) makes a cut-off JPEG/PNG fail.
    """
    info: dict = {"width": None, "height": None, "format": None, "mode": None, "phash": None, "error": None}
    try:
        with Image.open(io.BytesIO(data)) as img:
            info.update(width=img.size[0], height=img.size[1], format=img.format, mode=img.mode)
            if img.format == "JPEG" and min(img.size) >= 4 * WORK_SIZE:
                img.draft("L", (2 * WORK_SIZE, 2 * WORK_SIZE))
            img.load()
            info["phash"] = to_hex(phash_variants(img))
    except Exception as exc:  # Pillow raises many types for corrupt/truncated files
        reason = re.sub(r"\s*<_io\.BytesIO object at 0x[0-9a-fA-F]+>", "", str(exc))  # no memory addresses
        info.update(phash=None, error=f"not a readable image ({type(exc).__name__}: {reason})")
    return info


def to_hex(hashes: np.ndarray) -> list[str]:
    return [f"{int(x):016x}" for x in hashes]


def from_hex(values: list[str]) -> np.ndarray:
    return np.array([int(v, 16) for v in values], dtype=np.uint64)


def distance(a: np.ndarray, b: np.ndarray) -> int:
    """Flip- and crop-aware Hamming distance of two images' variant hashes."""
    ab = np.bitwise_count(a ^ b[0]).min()
    ba = np.bitwise_count(b ^ a[0]).min()
    return int(min(ab, ba))


def distance_matrix(h: np.ndarray) -> np.ndarray:
    """Pairwise `distance` for a small set of images (k, N_VARIANTS) -> (k, k) int."""
    base = h[:, 0]
    d = np.bitwise_count(h[:, :, None] ^ base[None, None, :]).min(axis=1)  # (k, k): views of i vs plain j
    return np.minimum(d, d.T).astype(np.int64)
