"""Is the input pipeline ever the bottleneck? Images/s the training loader delivers
(augmentation included, exactly `DermDataModule.train_dataloader()` with the profile's
settings) against images/s the student trains at with its batch already in memory.

Loader runs (the first batches of a pass) and training steps alternate. Loaders with
worker processes are timed from their second run on, beside the default; training starts
its workers afresh each epoch (for exact resume), which cost 0.1-0.2 s per epoch in a
1-worker, 112 px, 1347-image loader here: under 0.5% of a training epoch. The augmentation of the default loader runs in this
process under the training's thread count, as it does in training.
"""

from __future__ import annotations

import itertools
import warnings

from torch.utils.data import DataLoader

from dermkd.bench.common import BENCHMARKS, BenchContext, Figure, check, interleave
from dermkd.bench.training import (MEMORY_FORMAT, adamax, batch_size, datamodule, layout, run_config,
                                   student_factory, train_step)
from dermkd.train.trainer import torch_threads

TARGET = 3.0


def _batches(loader: DataLoader, n: int) -> int:
    """Draws up to `n` batches; returns how many images they held."""
    return sum(len(y) for _, y in itertools.islice(loader, n))


@BENCHMARKS.register("datapath")
def datapath(ctx: BenchContext) -> list[Figure]:
    cfg, bs = run_config(ctx), batch_size(ctx)
    default = cfg.data.num_workers
    workers = [default] + [w for w in ((1,) if ctx.smoke else (1, 2)) if w != default]
    loaders = {w: datamodule(ctx, num_workers=w).train_dataloader() for w in workers}
    batches, images = ctx.steps(10, 3), {}
    model = student_factory(ctx)().train().to(memory_format=MEMORY_FORMAT)
    optimizer = adamax(model, cfg)
    x, y = next(iter(loaders[default]))
    x = layout(x)
    steps = ctx.steps(4, 2)

    def train() -> None:
        for _ in range(steps):
            train_step(model, optimizer, x, y)

    def draw(w: int) -> None:
        images[w] = _batches(loaders[w], batches)

    def draw_one_thread() -> None:  # the default loader with torch at 1 thread, as in a worker process
        with torch_threads(1):
            images["1 thread"] = _batches(loaders[default], batches)

    fns = {f"loader{w}": (lambda w=w: draw(w)) for w in workers}
    if ctx.threads > 1:
        fns["loader1 thread"] = draw_one_thread
    with torch_threads(ctx.threads), warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        seconds = interleave({"train": train, **fns}, reps=ctx.steps(3, 1))
    loader_rate = {w: images[w] / seconds[f"loader{w}"] for w in images}
    train_rate = steps * bs / seconds["train"]
    ratio = loader_rate[default] / train_rate
    target, met = check(ratio, ">=", TARGET)
    figures = [Figure("datapath", f"train loader (num_workers={default}) / student training, img/s", ratio, "x",
                      f"loader {loader_rate[default]:.0f} img/s, training {train_rate:.1f} img/s", target, met,
                      note=f"{ctx.image_size} px, batch {bs}, augmentation {'on' if cfg.data.augment else 'off'}, "
                           f"{ctx.threads} thread(s); loader: {images[default]} images per run; training: "
                           f"forward+backward+Adamax step on a batch in memory")]
    for w in workers[1:]:
        figures.append(Figure("datapath", f"train loader img/s, num_workers={w} / num_workers={default}",
                              loader_rate[w] / loader_rate[default], "x",
                              f"{loader_rate[w]:.0f} vs {loader_rate[default]:.0f} img/s",
                              note="loader alone; in training, workers share the cores with the training step"))
    if "1 thread" in loader_rate:
        figures.append(Figure("datapath", f"train loader img/s (num_workers={default}), torch at 1 thread / at "
                                          f"{ctx.threads} threads", loader_rate["1 thread"] / loader_rate[default], "x",
                              f"{loader_rate['1 thread']:.0f} vs {loader_rate[default]:.0f} img/s",
                              note="per-image augmentation in the training process runs under the training's "
                                   "thread count; worker processes run at 1 thread"))
    return figures
