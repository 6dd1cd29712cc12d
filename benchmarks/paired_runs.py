"""Compare two training variants that differ in one setting (e.g. live teacher vs
teacher-logit store, fp32 vs bf16-mixed), one pair of finished runs per seed, all tested
on the same test images. Prints a Markdown table: per seed, each side's top-1 with its 95%
bootstrap interval, the paired difference B - A with its paired bootstrap interval, the
McNemar p, and the median epoch seconds of each side (history.csv); then the mean and
standard deviation of the difference over seeds and, with enough seeds, a Wilcoxon test.

    .venv/bin/python benchmarks/paired_runs.py --a-name live --b-name store \\
        runs/live-s0:runs/store-s0 runs/live-s1:runs/store-s1 ...
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from dermkd.evaluate.stats import paired_wilcoxon
from dermkd.report.loading import read_history
from dermkd.report.paired import compare_runs


def pair_row(a: Path, b: Path) -> dict[str, float | str]:
    pair = compare_runs(a, b)
    (top1_a, top1_b), (ci_a, ci_b), (lo, hi) = pair.top1, pair.ci, pair.diff_ci
    return {
        "a": f"{top1_a:.3f} [{ci_a[0]:.3f}, {ci_a[1]:.3f}]", "b": f"{top1_b:.3f} [{ci_b[0]:.3f}, {ci_b[1]:.3f}]",
        "diff": pair.diff, "ci": f"[{100 * lo:+.1f}, {100 * hi:+.1f}]", "p": pair.p_value,
        "top1_a": top1_a, "top1_b": top1_b, "n": pair.n,
        "sec_a": statistics.median(read_history(a / "history.csv")["seconds"]),
        "sec_b": statistics.median(read_history(b / "history.csv")["seconds"]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pairs", nargs="+", help="RUN_A:RUN_B, one pair per seed")
    ap.add_argument("--a-name", default="A")
    ap.add_argument("--b-name", default="B")
    args = ap.parse_args()
    rows = []
    for pair in args.pairs:
        a, _, b = pair.partition(":")
        rows.append((Path(a).name, Path(b).name, pair_row(Path(a), Path(b))))
    an, bn = args.a_name, args.b_name
    print(f"| runs ({an} / {bn}) | top-1 {an} | top-1 {bn} | {bn} - {an} (points) | paired 95% CI | McNemar p "
          f"| epoch s {an} | epoch s {bn} |")
    print("|---|---|---|---|---|---|---|---|")
    for name_a, name_b, r in rows:
        print(f"| {name_a} / {name_b} | {r['a']} | {r['b']} | {100 * r['diff']:+.1f} | {r['ci']} | {r['p']:.3f} "
              f"| {r['sec_a']:.1f} | {r['sec_b']:.1f} |")
    diffs = [100 * r["diff"] for _, _, r in rows]
    mean_a = statistics.mean(r["top1_a"] for _, _, r in rows)
    mean_b = statistics.mean(r["top1_b"] for _, _, r in rows)
    sd = statistics.stdev(diffs) if len(diffs) > 1 else float("nan")
    speed = statistics.mean(r["sec_a"] / r["sec_b"] for _, _, r in rows)
    print(f"\nOver {len(rows)} seed(s), n = {rows[0][2]['n']} test images each: mean top-1 {an} {mean_a:.3f}, "
          f"{bn} {mean_b:.3f}; difference {bn} - {an} {statistics.mean(diffs):+.1f} ± {sd:.1f} points (sd over "
          f"seeds); {bn} epochs run {speed:.2f}x as fast as {an} (mean of per-seed ratios of median epoch seconds).")
    if len(rows) >= 6:  # an exact two-sided signed-rank test cannot reach p < 0.05 with fewer
        test = paired_wilcoxon([r["top1_a"] for _, _, r in rows], [r["top1_b"] for _, _, r in rows])
        print(f"Wilcoxon signed-rank over seeds: p = {test['p_value']:.3f}.")
    else:
        print(f"No Wilcoxon test: with {len(rows)} seeds its smallest possible p is above 0.05.")


if __name__ == "__main__":
    main()
