"""Per-epoch callbacks: `history.csv` (train/val loss and accuracy, lr, seconds), rewritten
atomically after every epoch so a killed run keeps every finished epoch; and the
weights after one chosen epoch (the "poorly trained" teacher of defective KD)."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import lightning as L

from dermkd.io import write_csv

COLUMNS = ["epoch", "train_loss", "train_hard_loss", "train_kd_loss", "train_acc", "val_loss", "val_acc", "lr",
           "seconds"]


class HistoryWriter(L.Callback):
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.rows: list[dict] = []
        self._t0 = 0.0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.path.is_file():  # resuming (the checkpoint is restored by now): keep the epochs already done
            with self.path.open(newline="") as fh:
                self.rows = [r for r in csv.DictReader(fh) if int(r["epoch"]) < trainer.current_epoch]

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._t0 = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        m = trainer.callback_metrics
        row = {"epoch": trainer.current_epoch, "seconds": round(time.perf_counter() - self._t0, 3),
               "lr": trainer.optimizers[0].param_groups[0]["lr"]}
        for key in COLUMNS[1:-2]:
            row[key] = float(m[key]) if key in m else ""
        self.rows.append(row)
        write_csv(self.path, self.rows, COLUMNS)


class SaveAtEpoch(L.Callback):
    """Save the weights once, after 1-based epoch `epoch` (validation included)."""

    def __init__(self, epoch: int, path: str | Path) -> None:
        self.epoch, self.path = epoch, Path(path)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch + 1 == self.epoch:
            trainer.save_checkpoint(self.path, weights_only=True)
