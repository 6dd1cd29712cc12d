"""The report's opening: the paper's claims, each marked holds / does not hold / cannot
tell with its evidence, and a forest plot of every run's paired difference from its
baseline. A claim "A is better than B" holds when the paired 95% bootstrap interval of
top-1(A) - top-1(B) on the same test images lies above 0, does not hold when it lies
below, and cannot be told otherwise (or without the runs)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from dermkd.evaluate.stats import paired_accuracy_difference
from dermkd.report import figures
from dermkd.report.analysis import MATCH_AXES, Analysis
from dermkd.report.document import Section, Table
from dermkd.report.loading import RunRecord, StudyData

HOLDS, FAILS, UNKNOWN = "holds", "does not hold", "cannot tell"


def paired_diff(a: RunRecord, b: RunRecord) -> tuple[float, float, float] | None:
    """top-1(a) - top-1(b) on their shared test images, with its paired interval (points)."""
    if a.predictions is None or b.predictions is None:
        return None
    pa, pb = a.predictions, b.predictions
    _, ia, ib = np.intersect1d(pa.paths, pb.paths, assume_unique=True, return_indices=True)
    if ia.size == 0:
        return None
    d, lo, hi = paired_accuracy_difference(pa.labels[ia], pb.preds[ib], pa.preds[ia])
    return 100 * d, 100 * lo, 100 * hi


def _verdict(diffs: list[tuple[str, tuple[float, float, float]]]) -> tuple[str, str]:
    """All better: holds; any worse: does not hold; else cannot tell."""
    if not diffs:
        return UNKNOWN, "the runs it needs are not in this study"
    above = sum(lo > 0 for _, (_, lo, _) in diffs)
    below = sum(hi < 0 for _, (_, _, hi) in diffs)
    if len(diffs) <= 2:
        text = "; ".join(f"{name}: {d:+.1f} [{lo:+.1f}, {hi:+.1f}] points" for name, (d, lo, hi) in diffs)
    else:
        values = [d for _, (d, _, _) in diffs]
        text = (f"{len(diffs)} paired comparisons: {above} above 0, {below} below 0, {len(diffs) - above - below} "
                f"include 0; differences {min(values):+.1f} to {max(values):+.1f} points (mean "
                f"{float(np.mean(values)):+.1f}; each in the forest plot)")
    if any(hi < 0 for _, (_, _, hi) in diffs):
        return FAILS, text
    if all(lo > 0 for _, (_, lo, _) in diffs):
        return HOLDS, text
    return UNKNOWN, text


def _same(a: str | None, b: str | None) -> bool:
    """Axis values as results.csv writes them: '2' and '2.0' are one value."""
    if a == b:
        return True
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return False


def _runs(study: StudyData, **axes: str) -> list[RunRecord]:
    return [r for r in study.runs if r.done and all(_same(r.axes.get(k), v) for k, v in axes.items())]


def _better(study: StudyData, winner: dict[str, str], others: list[dict[str, str]]) -> tuple[str, str]:
    """Each winner run (per seed) against the matching run of each other configuration."""
    diffs = []
    for w in _runs(study, **winner):
        for other in others:
            for o in _runs(study, **{**w.axes, **other}):
                if o.run_id != w.run_id and o.seed == w.seed and (d := paired_diff(w, o)) is not None:
                    diffs.append((f"{w.run_id} vs {o.run_id}", d))
    return _verdict(diffs)


def _kd_helps(study: StudyData, analysis: Analysis) -> tuple[str, str]:
    """Every standard-KD run against its own baseline: the same seed, student, optimizer and
    objective, so the difference is KD's alone (an SGD run against the Adamax baseline would
    measure the optimizer)."""
    own = [c for c in analysis.comparisons() if c.run.axes.get("strategy") == "standard"
           and all(c.run.axes[a] == c.baseline.axes[a] for a in MATCH_AXES)]
    diffs = [(f"{c.run.run_id} vs {c.baseline.run_id}", d) for c in own
             if (d := paired_diff(c.run, c.baseline)) is not None]
    return _verdict(diffs)


Check = Callable[[StudyData, Analysis], tuple[str, str]]
CLAIMS: list[tuple[str, Check]] = [
    ("KD from the teacher makes the student better than training it alone", _kd_helps),
    ("Adamax is the best of the six optimizers (Table 4)",
     lambda s, _: _better(s, {"strategy": "standard", "optimizer": "adamax"},
                          [{"optimizer": o} for o in ("adam", "sgd", "adagrad", "nadam", "rmsprop")])),
    ("Standard KD beats defective and self-training KD (reversed KD trains another architecture)",
     lambda s, _: _better(s, {"strategy": "standard", "optimizer": "adamax", "objective": "ce"},
                          [{"strategy": "defective"}, {"strategy": "self", "teacher": "-"}])),
    ("The multiclass-SVM objective beats cross-entropy",
     lambda s, _: _better(s, {"objective": "svm"}, [{"objective": "ce"}])),
    ("The paper's factor 2 on the soft term beats Hinton's 1",
     lambda s, _: _better(s, {"strategy": "standard", "kd_multiplier": "2.0"}, [{"kd_multiplier": "1.0"}])),
]


def claims_section(study: StudyData, analysis: Analysis, figures_dir: Path) -> Section:
    rows = [[claim, *check(study, analysis)] for claim, check in CLAIMS]
    section = Section("The paper's claims", [Table(
        "Each claim tested on this study's runs (top-1, paired 95% bootstrap interval of the difference on the "
        "same test images)", ["claim", "verdict", "evidence"], rows,
        note="holds: every interval above 0; does not hold: some interval below 0; cannot tell: otherwise.")])
    forest_rows = []
    for c in analysis.comparisons():
        if (d := paired_diff(c.run, c.baseline)) is not None:
            forest_rows.append((c.run.run_id.removesuffix("-adamax-ce").replace("-a0.9-T4-m2", ""), *d))
    if forest_rows:
        section.blocks.append(figures.forest(forest_rows, figures_dir / "forest"))
    return section
