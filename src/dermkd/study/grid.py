"""A study file, expanded into run specs.

A study is one YAML file: a profile, `base` config overrides shared by every run, the
seeds, and named `sweeps`, each a small grid over axes (named as their flags are, and
mapped to config paths by the same table, `config.knobs`). The union of the sweeps'
cartesian products, de-duplicated, is the study; unnamed axes take the base config's
value. Example (see `dermkd/configs/study-cpu.yaml`):

    name: cpu-study
    profile: cpu
    base: {data: {root: ../shared/data/isic9/Train}}
    seeds: [0]
    folds: 5            # optional: stratified grouped k-fold, every run once per fold
    teacher_seed: 0     # optional: one teacher (this seed) teaches the students of every seed
    sweeps:
      table4: {strategy: [standard], optimizer: [adam, sgd, adagrad, adamax, nadam, rmsprop]}
      strategies: {strategy: [baseline, standard, reversed, defective, self, teacher-free]}
      students:         # a sweep may be a list of grids: the union of their runs
        - {strategy: [standard], student: [dsc, efficientnet_lite0]}
        - {strategy: [standard], student: [efficientnet_lite0], pretrained: [imagenet]}

A teacher value `a+b` is an ensemble: each member is trained once, and the student
learns from the mean of their softened probabilities (`distill.strategies.EnsembleTeacher`).
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dermkd.config import RunConfig, apply_overrides
from dermkd.errors import DermkdError
from dermkd.io import load_yaml
from dermkd.knobs import get_path, knobs, set_path
from dermkd.plan import ignored_settings, strategy_entry, trained_model
from dermkd.profiles import build_config

UNUSED = "-"  # the value of an axis that a run's strategy ignores

# The axes of a run id, named as their flags are (--strategy, --optimizer, --teacher,
# --student, ...); each one's config path comes from the same knob table as the flags.
AXIS_NAMES = ("strategy", "optimizer", "teacher", "student", "pretrained", "objective", "alpha", "temperature",
              "kd_multiplier", "seed", "fold", "teacher_cache")
_PATHS = {name: k.path for k in knobs() for name in k.names}
AXES: dict[str, str] = {name: _PATHS[name] for name in AXIS_NAMES}  # in run-id order
REPEATS = ("seed", "fold")  # axes set once for the whole study, not per sweep


Grid = dict[str, list[Any]]
Grids = Grid | list[Grid]  # a sweep: one grid, or the union of several (e.g. students, plus one pretrained)


def grids_of(sweep: Grids) -> list[Grid]:
    """A sweep's grids: a list as given, a single grid as a list of one."""
    return sweep if isinstance(sweep, list) else [sweep]


def varied_axes(sweep: Grids) -> list[str]:
    """The axes whose value differs between a sweep's runs: several values in one grid or
    across its grids, or named in some grids only (the others take the base value)."""
    grids = grids_of(sweep)
    names = list(dict.fromkeys(a for g in grids for a in g))
    return [a for a in names if any(a not in g for g in grids)
            or len({str(v) for g in grids for v in g[a]}) > 1]


@dataclass(frozen=True)
class RunSpec:
    """One run of a study: a value on every axis."""

    strategy: str
    optimizer: str
    teacher: str
    student: str
    objective: str
    alpha: float
    temperature: float
    kd_multiplier: float
    seed: int
    fold: int | None = None  # None: no k-fold cross-validation
    teacher_cache: int = 0  # K stored teacher views per image; 0: live teacher
    pretrained: str = "none"  # the student's start: "none" (from scratch) or "imagenet"
    sweeps: tuple[str, ...] = field(default=(), compare=False, hash=False)

    @property
    def run_id(self) -> str:
        """A readable, unique folder name, e.g. standard-dsc-from-resnet50-adamax-ce-a0.9-T4-m2-s0."""
        strategy = strategy_entry(self.strategy)
        kd = "" if self.strategy == "baseline" else f"-a{self.alpha:g}-T{self.temperature:g}-m{self.kd_multiplier:g}"
        source = f"-from-{self.teacher}" if strategy.source == "teacher" else ""
        trained = self.teacher if strategy.trains == "teacher" else self.student
        if self.pretrained not in ("none", UNUSED):  # a pretrained student: a row the paper lacks
            trained += f"-{self.pretrained}"
        fold = "" if self.fold is None else f"-f{self.fold}"
        store = f"-tc{self.teacher_cache}" if self.teacher_cache else ""
        return f"{self.strategy}-{trained}{source}-{self.optimizer}-{self.objective}{kd}{store}-s{self.seed}{fold}"

    def axes(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in AXES}


@dataclass
class Study:
    name: str
    profile: str
    base: dict[str, Any]
    seeds: list[int]
    sweeps: dict[str, Grids]
    folds: int | None = None  # stratified grouped k-fold: every run once per fold
    teacher_seed: int | None = None  # None: each seed trains its own teachers; else this seed's teach all

    def base_config(self, out_dir: str | None = None) -> RunConfig:
        cfg = build_config(self.profile, self.base)
        if self.folds:
            cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, folds=self.folds)).validate()
        train = dataclasses.replace(cfg.train, experiment=cfg.train.experiment or self.name)  # the tracker's
        return dataclasses.replace(cfg, name=self.name, out_dir=out_dir or cfg.out_dir, train=train)

    def specs(self) -> list[RunSpec]:
        """All runs, in sweep order, without duplicates (a run in two sweeps lists both)."""
        base = self.base_config()
        defaults = {axis: get_path(base, path) for axis, path in AXES.items()}
        found: dict[RunSpec, RunSpec] = {}
        folds = list(range(self.folds)) if self.folds else [None]
        for sweep, grids in self.sweeps.items():
            for grid in grids_of(grids):
                axes = {**{k: [v] for k, v in defaults.items()}, "seed": self.seeds, "fold": folds, **grid}
                for values in itertools.product(*(axes[a] for a in AXES)):
                    spec = _normalise(RunSpec(**dict(zip(AXES, values))))
                    prev = found.get(spec)
                    sweeps = prev.sweeps if prev else ()
                    found[spec] = dataclasses.replace(spec, sweeps=sweeps + (sweep,) if sweep not in sweeps else sweeps)
        return list(found.values())

    def run_config(self, spec: RunSpec, out_dir: str) -> RunConfig:
        """The base config with the spec's axis values; validated."""
        overrides: dict[str, Any] = {}
        for axis, path in AXES.items():
            if getattr(spec, axis) not in (UNUSED, None):
                set_path(overrides, path, getattr(spec, axis))
        cfg = apply_overrides(self.base_config(out_dir), overrides)
        cfg = dataclasses.replace(cfg, model=trained_model(cfg))  # reversed KD trains the teacher architecture
        return dataclasses.replace(cfg, name=spec.run_id).validate()


def _normalise(spec: RunSpec) -> RunSpec:
    """Axes a strategy ignores get a placeholder, so equivalent runs are one run."""
    ignored = ignored_settings(spec.strategy)
    if "kd" in ignored:  # no soft term: eq. 1 reduces to the hard loss
        spec = dataclasses.replace(spec, alpha=0.0, temperature=1.0, kd_multiplier=0.0)
    if "teacher_cache" in ignored:
        spec = dataclasses.replace(spec, teacher_cache=0)
    if strategy_entry(spec.strategy).trains == "teacher":  # the teacher's own settings say how it starts
        spec = dataclasses.replace(spec, pretrained=UNUSED)
    return dataclasses.replace(spec, teacher=UNUSED) if "teacher" in ignored else spec


def with_tracking(study: Study, tracker: str | None, uri: str | None) -> Study:
    """The study with `--tracker` / `--tracking-uri` set in its base config (None: as the file says)."""
    train = dict(study.base.get("train") or {})
    train.update({k: v for k, v in (("tracker", tracker), ("tracking_uri", uri)) if v is not None})
    study = dataclasses.replace(study, base={**study.base, "train": train})
    study.base_config()  # an unknown tracker fails here, before any run
    return study


def load_study(path: str | Path) -> Study:
    raw = load_yaml(Path(path))
    unknown = set(raw) - {"name", "profile", "base", "seeds", "sweeps", "folds", "teacher_seed"}
    if unknown:
        raise DermkdError(f"study file {path}: unknown keys {', '.join(sorted(unknown))}")
    sweeps = raw.get("sweeps") or {}
    if not sweeps:
        raise DermkdError(f"study file {path} has no sweeps")
    for name, grids in sweeps.items():
        if not isinstance(grids, dict | list) or not grids or not all(isinstance(g, dict) for g in grids_of(grids)):
            raise DermkdError(f"sweep {name!r} must map axes to lists of values, or be a list of such maps")
        for grid in grids_of(grids):
            bad = set(grid) - (set(AXES) - set(REPEATS))
            if bad:
                raise DermkdError(f"sweep {name!r}: unknown axes {', '.join(sorted(bad))}; known: "
                                  f"{', '.join(a for a in AXES if a not in REPEATS)} (seeds and folds are set "
                                  "once, at the top)")
            for axis, values in grid.items():
                if not isinstance(values, list) or not values:
                    raise DermkdError(f"sweep {name!r}: axis {axis!r} must be a non-empty list")
    study = Study(name=str(raw.get("name") or Path(path).stem), profile=str(raw.get("profile", "cpu")),
                  base=raw.get("base") or {}, seeds=[int(s) for s in raw.get("seeds", [0])], sweeps=sweeps,
                  folds=int(raw["folds"]) if raw.get("folds") else None,
                  teacher_seed=int(raw["teacher_seed"]) if raw.get("teacher_seed") is not None else None)
    study.base_config()  # validates the base config now
    return study
