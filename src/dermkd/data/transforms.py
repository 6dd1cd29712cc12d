"""Augmentation on the uint8 cache (torchvision transforms v2), per sample.

Input: (3, S, S) uint8 tensor. Output: (3, S, S) float32 in [0, 1]; each model applies
its own mean/std (see `models.classifier`).
"""

from __future__ import annotations

import torch
from torchvision.transforms import v2


def train_transform(size: int) -> v2.Transform:
    return v2.Compose([
        v2.RandomResizedCrop(size, scale=(0.7, 1.0), ratio=(0.9, 1.1), antialias=True),
        v2.RandomHorizontalFlip(),
        v2.RandomVerticalFlip(),
        v2.RandomRotation(20),
        v2.ColorJitter(brightness=0.15, contrast=0.15, saturation=0.1, hue=0.02),
        v2.ToDtype(torch.float32, scale=True),
    ])


def eval_transform() -> v2.Transform:
    return v2.ToDtype(torch.float32, scale=True)
