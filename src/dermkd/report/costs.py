"""What a model costs to run: parameters, FLOPs and CPU latency of one image.

FLOPs come from torch's own FlopCounterMode on one forward pass (2 per multiply-add, matrix
products and convolutions only), so they follow the architecture actually built rather
than a table. Latency is single-thread batch-1 CPU inference, the deployment the paper's
small student is meant for; one thread also keeps the number comparable across machines
and keeps it from fighting a training job for cores. Models are built with random weights
(weights do not change the cost), once per (name, image size, classes) in a report run.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from dermkd.models.classifier import count_parameters
from dermkd.models.registry import create_model


@dataclass(frozen=True)
class ModelCost:
    params: int
    flops: int  # one forward pass of one image
    latency_ms: float  # median over the timed repetitions
    latency_p95_ms: float


def measure(name: str, image_size: int, num_classes: int, reps: int = 20, warmup: int = 3) -> ModelCost:
    model = create_model(name, num_classes, image_size=image_size).eval()
    x = torch.rand(1, 3, image_size, image_size)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            with FlopCounterMode(display=False) as counter:
                model(x)
            for _ in range(warmup):
                model(x)
            times = []
            for _ in range(reps):
                start = time.perf_counter()
                model(x)
                times.append((time.perf_counter() - start) * 1000.0)
    finally:
        torch.set_num_threads(threads)
    return ModelCost(params=count_parameters(model), flops=int(counter.get_total_flops()),
                     latency_ms=statistics.median(times), latency_p95_ms=float(np.percentile(times, 95)))


class CostMeter:
    """measure() with a cache: a teacher that appears in several rows is built once."""

    def __init__(self, reps: int = 20, warmup: int = 3) -> None:
        self.reps, self.warmup = reps, warmup
        self._cache: dict[tuple[str, int, int], ModelCost] = {}

    def __call__(self, name: str, image_size: int, num_classes: int) -> ModelCost:
        key = (name, image_size, num_classes)
        if key not in self._cache:
            self._cache[key] = measure(name, image_size, num_classes, self.reps, self.warmup)
        return self._cache[key]
