"""What every benchmark shares: the figure it reports, its context, and fair timing.

A benchmark is a function `(BenchContext) -> list[Figure]` registered in `BENCHMARKS`.
Timings of the things a figure compares are interleaved (A B A B ...) and summarised by
their medians, so a burst of load from another process hits both sides alike.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal

import torch

from dermkd.registry import Registry


@dataclass
class Figure:
    """One row of the benchmark table."""

    bench: str  # which benchmark, e.g. "framework"
    name: str  # what was measured, e.g. "dermkd / hand-written loop, train img/s"
    value: float
    unit: str  # "x" for ratios, else "img/s", "ms", "GiB", "s", "GFLOP/s", ...
    reference: str = ""  # what the value is compared with, measured in the same run
    target: str = ""  # e.g. ">= 0.90"; empty: reported, no target
    met: bool | None = None  # None: no target
    note: str = ""
    # (row, column) of this figure in its benchmark's summary grid, e.g. ("student dsc onnx",
    # "batch-1 p50 ms"); None: the figure is in the full table only
    cell: tuple[str, str] | None = None


@dataclass
class BenchContext:
    """Where and how big: `smoke` runs every benchmark in seconds on tiny synthetic data
    (the test suite does this so that benchmarks never rot); `full` uses isic9 at the
    cpu profile when it is present."""

    size: Literal["full", "smoke"] = "full"
    data_root: Path | None = None  # None: synthetic data
    image_size: int = 112
    batch_size: int = 32
    threads: int = field(default_factory=lambda: torch.get_num_threads())
    work_dir: Path = Path("runs/bench")
    seed: int = 0
    student_run: Path | None = None  # trained runs for the accuracy columns (e.g. a study's runs)
    teacher_run: Path | None = None
    live_run: Path | None = None  # the same KD run with a live teacher and with the teacher-logit store,
    store_run: Path | None = None  # for the store's accuracy cost

    @property
    def smoke(self) -> bool:
        return self.size == "smoke"

    def steps(self, full: int, smoke: int = 2) -> int:
        return smoke if self.smoke else full

    @cached_property
    def data(self):
        """The prepared data set (uint8 cache): isic9 or synthetic, at `image_size`."""
        from dermkd.profiles import build_config
        from dermkd.pipeline import load_data

        profile = "tiny" if self.smoke else "cpu"
        data: dict[str, object] = {"image_size": self.image_size}
        if self.data_root is not None:
            data["root"] = str(self.data_root)
        overrides = {"data": data, "train": {"seed": self.seed}, "out_dir": str(self.work_dir)}
        return load_data(build_config(profile, overrides))


BenchFn = Callable[[BenchContext], list[Figure]]
BENCHMARKS: Registry[BenchFn] = Registry("benchmark")


def interleave(fns: dict[str, Callable[[], object]], reps: int, warmup: int = 1) -> dict[str, float]:
    """Median seconds of each callable, timed in turns A B A B ... after `warmup` turns."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(reps):
        for k, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def check(value: float, op: Literal[">=", "<="], bound: float) -> tuple[str, bool]:
    """(target text, met?) for a figure with a target."""
    return f"{op} {bound:g}", (value >= bound if op == ">=" else value <= bound)


def machine() -> dict[str, object]:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        mem = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": mem, "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform()}


def as_dict(f: Figure) -> dict[str, object]:
    return dataclasses.asdict(f)
