"""Helpers the tests share: tiny on-disk image trees built with Pillow (32 px, distinct
pixels), the real data set's location, and optimizers built through the build boundary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

# The real data set, next to the repository (never written to).
ISIC_TRAIN = Path(__file__).resolve().parents[3] / "shared/data/isic9/Train"


def write_image(path: Path, seed: int, size: int = 32, fmt: str | None = None) -> Path:
    """A random-noise RGB image; different seeds give different bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    fmt = fmt or ("JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else "PNG")
    Image.fromarray(arr).save(path, format=fmt)
    return path


def build_tree(root: Path, per_class: dict[str, int], start_seed: int = 0) -> Path:
    """`root/<folder>/img_<i>.png` with `per_class[folder]` distinct images each."""
    seed = start_seed
    for folder, n in per_class.items():
        for i in range(n):
            write_image(root / folder / f"img_{i:02d}.png", seed)
            seed += 1
    return root


def optimizer_for(params: Any, full: bool = False, **optim: Any) -> Any:
    """The optimizer `dermkd.build` makes for `optim` settings (an `OptimConfig`'s fields)
    over `params`, as a model with nothing pretrained gets it; `full`: (optimizer, schedule)
    for 3 epochs."""
    from dermkd.build import build_optimization, resolve
    from dermkd.config import OptimConfig, RunConfig

    cfg = RunConfig(optim=OptimConfig(**optim))
    configured = build_optimization(cfg.optim, resolve(cfg)).configure(list(params), [], max_epochs=3)
    return configured if full else configured[0]
