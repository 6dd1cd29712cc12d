"""Teacher-logit store: pay for the teacher once, not every epoch.

`--teacher-cache K` samples K augmented views of every training image (`data.augment`),
runs the frozen teacher on each view once, and keeps the logits as float16 in a
memory-mapped `.npy` beside the views' parameters (N, K, P). Training then draws one of
the K stored views per image per epoch, replays it exactly, and reads the teacher's
logits for that very view, as in Fast Knowledge Distillation (Shen & Xing 2021): the
student and the teacher still see the same pixels, so the KD target stays consistent.

Resolution-decoupled KD (`kd.teacher_image_size`): the teacher may see a larger input than
the student. The training images are then decoded at the teacher's size, each stored view
is sampled on that larger image, the teacher sees it at its size and the student the very
same crop, flips, rotation and colour at its own size: one view, two resolutions, one
teacher pass per stored view.

A store is keyed by everything that decides its contents: the teacher checkpoint's
sha256, the data fingerprint, a hash of the training images as decoded and resized,
the augmentation config, K, the seed and the format version. A changed teacher, data
set, image size or augmentation gives another key, so a stale store is never reused.
Stores live under `$DERMKD_CACHE_DIR/teacher-logits/<key>/` (`logits.npy`,
`params.npy`, `meta.json`) and are built in a `.partial` folder renamed into place
when complete, so a killed build leaves nothing that could be mistaken for a store.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from dermkd.data.augment import DEFAULT_AUGMENT, PARAMS, AugmentConfig, apply_view, sample_views
from dermkd.data.prepare import PreparedData
from dermkd.distill.strategies import Teacher
from dermkd.errors import DermkdError
from dermkd.io import cache_dir, read_json, write_json
from dermkd.precision import autocast

log = logging.getLogger(__name__)

STORE_VERSION = "dermkd-teacher-logits-v2"  # v2: the key records the forward passes' precision


@dataclass
class LogitStore:
    path: Path
    logits: np.ndarray  # (N, K, C) float16, memory-mapped read-only
    params: torch.Tensor  # (N, K, len(PARAMS)) float32 view parameters
    meta: dict[str, Any]
    source_images: torch.Tensor | None = None  # (N, 3, St, St) uint8 the views are cut from; None: the
    # training split at the student's size

    @property
    def views(self) -> int:
        return self.logits.shape[1]

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (a spawned data-parallel rank) without the logits: each process maps the
        same file read-only instead of receiving a copy."""
        return {**self.__dict__, "logits": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.logits = np.load(self.path / "logits.npy", mmap_mode="r")

    def describe(self) -> dict[str, Any]:
        """What a run records about the store it learned from."""
        return {"path": str(self.path), "key": self.path.name, **self.meta["key_parts"],
                "build_seconds": self.meta["build_seconds"]}


def store_key(teacher_sha256: str, data: PreparedData, views: int, seed: int,
              augment: AugmentConfig = DEFAULT_AUGMENT, precision: str = "32",
              source: torch.Tensor | None = None) -> tuple[str, dict[str, Any]]:
    """(key, the parts it hashes); `source`: the training images at the teacher's size."""
    train = data.images["train"] if source is None else source
    parts = {
        "version": STORE_VERSION, "teacher_sha256": teacher_sha256, "data_fingerprint": data.fingerprint,
        "train_images_sha256": hashlib.sha256(train.contiguous().numpy().tobytes()).hexdigest(),
        "image_size": data.image_size, "classes": data.classes, "views": views, "seed": seed,
        "augment": dataclasses.asdict(augment), "params": list(PARAMS), "precision": precision,
    }
    if source is not None:
        parts["teacher_image_size"] = int(source.shape[-1])
    text = json.dumps(parts, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32], json.loads(text)  # as meta.json will read back


def open_or_build(teacher: Teacher, teacher_sha256: str, data: PreparedData, views: int, seed: int, *,
                  augment: AugmentConfig = DEFAULT_AUGMENT, root: Path | None = None,
                  batch_size: int = 64, precision: str = "32", teacher_image_size: int | None = None) -> LogitStore:
    """The store for this (teacher, data, views, seed, augmentation, precision of the teacher's
    forward passes, teacher input size), built if it does not exist yet."""
    if views < 1:
        raise DermkdError(f"--teacher-cache must be >= 1 views per image, not {views}")
    root = Path(root) if root is not None else cache_dir() / "teacher-logits"
    source = None
    if teacher_image_size and teacher_image_size != data.image_size:
        from dermkd.data.prepare import decode_split

        source = decode_split(data, "train", teacher_image_size)
    key, parts = store_key(teacher_sha256, data, views, seed, augment, precision, source)
    final = root / key
    if not (final / "meta.json").is_file():
        partial = root / f"{key}.partial-{os.getpid()}"
        shutil.rmtree(partial, ignore_errors=True)
        try:
            _build(partial, teacher, data, parts, augment, batch_size, source)
            try:
                partial.rename(final)
            except OSError:  # another process finished the same store first: keep theirs
                if not (final / "meta.json").is_file():
                    raise
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    else:
        log.info("teacher-logit store %s: reusing it", final)
    store = _open(final, parts)
    store.source_images = source
    return store


def _build(folder: Path, teacher: Teacher, data: PreparedData, parts: dict[str, Any], augment: AugmentConfig,
           batch_size: int, source: torch.Tensor | None) -> None:
    images, labels = (data.images["train"] if source is None else source), data.labels["train"]
    n, k, size = len(images), parts["views"], images.shape[-1]
    if n == 0:
        raise DermkdError("the training split is empty: nothing to store teacher logits for")
    folder.mkdir(parents=True)
    started = time.perf_counter()
    generator = torch.Generator().manual_seed(parts["seed"])
    params = sample_views(n * k, size, size, augment, generator).view(n, k, len(PARAMS))
    logits = np.lib.format.open_memmap(folder / "logits.npy", mode="w+", dtype=np.float16,
                                       shape=(n, k, len(data.classes)))
    teacher.eval().to(memory_format=torch.channels_last)
    flat = [(i, j) for i in range(n) for j in range(k)]
    device = next(teacher.parameters(), torch.empty(0)).device.type
    with torch.inference_mode(), autocast(parts["precision"], device):
        for start in range(0, len(flat), batch_size):
            chunk = flat[start:start + batch_size]
            x = torch.stack([apply_view(images[i], params[i, j], size) for i, j in chunk])
            y = torch.stack([labels[i] for i, _ in chunk])
            try:
                out = teacher(x.contiguous(memory_format=torch.channels_last), y).float().numpy()
            except RuntimeError as exc:  # e.g. a flatten sized for another input (the DSC's)
                raise DermkdError(f"the teacher cannot take {size} px inputs ({str(exc).splitlines()[0][:160]}); "
                                  "train it at that size or leave --teacher-image-size out") from None
            rows, cols = zip(*chunk)
            logits[list(rows), list(cols)] = out.astype(np.float16)
    logits.flush()
    del logits
    np.save(folder / "params.npy", params.numpy())
    seconds = time.perf_counter() - started
    write_json(folder / "meta.json", {"key_parts": parts, "build_seconds": round(seconds, 2),
                                      "teacher_forwards": n * k})
    log.info("teacher-logit store: %d images x %d views in %.1f s (%.0f teacher forwards/s)", n, k, seconds,
             n * k / seconds)


def _open(folder: Path, parts: dict[str, Any]) -> LogitStore:
    meta = read_json(folder / "meta.json")
    if meta.get("key_parts") != parts:
        raise DermkdError(f"teacher-logit store {folder} does not match its key; delete it and run again")
    logits = np.load(folder / "logits.npy", mmap_mode="r")
    params = torch.from_numpy(np.load(folder / "params.npy"))
    return LogitStore(folder, logits, params, meta)


class StoredViews(Dataset):
    """Image i -> (one of its K stored views, its label, the teacher's logits for that view).

    Output: (3, S, S) float32 in [0, 1] at the student's size S (cut from the teacher-size
    images when the store has them), () int64, (C,) float32. The view index is drawn
    from torch's global RNG, so the seed and DataLoader worker seeding make it reproducible.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, store: LogitStore, size: int) -> None:
        if store.source_images is not None:  # the views are cut from the teacher-size images
            images = store.source_images
        if store.logits.shape[0] != len(images):
            raise DermkdError(f"teacher-logit store {store.path} holds {store.logits.shape[0]} images, "
                              f"the training split {len(images)}")
        self.images, self.labels, self.store, self.size = images, labels, store, size

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        k = int(torch.randint(self.store.views, (1,)))
        x = apply_view(self.images[i], self.store.params[i, k], self.size)
        return x, self.labels[i], torch.from_numpy(self.store.logits[i, k].astype(np.float32))
