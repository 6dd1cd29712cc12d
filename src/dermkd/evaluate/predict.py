"""Batched inference over the uint8 cache: (N, 3, S, S) uint8 -> logits or probabilities (N, C)."""

from __future__ import annotations

import torch

from dermkd.models.classifier import Classifier


@torch.no_grad()
def predict_logits(model: Classifier, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    model.eval()
    out = [model(images[start:start + batch_size].float().div_(255.0)) for start in range(0, len(images), batch_size)]
    return torch.cat(out).float() if out else torch.empty(0, model.num_classes)


def predict_proba(model: Classifier, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    return torch.softmax(predict_logits(model, images, batch_size), dim=1)
