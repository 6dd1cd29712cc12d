"""What distillation costs per epoch: KD with a live teacher, and KD from the
teacher-logit store, each against training the student alone (same student weights,
data, batch, threads; dermkd's real training path), and what bfloat16 autocast
(`--precision bf16-mixed`) saves on the student alone and on live KD. With two finished
runs (the same KD run with a live teacher and with the store), also what the store costs
in accuracy.

Timed: epochs of the same number of batches, runs interleaved, medians. The store's
one-time build is reported beside the epoch time it saves, as a break-even epoch count.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from dermkd.bench.common import BENCHMARKS, BenchContext, Figure, check, interleave
from dermkd.bench.training import batch_size, datamodule, dermkd_fit, run_config, student_factory
from dermkd.config import RunConfig
from dermkd.distill.logit_store import open_or_build
from dermkd.distill.strategies import Teacher, checkpoint_teacher
from dermkd.models import create_model
from dermkd.report.paired import compare_runs
from dermkd.train.trainer import torch_threads

TARGET = 1.15  # KD from the store / student alone, epoch time
TEACHER = "resnet50"
VIEWS = 8


def _teacher(ctx: BenchContext) -> tuple[Teacher, str, str]:
    """(teacher, its checkpoint sha256 or a stand-in key, description): the trained one if given."""
    cfg = run_config(ctx)
    if ctx.teacher_run is not None:
        teacher, record = checkpoint_teacher(ctx.teacher_run, len(ctx.data.classes), teacher_weights=None,
                                             temperature=cfg.kd.temperature)
        return teacher, record["sha256"], f"trained {record['model']} ({ctx.teacher_run})"
    model = create_model(TEACHER, len(ctx.data.classes), image_size=ctx.image_size)
    return Teacher(model), f"random-{TEACHER}-{ctx.image_size}-seed{ctx.seed}", f"{TEACHER}, random weights"


@BENCHMARKS.register("distill")
def distill(ctx: BenchContext) -> list[Figure]:
    cfg, bs = run_config(ctx), batch_size(ctx)
    kd_cfg = dataclasses.replace(cfg, kd=dataclasses.replace(cfg.kd, strategy="standard"))
    batches, reps = ctx.steps(10, 3), ctx.steps(3, 1)
    fresh = student_factory(ctx)
    with torch_threads(ctx.threads):
        teacher, sha, described = _teacher(ctx)
        started = time.perf_counter()
        store = open_or_build(teacher, sha, ctx.data, VIEWS, ctx.seed, root=ctx.work_dir / "teacher-logits",
                              batch_size=2 * bs)
        build = time.perf_counter() - started
        seconds = interleave({
            "student": lambda: dermkd_fit(fresh(), datamodule(ctx), cfg, batches),
            "live": lambda: dermkd_fit(fresh(), datamodule(ctx), kd_cfg, batches, teacher=teacher),
            "store": lambda: dermkd_fit(fresh(), datamodule(ctx, store=store), kd_cfg, batches),
            "student bf16": lambda: dermkd_fit(fresh(), datamodule(ctx), bf16(cfg), batches),
            "live bf16": lambda: dermkd_fit(fresh(), datamodule(ctx), bf16(kd_cfg), batches, teacher=teacher),
        }, reps=reps, warmup=1)
    rate = {k: batches * bs / s for k, s in seconds.items()}  # img/s over the timed epoch
    live, stored = seconds["live"] / seconds["student"], seconds["store"] / seconds["student"]
    target, met = check(stored, "<=", TARGET)
    n_train = len(ctx.data.labels["train"])
    saved = n_train / rate["live"] - n_train / rate["store"]  # seconds per full epoch
    setup = (f"dsc student at {ctx.image_size} px, batch {bs}, {ctx.threads} threads; teacher {described}; "
             f"median of {reps} interleaved runs of {batches} batches")
    figures = [
        Figure("distill", "KD epoch time / student-only, live teacher", live, "x",
               f"student {rate['student']:.1f} img/s, live KD {rate['live']:.1f} img/s", note=setup),
        Figure("distill", f"KD epoch time / student-only, teacher-logit store (K={VIEWS})", stored, "x",
               f"student {rate['student']:.1f} img/s, store KD {rate['store']:.1f} img/s", target, met, setup),
        Figure("distill", "student-only epoch time, bf16-mixed / fp32", seconds["student bf16"] / seconds["student"],
               "x", f"fp32 {rate['student']:.1f} img/s, bf16-mixed {rate['student bf16']:.1f} img/s", note=setup),
        Figure("distill", "live-teacher KD epoch time, bf16-mixed / fp32", seconds["live bf16"] / seconds["live"],
               "x", f"fp32 {rate['live']:.1f} img/s, bf16-mixed {rate['live bf16']:.1f} img/s",
               note=f"{setup}; bf16-mixed: --precision bf16-mixed, autocast over student and teacher forwards"),
        Figure("distill", "store build (one-off) / epoch time it saves", build / saved if saved > 0 else float("inf"),
               "epochs", f"build {build:.1f} s for {n_train} x {VIEWS} views; saves {saved:.1f} s per epoch of "
               f"{n_train} images", note="after this many epochs the store has paid for itself"),
    ]
    if ctx.live_run is not None and ctx.store_run is not None:
        figures += store_accuracy(ctx.live_run, ctx.store_run)
    return figures


def bf16(cfg: RunConfig) -> RunConfig:
    """`cfg` with bfloat16 autocast (`--precision bf16-mixed`)."""
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, precision="bf16-mixed"))


def store_accuracy(live_run: Path, store_run: Path) -> list[Figure]:
    """Top-1 of the same KD run with the live teacher and with the store, on the same test images."""
    pair = compare_runs(live_run, store_run)
    figures = [Figure("distill", f"top-1, KD from the {name}", top1, "top-1",
                      f"95% CI [{ci[0]:.3f}, {ci[1]:.3f}], n={pair.n}")
               for name, top1, ci in zip(("live teacher", "teacher-logit store"), pair.top1, pair.ci)]
    lo, hi = pair.diff_ci
    figures.append(Figure("distill", "top-1 change, store - live", pair.diff * 100, "points",
                          f"paired 95% CI [{lo * 100:+.1f}, {hi * 100:+.1f}]; McNemar p = {pair.p_value:.3f}",
                          note=f"{store_run.name} vs {live_run.name}"))
    return figures
