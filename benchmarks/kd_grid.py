"""The KD grid scored on its validation split only (the choice of alpha, T and the
multiplier must never see the test split): each finished run of the grid study, scored by
`dermkd evaluate RUN --split val`, ranked by validation balanced accuracy. Markdown to
stdout (and to --out).

    .venv/bin/python benchmarks/kd_grid.py runs/kd-grid --out docs/results/pretrained-teachers/kd-grid.md
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from dermkd.io import write_text


def val_metrics(run: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "val.json"
        subprocess.run([str(Path(sys.executable).with_name("dermkd")), "evaluate", str(run), "--split", "val",
                        "--output", str(out)], check=True, capture_output=True)
        return json.loads(out.read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("study", type=Path)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    rows = []
    for run in sorted((args.study / "runs").glob("*/metrics.json")):
        m = val_metrics(run.parent)
        a, t, k = re.search(r"-a([\d.]+)-T([\d.]+)-m([\d.]+)-", run.parent.name).groups()
        mel = m["per_class"].get("melanoma", {}).get("sensitivity")
        rows.append((m["balanced_accuracy"], a, t, k, m["top1_accuracy"], m["log_loss"], mel, m["n"]))
    rows.sort(reverse=True)
    lines = ["| rank | alpha | T | multiplier | soft-term weight m alpha T^2 | val balanced acc. | val top-1 | "
             "val log-loss | val melanoma sens. |", "|---|---|---|---|---|---|---|---|---|"]
    for i, (bal, a, t, k, top1, nll, mel, n) in enumerate(rows, 1):
        weight = float(k) * float(a) * float(t) ** 2
        lines.append(f"| {i} | {a} | {t} | {k} | {weight:g} | {bal:.3f} | {top1:.3f} | {nll:.3f} | "
                     f"{'n/a' if mel is None else f'{mel:.3f}'} |")
    text = (f"Validation split, n = {rows[0][-1] if rows else 0}; {len(rows)} finished grid points of "
            f"{args.study}.\n\n" + "\n".join(lines) + "\n")
    print(text)
    if args.out:
        write_text(args.out, text)


if __name__ == "__main__":
    main()
