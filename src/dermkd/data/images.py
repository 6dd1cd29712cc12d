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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

log = logging.getLogger(__name__)


@dataclass
class Decoded:
    pixels: np.ndarray | None  # (S, S, 3) uint8, None if unreadable
    sha256: str | None
    error: str | None = None


def decode_one(path: Path, size: int) -> Decoded:
    try:
        data = path.read_bytes()
    except OSError as exc:
        return Decoded(None, None, f"cannot read: {exc.strerror or exc}")
    digest = hashlib.sha256(data).hexdigest()
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            rgb = img.convert("RGB").resize((size, size), Image.Resampling.BILINEAR, reducing_gap=None)
            return Decoded(np.asarray(rgb, dtype=np.uint8), digest)
    except Exception as exc:  # Pillow raises many types for corrupt/truncated files
        return Decoded(None, digest, f"not a readable image ({type(exc).__name__}: {exc})")


def decode_all(paths: list[Path], size: int, workers: int = 4) -> list[Decoded]:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda p: decode_one(p, size), paths))
    for path, res in zip(paths, results):
        if res.error:
            log.warning("skipping %s: %s", path, res.error)
    return results


def stack_chw(arrays: list[np.ndarray]) -> torch.Tensor:
    """list of (S, S, 3) uint8 -> (N, 3, S, S) uint8 tensor."""
    if not arrays:
        return torch.empty(0, 3, 0, 0, dtype=torch.uint8)
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
