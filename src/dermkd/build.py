"""The build boundary: a checked `RunConfig` becomes the objects a run is made of.

The config holds values and range checks only; here every registry name in it (model,
teacher(s), strategy, optimizer, scheduler, objective, data layout) is looked up once,
before any data is read, and the factories get plain keyword arguments. `REGISTRIES`
names the registry behind each `knob(choices=...)`, for the CLI's help and for errors.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from functools import partial
from typing import Any

from dermkd.config import ENSEMBLE_SEP, OptimConfig, RunConfig
from dermkd.errors import DermkdError
from dermkd.registry import Registry, declared_kwargs

# knob choices kind -> "module:attribute" of its registry (imported only when needed)
REGISTRIES = {
    "model": "dermkd.models:MODELS",
    "strategy": "dermkd.distill.strategies:STRATEGIES",
    "optimizer": "dermkd.train.optimizers:OPTIMIZERS",
    "scheduler": "dermkd.train.schedulers:SCHEDULERS",
    "objective": "dermkd.distill.losses:OBJECTIVES",
    "layout": "dermkd.data.layouts:LAYOUTS",
    "tracker": "dermkd.train.tracking:TRACKERS",
}


def registry(kind: str) -> Registry[Any]:
    module, attr = REGISTRIES[kind].split(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class Components:
    """The registry entries a config names."""

    model: Any  # models.registry.ModelEntry
    teachers: tuple[Any, ...]  # one ModelEntry per ensemble member ("a+b")
    strategy: Any  # distill.strategies.Strategy
    optimizer: Any  # train.optimizers.OptimizerFactory
    scheduler: Any  # train.schedulers.SchedulerFactory
    objective: Any  # distill.losses.ObjectiveFactory
    layout: Any  # data.layouts.Layout
    tracker: Any  # train.tracking: RunConfig, RunDir -> Tracker


def resolve(cfg: RunConfig) -> Components:
    """Look up every name of `cfg`; an unknown one is a `DermkdError` listing the known."""
    models = registry("model")
    parts = Components(
        model=models.get(cfg.model.name),
        teachers=tuple(models.get(name) for name in cfg.teacher.name.split(ENSEMBLE_SEP)),
        strategy=registry("strategy").get(cfg.kd.strategy),
        optimizer=registry("optimizer").get(cfg.optim.name),
        scheduler=registry("scheduler").get(cfg.optim.scheduler),
        objective=registry("objective").get(cfg.kd.objective),
        layout=registry("layout").get(cfg.data.layout),
        tracker=registry("tracker").get(cfg.train.tracker),
    )
    if cfg.optim.momentum and "momentum" not in declared_kwargs(parts.optimizer, {"momentum": 0}):
        raise DermkdError(f"optimizer {cfg.optim.name!r} has no momentum; momentum is for sgd and rmsprop")
    return parts


def build_optimization(optim: OptimConfig, parts: Components) -> Any:
    """The `train.optimizers.Optimization` of `optim`: factories bound to their settings."""
    from dermkd.train.optimizers import Optimization

    settings = dataclasses.asdict(optim)
    optimizer = partial(parts.optimizer, **declared_kwargs(parts.optimizer, settings))
    scheduler = partial(_scheduler, parts.scheduler, settings)  # a partial, not a closure: it pickles (DDP spawn)
    return Optimization(optimizer, scheduler, lr=optim.lr, backbone_lr_scale=optim.backbone_lr_scale,
                        warmup_epochs=optim.warmup_epochs)


def _scheduler(factory: Any, settings: dict[str, Any], opt: Any, max_epochs: int) -> Any:
    return factory(opt, max_epochs=max_epochs, **settings)


def build_loss(cfg: RunConfig, parts: Components, head_weight: Any, class_weight: list[float] | None = None) -> Any:
    """Eq. 1's `distill.losses.KDLoss` with the configured hard-label objective."""
    import torch

    from dermkd.distill.losses import KDLoss

    weight = torch.tensor(class_weight, dtype=torch.float32) if class_weight is not None else None
    hard = parts.objective(head_weight, class_weight=weight)
    return KDLoss(hard, alpha=cfg.kd.alpha, temperature=cfg.kd.temperature, kd_multiplier=cfg.kd.kd_multiplier)
