"""Does an epoch cost what the data says it should? Epoch time of the student (dermkd's
Trainer, augmentation included, training only) over 1x, 2x and 4x the training split
(the uint8 tensors repeated; whole batches), fitted as t = a + b n by least squares; and
the 1x split at twice the image size, beside the ratio of forward FLOPs.

Every point is a full pass (no extrapolation), timed in turns after a one-batch warm-up
at each image size: about 10 minutes on 2 cores for isic9 at 112 px.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from dermkd.bench.common import BENCHMARKS, BenchContext, Figure, check, interleave
from dermkd.bench.training import batch_size, datamodule, dermkd_fit, run_config, student_factory
from dermkd.train.trainer import torch_threads

MULTIPLES = (1, 2, 4)
TARGET_R2 = 0.99


def forward_flops(ctx: BenchContext, size: int) -> int:
    model = student_factory(ctx, size)().eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.rand(1, 3, size, size))
    return counter.get_total_flops()


@BENCHMARKS.register("scaling")
def scaling(ctx: BenchContext) -> list[Figure]:
    cfg, bs = run_config(ctx), batch_size(ctx)
    size, big = ctx.image_size, 2 * ctx.image_size
    images, labels = ctx.data.images["train"], ctx.data.labels["train"]
    base = 16 if ctx.smoke else len(labels) // bs * bs
    x, y = images[:base], labels[:base]
    points = {k: (x.repeat(k, 1, 1, 1), y.repeat(k), size) for k in MULTIPLES}
    points["big"] = (x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3), y, big)
    students = {s: student_factory(ctx, s) for s in (size, big)}
    times: dict[object, list[float]] = {k: [] for k in points}

    def epoch(key: object, batches: int | None = None) -> float:
        imgs, labs, s = points[key]
        data = dataclasses.replace(ctx.data, image_size=s, images={**ctx.data.images, "train": imgs},
                                   labels={**ctx.data.labels, "train": labs})
        return dermkd_fit(students[s](), datamodule(ctx, data), cfg, batches)

    reps = ctx.steps(2, 1)
    with torch_threads(ctx.threads):
        for key in (1, "big"):
            epoch(key, batches=1)
        interleave({k: (lambda k=k: times[k].append(epoch(k))) for k in points}, reps=reps, warmup=0)

    n = np.array([k * base for k in MULTIPLES for _ in range(reps)], dtype=float)
    t = np.array([s for k in MULTIPLES for s in times[k]])
    slope, intercept = (float(v) for v in np.polyfit(n, t, 1))
    r2 = 1.0 - float(np.sum((t - (intercept + slope * n)) ** 2) / np.sum((t - t.mean()) ** 2))
    med = {k: float(np.median(v)) for k, v in times.items()}
    flop_ratio = forward_flops(ctx, big) / forward_flops(ctx, size)
    target, met = check(r2, ">=", TARGET_R2)
    how = (f"full passes over {', '.join(str(k * base) for k in MULTIPLES)} images ({base} training "
           f"images, repeated), {size} px, batch {bs}, {ctx.threads} thread(s), {reps} interleaved run(s) each")
    return [
        Figure("scaling", "epoch time slope", 1000 * slope, "s/1000 img",
               f"{1 / slope:.1f} img/s; 1x: {med[1]:.1f} s for {base} images", note=how),
        Figure("scaling", "epoch time intercept (fixed cost per epoch)", intercept, "s",
               f"epoch at 1x: {med[1]:.1f} s", note=how),
        Figure("scaling", "linearity: R^2 of t = a + b n", r2, "", f"{len(t)} epochs", target, met, note=how),
        Figure("scaling", "epoch time 4x / 1x images", med[4] / med[1], "x", "4 = proportional", note=how),
        Figure("scaling", f"epoch time {big} px / {size} px", med["big"] / med[1], "x",
               f"forward FLOP ratio {flop_ratio:.2f}", note=f"{base} images, batch {bs}, {reps} run(s) each"),
    ]
