"""`Classifier`: a network plus what it needs to describe itself.

Inputs are RGB in [0, 1], shape (B, 3, H, W); the classifier applies its own
normalisation, so a teacher and a student with different mean/std can share one batch
(the pattern of timm's distillation task) and an exported model carries its
preprocessing. Frozen sub-modules stay in eval mode even when `train()` is called, so
their batch-norm statistics are not updated by partial fine-tuning.
"""

from __future__ import annotations

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Classifier(nn.Module):
    def __init__(
        self,
        net: nn.Module,
        name: str,
        num_classes: int,
        mean: tuple[float, float, float] = IMAGENET_MEAN,
        std: tuple[float, float, float] = IMAGENET_STD,
    ) -> None:
        super().__init__()
        self.net = net
        self.name = name
        self.num_classes = num_classes
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self.frozen: list[str] = []  # names of sub-modules kept in eval mode
        self.weights: dict = {"source": "random"}  # where the initial weights came from (models.pretrained)
        self.head_name: str | None = None  # the classification layer in `net` (set by create_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> logits (B, num_classes)."""
        return self.net((x - self.mean) / self.std)

    def freeze(self, module_names: list[str]) -> None:
        """Stop gradients into these sub-modules of `net` and keep them in eval mode."""
        self.frozen = list(module_names)
        for name in self.frozen:
            self.net.get_submodule(name).requires_grad_(False)
        self.train(self.training)

    def train(self, mode: bool = True) -> Classifier:
        super().train(mode)
        for name in self.frozen:
            self.net.get_submodule(name).eval()
        return self

    def parameter_groups(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """(backbone, head) trainable parameters: a pretrained backbone may learn slower
        than the new head (`optim.backbone_lr_scale`)."""
        head = set(self.net.get_submodule(self.head_name).parameters()) if self.head_name else set()
        trainable = [p for p in self.parameters() if p.requires_grad]
        return [p for p in trainable if p not in head], [p for p in trainable if p in head]

    def head_weight(self) -> nn.Parameter:
        """Weight (C, D) of the classification layer: the last nn.Linear of every
        registered model. The SVM objective penalises it."""
        return [m for m in self.net.modules() if isinstance(m, nn.Linear)][-1].weight

    def describe(self) -> dict:
        """What a checkpoint or an exported model needs to rebuild and feed this model."""
        return {
            "name": self.name,
            "num_classes": self.num_classes,
            "mean": [float(v) for v in self.mean.flatten()],
            "std": [float(v) for v in self.std.flatten()],
            "input_range": [0.0, 1.0],
            "parameters": count_parameters(self),
            "trainable_parameters": count_parameters(self, trainable_only=True),
            "initial_weights": self.weights,
        }


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
