"""Run a study: every spec once, shared stages once, failures recorded, resumable.

Layout under `OUT/<study name>/`: `split.csv` (one split for the whole study, so runs
are paired on the same test images; with k-fold, `split-f<k>.csv` per fold),
`teachers/<arch>-s<seed>[-f<k>]/` (teacher stages, trained
on hard labels with the base optimizer, shared by every run they teach; an ensemble
`a+b` uses the stages of a and b; with `teacher_seed` one seed's teachers teach all), `runs/<run id>/`
(one run directory per spec), `results.csv` and `results.parquet` (one row per run,
rewritten after each run). A finished run is skipped on re-run; a failed run is recorded
with its error (and `runs/<id>/error.txt`) and the grid goes on.
"""

from __future__ import annotations

import dataclasses
import logging
import traceback
from pathlib import Path
from typing import Any

from dermkd.config import ENSEMBLE_SEP, RunConfig
from dermkd.data.prepare import PreparedData
from dermkd.data.splits import write_split
from dermkd.errors import DermkdError
from dermkd.io import write_text, write_yaml
from dermkd.pipeline import load_data, pin_split
from dermkd.plan import BASELINE, TEACHER, plan_stages
from dermkd.rundir import RunDir
from dermkd.study.grid import RunSpec, Study
from dermkd.study.results import flatten_metrics, write_results
from dermkd.train.stage import StageResult, run_stage

log = logging.getLogger(__name__)


class StudyRunner:
    def __init__(self, study: Study, out_dir: str | Path, resume: bool = True) -> None:
        self.study, self.resume = study, resume
        self.root = Path(out_dir) / study.name
        self.base = study.base_config(str(self.root))
        self._done: dict[str, StageResult] = {}  # stage dir -> result, so shared stages run once
        self._data: dict[int | None, PreparedData] = {}  # fold (None: no k-fold) -> data, prepared once

    def run(self) -> list[dict[str, Any]]:
        specs = self.study.specs()
        log.info("study %s: %d runs", self.study.name, len(specs))
        write_yaml(self.root / "study.yaml", dataclasses.asdict(self.study))
        rows: list[dict[str, Any]] = []
        for i, spec in enumerate(specs, 1):
            log.info("[%d/%d] %s", i, len(specs), spec.run_id)
            rows.append(self.run_one(spec))
            write_results(self.root, rows)
        return rows

    def run_one(self, spec: RunSpec) -> dict[str, Any]:
        row: dict[str, Any] = {"run": spec.run_id, **spec.axes(), "sweeps": ",".join(spec.sweeps)}
        try:
            cfg = self.study.run_config(spec, str(self.root / "runs"))
            result = self._stage(cfg, self.root / "runs" / spec.run_id, self._source(spec, cfg))
            row.update(status="done", error="", **flatten_metrics(result.metrics))
        except Exception as exc:  # record and go on: one bad run must not stop a two-hour grid
            message = f"{type(exc).__name__}: {exc}".splitlines()[0]
            log.error("run %s failed: %s", spec.run_id, message)
            write_text(RunDir(self.root / "runs" / spec.run_id).error, traceback.format_exc())
            row.update(status="failed", error=message)
        return row

    def _source(self, spec: RunSpec, cfg: RunConfig) -> Path | list[Path] | None:
        """The finished run(s) that teach `spec` (config `cfg`), trained first if need be."""
        source = plan_stages(cfg)[-1].source
        if source == TEACHER:
            seed = spec.seed if self.study.teacher_seed is None else self.study.teacher_seed
            members = [self._teacher(arch, seed, spec.fold) for arch in spec.teacher.split(ENSEMBLE_SEP)]
            return members[0] if len(members) == 1 else members
        if source == BASELINE:  # the baseline student with the same optimizer/objective/seed/fold
            baseline = dataclasses.replace(spec, strategy="baseline", teacher="-", alpha=0.0, temperature=1.0,
                                           kd_multiplier=0.0, teacher_cache=0)
            cfg = self.study.run_config(baseline, str(self.root / "runs"))
            return self._stage(cfg, self.root / "runs" / baseline.run_id, None).run_dir
        return None

    def _teacher(self, arch: str, seed: int, fold: int | None) -> Path:
        cfg = self.base
        cfg = dataclasses.replace(
            cfg, name=f"{arch}-s{seed}" + ("" if fold is None else f"-f{fold}"),
            model=dataclasses.replace(cfg.teacher, name=arch),
            kd=dataclasses.replace(cfg.kd, strategy="baseline", objective="ce", teacher_cache=0),
            train=dataclasses.replace(cfg.train, seed=seed),
            data=dataclasses.replace(cfg.data, fold=fold or 0),
        ).validate()
        return self._stage(cfg, self.root / "teachers" / cfg.name, None).run_dir

    def _stage(self, cfg: RunConfig, run_dir: Path, source: Path | list[Path] | None) -> StageResult:
        key = str(run_dir)
        if key not in self._done:
            data = self.data(cfg.data.fold if self.study.folds else None)
            self._done[key] = run_stage(cfg, data, run_dir, teacher_source=source, resume=self.resume)
        return self._done[key]

    def data(self, fold: int | None) -> PreparedData:
        """One split per fold for the whole study, written to split[-f<fold>].csv and kept
        when the study is resumed, so runs are paired on the same test images."""
        if fold not in self._data:
            split = RunDir(self.root).split_for(fold)
            cfg = self.base
            if fold is not None:
                cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, fold=fold))
            cfg = pin_split(cfg, split, self.resume)
            self._data[fold] = load_data(cfg)
            write_split(split, self._data[fold].rows)
        return self._data[fold]


def run_study(study: Study, out_dir: str | Path, resume: bool = True) -> list[dict[str, Any]]:
    if not study.specs():
        raise DermkdError("the study has no runs")
    return StudyRunner(study, out_dir, resume).run()
