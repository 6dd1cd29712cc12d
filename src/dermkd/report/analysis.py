"""Per-run statistics the report needs more than once: bootstrap intervals and McNemar
tests against the matching baseline, each computed once per report run."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dermkd.evaluate.stats import bootstrap_ci, mcnemar
from dermkd.report.loading import RunRecord, StudyData

N_BOOT = 1000
BOOT_SEED = 0
ALPHA = 0.05  # significance level of every test in the report

# axes a baseline should share with the run it is compared with, most important first
MATCH_AXES = ("student", "optimizer", "objective")  # what a baseline shares with its runs


@dataclass(frozen=True)
class Comparison:
    """McNemar's test of a run against its baseline on the test images both predicted."""

    run: RunRecord
    baseline: RunRecord
    test: dict  # stats.mcnemar's result
    n_paired: int

    @property
    def significant(self) -> bool:
        return self.test["p_value"] < ALPHA


class Analysis:
    def __init__(self, study: StudyData) -> None:
        self.study = study
        self._ci: dict[str, dict[str, tuple[float, float]] | None] = {}
        self._vs: dict[str, Comparison | None] = {}

    def ci(self, run: RunRecord) -> dict[str, tuple[float, float]] | None:
        """95% bootstrap intervals of stats.BOOT_STATS from predictions.csv; None without it."""
        if run.run_id not in self._ci:
            p = run.predictions
            self._ci[run.run_id] = None if p is None else bootstrap_ci(
                p.labels, p.preds, len(p.codes), n_boot=N_BOOT, seed=BOOT_SEED)
        return self._ci[run.run_id]

    def baseline_for(self, run: RunRecord) -> RunRecord | None:
        """The finished baseline run of the same seed, preferring in turn the same student,
        optimizer and objective.

        The runner trains the baseline with the same student, optimizer, objective and seed,
        so an exact match exists in a complete study; partial matches keep a trimmed study usable.
        """
        candidates = [b for b in self.study.runs if b.done and b.axes["strategy"] == "baseline"
                      and b.seed == run.seed and b.predictions is not None]
        if not candidates:
            return None
        return max(candidates, key=lambda b: [b.axes[a] == run.axes[a] for a in MATCH_AXES])

    def vs_baseline(self, run: RunRecord) -> Comparison | None:
        """McNemar against baseline_for(run); None for a baseline or without paired predictions."""
        if run.run_id not in self._vs:
            self._vs[run.run_id] = self._compare(run)
        return self._vs[run.run_id]

    def _compare(self, run: RunRecord) -> Comparison | None:
        base = self.baseline_for(run)
        if run.axes["strategy"] == "baseline" or base is None or run.predictions is None:
            return None
        a, b = run.predictions, base.predictions
        _, ia, ib = np.intersect1d(a.paths, b.paths, assume_unique=True, return_indices=True)
        if ia.size == 0 or not np.array_equal(a.labels[ia], b.labels[ib]):
            return None  # no shared test images, or the two runs disagree on their labels
        return Comparison(run, base, mcnemar(a.labels[ia], a.preds[ia], b.preds[ib]), int(ia.size))

    def comparisons(self) -> list[Comparison]:
        """Every finished run against its baseline, in results order."""
        return [c for c in (self.vs_baseline(r) for r in self.study.runs if r.done) if c is not None]
