"""One builder per part of the study: Table 4 and its curves, the strategy table, the
teacher table with costs, any other sweep, and the failed runs. A part with nothing to
show becomes a sentence saying why, never an error."""

from __future__ import annotations

from pathlib import Path

from dermkd.errors import DermkdError
from dermkd.report import figures
from dermkd.report.analysis import Analysis
from dermkd.report.cells import METRIC_COLUMNS, MISSING, count, signed, value, with_ci
from dermkd.report.costs import CostMeter
from dermkd.report.document import Section, Table
from dermkd.report.loading import RunRecord, StudyData
from dermkd.report.paper_values import PAPER_COLUMNS, PAPER_OPTIMIZER_NAMES, PAPER_TABLE4
from dermkd.report.tables import Label, baseline_columns, mcnemar_cells, metric_table, run_label

CURVE_COLUMNS = ("epoch", "train_hard_loss", "val_loss", "train_acc", "val_acc")
NAMED_SWEEPS = ("table4", "strategies", "teachers", "students")  # sweeps with a section of their own


def _skipped(title: str, sweep: str, what: str) -> Section:
    return Section(title, [f"No finished run belongs to a `{sweep}` sweep, so {what} is skipped."])


def _baseline_first(runs: list[RunRecord]) -> list[RunRecord]:
    """The reference row on top; the rest in results order."""
    return sorted(runs, key=lambda r: r.axes["strategy"] != "baseline")


def _failed_note(study: StudyData, sweep: str) -> list[str]:
    """A sentence naming the sweep's failed runs (they have no row), or nothing."""
    failed = [r.run_id for r in study.failed if sweep in r.sweeps]
    return [f"Failed in this sweep, so not in the table: {', '.join(failed)} (see Failed runs)."] if failed else []


def table4(study: StudyData, analysis: Analysis, figures_dir: Path) -> Section:
    """The paper's Table 4 (one row per optimizer, standard KD) and Figures 4-8."""
    title = "Table 4 replica: standard KD, one row per optimizer"
    order = list(PAPER_TABLE4)
    runs = sorted(study.in_sweep("table4"), key=lambda r: (order.index(r.axes["optimizer"])
                                                           if r.axes["optimizer"] in order else len(order)))
    if not runs:
        return _skipped(title, "table4", "the Table 4 replica (and Figures 4-8)")
    label = run_label(runs, study.sweep_axes.get("table4"), PAPER_OPTIMIZER_NAMES)
    caption = "Table 4 (ours): macro one-vs-rest measures with true top-1 and balanced accuracy"
    section = Section(title, [*_failed_note(study, "table4"), metric_table(runs, analysis, caption, label),
                              _paper_table(runs, label)])
    for run in runs:
        name = PAPER_OPTIMIZER_NAMES.get(run.axes["optimizer"], run.axes["optimizer"])
        if run.history and all(c in run.history for c in CURVE_COLUMNS):
            section.blocks.append(figures.training_curves(run.history, name, figures_dir / f"curves-{run.run_id}"))
        else:
            section.blocks.append(f"No training curves for {name}: history.csv is missing or incomplete.")
    return section


def _paper_table(runs: list[RunRecord], label: Label) -> Table:
    rows = []
    for run in runs:
        paper = PAPER_TABLE4.get(run.axes["optimizer"])
        cells = []
        for measure, column in PAPER_COLUMNS.items():
            ours = run.values.get(column)
            cells.append(MISSING if paper is None or ours is None
                         else f"{paper[measure]:.4f} ({signed(ours - paper[measure])})")
        rows.append([label(run), *cells])
    header = ["Optimizer", *(f"{METRIC_COLUMNS[c]}: paper (ours − paper)" for c in PAPER_COLUMNS.values())]
    return Table("Table 4 (paper) beside ours: the paper's value and our value minus it", header, rows,
                 "The paper's values as printed (its \"Accuracy\" is one-vs-rest accuracy; it prints Nadam as "
                 "\"Namax\"). It gives no intervals, seeds or test-set size, so a difference cannot be tested.")


def strategies(study: StudyData, analysis: Analysis, figures_dir: Path) -> Section:
    """The KD strategies against the baseline, with confusion matrices and per-class bars."""
    title = "KD strategies"
    runs = _baseline_first(study.in_sweep("strategies"))
    if not runs:
        return _skipped(title, "strategies", "the strategy table")
    label = run_label(runs, study.sweep_axes.get("strategies"))
    section = Section(title, [*_failed_note(study, "strategies"), metric_table(
        runs, analysis, "Strategies: each against the baseline student on the same test images", label,
        baseline_columns(analysis, label))])
    scored = [r for r in runs if r.predictions is not None]
    section.blocks += [figures.confusion(r.predictions, label(r), figures_dir / f"confusion-{r.run_id}")
                       for r in scored]
    if scored:
        section.blocks.append(figures.per_class_bars({label(r): r.predictions for r in scored},
                                                     figures_dir / "per-class-strategies"))
    if len(scored) < len(runs):
        missing = ", ".join(label(r) for r in runs if r.predictions is None)
        section.blocks.append(f"No confusion matrix for {missing}: predictions.csv is missing.")
    return section


def teachers(study: StudyData, analysis: Analysis, meter: CostMeter) -> Section:
    """Each teacher's own score and cost beside the student it taught; the student's cost for contrast."""
    title = "Teachers"
    runs = study.in_sweep("teachers")
    if not runs:
        return _skipped(title, "teachers", "the teacher table")
    problems: list[str] = []
    rows = []
    for run in runs:
        teacher = run.axes["teacher"]
        own = study.teachers.get(f"{teacher}-s{run.seed}") or {}
        if not own:
            problems.append(f"No own score for {teacher}: teachers/{teacher}-s{run.seed}/metrics.json is missing.")
        ci = analysis.ci(run) or {}
        rows.append([teacher, "teacher", value(own.get("top1_accuracy")), value(own.get("balanced_accuracy")),
                     *_cost_cells(meter, teacher, run, problems),
                     with_ci(run.values.get("top1_accuracy"), ci.get("top1_accuracy")),
                     with_ci(run.values.get("balanced_accuracy"), ci.get("balanced_accuracy")),
                     "; ".join(mcnemar_cells(analysis, run, f"student of {teacher}"))])
    student = runs[0].axes["student"]
    baseline = analysis.baseline_for(runs[0])
    rows.append([student, "student, trained without a teacher",
                 value(baseline.values.get("top1_accuracy") if baseline else None),
                 value(baseline.values.get("balanced_accuracy") if baseline else None),
                 *_cost_cells(meter, student, runs[0], problems), MISSING, MISSING, MISSING])
    header = ["Model", "Role", "Own top-1", "Own bal. acc", "Params", "FLOPs", "CPU latency ms (median / p95)",
              "Student top-1", "Student bal. acc", "Student vs baseline (McNemar)"]
    note = ("Own scores: the model's test score (a teacher trained on hard labels; the student's baseline run). "
            "FLOPs: one forward pass of one image, 2 per multiply-add. Latency: batch 1, one CPU thread, "
            "random weights. " + " ".join(problems))
    return Section(title, [*_failed_note(study, "teachers"),
                           Table("Teachers and the students they taught", header, rows, note.strip())])


def students(study: StudyData, analysis: Analysis, meter: CostMeter, figures_dir: Path) -> Section:
    """Students beyond the paper's, taught by the same teacher: accuracy against cost, and the Pareto chart."""
    title = "Students: accuracy against cost"
    runs = study.in_sweep("students")
    if not runs:
        return _skipped(title, "students", "the student table and Pareto chart")
    problems: list[str] = []
    rows, points = [], {}
    for run in runs:
        arch = run.axes["student"]
        start = run.axes.get("pretrained", "")  # studies before the axis existed have no column
        name = arch if start in ("", "none", "-") else f"{arch} ({start})"
        ci = analysis.ci(run) or {}
        costs = _cost_cells(meter, arch, run, problems)
        rows.append([name, *costs, with_ci(run.values.get("top1_accuracy"), ci.get("top1_accuracy")),
                     with_ci(run.values.get("balanced_accuracy"), ci.get("balanced_accuracy")),
                     "; ".join(mcnemar_cells(analysis, run, name))])
        top1 = run.values.get("top1_accuracy")
        if costs[2] != MISSING and top1 is not None:
            spec = run.metrics["model"]
            points[name] = (meter(arch, int(spec["image_size"]), int(spec["num_classes"])).latency_ms, top1,
                            ci.get("top1_accuracy"))
    header = ["Student", "Params", "FLOPs", "CPU latency ms (median / p95)", "Top-1", "Bal. acc",
              "vs baseline (McNemar)"]
    teacher = {r.axes["teacher"] for r in runs}
    note = (f"Every student learned from the same teacher ({', '.join(sorted(teacher))}) with the same settings. "
            "Latency: batch 1, one CPU thread, random weights. " + " ".join(problems))
    section = Section(title, [*_failed_note(study, "students"),
                              Table("Students taught by the same teacher", header, rows, note.strip())])
    if len(points) >= 2:
        section.blocks.append(figures.pareto(points, figures_dir / "pareto-students",
                                             _pareto_references(study, analysis, meter, runs[0])))
    return section


def _pareto_references(study: StudyData, analysis: Analysis, meter: CostMeter,
                       run: RunRecord) -> dict[str, figures.Point]:
    """What the students should be read against: the paper's student trained without a
    teacher (the study's baseline run) and the teacher itself, where the study has them."""
    spec = run.metrics["model"]
    size, classes = int(spec["image_size"]), int(spec["num_classes"])
    found: dict[str, figures.Point] = {}
    baseline = analysis.baseline_for(run)
    top1 = baseline.values.get("top1_accuracy") if baseline else None
    if baseline is not None and top1 is not None:
        name = baseline.axes["student"]
        found[f"{name}, no teacher"] = (meter(name, size, classes).latency_ms, top1,
                                        (analysis.ci(baseline) or {}).get("top1_accuracy"))
    teacher = run.axes["teacher"]
    own = (study.teachers.get(f"{teacher}-s{run.seed}") or {}).get("top1_accuracy")
    if own is not None:
        found[f"{teacher} (teacher)"] = (meter(teacher, size, classes).latency_ms, own, None)
    return found


def _cost_cells(meter: CostMeter, name: str, run: RunRecord, problems: list[str]) -> list[str]:
    """Params, FLOPs, latency of `name` at `run`'s image size; dashes when it cannot be built."""
    spec = (run.metrics or {}).get("model") or {}
    if "image_size" not in spec or "num_classes" not in spec:
        problems.append(f"No costs for {name}: {run.run_id} has no metrics.json with the image size.")
        return [MISSING] * 3
    try:
        cost = meter(name, int(spec["image_size"]), int(spec["num_classes"]))
    except DermkdError as exc:
        problems.append(f"No costs for {name}: {exc}.")
        return [MISSING] * 3
    return [count(cost.params), count(cost.flops), f"{cost.latency_ms:.2f} / {cost.latency_p95_ms:.2f}"]


def other_sweep(study: StudyData, analysis: Analysis, sweep: str) -> Section:
    """Any sweep without a section of its own (objectives, kd_multiplier, ...): the generic table."""
    runs = _baseline_first(study.in_sweep(sweep))
    title = f"Sweep: {sweep}"
    if not runs:
        return Section(title, [f"No run of the `{sweep}` sweep finished.", *_failed_note(study, sweep)])
    label = run_label(runs, study.sweep_axes.get(sweep), named=True)
    return Section(title, [*_failed_note(study, sweep),
                           metric_table(runs, analysis, f"Sweep {sweep}", label, baseline_columns(analysis, label))])


def failed(study: StudyData) -> Section:
    rows = [[r.run_id, ", ".join(r.sweeps), r.status or MISSING, r.error or MISSING] for r in study.failed]
    if not rows:
        return Section("Failed runs", ["No run failed."])
    return Section("Failed runs", [Table("Runs without results (see runs/<run>/error.txt for the traceback)",
                                         ["Run", "Sweeps", "Status", "Error"], rows)])
