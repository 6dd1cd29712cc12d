"""The stage planner: what a KD strategy trains and which finished run teaches it.

`plan_stages(cfg)` reads the strategy's semantics (`distill.strategies.Strategy.trains`
and `.source`) in one place for the pipeline and the study runner: the teacher stage
(the teacher architecture on hard labels), the baseline student, and the KD stage, each
with the name of the stage whose finished run teaches it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from dermkd.build import registry, resolve
from dermkd.config import ENSEMBLE_SEP, ModelConfig, RunConfig
from dermkd.errors import DermkdError

TEACHER, BASELINE = "teacher", "baseline-student"
SOURCE_STAGE = {"teacher": TEACHER, "student": BASELINE, None: None}  # Strategy.source -> stage name


@dataclass(frozen=True)
class Stage:
    name: str  # "teacher", "baseline-student", "kd-student" or "kd-teacher"
    cfg: RunConfig  # the run's config: its model, strategy and store settings set
    source: str | None  # the stage whose finished run teaches this one; None: no teacher run


def strategy_entry(name: str) -> Any:
    """The registered `distill.strategies.Strategy` called `name`."""
    return registry("strategy").get(name)


def ignored_settings(strategy: str) -> set[str]:
    """What runs of `strategy` ignore: "teacher" (no teacher architecture is named),
    "teacher_cache" (no trained network teaches, so nothing to store), "kd" (no soft term)."""
    entry = strategy_entry(strategy)
    ignored = set()
    if entry.source is None:
        ignored.add("teacher_cache")
    if entry.source != "teacher" and entry.trains == "student":
        ignored.add("teacher")
    if strategy == "baseline":  # the one strategy without any teacher, virtual or trained
        ignored |= {"kd", "teacher", "teacher_cache"}
    return ignored


def stage_config(cfg: RunConfig, model: ModelConfig, strategy: str) -> RunConfig:
    """`cfg` training `model` with `strategy`; a stage that no run teaches stores no logits."""
    stores = "teacher_cache" not in ignored_settings(strategy)
    kd = dataclasses.replace(cfg.kd, strategy=strategy, teacher_cache=cfg.kd.teacher_cache if stores else 0)
    return dataclasses.replace(cfg, model=model, kd=kd)


def trained_model(cfg: RunConfig) -> ModelConfig:
    """The architecture `cfg.kd.strategy` trains: the student's, or the teacher's (reversed KD)."""
    if resolve(cfg).strategy.trains == "student":
        return cfg.model
    if ENSEMBLE_SEP in cfg.teacher.name:
        raise DermkdError(f"{cfg.kd.strategy} KD trains the teacher architecture; an ensemble has none")
    return cfg.teacher


def plan_stages(cfg: RunConfig) -> list[Stage]:
    """The pipeline's three stages, in training order."""
    strategy = resolve(cfg).strategy
    return [
        Stage(TEACHER, stage_config(cfg, cfg.teacher, "baseline"), None),
        Stage(BASELINE, stage_config(cfg, cfg.model, "baseline"), None),
        Stage(f"kd-{strategy.trains}", stage_config(cfg, trained_model(cfg), cfg.kd.strategy),
              SOURCE_STAGE[strategy.source]),
    ]
