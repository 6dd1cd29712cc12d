"""Two finished runs scored on the same test images: each one's top-1 with its 95%
bootstrap interval, the paired difference (second - first) with its paired interval, and
McNemar's test. Used by the distillation benchmark (live teacher vs store) and by
`benchmarks/paired_runs.py` (any two variants, seed by seed)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dermkd.evaluate.stats import bootstrap_ci, mcnemar, paired_accuracy_difference
from dermkd.report.loading import read_predictions
from dermkd.rundir import RunDir


@dataclass(frozen=True)
class PairedRuns:
    n: int  # test images
    top1: tuple[float, float]  # (first, second)
    ci: tuple[tuple[float, float], tuple[float, float]]  # 95% bootstrap interval of each top-1
    diff: float  # second - first, as a fraction
    diff_ci: tuple[float, float]  # paired bootstrap interval of diff
    p_value: float  # McNemar


def compare_runs(first: Path, second: Path) -> PairedRuns:
    """The comparison of two run directories' per-image predictions; a ValueError when they
    were not tested on the same images."""
    a, b = read_predictions(RunDir(first).predictions), read_predictions(RunDir(second).predictions)
    if list(a.paths) != list(b.paths):
        raise ValueError(f"{first} and {second} were not tested on the same images")
    classes = len(a.codes)
    diff, lo, hi = paired_accuracy_difference(a.labels, a.preds, b.preds)
    return PairedRuns(
        n=len(a.labels),
        top1=(float(np.mean(a.preds == a.labels)), float(np.mean(b.preds == b.labels))),
        ci=tuple(tuple(bootstrap_ci(p.labels, p.preds, classes)["top1_accuracy"]) for p in (a, b)),
        diff=float(diff), diff_ci=(float(lo), float(hi)),
        p_value=float(mcnemar(a.labels, a.preds, b.preds)["p_value"]),
    )
