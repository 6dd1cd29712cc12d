"""Report figures: training curves, confusion matrices, per-class bars, Pareto and forest
plots, reliability diagrams.

Figures are built with matplotlib's object API (`matplotlib.figure.Figure`), not pyplot:
no GUI backend, no global figure registry to leak from, and `savefig` renders PNG with
Agg whatever backend the caller's process has chosen. Every figure is saved as PNG
(embedded in the HTML) and SVG (for papers and slides).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure as MplFigure
from matplotlib.ticker import MaxNLocator

from dermkd.evaluate.calibration import ece_of
from dermkd.evaluate.metrics import compute_metrics
from dermkd.io import atomic_open
from dermkd.report.document import Figure
from dermkd.report.loading import Predictions


def _save(fig: MplFigure, stem: Path, caption: str) -> Figure:
    """Write stem.png and stem.svg atomically."""
    paths = {}
    for fmt in ("png", "svg"):
        paths[fmt] = stem.parent / f"{stem.name}.{fmt}"  # not with_suffix: run ids hold dots (a0.9)
        with atomic_open(paths[fmt], "wb") as fh:
            fig.savefig(fh, format=fmt, dpi=110, bbox_inches="tight")
    return Figure(caption=caption, png=paths["png"], svg=paths["svg"])


def training_curves(history: dict[str, np.ndarray], name: str, stem: Path) -> Figure:
    """The paper's Figures 4-8: (a) loss and (b) accuracy, train and validation, per epoch.

    The loss panel shows the hard-label loss on both sides (the value validation also
    measures), not the KD objective, whose soft term has another scale.
    """
    epochs = history["epoch"] + 1
    fig = MplFigure(figsize=(10, 3.8))
    axes = fig.subplots(1, 2)
    for ax, kind, label in ((axes[0], "loss", "(a) Model loss"), (axes[1], "acc", "(b) Model accuracy")):
        ax.plot(epochs, history["train_hard_loss" if kind == "loss" else "train_acc"], marker="o", label="train")
        ax.plot(epochs, history[f"val_{kind}"], marker="o", label="validation")
        ax.set(title=f"{label} ({name})", xlabel="epoch", ylabel="accuracy" if kind == "acc" else "loss")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(f"Model loss/accuracy ({name})")
    return _save(fig, stem, f"Model loss/accuracy ({name}): train and validation per epoch.")


def confusion(pred: Predictions, name: str, stem: Path) -> Figure:
    """Row-normalised confusion matrix: row k shows where images of class k went."""
    cm = np.array(compute_metrics(pred.labels, pred.preds, pred.codes)["confusion_matrix"], dtype=float)
    support = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, support, out=np.zeros_like(cm), where=support > 0)
    k = len(pred.codes)
    fig = MplFigure(figsize=(0.55 * k + 2, 0.55 * k + 1.5))
    ax = fig.subplots()
    image = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{norm[i, j]:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.5 else "black")
    ax.set(xticks=range(k), yticks=range(k), xticklabels=pred.codes, yticklabels=pred.codes,
           xlabel="predicted", ylabel="true", title=f"Confusion matrix ({name})")
    fig.colorbar(image, ax=ax, fraction=0.046)
    return _save(fig, stem, f"Confusion matrix of {name}, rows normalised to 1 (n = {len(pred.labels)}).")


def per_class_bars(preds: dict[str, Predictions], stem: Path) -> Figure:
    """Per-class sensitivity and precision, one bar per run in each class group."""
    codes = next(iter(preds.values())).codes
    fig = MplFigure(figsize=(max(8.0, 1.1 * len(codes)), 6.5))
    axes = fig.subplots(2, 1, sharex=True)
    width = 0.8 / len(preds)
    x = np.arange(len(codes))
    for i, (name, pred) in enumerate(preds.items()):
        per_class = compute_metrics(pred.labels, pred.preds, pred.codes)["per_class"]
        for ax, measure in zip(axes, ("sensitivity", "precision")):
            ax.bar(x + (i - (len(preds) - 1) / 2) * width, [per_class[c][measure] for c in codes], width,
                   label=name)
    for ax, measure in zip(axes, ("Sensitivity", "Precision")):
        ax.set(ylabel=measure, ylim=(0, 1.05))
        ax.grid(axis="y", alpha=0.3)
    axes[1].set_xticks(x, codes)
    axes[0].legend(ncol=min(len(preds), 6), fontsize=8, loc="upper center", bbox_to_anchor=(0.5, 1.25))
    return _save(fig, stem, "Per-class sensitivity (top) and precision (bottom), one-vs-rest, per run.")


Point = tuple[float, float, tuple[float, float] | None]  # (latency ms, top-1, (ci low, ci high) or None)


def pareto(points: dict[str, Point], stem: Path, references: dict[str, Point] | None = None) -> Figure:
    """Accuracy vs latency of students: `points[name] = (latency ms, top-1, (ci low, ci high))`.

    The Pareto front (no other student is both faster and more accurate) is joined by a line.
    `references` (e.g. the student trained without a teacher, the teacher itself) are drawn
    as open squares for comparison and take no part in the front.
    """
    references = references or {}
    names = sorted(points, key=lambda n: points[n][0])
    front, best = [], -1.0
    for n in names:  # by latency, fastest first: on the front if more accurate than all faster ones
        if points[n][1] > best:
            front.append(n)
            best = points[n][1]
    fig = MplFigure(figsize=(6.4, 4.2))
    ax = fig.subplots()

    def draw(name: str, point: Point, marker: dict[str, object], label: dict[str, object]) -> None:
        lat, acc, ci = point
        err = None if ci is None else [[acc - ci[0]], [ci[1] - acc]]
        ax.errorbar([lat], [acc], yerr=err, capsize=3, **marker)
        ax.annotate(name, (lat, acc), textcoords="offset points", fontsize=8, **label)

    for n in names:
        draw(n, points[n], {"fmt": "o", "color": "C0" if n in front else "C7"}, {"xytext": (5, 4)})
    for n, point in references.items():
        draw(n, point, {"fmt": "s", "mfc": "none", "color": "C3"}, {"xytext": (5, -10), "color": "C3"})
    ax.plot([points[n][0] for n in front], [points[n][1] for n in front], "--", color="C0", label="Pareto front")
    ax.set(xscale="log", xlabel="CPU latency, batch 1, one thread (ms, log scale)", ylabel="test top-1",
           title="Students taught by the same teacher: accuracy vs latency")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return _save(fig, stem, "Accuracy (95% bootstrap CI) against CPU latency of students distilled from the same "
                            f"teacher; on the Pareto front: {', '.join(front)}."
                            + (f" Open squares, for comparison: {', '.join(references)}." if references else ""))


def forest(rows: list[tuple[str, float, float, float]], stem: Path) -> Figure:
    """Paired differences from the baseline: `rows = [(label, diff, ci low, ci high)]`, in
    top-1 points; one horizontal interval per run, a vertical line at 0."""
    fig = MplFigure(figsize=(7.0, 0.32 * len(rows) + 1.2))
    ax = fig.subplots()
    ys = np.arange(len(rows))[::-1]
    for y, (_, d, lo, hi) in zip(ys, rows):
        color = "C2" if lo > 0 else "C3" if hi < 0 else "C7"
        ax.errorbar([d], [y], xerr=[[d - lo], [hi - d]], fmt="o", color=color, capsize=3)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(ys, [r[0] for r in rows], fontsize=7)
    ax.set(xlabel="top-1 difference from the baseline student (points, paired 95% bootstrap CI)",
           title="Each run against its baseline, same test images")
    ax.grid(alpha=0.3, axis="x")
    return _save(fig, stem, "Paired top-1 difference of each run from its baseline student (same seed, same test "
                            "images), with a 95% paired bootstrap interval: green above 0, red below, grey "
                            "includes 0.")


def reliability(curves: dict[str, dict[str, list[float]]], stem: Path, title: str) -> Figure:
    """Reliability diagram: per confidence bin (`evaluate.calibration.reliability_bins`),
    accuracy against mean top-1 confidence, one line per curve, markers sized by the bin's
    image count; the diagonal is perfect calibration. The legend gives each curve's ECE."""
    fig = MplFigure(figsize=(5.2, 5.0))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="k", lw=0.8, ls="--", label="perfectly calibrated")
    eces = [ece_of(b) for b in curves.values()]
    for i, (label, b) in enumerate(curves.items()):
        counts = np.asarray(b["count"], dtype=float)
        ax.plot(b["confidence"], b["accuracy"], color=f"C{i}", lw=1.2, label=f"{label}: ECE {eces[i]:.3f}")
        ax.scatter(b["confidence"], b["accuracy"], s=12 + 120 * counts / max(counts.max(), 1), color=f"C{i}",
                   alpha=0.6)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="mean top-1 confidence in the bin", ylabel="accuracy in the bin",
           title=title)
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12))
    return _save(fig, stem, f"Reliability diagram ({title}): accuracy against confidence in 15 equal-width bins "
                            "(marker area: images in the bin); below the diagonal is overconfident. ECE: "
                            + "; ".join(f"{k}: {e:.3f}" for k, e in zip(curves, eces)) + ".")
