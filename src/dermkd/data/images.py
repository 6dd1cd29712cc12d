"""Decode every image once into an in-memory uint8 cache at training size.

Files are read once: the same bytes give the content hash (for duplicate grouping and
the data fingerprint) and the decoded pixels. Decoding runs in a thread pool (Pillow
releases the GIL while decoding). A file that cannot be decoded is skipped with a
warning naming it, and reported back so the run record can count it.
"""

from __future__ import annotations

import hashlib
import io
import logging
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from dermkd.config import DataConfig

log = logging.getLogger(__name__)
DEFAULT_MAX_PIXELS: int = DataConfig.max_image_pixels  # the config's default, for callers without a config
# Pillow warns about "decompression bombs" (over 89 Mpx) when it opens the header; dermkd
# skips any image over its own, lower limit before decoding it, so that warning is noise.
# (A filter, not catch_warnings: the decoders run in threads, and warning state is global.)
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


@dataclass
class Decoded:
    pixels: np.ndarray | None  # (S, S, 3) uint8, None if unreadable
    sha256: str | None
    error: str | None = None


def decode_one(path: Path, size: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> Decoded:
    try:
        data = path.read_bytes()
    except OSError as exc:
        return Decoded(None, None, f"cannot read: {exc.strerror or exc}")
    return decode_bytes(data, size, max_pixels)


def decode_bytes(data: bytes, size: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> Decoded:
    """An image file's bytes -> (size, size, 3) uint8, or the reason it cannot be read."""
    digest = hashlib.sha256(data).hexdigest()
    try:
        with Image.open(io.BytesIO(data)) as img:  # reads the header only
            if img.width * img.height > max_pixels:
                return Decoded(None, digest, f"{img.width} x {img.height} px is over the limit of "
                                             f"{max_pixels} px (data.max_image_pixels)")
            img.load()
            rgb = to_rgb8(img).resize((size, size), Image.Resampling.BILINEAR, reducing_gap=None)
            return Decoded(np.asarray(rgb, dtype=np.uint8), digest)
    except Exception as exc:  # Pillow raises many types for corrupt/truncated files
        return Decoded(None, digest, f"not a readable image ({type(exc).__name__}: {exc})".splitlines()[0])


def to_rgb8(img: Image.Image) -> Image.Image:
    """8-bit RGB. Pillow's own convert("RGB") clips 16- and 32-bit grey images at 255 (a
    16-bit PNG came out 97% white); those are scaled to 8 bits from their full range."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        wide = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or wide.max(initial=0) > 255 else 255.0
        img = Image.fromarray(np.clip(np.rint(wide * (255.0 / top)), 0, 255).astype(np.uint8), mode="L")
    return img.convert("RGB")


def decode_all(paths: list[Path], size: int, workers: int = 4, max_pixels: int = DEFAULT_MAX_PIXELS) -> list[Decoded]:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda p: decode_one(p, size, max_pixels), paths))
    for path, res in zip(paths, results):
        if res.error:
            log.warning("skipping %s: %s", path, res.error)
    return results


def stack_chw(arrays: list[np.ndarray]) -> torch.Tensor:
    """list of (S, S, 3) uint8 -> (N, 3, S, S) uint8 tensor."""
    if not arrays:
        return torch.empty(0, 3, 0, 0, dtype=torch.uint8)
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
