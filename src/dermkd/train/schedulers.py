"""Learning-rate schedules by name, stepped once per epoch with the validation loss.

A factory gets the optimizer and the settings it declares and returns a scheduler whose
`step(val_loss)` the LightningModule calls at the end of each validation epoch (or None
for a constant lr). Stepping there, not in Lightning's scheduler loop, puts the step
before the epoch's checkpoint is saved: a run resumed from that checkpoint continues with
exactly the lr an uninterrupted run has (Lightning skips a plateau scheduler's step on
restart).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from dermkd.registry import Registry

SchedulerFactory = Callable[..., Any]
SCHEDULERS: Registry[SchedulerFactory] = Registry("scheduler")


class _Cosine(torch.optim.lr_scheduler.CosineAnnealingLR):
    def step(self, val_loss: float | None = None) -> None:  # the loss does not matter to a cosine
        super().step()


@SCHEDULERS.register("plateau")
def plateau(optimizer: torch.optim.Optimizer, *, plateau_factor: float, plateau_patience: int,
            **_: Any) -> torch.optim.lr_scheduler.ReduceLROnPlateau:
    """The paper's lr that 'automatically decreases': cut by `plateau_factor` after
    `plateau_patience` epochs without a lower validation loss."""
    return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=plateau_factor,
                                                      patience=plateau_patience)


@SCHEDULERS.register("cosine")
def cosine(optimizer: torch.optim.Optimizer, *, max_epochs: int, **_: Any) -> _Cosine:
    return _Cosine(optimizer, T_max=max(1, max_epochs))


@SCHEDULERS.register("none")
def constant(optimizer: torch.optim.Optimizer, **_: Any) -> None:
    return None
