"""KD strategies: who teaches, chosen by name.

A strategy turns a teacher source (a run directory or checkpoint, or nothing) into a
`Teacher`: a frozen callable `(images, labels) -> logits (B, C)`. The student's training
loop does not know which strategy it serves.

- baseline: no teacher; the student learns from hard labels only.
- standard: a trained teacher (e.g. partially fine-tuned ResNet-50) teaches the student.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from dermkd.errors import DermkdError
from dermkd.io import read_json
from dermkd.registry import Registry
from dermkd.train.checkpoints import file_sha256, load_model, resolve_checkpoint


class Teacher(nn.Module):
    """A frozen model used only for its logits; never trained, never in train mode."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> Teacher:
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.model(images)


@dataclass(frozen=True)
class Strategy:
    description: str
    needs_teacher: bool
    make_teacher: Callable[[Path | None], tuple[Teacher | None, dict | None]]


STRATEGIES: Registry[Strategy] = Registry("strategy")


def checkpoint_teacher(source: Path | None) -> tuple[Teacher, dict]:
    """A trained model loaded from a run or checkpoint, with the record of where it came from."""
    if source is None:
        raise DermkdError("this strategy needs a teacher: pass --teacher RUN_DIR_OR_CHECKPOINT")
    path = resolve_checkpoint(source)
    model, spec = load_model(path)
    record = {"checkpoint": str(path), "sha256": file_sha256(path), "model": spec["name"], "classes": spec["classes"]}
    metrics = path.parent.parent / "metrics.json"
    if metrics.is_file():
        m = read_json(metrics)
        record["test_metrics"] = {k: m.get(k) for k in ("top1_accuracy", "balanced_accuracy", "mcc_multiclass")}
    return Teacher(model), record


STRATEGIES.register("baseline")(Strategy("student on hard labels only", False, lambda source: (None, None)))
STRATEGIES.register("standard")(Strategy("trained teacher -> student", True, checkpoint_teacher))
