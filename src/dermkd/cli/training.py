"""The run commands: train, distill, pipeline, demo. Their flags are generated from the
config (`cli.knobs`); each builds one `RunConfig` and hands it to the library."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from dermkd.cli import options as o
from dermkd.cli.knobs import config_options, select
from dermkd.errors import DermkdError

# torch, timm and lightning take seconds to import: commands import what they use, so
# `--help` and argument errors answer at once.
log = logging.getLogger(__name__)
RUN_SECTIONS = ("", "data", "augment", "model", "optim", "train")
TRAIN_OPTIONS = select(RUN_SECTIONS, only=("kd.objective",))
DISTILL_OPTIONS = select((*RUN_SECTIONS, "kd"))
PIPELINE_OPTIONS = select((*RUN_SECTIONS, "teacher", "kd"))
DEMO_OPTIONS = select((), only=("out_dir", "train.epochs", "train.threads"))


def _run(cfg, teacher_source=None, fresh: bool = False, extend: bool = False) -> None:
    from dermkd.pipeline import load_data
    from dermkd.report.comparison import comparison_rows, print_table
    from dermkd.rundir import RunDir
    from dermkd.train.stage import run_stage

    RunDir(Path(cfg.out_dir) / cfg.name).ensure_unlocked()
    result = run_stage(cfg, load_data(cfg), Path(cfg.out_dir) / cfg.name, teacher_source=teacher_source,
                       resume=not fresh, extend=extend)
    print_table(comparison_rows([(result.name, result.metrics)]), f"{result.run_dir}: test split")


@config_options(TRAIN_OPTIONS, "cpu")
def train(profile: o.Profile = "cpu", config: o.ConfigFile = None, fresh: o.Fresh = False,
          extend: o.Extend = False, print_config: o.PrintConfig = False, *, overrides: dict[str, Any]) -> None:
    """Train any registered model on hard labels (the baseline strategy).

    Example: dermkd train --data ../shared/data/isic9/Train --model dsc --profile cpu --name dsc-baseline
    """
    cfg = o.build_run_config(profile, config, overrides, {"kd": {"strategy": "baseline"}})
    if "name" not in overrides:
        cfg = dataclasses.replace(cfg, name=f"train-{cfg.model.name}")
    if print_config:
        return o.print_config(cfg)
    _run(cfg, fresh=fresh, extend=extend)


Teachers = Annotated[list[Path], typer.Option(
    "--teacher", help="Teacher run directory or checkpoint file; repeat it for an ensemble (the mean of the "
                      "softened probabilities).", rich_help_panel="Distillation")]


AllowUnfinished = Annotated[bool, typer.Option(
    "--allow-unfinished-teacher", help="Accept a teacher run whose status is not done (failed, interrupted, "
                                       "running): its best checkpoint so far teaches.", rich_help_panel="Distillation")]


@config_options(DISTILL_OPTIONS, "cpu")
def distill(teacher: Teachers, profile: o.Profile = "cpu", config: o.ConfigFile = None, fresh: o.Fresh = False,
            extend: o.Extend = False, print_config: o.PrintConfig = False,
            allow_unfinished_teacher: AllowUnfinished = False, *,
            overrides: dict[str, Any]) -> None:
    """Distil a teacher (or an ensemble) into a student (default: standard KD into the DSC student).

    Without --data, the student reuses the (first) teacher run's whole data config and split.
    So it is tested on the teacher's test images, which neither model trained on.

    Example: dermkd distill --teacher runs/lite0 --teacher runs/lite1 --student dsc --alpha 0.9 --temperature 4
    """
    from dermkd.rundir import RunDir
    from dermkd.train.checkpoints import resolve_checkpoint

    for t in teacher:
        resolve_checkpoint(t)  # fail early and clearly
        status = RunDir(t).status() if Path(t).is_dir() else "done"
        if status != "done" and not allow_unfinished_teacher:
            raise DermkdError(f"teacher run {t} is {status or 'not started'}, not done; finish it (run its command "
                              "again), or pass --allow-unfinished-teacher")
    inherited: dict[str, Any] = {}
    first = RunDir(teacher[0])
    given = overrides.get("data", {})
    if first.path.is_dir() and "root" not in given:
        inherited = {"data": {**first.read_config()["data"], "split_file": str(first.split)}}
    elif not first.path.is_dir() and "split_file" not in given:
        log.warning("teacher given as a checkpoint file: its training split is unknown, so the student's test images "
                    "may include images the teacher trained on; pass the teacher's --split-file to rule that out")
    cfg = o.build_run_config(profile, config, {"kd": {"strategy": "standard"}}, inherited, overrides)
    if "name" not in overrides:
        cfg = dataclasses.replace(cfg, name=f"distill-{cfg.kd.strategy}-{cfg.model.name}")
    if print_config:
        return o.print_config(cfg)
    _run(cfg, teacher[0] if len(teacher) == 1 else list(teacher), fresh, extend)


@config_options(PIPELINE_OPTIONS, "cpu")
def pipeline(profile: o.Profile = "cpu", config: o.ConfigFile = None, fresh: o.Fresh = False,
             print_config: o.PrintConfig = False, *, overrides: dict[str, Any]) -> None:
    """Teacher -> baseline student -> KD run (--strategy, default standard), then the comparison table.

    Example: dermkd pipeline --data ../shared/data/isic9/Train --profile cpu --name isic9-cpu
    """
    from dermkd.pipeline import run_pipeline

    cfg = o.build_run_config(profile, config, overrides)
    if "name" not in overrides:
        cfg = dataclasses.replace(cfg, name=f"pipeline-{cfg.profile}")
    if print_config:
        return o.print_config(cfg)
    run_pipeline(cfg, resume=not fresh)


@config_options(DEMO_OPTIONS, "demo")
def demo(fresh: o.Fresh = False, *, overrides: dict[str, Any]) -> None:
    """The whole pipeline on the embedded synthetic data (a few minutes on 2 cores)."""
    from dermkd.pipeline import run_pipeline

    run_pipeline(o.build_run_config("demo", None, {"name": "demo"}, overrides), resume=not fresh)

