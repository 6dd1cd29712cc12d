"""Command-line options shared by several commands, and their mapping onto `RunConfig`.

Each option is declared once here (an `Annotated` alias) and maps to one config path;
a command lists the aliases it accepts and hands its arguments to `build_run_config`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
import yaml

from dermkd.config import PROFILES, RunConfig, build_config
from dermkd.errors import DermkdError


def parse_stages(value: str | None) -> int | str | None:
    if value is None or value == "all":
        return value
    try:
        n = int(value)
    except ValueError:
        raise DermkdError(f"trainable stages must be 'all' or an integer >= 0, not {value!r}") from None
    if n < 0:
        raise DermkdError(f"trainable stages must be 'all' or an integer >= 0, not {n}")
    return n


P = typer.Option
Profile = Annotated[str, P(help=f"Settings profile: {', '.join(PROFILES)} (flags override it).")]
ConfigFile = Annotated[Optional[Path], P("--config", help="YAML of config overrides (e.g. a run's config.yaml).")]
Data = Annotated[Optional[Path], P(help="Class-folder root <root>/<class>/*.jpg; default: embedded synthetic data.")]
Name = Annotated[Optional[str], P(help="Run name: output goes to OUT/NAME.")]
Out = Annotated[Optional[Path], P(help="Folder for run directories.")]
ImageSize = Annotated[Optional[int], P(help="Training image size in px (multiple of 8).")]
SplitFile = Annotated[Optional[Path], P(help="Reuse a split CSV (path,label,split).")]
ConflictPolicy = Annotated[Optional[str], P(help="A duplicate group with several labels: drop | keep-first | "
                                                 "keep-majority.")]
TestRoot = Annotated[Optional[Path], P("--test", help="External test folder (class folders); checked for leakage.")]
SplitStrategy = Annotated[Optional[str], P(help="random | source-shift (per class, the oldest images by ISIC id "
                                                "are the test split).")]
Folds = Annotated[Optional[int], P(help="Stratified grouped k-fold: number of folds.")]
Fold = Annotated[Optional[int], P(help="With --folds: which fold is the test split (0-based).")]
Layout = Annotated[Optional[str], P(help="Data layout: folders (default) | ham10000 | isic2019 | isic2020 | csv.")]
Metadata = Annotated[Optional[Path], P(help="The layout's CSV: HAM10000 metadata, ISIC 2019 ground truth, or "
                                            "path,label[,group].")]
Task = Annotated[Optional[str], P(help="multiclass (9 classes) | binary (malignant vs benign).")]
NearThreshold = Annotated[Optional[int], P(help="Near-duplicate pHash distance for grouping splits (0-64).")]
NearDuplicates = Annotated[Optional[bool], P("--near-duplicates/--exact-duplicates-only",
                                             help="Group near duplicates in splits, or identical files only.")]
AllowNew = Annotated[Optional[bool], P("--allow-new-classes", help="Accept folders outside the 9-class taxonomy.")]
Epochs = Annotated[Optional[int], P(help="Training epochs.")]
BatchSize = Annotated[Optional[int], P(help="Batch size.")]
Seed = Annotated[Optional[int], P(help="The one seed for splits, initialisation and augmentation.")]
Threads = Annotated[Optional[int], P(help="CPU threads for torch.")]
Precision = Annotated[Optional[str], P(help="32 (fp32) | bf16-mixed (bfloat16 autocast; ~2x faster on CPUs with AMX or "
                                             "AVX512-BF16, slower without).")]
Optimizer = Annotated[Optional[str], P(help="adam | sgd | adagrad | adamax | nadam | rmsprop (Table 3).")]
Lr = Annotated[Optional[float], P(help="Learning rate (paper: 0.01).")]
BackboneLrScale = Annotated[Optional[float], P(help="The backbone learns at lr x this (0-1]; the head at lr.")]
WarmupEpochs = Annotated[Optional[float], P(help="Linear lr warm-up over this many epochs (0: none).")]
Scheduler = Annotated[Optional[str], P(help="plateau | cosine | none.")]
Model = Annotated[Optional[str], P(help="Model name from the registry (see `dermkd models`).")]
Pretrained = Annotated[Optional[str], P(help="imagenet (an installed weights package, else timm's hub) | none.")]
PretrainedFile = Annotated[Optional[Path], P(help="Local weights file (.pth/.safetensors) for the model.")]
TrainableStages = Annotated[Optional[str], P(help="Trailing stages to fine-tune: 0 = head only, N, or all.")]
BnMomentum = Annotated[Optional[float], P(help="Student BatchNorm momentum (PyTorch convention; paper: 0.01).")]
Alpha = Annotated[Optional[float], P(help="Weight of the soft (teacher) term, eq. 1.")]
Temperature = Annotated[Optional[float], P(help="KD temperature T.")]
KdMultiplier = Annotated[Optional[float], P(help="The paper's extra factor on the soft term (2; Hinton: 1).")]
Objective = Annotated[Optional[str], P(help="Hard-label objective: ce | svm (L2-SVM, Tang 2013).")]
StrategyName = Annotated[Optional[str], P("--strategy", help="KD strategy (see `dermkd models`).")]
TeacherEpoch = Annotated[Optional[int], P(help="Defective KD: use the teacher's checkpoint after this epoch.")]
TeacherCache = Annotated[Optional[int], P(help="K > 0: precompute the teacher's logits for K augmented views "
                                               "per image once and train on those views (0: live teacher).")]
TeacherImageSize = Annotated[Optional[int], P(help="Resolution-decoupled KD: the teacher sees each stored view at "
                                                  "this size, the student at --image-size (needs --teacher-cache).")]
ClassBalance = Annotated[Optional[str], P(help="Class imbalance: none | loss (class-weighted) | sampler.")]
Refit = Annotated[Optional[bool], P("--refit/--no-refit", help="Train on train + validation for --epochs and test the "
                                                          "last epoch (choose the epochs on validation first).")]
Fresh = Annotated[bool, P("--fresh", help="Retrain even if a finished or partial run exists.")]

# CLI argument name -> path in RunConfig
PATHS: dict[str, tuple[str, ...]] = {
    "name": ("name",), "out": ("out_dir",),
    "data": ("data", "root"), "image_size": ("data", "image_size"), "split_file": ("data", "split_file"),
    "split_strategy": ("data", "split_strategy"),
    "conflict_policy": ("data", "conflict_policy"), "allow_new_classes": ("data", "allow_new_classes"),
    "near_threshold": ("data", "near_threshold"), "near_duplicates": ("data", "near_duplicates"),
    "test": ("data", "test_root"), "layout": ("data", "layout"), "folds": ("data", "folds"), "fold": ("data", "fold"),
    "metadata": ("data", "metadata"), "task": ("data", "task"),
    "epochs": ("train", "epochs"), "batch_size": ("train", "batch_size"), "seed": ("train", "seed"),
    "threads": ("train", "threads"), "precision": ("train", "precision"),
    "class_balance": ("train", "class_balance"), "refit": ("train", "refit"),
    "optimizer": ("optim", "name"), "lr": ("optim", "lr"), "scheduler": ("optim", "scheduler"),
    "backbone_lr_scale": ("optim", "backbone_lr_scale"), "warmup_epochs": ("optim", "warmup_epochs"),
    "model": ("model", "name"), "pretrained": ("model", "pretrained"), "pretrained_file": ("model", "pretrained_file"),
    "trainable_stages": ("model", "trainable_stages"), "bn_momentum": ("model", "bn_momentum"),
    "teacher_model": ("teacher", "name"), "teacher_pretrained": ("teacher", "pretrained"),
    "teacher_pretrained_file": ("teacher", "pretrained_file"), "teacher_trainable_stages": ("teacher", "trainable_stages"),
    "alpha": ("kd", "alpha"), "temperature": ("kd", "temperature"), "kd_multiplier": ("kd", "kd_multiplier"),
    "objective": ("kd", "objective"), "strategy": ("kd", "strategy"), "teacher_epoch": ("kd", "teacher_epoch"),
    "teacher_cache": ("kd", "teacher_cache"), "teacher_weights": ("kd", "teacher_weights"),
    "teacher_image_size": ("kd", "teacher_image_size"),
}


def build_run_config(profile: str, config_file: Path | None, args: dict[str, Any]) -> RunConfig:
    """Defaults <- profile <- --config YAML <- flags that were given."""
    overrides: dict[str, Any] = load_yaml(config_file) if config_file else {}
    overrides.pop("profile", None)
    for key, value in args.items():
        if key not in PATHS or value is None:
            continue
        if "stages" in key:
            value = parse_stages(value)
        if isinstance(value, Path):
            value = str(value)
        node = overrides
        *parents, leaf = PATHS[key]
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return build_config(profile, overrides)


def load_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise DermkdError(f"config file not found: {path}")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise DermkdError(f"config file {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(loaded, dict):
        raise DermkdError(f"config file {path} must hold a mapping")
    return loaded
