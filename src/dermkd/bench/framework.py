"""What dermkd's training machinery costs: its training throughput against a minimal
hand-written PyTorch loop on the same student, data, batch, threads, optimizer and loss.

The two alternate batch by batch inside one run: after each of dermkd's steps (a real
`lightning.Trainer` fit, see `training.dermkd_fit`) a callback runs one step of the
hand-written loop on its own model, loader and torch's default flags. So a burst of load
from another process hits both sides alike, which whole runs taken in turns do not
ensure on a shared machine. Each side's time per batch includes fetching its next batch.

Steady state (batches 2..N) is the figure with a target. End to end adds each side's
one-time setup: Lightning's (the fit's wall time less the hand-written loop's share)
and the hand-written loop's (optimizer, loader iterator).
"""

from __future__ import annotations

import statistics
import time

import lightning as L

from dermkd.bench.common import BENCHMARKS, BenchContext, Figure, check
from dermkd.bench.training import (MEMORY_FORMAT, STUDENT, adamax, batch_size, datamodule, dermkd_fit, layout,
                                   plain_torch, run_config, student_factory, train_step)
from dermkd.config import RunConfig
from dermkd.data.datamodule import DermDataModule
from dermkd.models.classifier import Classifier
from dermkd.train.trainer import torch_threads

TARGET = 0.90


class Lockstep(L.Callback):
    """After each of dermkd's training batches, one batch of the hand-written loop."""

    def __init__(self, model: Classifier, dm: DermDataModule, cfg: RunConfig) -> None:
        self.model, self.dm, self.cfg = model, dm, cfg
        self.dermkd: list[float] = []  # seconds per batch, fetch + step
        self.hand: list[float] = []
        self.hand_setup = 0.0
        self._resumed = 0.0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        start = time.perf_counter()
        with plain_torch():
            self.model.train().to(memory_format=MEMORY_FORMAT)
            self.optimizer = adamax(self.model, self.cfg)
            self.batches = iter(self.dm.train_dataloader())
        self.hand_setup = time.perf_counter() - start

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._resumed = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch,
                           batch_idx: int) -> None:
        now = time.perf_counter()
        self.dermkd.append(now - self._resumed)
        with plain_torch():
            x, y = next(self.batches)
            train_step(self.model, self.optimizer, layout(x), y)
        self._resumed = time.perf_counter()
        self.hand.append(self._resumed - now)

    def hand_total(self) -> float:
        return self.hand_setup + sum(self.hand)


@BENCHMARKS.register("framework")
def framework(ctx: BenchContext) -> list[Figure]:
    cfg, bs = run_config(ctx), batch_size(ctx)
    batches, reps = ctx.steps(10, 3), ctx.steps(2, 1)
    fresh = student_factory(ctx)
    pairs: dict[str, list[float]] = {"dermkd": [], "hand": []}  # seconds per batch, batches 2..N
    total: dict[str, list[float]] = {"dermkd": [], "hand": []}  # seconds, setup included
    with torch_threads(ctx.threads):
        dermkd_fit(fresh(), datamodule(ctx), cfg, 2, callbacks=[Lockstep(fresh(), datamodule(ctx), cfg)])  # warm-up
        for _ in range(reps):
            lock = Lockstep(fresh(), datamodule(ctx), cfg)
            start = time.perf_counter()
            dermkd_fit(fresh(), datamodule(ctx), cfg, batches, callbacks=[lock])
            total["dermkd"].append(time.perf_counter() - start - lock.hand_total())
            total["hand"].append(lock.hand_total())
            pairs["dermkd"] += lock.dermkd[1:]
            pairs["hand"] += lock.hand[1:]
    # Median of per-batch ratios: a burst of outside load spoils a pair, not the figure.
    ratio = statistics.median(h / d for h, d in zip(pairs["hand"], pairs["dermkd"]))
    rate = {k: bs / statistics.median(v) for k, v in pairs.items()}
    seconds = {k: statistics.median(v) for k, v in total.items()}
    target, met = check(ratio, ">=", TARGET)
    setup = (f"{STUDENT} student at {ctx.image_size} px, {len(lock.hand)} batches of {bs}, {ctx.threads} "
             f"thread(s), sides alternating batch by batch, {reps} run(s)")
    return [
        Figure("framework", "dermkd / hand-written loop, steady-state train img/s", ratio, "x",
               f"hand-written {rate['hand']:.1f} img/s, dermkd {rate['dermkd']:.1f} img/s", target, met,
               note=f"{setup}; median of per-batch ratios, first batch of each run excluded"),
        Figure("framework", "dermkd / hand-written loop, end to end (setup included)",
               seconds["hand"] / seconds["dermkd"], "x",
               f"hand-written {seconds['hand']:.1f} s, dermkd {seconds['dermkd']:.1f} s",
               note=f"{setup}; median over runs"),
    ]
