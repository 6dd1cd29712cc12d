"""KD against the baseline student over seeds, paired: for every taught configuration of a
study and every seed, the difference (KD - baseline, same seed, same test images) in top-1
and in balanced accuracy with paired 95% bootstrap intervals and McNemar's p; then, over
seeds, the mean difference with a t interval and Wilcoxon's signed-rank p, and melanoma
sensitivity. Writes Markdown to stdout (and to --out).

    .venv/bin/python benchmarks/kd_seeds.py runs/kd-pretrained --out docs/results/pretrained-teachers/kd-random.md
"""

from __future__ import annotations

import argparse
import re
import statistics
from pathlib import Path

import numpy as np
from scipy import stats as sps

from dermkd.evaluate.stats import mcnemar, paired_metric_difference, paired_wilcoxon
from dermkd.io import read_json, write_text
from dermkd.report.loading import read_predictions

METRICS = (("top1_accuracy", "top-1"), ("balanced_accuracy", "balanced acc."))


def finished_runs(study: Path) -> dict[str, dict[int, Path]]:
    """config (the run id without its seed) -> seed -> run directory, for every run with a
    metrics.json (results.csv lists only the runs of the latest invocation while it runs)."""
    out: dict[str, dict[int, Path]] = {}
    for metrics in sorted((study / "runs").glob("*/metrics.json")):
        run = metrics.parent
        config = re.sub(r"-s\d+(-f\d+)?$", "", run.name)
        out.setdefault(config, {})[int(read_json(run / "env.json")["seed"])] = run
    return out


def t_interval(values: list[float]) -> str:
    if len(values) < 2:
        return "n/a"
    half = sps.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / np.sqrt(len(values))
    mean = statistics.mean(values)
    return f"[{100 * (mean - half):+.1f}, {100 * (mean + half):+.1f}]"


def compare(base: dict[int, Path], taught: dict[int, Path], name: str) -> list[str]:
    seeds = sorted(set(base) & set(taught))
    lines = [f"### {name}", "", "| seed | baseline top-1 | KD top-1 | diff top-1 [95% CI] | baseline bal. | KD bal. "
             "| diff bal. [95% CI] | McNemar p | melanoma sens. base / KD |", "|---|---|---|---|---|---|---|---|---|"]
    diffs: dict[str, list[float]] = {m: [] for m, _ in METRICS}
    scores: dict[str, tuple[list[float], list[float]]] = {m: ([], []) for m, _ in METRICS}
    mel = ([], [])
    for seed in seeds:
        a, b = read_predictions(base[seed] / "predictions.csv"), read_predictions(taught[seed] / "predictions.csv")
        if list(a.paths) != list(b.paths):
            raise SystemExit(f"{base[seed]} and {taught[seed]} were not tested on the same images")
        ma, mb = read_json(base[seed] / "metrics.json"), read_json(taught[seed] / "metrics.json")
        cells = [str(seed)]
        for metric, _ in METRICS:
            d, lo, hi = paired_metric_difference(a.labels, a.preds, b.preds, len(a.codes), metric)
            diffs[metric].append(d)
            scores[metric][0].append(ma[metric])
            scores[metric][1].append(mb[metric])
            cells += [f"{ma[metric]:.3f}", f"{mb[metric]:.3f}", f"{100 * d:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]"]
        cells.append(f"{mcnemar(a.labels, a.preds, b.preds)['p_value']:.3f}")
        pair = [m["per_class"].get("melanoma", {}).get("sensitivity", float("nan")) for m in (ma, mb)]
        mel[0].append(pair[0])
        mel[1].append(pair[1])
        cells.append(f"{pair[0]:.3f} / {pair[1]:.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for metric, label in METRICS:
        d = diffs[metric]
        w = paired_wilcoxon(scores[metric][1], scores[metric][0])
        lines.append(f"- {label}: mean KD - baseline over {len(d)} seeds {100 * statistics.mean(d):+.1f} points, "
                     f"95% t interval {t_interval(d)}, Wilcoxon p = {w['p_value']:.3f}"
                     if d else f"- {label}: no finished pair")
    if mel[0]:
        lines.append(f"- melanoma sensitivity: baseline {statistics.mean(mel[0]):.3f}, KD {statistics.mean(mel[1]):.3f}"
                     " (mean over seeds)")
    return lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    runs = finished_runs(args.study)
    base = [c for c in runs if c.startswith("baseline-")]
    if len(base) != 1:
        raise SystemExit(f"expected one baseline configuration in {args.study}, found {base}")
    lines = [f"## {args.study.name}: KD against the baseline student, paired by seed", ""]
    for config in sorted(c for c in runs if c != base[0]):
        lines += compare(runs[base[0]], runs[config], config)
    text = "\n".join(lines)
    print(text)
    if args.out:
        write_text(args.out, text)


if __name__ == "__main__":
    main()
