"""Training the DSC student for the benchmarks, two ways over one set of inputs.

dermkd's way is `LitClassifier` driven by the `lightning.Trainer` that `run_stage` uses
(`train.trainer.build_trainer`, without a run directory: no checkpoints, logger or
progress bar), under the process-wide settings `run_stage` makes (`determinism`). The hand-written way is the minimal PyTorch loop
(`train_step`). Both take the same model weights, loader settings, optimizer and loss, so
a difference in speed is the framework's own.
"""

from __future__ import annotations

import contextlib
import inspect
import time
from collections.abc import Callable, Iterator

import lightning as L
import torch
import torch.nn.functional as F

from dermkd.bench.common import BenchContext
from dermkd.config import RunConfig
from dermkd.data.datamodule import DermDataModule
from dermkd.data.prepare import PreparedData
from dermkd.distill.logit_store import LogitStore
from dermkd.distill.strategies import Teacher
from dermkd.models import create_model
from dermkd.models.classifier import Classifier
from dermkd.profiles import build_config
from dermkd.train.module import LitClassifier
from dermkd.train.optimizers import BETAS, KERAS_EPS
from dermkd.train.trainer import build_module, build_trainer, determinism

STUDENT = "dsc"
CHANNELS_LAST: bool = inspect.signature(LitClassifier).parameters["channels_last"].default  # dermkd's layout
MEMORY_FORMAT = torch.channels_last if CHANNELS_LAST else torch.contiguous_format


def run_config(ctx: BenchContext) -> RunConfig:
    """The settings `dermkd train` uses here: the cpu profile (tiny when smoke), Adamax. No
    lr schedule: the profile's plateau schedule needs a validation metric, and a benchmark
    epoch runs no validation."""
    return build_config("tiny" if ctx.smoke else "cpu", {"data": {"image_size": ctx.image_size},
                                                         "train": {"seed": ctx.seed},
                                                         "optim": {"name": "adamax", "scheduler": "none"}})


def batch_size(ctx: BenchContext) -> int:
    """The full batch; smoke data has about 50 training images, so batches of 8 there."""
    return min(ctx.batch_size, 8) if ctx.smoke else ctx.batch_size


@contextlib.contextmanager
def plain_torch() -> Iterator[None]:
    """torch's default flags, as a hand-written loop runs with (restored afterwards)."""
    on, warn_only = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(False)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(on, warn_only=warn_only)


def student_factory(ctx: BenchContext, image_size: int | None = None) -> Callable[[], Classifier]:
    """Builds fresh students that all start from one set of weights (seeded)."""
    size = image_size or ctx.image_size
    cfg = run_config(ctx)
    torch.manual_seed(ctx.seed)
    state = create_model(STUDENT, len(ctx.data.classes), image_size=size).state_dict()

    def fresh() -> Classifier:
        model = create_model(STUDENT, len(ctx.data.classes), image_size=size, bn_momentum=cfg.model.bn_momentum)
        model.load_state_dict(state)
        return model

    return fresh


def datamodule(ctx: BenchContext, data: PreparedData | None = None, num_workers: int | None = None,
               store: LogitStore | None = None) -> DermDataModule:
    """The training loader exactly as `run_stage` builds it (from a teacher-logit store if given)."""
    cfg = run_config(ctx)
    return DermDataModule(data or ctx.data, batch_size(ctx), augment=cfg.augment if cfg.data.augment else None,
                          num_workers=cfg.data.num_workers if num_workers is None else num_workers,
                          seed=cfg.train.seed, store=store)


def layout(x: torch.Tensor, channels_last: bool = CHANNELS_LAST) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> None:
    """One optimizer step on cross-entropy: what the student does per batch."""
    optimizer.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    optimizer.step()


def adamax(model: torch.nn.Module, cfg: RunConfig) -> torch.optim.Optimizer:
    """dermkd's Adamax (train/optimizers.py), written out as a hand-written loop would."""
    return torch.optim.Adamax(model.parameters(), lr=cfg.optim.lr, betas=BETAS, eps=KERAS_EPS)


class EpochClock(L.Callback):
    """Seconds from epoch start to epoch end, as history.csv records them."""

    def __init__(self) -> None:
        self.start = self.seconds = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.seconds = time.perf_counter() - self.start


def dermkd_fit(model: Classifier, dm: DermDataModule, cfg: RunConfig, batches: int | None = None,
               callbacks: list[L.Callback] | None = None, teacher: Teacher | None = None) -> float:
    """One epoch of `batches` batches (None: all) as `run_stage` trains, process-wide
    settings included, with a live `teacher` if given; returns the epoch's seconds."""
    clock = EpochClock()
    lit = build_module(cfg, model, model.describe(), teacher, channels_last=CHANNELS_LAST)
    with determinism(cfg.train.seed, torch.get_num_threads()):
        trainer = build_trainer(cfg, [clock, *(callbacks or [])], max_epochs=1, accelerator="cpu",
                                limit_train_batches=batches, limit_val_batches=0)
        trainer.fit(lit, datamodule=dm)
    return clock.seconds
