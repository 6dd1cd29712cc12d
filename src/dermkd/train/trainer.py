"""One Trainer factory and the process-wide settings a run makes, as context managers.

`build_trainer` serves `train.stage` (a run directory: checkpoints, CSV logger, progress
bar) and the benchmarks (no files); `build_module` hands `LitClassifier` its built loss
and optimization. `determinism` and `torch_threads` restore what they change, so a run
inside a longer process (a study, a benchmark, a test) leaves it as it found it.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import CSVLogger

from dermkd.build import build_loss, build_optimization, resolve
from dermkd.config import RunConfig
from dermkd.distill.strategies import Teacher
from dermkd.models.classifier import Classifier
from dermkd.rundir import RunDir
from dermkd.train.checkpoints import AtomicCheckpointIO
from dermkd.train.module import LitClassifier


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run with `n` intra-op threads (None: all cores), then restore the caller's count."""
    before = torch.get_num_threads()
    torch.set_num_threads(n or os.cpu_count() or 1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def determinism(seed: int, threads: int | None = None) -> Iterator[None]:
    """Seed torch, numpy, random (and loader workers) from one seed, with deterministic
    kernels where they exist (a warning where not); restores torch's flags afterwards.

    Deterministic mode would also fill every new tensor with NaN, a guard against kernels
    that read memory they never wrote (a PyTorch bug, not a source of run-to-run change
    otherwise). The fill took about 12% of the DSC student's training step at 112 px on 2
    CPU cores, so it is off; seeded runs still repeat exactly. Not covered:
    nondeterministic kernels on some GPUs.
    """
    on, warn_only = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    fill = torch.utils.deterministic.fill_uninitialized_memory
    L.seed_everything(seed, workers=True, verbose=False)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = False
    try:
        with torch_threads(threads):
            yield
    finally:
        torch.use_deterministic_algorithms(on, warn_only=warn_only)
        torch.utils.deterministic.fill_uninitialized_memory = fill


def quiet_lightning() -> None:
    """Lightning sets its loggers to INFO when imported (GPU/TPU availability, tips);
    dermkd reports what matters itself."""
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)


def build_module(cfg: RunConfig, model: Classifier, spec: dict[str, Any], teacher: Teacher | None = None,
                 class_weight: list[float] | None = None, channels_last: bool = True) -> LitClassifier:
    """The LightningModule of a run: eq. 1's loss and the optimization, built from `cfg`."""
    parts = resolve(cfg)
    return LitClassifier(model, spec, build_loss(cfg, parts, model.head_weight(), class_weight),
                         build_optimization(cfg.optim, parts), teacher=teacher, channels_last=channels_last)


def parallel_settings(cfg: RunConfig) -> dict[str, Any]:
    """Trainer arguments for `cfg.train.devices` data-parallel ranks. DDP (gloo on CPU, NCCL
    on GPUs, chosen by Lightning) starts its ranks by spawning (or forking, `ddp_fork`, CPU
    only) from this process, so a run's lock, files and final test stay with rank 0's
    parent. Each rank takes its own slice of the one (seed, epoch) order
    (`data.samplers.EpochSampler`), so Lightning's distributed sampler is off; every rank
    validates the whole validation split (the same val_loss for checkpointing everywhere).
    On GPUs BatchNorm statistics are synchronised across ranks (SyncBatchNorm); torch has
    no CPU SyncBatchNorm, so on CPU each rank normalises over its own per-device batch."""
    if cfg.train.devices == 1:
        return {"devices": 1}
    from lightning.pytorch.strategies import DDPStrategy

    start = {"ddp": "spawn", "ddp_fork": "fork"}[cfg.train.parallel]
    gpu = cfg.train.accelerator in ("gpu", "cuda") or (cfg.train.accelerator == "auto" and torch.cuda.is_available())
    return {"devices": cfg.train.devices, "strategy": DDPStrategy(start_method=start),
            "use_distributed_sampler": False, "sync_batchnorm": gpu}


def build_trainer(cfg: RunConfig, callbacks: list[L.Callback], run_dir: RunDir | None = None,
                  loggers: Sequence[Any] = (), **overrides: Any) -> L.Trainer:
    """The Trainer of a run: into `run_dir` (atomic checkpoints, CSV log and `loggers`, e.g. a
    tracker's, progress bar per `cfg.train.progress`), or without any file when `run_dir` is
    None (benchmarks). `overrides` are Trainer arguments (e.g. `max_epochs=1, limit_val_batches=0`)."""
    quiet_lightning()
    files: dict[str, Any] = (
        {"logger": [CSVLogger(run_dir.path, name=run_dir.logs.name, version=""), *loggers],
         "plugins": [AtomicCheckpointIO()],
         "enable_progress_bar": cfg.train.progress}
        if run_dir is not None else
        {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False}
    )
    settings = dict(
        max_epochs=cfg.train.epochs, accelerator=cfg.train.accelerator, callbacks=callbacks, **parallel_settings(cfg),
        enable_model_summary=False, num_sanity_val_steps=0, limit_train_batches=cfg.train.limit_train_batches,
        log_every_n_steps=1, deterministic="warn", precision=cfg.train.precision, **files,
    )
    return L.Trainer(**{**settings, **overrides})
