"""The plain-language summary: the best run, which differences are real, how the paper's
"accuracy" relates to top-1, and what failed."""

from __future__ import annotations

from dermkd.report.analysis import ALPHA, Analysis
from dermkd.report.cells import value, with_ci
from dermkd.report.document import Section
from dermkd.report.loading import RunRecord, StudyData


def _best(runs: list[RunRecord], column: str) -> RunRecord | None:
    scored = [r for r in runs if r.done and r.values.get(column) is not None]
    return max(scored, key=lambda r: r.values[column]) if scored else None


def summary_section(study: StudyData, analysis: Analysis) -> Section:
    texts = (_best_text(study, analysis), _differences_text(analysis), _ovr_text(study), _failed_text(study))
    return Section("Summary", [t for t in texts if t])


def _best_text(study: StudyData, analysis: Analysis) -> str:
    best = _best(study.runs, "top1_accuracy")
    if best is None:
        return "No run finished with a score."
    ci = (analysis.ci(best) or {}).get("top1_accuracy")
    spread = " (95% bootstrap interval over test images)" if ci else " (no interval: predictions.csv is missing)"
    done = sum(r.done for r in study.runs)
    partial = ""
    if study.planned and study.planned > len(study.runs):
        partial = (f"PARTIAL STUDY: {len(study.runs)} of the {study.planned} planned runs have results; the rest "
                   "had not run when this report was written, so tables and tests below are incomplete. ")
    return (f"{partial}Of {len(study.runs)} runs, {done} finished. The best by top-1 accuracy is {best.run_id}: "
            f"{with_ci(best.values['top1_accuracy'], ci)}{spread}.")


def _differences_text(analysis: Analysis) -> str:
    comparisons = analysis.comparisons()
    if not comparisons:
        return "No run could be compared with a baseline on the same test images."
    better = sum(c.significant and c.test["b10"] > c.test["b01"] for c in comparisons)  # b10: only the run right
    worse = sum(c.significant for c in comparisons) - better
    return (f"Against their baseline on the same test images (McNemar, p < {ALPHA}), {better} of "
            f"{len(comparisons)} runs are better, {worse} worse, and for {len(comparisons) - better - worse} the "
            "evidence is too weak to tell; the forest plot above shows each run's difference.")


def _ovr_text(study: StudyData) -> str:
    best = _best(study.runs, "macro_ovr_accuracy")
    if best is None:
        return ""
    return ("The paper's \"accuracy\" is one-vs-rest accuracy, which on nine classes counts every correctly "
            "rejected class as a hit and so runs far above top-1: our best macro OvR accuracy is "
            f"{value(best.values['macro_ovr_accuracy'])} ({best.run_id}), while that run's top-1 accuracy is "
            f"{value(best.values.get('top1_accuracy'))}. Compare the paper's Table 4 with our OvR column, "
            "not with top-1.")


def _failed_text(study: StudyData) -> str:
    if not study.failed:
        return "No run failed."
    listed = "; ".join(f"{r.run_id} ({r.error or r.status or 'no error recorded'})" for r in study.failed)
    return f"{len(study.failed)} run(s) failed: {listed}."
