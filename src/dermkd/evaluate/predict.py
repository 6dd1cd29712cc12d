"""Batched inference over the uint8 cache: (N, 3, S, S) uint8 -> probabilities (N, C)."""

from __future__ import annotations

import torch

from dermkd.models.classifier import Classifier


@torch.no_grad()
def predict_proba(model: Classifier, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    model.eval()
    out = []
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size].float().div_(255.0)
        out.append(torch.softmax(model(x), dim=1))
    return torch.cat(out) if out else torch.empty(0, model.num_classes)
