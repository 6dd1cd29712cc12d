"""`dermkd study --backend ray`: the local backend's runs, run directories and results table,
with each stage a Ray task, on a local Ray instance (`ray.init()`) or an existing cluster.

Order: the driver pins the study's split(s) first (so every worker trains on the same
images), then runs every prerequisite (teachers, and the baselines that reversed /
defective / self-training start from) as tasks, then every run whose prerequisites
finished; a run whose teacher failed is recorded as failed without being tried. A task
that raises is retried by Ray up to `retries` times (`retry_exceptions`), and then
recorded with its one-line error, as the local backend records it. The driver alone
writes `results.csv` / `.parquet`, rows in the study's order, after each run finishes.

On a cluster every node needs dermkd installed and the study folder and data on a
shared file system: workers write their run directories there and read the pinned split.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

from dermkd.errors import DermkdError
from dermkd.study.backends import BACKENDS, BackendOptions
from dermkd.study.grid import RunSpec, Study
from dermkd.study.results import write_results
from dermkd.study.runner import Prerequisite, StudyRunner, one_line, result_row, write_study_file

log = logging.getLogger(__name__)


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise DermkdError("--backend ray needs Ray: pip install 'dermkd[ray]'") from None
    return ray


def for_workers(study: Study, opts: BackendOptions) -> Study:
    """The study as workers must read it: an absolute data root (their working directory
    is not the driver's), torch threads matching the task's CPUs when the study sets
    none, and no progress bars (their output reaches the driver's log)."""
    base = {k: dict(v) if isinstance(v, dict) else v for k, v in study.base.items()}
    data = base.setdefault("data", {})
    root = data.get("root", study.base_config().data.root)
    if root is not None:
        data["root"] = str(Path(root).expanduser().resolve())
    train = base.setdefault("train", {})
    train.setdefault("threads", max(1, int(opts.cpus_per_run)))
    train["progress"] = False
    return dataclasses.replace(study, base=base)


_RUNNERS: dict[tuple[str, str], StudyRunner] = {}  # per worker process: data decoded once


def _task(study: Study, out_dir: str, resume: bool, job: Prerequisite | RunSpec) -> dict[str, Any] | None:
    """One stage on a worker; raises on failure so that Ray retries it."""
    key = (out_dir, repr(study))
    runner = _RUNNERS.get(key)
    if runner is None:
        runner = _RUNNERS[key] = StudyRunner(study, out_dir, resume)
    if isinstance(job, Prerequisite):
        runner.prepare(job)
        return None
    return runner.run_one(job, raise_errors=True)


def _cause(exc: BaseException) -> str:
    """The task's own exception, not Ray's wrapper around it."""
    return one_line(getattr(exc, "cause", None) or exc)


@BACKENDS.register("ray")
def run_on_ray(study: Study, out_dir: str | Path, resume: bool = True,
               opts: BackendOptions = BackendOptions()) -> list[dict[str, Any]]:
    ray = _ray()
    opts = opts.validate("ray")
    specs = study.specs()
    if not specs:
        raise DermkdError("the study has no runs")
    out = str(Path(out_dir).expanduser().resolve())
    write_study_file(Path(out) / study.name, study)  # as given, not as rewritten for the workers
    study = for_workers(study, opts)
    driver = StudyRunner(study, out, resume)
    for fold in range(study.folds) if study.folds else [None]:
        driver.data(fold)  # pins split[-f<k>].csv before any worker reads it
    if opts.address is None:  # Ray starts its workers at nice 15: beside other work they would starve
        os.environ.setdefault("RAY_worker_niceness", "0")
    try:
        ray.init(address=opts.address, include_dashboard=False, ignore_reinit_error=True,
                 logging_level=logging.WARNING)
    except Exception as exc:  # e.g. no cluster at the address
        raise DermkdError(f"cannot start or reach Ray at {opts.address or 'a local instance'} "
                          f"({one_line(exc)})") from None
    try:
        return _schedule(ray, study, out, resume, opts, driver, specs)
    finally:
        ray.shutdown()  # stops the local instance; on a cluster, disconnects


def _schedule(ray: Any, study: Study, out: str, resume: bool, opts: BackendOptions, driver: StudyRunner,
              specs: list[RunSpec]) -> list[dict[str, Any]]:
    log.info("study %s: %d runs on Ray (%s), %g CPU / %g GPU per run, %d retries", study.name, len(specs),
             opts.address or "local instance", opts.cpus_per_run, opts.gpus_per_run, opts.retries)
    task = ray.remote(num_cpus=opts.cpus_per_run, num_gpus=opts.gpus_per_run, max_retries=opts.retries,
                      retry_exceptions=True)(_task)

    prereqs = {spec: driver.prerequisites(spec) for spec in specs}
    needs = {n: None for spec in specs for n in prereqs[spec]}  # ordered, unique
    failed_needs: dict[Prerequisite, str] = {}
    for need, ref in [(n, task.remote(study, out, resume, n)) for n in needs]:
        try:
            ray.get(ref)
        except Exception as exc:
            failed_needs[need] = _cause(exc)
            log.error("%s failed: %s", need.name, failed_needs[need])

    rows: dict[RunSpec, dict[str, Any]] = {}
    pending = {}
    for spec in specs:
        bad = [n for n in prereqs[spec] if n in failed_needs]
        if bad:
            rows[spec] = result_row(spec, error=f"{bad[0].name} failed: {failed_needs[bad[0]]}")
        else:
            pending[task.remote(study, out, resume, spec)] = spec
    while pending:
        (ref,), _ = ray.wait(list(pending), num_returns=1)
        spec = pending.pop(ref)
        try:
            rows[spec] = ray.get(ref)
        except Exception as exc:
            rows[spec] = result_row(spec, error=_cause(exc))
            log.error("run %s failed after %d tries: %s", spec.run_id, opts.retries + 1, rows[spec]["error"])
        log.info("[%d/%d] %s: %s", len(rows), len(specs), spec.run_id, rows[spec]["status"])
        write_results(driver.root, [rows[s] for s in specs if s in rows])
    write_results(driver.root, [rows[s] for s in specs])
    return [rows[s] for s in specs]
