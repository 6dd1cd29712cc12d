"""Partial fine-tuning: which sub-modules of a timm model stay frozen.

timm's `feature_info` lists a model's stages in forward order (the stem first, e.g.
resnet50: act1, layer1, ..., layer4). `trainable_stages=N` keeps the last N stages and
everything after them (the head) trainable and freezes the rest; 0 trains the head only,
"all" trains everything. A model may declare its own stage list instead (EfficientNet:
the block groups `blocks.0` ... `blocks.6`, then conv_head + classifier). The paper's teacher ("some weights in the convolutional layers
allowed to be readjusted") is N=1 by default: layer4 + fc for ResNet-50.
"""

from __future__ import annotations

from typing import Literal

from torch import nn

from dermkd.errors import DermkdError


def frozen_modules(net: nn.Module, trainable_stages: int | Literal["all"], stages: list[str] | None = None) -> list[str]:
    """Top-most sub-module names of `net` that lie wholly before the trainable region.

    `stages` (forward order) overrides timm's `feature_info`, for models whose feature
    levels are not their stages (EfficientNet's 7 block groups, 5 feature levels)."""
    if trainable_stages == "all":
        return []
    stages = stages or [f["module"] for f in getattr(net, "feature_info", [])]
    if not stages:
        raise DermkdError(f"{type(net).__name__} has no stage list; use trainable_stages 'all'")
    if trainable_stages >= len(stages):
        return []
    boundary = stages[-(trainable_stages + 1)]  # last frozen stage
    names = [name for name, _ in net.named_modules()]  # pre-order: parents before children
    order = {name: i for i, name in enumerate(names)}
    end = max(i for i, n in enumerate(names) if n == boundary or n.startswith(boundary + "."))
    subtree_end = {n: max(order[m] for m in names if m == n or m.startswith(n + ".")) for n in names if n}
    fully_frozen = {n for n in subtree_end if subtree_end[n] <= end}
    top = [n for n in fully_frozen if n.rpartition(".")[0] not in fully_frozen]
    return sorted(top, key=order.__getitem__)
