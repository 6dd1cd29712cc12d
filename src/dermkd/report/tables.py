"""Table builders shared by every section: run labels, metric rows with intervals, and
McNemar cells, so all sweeps print the same columns the same way."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from dermkd.evaluate.stats import describe_difference
from dermkd.report.analysis import Analysis
from dermkd.report.cells import METRIC_COLUMNS, METRIC_NOTE, MISSING, p_value, with_ci
from dermkd.report.document import Table
from dermkd.report.loading import RunRecord
from dermkd.study.grid import AXES

Label = Callable[[RunRecord], str]
Column = tuple[str, Callable[[RunRecord], str]]  # header, cell of one run


def run_label(runs: Sequence[RunRecord], axes: Sequence[str] | None = None, display: Mapping[str, str] | None = None,
              named: bool = False) -> Label:
    """Name runs by the axes their sweep varies, so a row reads 'adamax', not a run id.

    `axes`: the sweep's own axes (study.yaml); without them, the axes whose values differ
    among `runs`. `display` renames axis values (e.g. the paper's optimizer names); `named`
    writes 'axis=value', for sweeps where the bare value would be ambiguous. The seed is
    added only when the runs span several seeds.
    """
    varying = [a for a in AXES if a in axes] if axes is not None else [
        a for a in AXES if a != "seed" and len({r.axes[a] for r in runs}) > 1]
    several_seeds = len({r.seed for r in runs}) > 1
    display = display or {}

    def label(run: RunRecord) -> str:
        parts = [display.get(run.axes[a], run.axes[a]) for a in varying]
        if named:
            parts = [f"{a}={p}" for a, p in zip(varying, parts)]
        text = ", ".join(parts) or run.run_id
        return f"{text} (seed {run.seed})" if several_seeds and parts else text

    return label


def mcnemar_cells(analysis: Analysis, run: RunRecord, name: str) -> tuple[str, str]:
    """(p and discordant counts, plain-language verdict) of `run` against its baseline."""
    if run.axes["strategy"] == "baseline":
        return "reference", "the baseline itself"
    comparison = analysis.vs_baseline(run)
    if comparison is None:
        return MISSING, "no baseline predictions on the same test images"
    t = comparison.test
    return (f"{p_value(t['p_value'])} ({t['b10']} only this right, {t['b01']} only baseline right, "
            f"n = {comparison.n_paired})", describe_difference(name, "baseline", t))


def baseline_columns(analysis: Analysis, label: Label) -> list[Column]:
    return [("McNemar vs baseline", lambda r: mcnemar_cells(analysis, r, label(r))[0]),
            ("Verdict", lambda r: mcnemar_cells(analysis, r, label(r))[1])]


def metric_table(runs: Sequence[RunRecord], analysis: Analysis, caption: str, label: Label,
                 extra: Sequence[Column] = ()) -> Table:
    """One row per run: every METRIC_COLUMNS value with its bootstrap interval, then `extra`."""
    rows = []
    for run in runs:
        ci = analysis.ci(run) or {}
        rows.append([label(run), *(with_ci(run.values.get(k), ci.get(k)) for k in METRIC_COLUMNS),
                     *(cell(run) for _, cell in extra)])
    no_ci = [label(r) for r in runs if r.predictions is None]
    note = METRIC_NOTE + (f" No interval for {', '.join(no_ci)}: predictions.csv is missing." if no_ci else "")
    return Table(caption, ["Run", *METRIC_COLUMNS.values(), *(h for h, _ in extra)], rows, note)
