"""Read a finished study directory into plain records, tolerating missing pieces.

A study that crashed halfway, or a run whose predictions were deleted, must still give a
report: every per-run file is optional, and what could not be read is listed in
`StudyData.problems` so the report can say so instead of failing.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from dermkd.errors import DermkdError
from dermkd.io import load_yaml, read_json
from dermkd.rundir import RunDir
from dermkd.study.grid import AXES, REPEATS, Study, varied_axes

T = TypeVar("T")
_TEXT_COLUMNS = {"run", *AXES, "sweeps", "status", "error", "model", "teacher_sha256"}


@dataclass(frozen=True)
class Predictions:
    """One run's test predictions (predictions.csv): what CIs and paired tests need."""

    paths: np.ndarray  # (N,) str, the key that pairs two runs' predictions
    labels: np.ndarray  # (N,) int64
    preds: np.ndarray  # (N,) int64
    codes: list[str]  # class codes, in label order (from the p_<CODE> columns)
    probs: np.ndarray | None = None  # (N, C) float, the p_<CODE> columns


@dataclass
class RunRecord:
    """One row of results.csv plus what its run directory holds."""

    run_id: str
    axes: dict[str, str]  # the grid axes as written in results.csv (text)
    sweeps: tuple[str, ...]
    status: str
    error: str
    values: dict[str, float | None]  # numeric columns of results.csv
    metrics: dict[str, Any] | None = None  # metrics.json
    history: dict[str, np.ndarray] | None = None  # history.csv, one array per column
    predictions: Predictions | None = None

    @property
    def done(self) -> bool:
        return self.status == "done"

    @property
    def seed(self) -> str:
        """The repeat this run is: its seed, and its fold under k-fold cross-validation."""
        fold = self.axes.get("fold")
        return self.axes["seed"] + (f"/f{fold}" if fold not in (None, "") else "")

    @property
    def config(self) -> tuple[str, ...]:
        """Every axis but the repeat (seed, fold): runs sharing it repeat one configuration."""
        return tuple(v for k, v in self.axes.items() if k not in REPEATS)


@dataclass
class StudyData:
    root: Path
    runs: list[RunRecord]
    teachers: dict[str, dict[str, Any]]  # "<arch>-s<seed>" -> the teacher stage's metrics.json
    sweep_axes: dict[str, list[str]] = field(default_factory=dict)  # sweep -> the axes it varies (study.yaml)
    planned: int | None = None  # runs the study file asks for (study.yaml); more than `runs` while it runs
    problems: list[str] = field(default_factory=list)  # files that were missing or unreadable

    @property
    def sweeps(self) -> list[str]:
        """Sweep names in first-seen order."""
        return list(dict.fromkeys(s for r in self.runs for s in r.sweeps))

    def in_sweep(self, sweep: str) -> list[RunRecord]:
        """The sweep's finished runs (failed ones have no scores to tabulate)."""
        return [r for r in self.runs if sweep in r.sweeps and r.done]

    @property
    def failed(self) -> list[RunRecord]:
        return [r for r in self.runs if not r.done]


def read_history(path: Path) -> dict[str, np.ndarray]:
    """history.csv -> column -> float array; blank cells (e.g. no KD loss) become NaN."""
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return {}
    return {col: np.array([float(r[col]) if r[col] not in ("", None) else np.nan for r in rows])
            for col in rows[0]}


def read_predictions(path: Path) -> Predictions:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        codes = [c.removeprefix("p_") for c in reader.fieldnames or [] if c.startswith("p_")]
        rows = list(reader)
    if not codes:
        raise ValueError("no p_<CODE> probability columns")
    return Predictions(paths=np.array([r["path"] for r in rows]),
                       labels=np.array([int(r["label"]) for r in rows], dtype=np.int64),
                       preds=np.array([int(r["pred"]) for r in rows], dtype=np.int64), codes=codes,
                       probs=np.array([[float(r[f"p_{c}"]) for c in codes] for r in rows], dtype=np.float64))


def load_study_dir(study_dir: str | Path) -> StudyData:
    """results.csv and every run's files; raises only when results.csv itself is missing."""
    root = Path(study_dir)
    results = root / "results.csv"
    if not results.is_file():
        raise DermkdError(f"{root} is not a finished study: no results.csv (run `dermkd study` first)")
    with results.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    study = StudyData(root=root, runs=[], teachers={})
    plan = _optional(study, root / "study.yaml", load_yaml) or {}
    grids = plan.get("sweeps") or {}
    if grids:
        study.planned = len(Study(**plan).specs())
    study.sweep_axes = {name: varied_axes(sweep) for name, sweep in grids.items()}
    for row in rows:
        run = RunRecord(run_id=row["run"], axes={a: row.get(a) or "" for a in AXES},
                        sweeps=tuple(s for s in (row.get("sweeps") or "").split(",") if s),
                        status=row.get("status") or "", error=row.get("error") or "",
                        values={k: _number(v) for k, v in row.items() if k not in _TEXT_COLUMNS})
        if run.done:
            rd = RunDir(root / "runs" / run.run_id)
            run.metrics = _optional(study, rd.metrics, read_json)
            run.history = _optional(study, rd.history, read_history)
            run.predictions = _optional(study, rd.predictions, read_predictions)
        study.runs.append(run)
    for folder in sorted((root / "teachers").glob("*")):
        rd = RunDir(folder)
        metrics = _optional(study, rd.metrics, read_json) if rd.is_finished() else None
        if metrics is not None:
            study.teachers[rd.name] = metrics
    return study


def _optional(study: StudyData, path: Path, read: Callable[[Path], T]) -> T | None:
    """read(path), or None with a note in study.problems when it is missing or unreadable."""
    if not path.is_file():
        study.problems.append(f"{path.relative_to(study.root)} is missing")
        return None
    try:
        return read(path)
    except (OSError, ValueError, KeyError, DermkdError) as exc:  # ValueError covers bad JSON
        study.problems.append(f"{path.relative_to(study.root)} could not be read ({type(exc).__name__}: {exc})")
        return None


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None
