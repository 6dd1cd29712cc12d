"""Training the DSC student for the benchmarks, two ways over one set of inputs.

dermkd's way is `LitClassifier` driven by a real `lightning.Trainer` built as
`train/stage.py` builds it (deterministic="warn", log every step), less what writes files
(checkpoints, logger, progress bar), with the process-wide settings `run_stage` makes
(`set_determinism`). The hand-written way is the minimal PyTorch loop
(`train_step`). Both take the same model weights, loader settings, optimizer and loss, so
a difference in speed is the framework's own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import time
from collections.abc import Callable, Iterator

import lightning as L
import torch
import torch.nn.functional as F

from dermkd.bench.common import BenchContext
from dermkd.config import RunConfig, build_config
from dermkd.data.datamodule import DermDataModule
from dermkd.data.prepare import PreparedData
from dermkd.distill.logit_store import LogitStore
from dermkd.distill.strategies import Teacher
from dermkd.models import create_model
from dermkd.models.classifier import Classifier
from dermkd.train.module import LitClassifier
from dermkd.train.optimizers import KERAS_EPS
from dermkd.train.stage import quiet_lightning, set_determinism

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
def torch_threads(n: int) -> Iterator[None]:
    """Run with `n` intra-op threads and give the caller back its own count."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def global_determinism() -> Iterator[None]:
    """`run_stage` and Lightning's `deterministic=` switch process-wide torch flags;
    restore them so that what runs next is timed as it would be alone."""
    on, warn_only = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    fill = torch.utils.deterministic.fill_uninitialized_memory
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(on, warn_only=warn_only)
        torch.utils.deterministic.fill_uninitialized_memory = fill


@contextlib.contextmanager
def plain_torch() -> Iterator[None]:
    """torch's default flags, as a hand-written loop runs with."""
    with global_determinism():
        torch.use_deterministic_algorithms(False)
        yield


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
    return DermDataModule(data or ctx.data, batch_size(ctx), augment=cfg.data.augment,
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
    return torch.optim.Adamax(model.parameters(), lr=cfg.optim.lr, betas=(0.9, 0.999), eps=KERAS_EPS)


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
    quiet_lightning()
    clock = EpochClock()
    lit = LitClassifier(model, model.describe(), dataclasses.asdict(cfg.optim), dataclasses.asdict(cfg.kd),
                        teacher=teacher, channels_last=CHANNELS_LAST)
    with global_determinism():
        set_determinism(cfg.train.seed, torch.get_num_threads())
        trainer = L.Trainer(
            max_epochs=1, accelerator="cpu", devices=1, callbacks=[clock, *(callbacks or [])], logger=False,
            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
            num_sanity_val_steps=0, limit_train_batches=batches, limit_val_batches=0, log_every_n_steps=1,
            deterministic="warn", precision=cfg.train.precision,
        )
        trainer.fit(lit, datamodule=dm)
    return clock.seconds
