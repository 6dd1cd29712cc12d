"""Per-sample transforms on the uint8 cache.

Input: (3, S, S) uint8 tensor. Output: (3, S, S) float32 in [0, 1]; each model applies
its own mean/std (see `models.classifier`). Training views come from `data.augment`,
whose explicit view parameters the teacher-logit store replays.
"""

from __future__ import annotations

import torch
from torchvision.transforms import v2

from dermkd.data.augment import DEFAULT_AUGMENT, AugmentConfig, TrainAugment


def train_transform(size: int, cfg: AugmentConfig = DEFAULT_AUGMENT) -> v2.Transform:
    return TrainAugment(size, cfg)


def eval_transform() -> v2.Transform:
    return v2.ToDtype(torch.float32, scale=True)
