"""The study report's calibration section: each run's test ECE from its predicted
probabilities, and after the temperature `dermkd calibrate` stored for it, with a
reliability diagram of the baseline student and the best- and worst-calibrated runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dermkd.errors import DermkdError
from dermkd.evaluate.calibration import ece_of, reliability_bins
from dermkd.evaluate.run_calibration import run_temperature
from dermkd.report import figures
from dermkd.report.cells import MISSING
from dermkd.report.document import Section, Table
from dermkd.report.loading import RunRecord, StudyData

Bins = dict[str, list[float]]


def _bins(run: RunRecord, temperature: float = 1.0) -> Bins:
    """Reliability bins of the run's test probabilities, rescaled by 1/T: softmax(log p / T)
    equals softmax(z / T), since log p differs from the logits z by a constant per image."""
    p = run.predictions
    logp = torch.from_numpy(np.log(np.clip(p.probs, 1e-12, 1.0)))
    return reliability_bins((logp / temperature).softmax(1), torch.from_numpy(p.labels))


def calibration_section(study: StudyData, figures_dir: Path) -> Section:
    title = "Calibration"
    runs = [r for r in study.runs if r.done and r.predictions is not None and r.predictions.probs is not None]
    if not runs:
        return Section(title, ["No finished run has test probabilities (predictions.csv)."])
    before = {r.run_id: _bins(r) for r in runs}
    rows, notes, after = [], [], {}
    for r in runs:
        t = None
        try:
            t = run_temperature(study.root / "runs" / r.run_id)
        except DermkdError as exc:  # an unreadable calibration.json: said, not fatal
            notes.append(str(exc))
        if t is not None:
            after[r.run_id] = _bins(r, t)
        rows.append([r.run_id, f"{ece_of(before[r.run_id]):.3f}", MISSING if t is None else f"{t:.3f}",
                     f"{ece_of(after[r.run_id]):.3f}" if t is not None else MISSING])
    table = Table("Test ECE (15 bins) before and after temperature scaling", ["Run", "ECE", "T (fitted on val)",
                  "ECE after"], rows, "T comes from `dermkd calibrate RUN`, fitted on the run's validation split; "
                  f"{MISSING}: the run was not calibrated.")
    by_ece = sorted(runs, key=lambda r: ece_of(before[r.run_id]))
    baseline = [r for r in runs if r.axes.get("strategy") == "baseline"][:1]
    shown = {r.run_id: r for r in [*baseline, by_ece[0], by_ece[-1]]}  # in this order, each once
    curves: dict[str, Bins] = {}
    for r in shown.values():
        curves[r.run_id] = before[r.run_id]
        if r.run_id in after:
            curves[f"{r.run_id}, calibrated"] = after[r.run_id]
    figure = figures.reliability(curves, figures_dir / "reliability", f"{study.root.name}, test split")
    return Section(title, [*notes, table, figure])
