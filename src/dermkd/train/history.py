"""Per-epoch callbacks: `history.csv` (train/val loss and accuracy, lr, seconds), rewritten
atomically after every epoch so a killed run keeps every finished epoch; the weights
after one chosen epoch (the "poorly trained" teacher of defective KD); and the per-epoch
reseeding that makes a resumed run draw exactly what an uninterrupted one draws."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from dermkd.data.samplers import epoch_seed
from dermkd.io import write_csv

COLUMNS = ["epoch", "train_loss", "train_hard_loss", "train_kd_loss", "train_acc", "val_loss", "val_acc", "lr",
           "seconds"]


class HistoryWriter(L.Callback):
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.rows: list[dict] = []
        self._t0 = 0.0

    def state_dict(self) -> dict[str, Any]:
        """The rows so far travel in every checkpoint: a resumed run's history is the
        checkpoint's, whatever the file held when the run was killed."""
        return {"rows": self.rows}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.rows = list(state_dict["rows"])

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:  # one writer under data-parallel training
            write_csv(self.path, self.rows, COLUMNS)  # drops rows of epochs after the checkpoint

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._t0 = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        m = trainer.callback_metrics
        if "train_loss" not in m:  # a resumed run replaying the end of the epoch its checkpoint closed
            return
        row = {"epoch": trainer.current_epoch, "seconds": round(time.perf_counter() - self._t0, 3),
               "lr": trainer.optimizers[0].param_groups[0]["lr"]}
        for key in COLUMNS[1:-2]:
            row[key] = float(m[key]) if key in m else ""
        self.rows.append(row)
        if trainer.is_global_zero:
            write_csv(self.path, self.rows, COLUMNS)


class SaveAtEpoch(L.Callback):
    """Save the weights once, after 1-based epoch `epoch` (validation included)."""

    def __init__(self, epoch: int, path: str | Path) -> None:
        self.epoch, self.path = epoch, Path(path)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch + 1 == self.epoch:
            trainer.save_checkpoint(self.path, weights_only=True)


class EpochSeed(L.Callback):
    """Reseed torch, numpy and random at the start of every training epoch from (seed,
    epoch), so that an epoch's augmentation, dropout and stored-view draws do not depend
    on the epochs before it (with `data.samplers.EpochSampler` for the order)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        s = epoch_seed(self.seed, trainer.current_epoch) + trainer.global_rank
        random.seed(s)
        np.random.seed(s % 2**32)
        torch.manual_seed(s)
