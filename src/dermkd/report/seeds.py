"""Across-seed statistics: spread over training seeds and tests that need several seeds.

McNemar and the bootstrap see only test-set noise; whether a configuration wins again with
another seed needs repeats: mean ± sd, a paired Wilcoxon against the baseline (paired by
seed) and a Friedman test over the strategy sweep.
"""

from __future__ import annotations

from collections import defaultdict

from dermkd.evaluate.stats import describe_difference, friedman, paired_wilcoxon
from dermkd.report.analysis import ALPHA, Analysis
from dermkd.report.cells import MISSING, mean_sd, p_value
from dermkd.report.document import Section, Table
from dermkd.report.loading import RunRecord, StudyData

TITLE = "Across seeds"
SCORE = "top1_accuracy"  # the score the across-seed tests compare


def _by_config(runs: list[RunRecord]) -> dict[tuple[str, ...], dict[str, RunRecord]]:
    """configuration -> seed -> run, for finished runs with a top-1 score."""
    groups: dict[tuple[str, ...], dict[str, RunRecord]] = defaultdict(dict)
    for run in runs:
        if run.done and run.values.get(SCORE) is not None:
            groups[run.config][run.seed] = run
    return groups


def _name(seeds: dict[str, RunRecord]) -> str:
    """The run id without its seed suffix names the configuration."""
    return next(iter(seeds.values())).run_id.rsplit("-s", 1)[0]


def seeds_section(study: StudyData, analysis: Analysis) -> Section:
    groups = _by_config(study.runs)
    seeds = sorted({s for g in groups.values() for s in g})
    if not groups or max(len(g) for g in groups.values()) < 2:
        return Section(TITLE, [
            f"Every configuration ran with one seed (seed {', '.join(seeds) or MISSING}), so there is no "
            "across-seed spread, and the across-seed tests (paired Wilcoxon against the baseline, Friedman over "
            "the strategies) need more seeds. The McNemar tests above measure test-set noise only, not whether "
            "a result survives another training seed."])
    rows = [[_name(g), str(len(g)), mean_sd([r.values[SCORE] for r in g.values()]),
             mean_sd([r.values["balanced_accuracy"] for r in g.values() if r.values.get("balanced_accuracy")
                      is not None]), _wilcoxon_cell(groups, g, analysis)] for g in groups.values()]
    table = Table("Mean ± sd over seeds; Wilcoxon signed-rank on top-1, paired by seed, against the baseline",
                  ["Configuration", "Seeds", "Top-1", "Bal. acc", "vs baseline (Wilcoxon)"], rows)
    return Section(TITLE, [table, _friedman_text(study)])


def _wilcoxon_cell(groups: dict[tuple[str, ...], dict[str, RunRecord]], group: dict[str, RunRecord],
                   analysis: Analysis) -> str:
    first = next(iter(group.values()))
    baseline = analysis.baseline_for(first)
    if first.axes["strategy"] == "baseline" or baseline is None:
        return MISSING
    base = groups.get(baseline.config, {})
    paired = sorted(set(group) & set(base))
    if len(paired) < 2:
        return f"needs ≥ 2 seeds shared with the baseline, has {len(paired)}"
    test = paired_wilcoxon([group[s].values[SCORE] for s in paired], [base[s].values[SCORE] for s in paired])
    return describe_difference(_name(group), "baseline", test)


def _friedman_text(study: StudyData) -> str:
    groups = _by_config(study.in_sweep("strategies"))
    blocks = sorted(set.intersection(*(set(g) for g in groups.values()))) if groups else []
    if len(groups) < 3 or len(blocks) < 2:
        return (f"Friedman test over the strategy sweep: needs ≥ 3 configurations run on ≥ 2 common seeds; "
                f"has {len(groups)} configurations and {len(blocks)} common seeds.")
    result = friedman({_name(g): [g[s].values[SCORE] for s in blocks] for g in groups.values()})
    if result["p_value"] is None:
        return f"Friedman test over the strategy sweep: {result.get('note', 'no result')}."
    ranks = ", ".join(f"{k} {v:.2f}" for k, v in sorted(result["mean_rank"].items(), key=lambda kv: -kv[1]))
    verdict = ("the strategies differ" if result["p_value"] < ALPHA
               else "the evidence is too weak to say that the strategies differ")
    return (f"Friedman test over the {len(groups)} strategies, blocked by {len(blocks)} seeds, on top-1: "
            f"{p_value(result['p_value'])}: {verdict}. Mean rank (higher is better): {ranks}.")
