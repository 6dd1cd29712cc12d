"""Shared fixtures: tiny on-disk image trees built with Pillow (32 px, distinct pixels)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

# The real data set, next to the repository (never written to).
ISIC_TRAIN = Path(__file__).resolve().parents[2] / "shared/data/isic9/Train"


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


@pytest.fixture
def tiny_tree(tmp_path: Path) -> Path:
    """Three known classes with 6 distinct PNGs each (enough for every split)."""
    return build_tree(tmp_path / "data", {"nevus": 6, "melanoma": 6, "Basal_Cell carcinoma": 6})


@pytest.fixture(autouse=True, scope="session")
def _audit_cache_in_tmp(tmp_path_factory):
    """Keep the audit's hash cache (used by splits) out of the user's home during tests."""
    mp = pytest.MonkeyPatch()
    mp.setenv("DERMKD_CACHE_DIR", str(tmp_path_factory.mktemp("dermkd-cache")))
    yield
    mp.undo()


@pytest.fixture
def run_cli(monkeypatch, capsys, tmp_path):
    """`dermkd ARGV` in-process with cwd=tmp_path/cwd: (exit code, stdout, stderr, cwd)."""
    from dermkd.cli.app import main

    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("COLUMNS", "200")

    def run(*argv):
        monkeypatch.setattr(sys, "argv", ["dermkd", *map(str, argv)])
        with pytest.raises(SystemExit) as exc:
            main()
        cap = capsys.readouterr()
        return exc.value.code, cap.out, cap.err, cwd

    return run
