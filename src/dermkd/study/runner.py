"""Run a study: every spec once, shared stages once, failures recorded, resumable.

Layout under `OUT/<study name>/`: `split.csv` (one split for the whole study, so runs
are paired on the same test images; with k-fold, `split-f<k>.csv` per fold),
`teachers/<arch>-s<seed>[-f<k>]/` (teacher stages, trained
on hard labels with the base optimizer, shared by every run they teach; an ensemble
`a+b` uses the stages of a and b; with `teacher_seed` one seed's teachers teach all), `runs/<run id>/`
(one run directory per spec), `results.csv` and `results.parquet` (one row per run,
rewritten after each run). A finished run is skipped on re-run; a failed run is tried
again up to `retries` times, then recorded with its error (and `runs/<id>/error.txt`) and
the grid goes on. `prerequisites` names the stages a run needs finished first (its
teachers, or the baseline it starts from), so that another backend (`study.ray_backend`)
can schedule them before the runs.
"""

from __future__ import annotations

import dataclasses
import logging
import traceback
from dataclasses import dataclass
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
from dermkd.study.backends import BACKENDS, BackendOptions
from dermkd.study.grid import RunSpec, Study, with_tracking
from dermkd.study.results import flatten_metrics, write_results
from dermkd.train.stage import StageResult, run_stage
from dermkd.train.tracking import TRACKERS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prerequisite:
    """A stage a run needs finished before it starts: a teacher (`arch`, `seed`, `fold`), or
    the baseline run (`spec`) that reversed, defective and self-training start from."""

    arch: str = ""
    seed: int = 0
    fold: int | None = None
    spec: RunSpec | None = None

    @property
    def name(self) -> str:
        if self.spec is not None:
            return self.spec.run_id
        return f"teacher {self.arch}-s{self.seed}" + ("" if self.fold is None else f"-f{self.fold}")


def result_row(spec: RunSpec, metrics: dict | None = None, error: str = "") -> dict[str, Any]:
    """One line of results.csv: the run's axes, then its status and metrics or its error."""
    row: dict[str, Any] = {"run": spec.run_id, **spec.axes(), "sweeps": ",".join(spec.sweeps)}
    if metrics is not None:
        row.update(status="done", error="", **flatten_metrics(metrics))
    else:
        row.update(status="failed", error=error)
    return row


def one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


class StudyRunner:
    def __init__(self, study: Study, out_dir: str | Path, resume: bool = True, retries: int = 0) -> None:
        self.root = Path(out_dir) / study.name
        self.study, self.resume, self.retries = tracked_here(study, self.root), resume, retries
        self.base = self.study.base_config(str(self.root))
        self._done: dict[str, StageResult] = {}  # stage dir -> result, so shared stages run once
        self._data: dict[int | None, PreparedData] = {}  # fold (None: no k-fold) -> data, prepared once

    def run(self) -> list[dict[str, Any]]:
        specs = self.study.specs()
        log.info("study %s: %d runs", self.study.name, len(specs))
        write_study_file(self.root, self.study)
        rows: list[dict[str, Any]] = []
        for i, spec in enumerate(specs, 1):
            log.info("[%d/%d] %s", i, len(specs), spec.run_id)
            for attempt in range(self.retries + 1):
                row = self.run_one(spec)
                if row["status"] == "done" or attempt == self.retries:
                    break
                log.warning("run %s: attempt %d of %d failed; trying again", spec.run_id, attempt + 1,
                            self.retries + 1)
            rows.append(row)
            write_results(self.root, rows)
        return rows

    def run_one(self, spec: RunSpec, raise_errors: bool = False) -> dict[str, Any]:
        """Train (or reuse) one run and its prerequisites; its results row. A failure is
        recorded (`runs/<id>/error.txt`) and becomes a failed row, or is raised again
        with `raise_errors` (a backend that retries it itself)."""
        try:
            cfg = self.study.run_config(spec, str(self.root / "runs"))
            result = self._stage(cfg, self.root / "runs" / spec.run_id, self._source(spec))
            return result_row(spec, result.metrics)
        except Exception as exc:  # record and go on: one bad run must not stop a two-hour grid
            log.error("run %s failed: %s", spec.run_id, one_line(exc))
            write_text(RunDir(self.root / "runs" / spec.run_id).error, traceback.format_exc())
            if raise_errors:
                raise
            return result_row(spec, error=one_line(exc))

    def prerequisites(self, spec: RunSpec) -> list[Prerequisite]:
        """The stages `spec` needs finished first, in the order its source lists them."""
        source = plan_stages(self.study.run_config(spec, str(self.root / "runs")))[-1].source
        if source == TEACHER:
            seed = spec.seed if self.study.teacher_seed is None else self.study.teacher_seed
            return [Prerequisite(arch, seed, spec.fold) for arch in spec.teacher.split(ENSEMBLE_SEP)]
        if source == BASELINE:  # the baseline student with the same optimizer/objective/seed/fold
            baseline = dataclasses.replace(spec, strategy="baseline", teacher="-", alpha=0.0, temperature=1.0,
                                           kd_multiplier=0.0, teacher_cache=0, sweeps=())
            return [Prerequisite(spec=baseline)]
        return []

    def prepare(self, need: Prerequisite) -> Path:
        """Train (or reuse) one prerequisite; its run directory."""
        if need.spec is None:
            return self._teacher(need.arch, need.seed, need.fold)
        cfg = self.study.run_config(need.spec, str(self.root / "runs"))
        return self._stage(cfg, self.root / "runs" / need.spec.run_id, None).run_dir

    def _source(self, spec: RunSpec) -> Path | list[Path] | None:
        """The finished run(s) that teach `spec`, trained first if need be (an ensemble: a list)."""
        dirs = [self.prepare(need) for need in self.prerequisites(spec)]
        return None if not dirs else dirs[0] if len(dirs) == 1 else dirs

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


def tracked_here(study: Study, root: Path) -> Study:
    """Every run of the study, teachers too, tracked in one place: the tracker's default
    under the study folder (OUT/<study>/mlruns) unless --tracking-uri says otherwise."""
    train = study.base_config().train
    if train.tracking_uri is not None:
        return study
    uri = TRACKERS.get(train.tracker).default_uri(root)
    return study if uri is None else with_tracking(study, None, uri)


def write_study_file(root: Path, study: Study) -> None:
    write_yaml(root / "study.yaml", dataclasses.asdict(study))


@BACKENDS.register("local")
def run_study(study: Study, out_dir: str | Path, resume: bool = True,
              opts: BackendOptions = BackendOptions()) -> list[dict[str, Any]]:
    """The local backend: every run in this process, one after another."""
    if not study.specs():
        raise DermkdError("the study has no runs")
    return StudyRunner(study, out_dir, resume, opts.validate("local").retries).run()
