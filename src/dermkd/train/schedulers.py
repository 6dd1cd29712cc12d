"""Learning-rate schedules by name: a factory gets the optimizer and the settings it
declares, and returns Lightning's `lr_scheduler` entry (or None for a constant lr)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from dermkd.registry import Registry

SchedulerFactory = Callable[..., dict[str, Any] | None]
SCHEDULERS: Registry[SchedulerFactory] = Registry("scheduler")


@SCHEDULERS.register("plateau")
def plateau(optimizer: torch.optim.Optimizer, *, plateau_factor: float, plateau_patience: int,
            **_: Any) -> dict[str, Any]:
    """The paper's lr that 'automatically decreases': cut by `plateau_factor` after
    `plateau_patience` epochs without a lower validation loss."""
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=plateau_factor,
                                                       patience=plateau_patience)
    return {"scheduler": sched, "monitor": "val_loss"}


@SCHEDULERS.register("cosine")
def cosine(optimizer: torch.optim.Optimizer, *, max_epochs: int, **_: Any) -> dict[str, Any]:
    return {"scheduler": torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, max_epochs))}


@SCHEDULERS.register("none")
def constant(optimizer: torch.optim.Optimizer, **_: Any) -> None:
    return None
