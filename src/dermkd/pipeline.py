"""The DSC pipeline: teacher -> baseline student -> KD run -> comparison table.

The KD run follows `cfg.kd.strategy` (standard by default: the teacher teaches the
student; reversed: the baseline student teaches the teacher architecture; and so on).

All stages share one data preparation (decoded once) and one split, written to
the pipeline folder's split file. Finished stages are reused, so an interrupted pipeline resumes.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from dermkd.config import RunConfig
from dermkd.data.prepare import PreparedData, prepare_data, resolve_root
from dermkd.data.splits import write_split
from dermkd.plan import plan_stages
from dermkd.report.comparison import comparison_rows, print_table, write_tables
from dermkd.rundir import RunDir
from dermkd.train.stage import StageResult, run_stage

log = logging.getLogger(__name__)


def load_data(cfg: RunConfig) -> PreparedData:
    root = resolve_root(cfg.data, Path(cfg.out_dir) / "_data")
    return prepare_data(cfg.data, root, cfg.train.seed)


def pin_split(cfg: RunConfig, split_csv: Path, resume: bool) -> RunConfig:
    """A resumed multi-run job keeps the split it started with, even if the splitting
    rules (or the data's grouping) changed in between; an explicit --split-file wins."""
    if resume and split_csv.is_file() and cfg.data.split_file is None:
        log.info("reusing the split of the earlier attempt: %s", split_csv)
        return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, split_file=str(split_csv)))
    return cfg


def run_pipeline(cfg: RunConfig, resume: bool = True) -> list[StageResult]:
    base = RunDir(Path(cfg.out_dir) / cfg.name)
    cfg = pin_split(cfg, base.split, resume)
    data = load_data(cfg)
    write_split(base.split, data.rows)
    done: dict[str, StageResult] = {}
    for stage in plan_stages(cfg):
        log.info("stage %s: %s (%s)", stage.name, stage.cfg.model.name, stage.cfg.kd.strategy)
        c = dataclasses.replace(stage.cfg, name=stage.name, out_dir=str(base.path))
        source = done[stage.source].run_dir if stage.source else None
        done[stage.name] = run_stage(c, data, base.path / stage.name, teacher_source=source, resume=resume)
    results = list(done.values())
    rows = comparison_rows([(r.name, r.metrics) for r in results])
    write_tables(rows, base.path)
    print_table(rows, f"{cfg.name}: test split, n={rows[0]['n_test']}")
    return results
