"""Inference on this CPU: how fast, how small and how faithful each way of running a model is.

For the DSC student (and its global-average-pooling variant, dsc_gap) and the ResNet-50
teacher: batch-1 latency (p50, p95), batch-32 throughput and model size of every export
format (`dermkd.export.FORMATS`), each beside eager PyTorch of the same model measured
in turns in the same run. With trained runs (`ctx.student_run`, `ctx.teacher_run`) the
models are those runs' best checkpoints, calibrated on their own training split and
scored on their own test split: top-1 of every backend against eager, and how often
they predict the same class. Without runs the weights are random and there is no
accuracy to report.

torch.compile is not among the backends: on this 2-core machine it compiled for 30-40 s
per model and input shape (`dermkd.export.predictor.compiled`; dsc and resnet50 at
112 px, cold cache), as long as the rest of the benchmark, to run 1.4-2.3x as fast as
eager: less than ONNX Runtime without any compilation.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dermkd.bench.common import BENCHMARKS, BenchContext, Figure, interleave
from dermkd.data.prepare import PreparedData
from dermkd.errors import DermkdError
from dermkd.evaluate.rundata import run_config, run_data
from dermkd.export import FORMATS, Predictor, Source, export_model, load_predictor, source_from_run
from dermkd.export.predictor import eager
from dermkd.models import create_model
from dermkd.rundir import RunDir
from dermkd.train.trainer import torch_threads

BENCH = "inference"
EAGER = "eager"
BACKENDS = ("torchscript", "onnx", "onnx-int8-dynamic", "onnx-int8-static", "torch-int8-dynamic")
SMOKE_IMAGE_SIZE = 32


@dataclass
class Subject:
    """One model under test."""

    label: str  # e.g. "student dsc"
    source: Source
    data: PreparedData  # calibration (train split) and, for trained models, the test split
    trained: bool

    @property
    def note(self) -> str:
        weights = f"trained: {self.source.checkpoint}" if self.trained else "random weights, no accuracy figures"
        return f"{self.source.image_size} px; {weights}"


def subjects(ctx: BenchContext) -> list[Subject]:
    """The student, dsc_gap and the teacher: trained where a run is given, else random
    weights at the benchmark's image size (32 px when smoke)."""
    size = SMOKE_IMAGE_SIZE if ctx.smoke else ctx.image_size
    loaded: dict[str, PreparedData] = {}  # one decode per distinct data set, split and size

    def data_of(run: Path) -> PreparedData:
        key = repr(dataclasses.replace(run_config(run).data, split_file=RunDir(run).split.read_text()))
        if key not in loaded:
            loaded[key] = run_data(run)
        return loaded[key]

    def data_at(image_size: int) -> PreparedData:
        """Training images for a random-weight model: a run's at this size, else the benchmark's own."""
        for data in loaded.values():
            if data.image_size == image_size:
                return data
        loaded[f"bench data at {image_size} px"] = dataclasses.replace(ctx, image_size=image_size).data
        return data_at(image_size)

    def trained(label: str, run: Path) -> Subject:
        data = data_of(run)
        source = source_from_run(run, train_images=lambda: data.images["train"])
        if data.classes != source.classes:
            raise DermkdError(f"{run}: the model's classes differ from its own split's ({source.classes} vs "
                              f"{data.classes})")
        return Subject(f"{label} {source.spec['name']}", source, data, trained=True)

    def untrained(label: str, name: str) -> Subject:
        data = data_at(size)
        torch.manual_seed(ctx.seed)
        model = create_model(name, len(data.classes), image_size=size)
        source = Source.from_model(model, data.classes, size, train_images=lambda: data.images["train"])
        return Subject(f"{label} {name}", source, data, trained=False)

    student = trained("student", ctx.student_run) if ctx.student_run else untrained("student", "dsc")
    teacher = trained("teacher", ctx.teacher_run) if ctx.teacher_run else untrained("teacher", "resnet50")
    return [student, untrained("student", "dsc_gap"), teacher]


@dataclass
class Backend:
    predict: Predictor
    file_mb: float = math.nan  # the exported file; nan for eager, which has none
    export_s: float = math.nan


def backends(subject: Subject, folder: Path, threads: int) -> dict[str, Backend]:
    """Eager, then every format exported to `folder` and loaded back."""
    source = subject.source
    found = {EAGER: Backend(eager(source.model, source.image_size, source.classes, threads))}
    for fmt in BACKENDS:
        start = time.perf_counter()
        path = export_model(source, fmt, folder / f"{fmt}{FORMATS.get(fmt).suffix}")
        found[fmt] = Backend(load_predictor(path, threads), path.stat().st_size / 1e6, time.perf_counter() - start)
    return found


def timed(fns: dict[str, Callable[[], object]], reps: int, warmup: int) -> dict[str, list[float]]:
    """Every call's seconds, timed in turns by `interleave` (warm-up calls left out)."""
    samples: dict[str, list[float]] = {k: [] for k in fns}

    def recorded(key: str, fn: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            start = time.perf_counter()
            fn()
            samples[key].append(time.perf_counter() - start)

        return run

    interleave({k: recorded(k, fn) for k, fn in fns.items()}, reps=reps, warmup=warmup)
    return {k: v[warmup:] for k, v in samples.items()}


def top1(predictor: Predictor, images: torch.Tensor, batch_size: int) -> np.ndarray:
    """Predicted classes of uint8 (N, 3, S, S) images."""
    return np.concatenate([predictor(images[i:i + batch_size].float().div_(255.0)).argmax(1)
                           for i in range(0, len(images), batch_size)])


def measure(subject: Subject, ctx: BenchContext) -> list[Figure]:
    folder = ctx.work_dir / BENCH / subject.label.replace(" ", "-")
    run = backends(subject, folder, ctx.threads)
    pool = subject.data.images["train"]
    one, batch = pool[:1].float().div(255.0).numpy(), pool[:ctx.batch_size].float().div(255.0).numpy()
    latency = timed({k: lambda b=b: b.predict(one) for k, b in run.items()}, reps=ctx.steps(40, 3), warmup=2)
    throughput = interleave({k: lambda b=b: b.predict(batch) for k, b in run.items()}, reps=ctx.steps(5, 1))
    p50 = {k: 1e3 * float(np.percentile(v, 50)) for k, v in latency.items()}
    p95 = {k: 1e3 * float(np.percentile(v, 95)) for k, v in latency.items()}
    ips = {k: len(batch) / s for k, s in throughput.items()}
    where = f"{subject.note}; {ctx.threads} thread(s)"
    weights_mb = sum(t.numel() * t.element_size() for t in subject.source.model.state_dict().values()) / 1e6

    def row(backend: str, what: str, value: float, unit: str, eager_value: float, faster: float) -> Figure:
        name, cell = f"{subject.label} {backend}: {what}", (f"{subject.label} {backend}", f"{what} ({unit})")
        if backend == EAGER:
            return Figure(BENCH, name, value, unit, "the reference of this model's rows (same run, in turns)",
                          note=where, cell=cell)
        return Figure(BENCH, name, value, unit, f"eager {eager_value:.3g} {unit}; {faster:.2f}x as fast", note=where,
                      cell=cell)

    figures = []
    for k in run:
        figures += [
            row(k, "batch-1 latency p50", p50[k], "ms", p50[EAGER], p50[EAGER] / p50[k]),
            row(k, "batch-1 latency p95", p95[k], "ms", p95[EAGER], p95[EAGER] / p95[k]),
            row(k, f"batch-{len(batch)} throughput", ips[k], "img/s", ips[EAGER], ips[k] / ips[EAGER]),
        ]
        if k != EAGER:
            mb = run[k].file_mb
            figures.append(Figure(BENCH, f"{subject.label} {k}: model file size", mb, "MB",
                                  f"eager fp32 weights {weights_mb:.3g} MB; this file {mb / weights_mb:.2f}x that",
                                  note=f"{where}; export {run[k].export_s:.1f} s",
                                  cell=(f"{subject.label} {k}", "file (MB)")))
    if subject.trained:
        figures += accuracy(subject, {k: b.predict for k, b in run.items()}, ctx.batch_size, where)
    return figures


def accuracy(subject: Subject, run: dict[str, Predictor], batch_size: int, where: str) -> list[Figure]:
    """Top-1 on the run's test split: eager's, then each backend's change and agreement."""
    images, labels = subject.data.images["test"], subject.data.labels["test"].numpy()
    predicted = {k: top1(p, images, batch_size) for k, p in run.items()}
    correct = {k: 100.0 * float(np.mean(v == labels)) for k, v in predicted.items()}
    n = f"test split, n={len(labels)}"
    figures = [Figure(BENCH, f"{subject.label} {EAGER}: top-1", correct[EAGER], "%",
                      f"{n}; the reference of the changes below", note=where,
                      cell=(f"{subject.label} {EAGER}", "top-1 (%)"))]
    for k in BACKENDS:
        agree = 100.0 * float(np.mean(predicted[k] == predicted[EAGER]))
        figures += [
            Figure(BENCH, f"{subject.label} {k}: top-1 change vs eager", correct[k] - correct[EAGER], "points",
                   f"top-1 {correct[k]:.1f}% vs eager {correct[EAGER]:.1f}% ({n})", note=where,
                   cell=(f"{subject.label} {k}", "top-1 change vs eager (points)")),
            Figure(BENCH, f"{subject.label} {k}: same prediction as eager", agree, "%", n, note=where,
                   cell=(f"{subject.label} {k}", "same prediction as eager (%)")),
        ]
    return figures


@BENCHMARKS.register(BENCH)
def inference(ctx: BenchContext) -> list[Figure]:
    with torch_threads(ctx.threads):  # exports and calibration too, not only the timed calls
        return [figure for subject in subjects(ctx) for figure in measure(subject, ctx)]
