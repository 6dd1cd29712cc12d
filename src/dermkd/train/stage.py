"""Run one training stage (a teacher, a baseline student, a KD student) into its run dir.

`runs/<name>/` receives: config.yaml (the resolved config), split.csv, env.json
(versions, machine, seed, data fingerprint, teacher record, status, wall time),
history.csv, checkpoints/{best,last}.ckpt, logs/ (Lightning CSV logger) and
metrics.json and predictions.csv (test-split measures and per-image predictions of the
best-on-validation checkpoint). A stage whose
metrics.json exists is finished and is skipped; one killed midway resumes from last.ckpt.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger

from dermkd.config import RunConfig
from dermkd.data.datamodule import DermDataModule
from dermkd.data.prepare import PreparedData
from dermkd.data.splits import write_split
from dermkd.distill.strategies import STRATEGIES, early_checkpoint_name
from dermkd.errors import DermkdError
from dermkd.evaluate.evaluate import evaluate_model
from dermkd.io import read_json, write_json, write_yaml
from dermkd.models import create_model
from dermkd.train.checkpoints import AtomicCheckpointIO, load_model
from dermkd.train.history import HistoryWriter, SaveAtEpoch
from dermkd.train.module import LitClassifier
from dermkd.train.records import machine, versions

log = logging.getLogger(__name__)


@dataclass
class StageResult:
    name: str
    run_dir: Path
    metrics: dict
    reused: bool  # True when a finished run was found and not retrained


def set_determinism(seed: int, threads: int | None = None) -> None:
    """Seed torch, numpy, random (and loader workers) from one seed; seed 0 is a seed.

    Not covered: nondeterministic kernels on some GPUs (a warning is raised for those).
    Deterministic mode would also fill every new tensor with NaN, a guard against kernels
    that read memory they never wrote (a PyTorch bug, not a source of run-to-run change
    otherwise). The fill took about 12% of the DSC student's training step at 112 px on 2
    CPU cores, so it is off; seeded runs still repeat exactly.
    """
    L.seed_everything(seed, workers=True, verbose=False)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = False
    torch.set_num_threads(threads or os.cpu_count() or 1)


def balanced_class_weights(data: PreparedData) -> list[float]:
    """w_c = N / (C n_c) over the training split (scikit-learn's "balanced"); 0 for a class
    with no training image."""
    counts = torch.bincount(data.labels["train"], minlength=len(data.classes)).double()
    present = counts > 0
    weights = torch.zeros_like(counts)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights.tolist()


def quiet_lightning() -> None:
    """Lightning sets its loggers to INFO when imported (GPU/TPU availability, tips);
    dermkd reports what matters itself."""
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)


def run_stage(cfg: RunConfig, data: PreparedData, run_dir: str | Path, *,
              teacher_source: Path | list[Path] | None = None, resume: bool = True) -> StageResult:
    """Train `cfg.model` with strategy `cfg.kd.strategy` on `data`, then score it on the test split."""
    run_dir = Path(run_dir)
    if resume and (run_dir / "metrics.json").is_file():
        done = read_json(run_dir / "env.json")["data"]["fingerprint"]
        if done != data.fingerprint:
            raise DermkdError(f"{run_dir} was trained on other data (fingerprint {done[:12]} != "
                              f"{data.fingerprint[:12]}); choose another --name or --fresh")
        log.info("%s is finished; reusing it (use --fresh to retrain)", run_dir)
        return StageResult(run_dir.name, run_dir, read_json(run_dir / "metrics.json"), reused=True)
    started = time.perf_counter()
    if cfg.train.refit:
        data = data.with_val_in_train()
    quiet_lightning()
    set_determinism(cfg.train.seed, cfg.train.threads)
    teacher, teacher_record = STRATEGIES.get(cfg.kd.strategy).make_teacher(teacher_source, cfg.kd, len(data.classes))
    if teacher_record is not None and teacher_record.get("classes", data.classes) != data.classes:
        raise DermkdError(f"teacher classes {teacher_record['classes']} differ from the data's {data.classes}")
    store = None
    if cfg.kd.teacher_cache:
        store = _teacher_store(teacher, teacher_record, data, cfg)
        teacher = None  # the store replaces the live teacher

    if not resume:  # --fresh: nothing of an earlier attempt may leak into this one
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
        for name in ("metrics.json", "history.csv", "predictions.csv"):
            (run_dir / name).unlink(missing_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, root=str(data.root)))  # fully resolved
    write_yaml(run_dir / "config.yaml", cfg.to_dict())
    write_split(run_dir / "split.csv", data.rows)
    env = {"status": "running", "started": _now(), "seed": cfg.train.seed, "versions": versions(),
           "machine": machine(), "data": data.summary(), "strategy": cfg.kd.strategy, "teacher": teacher_record,
           "teacher_store": store.describe() if store is not None else None}
    write_json(run_dir / "env.json", env)

    m = cfg.model
    model = create_model(m.name, len(data.classes), image_size=data.image_size, pretrained=m.pretrained,
                         pretrained_file=m.pretrained_file, trainable_stages=m.trainable_stages,
                         bn_momentum=m.bn_momentum)
    spec = {**model.describe(), "classes": data.classes, "image_size": data.image_size}
    lit = LitClassifier(model, spec, dataclasses.asdict(cfg.optim), dataclasses.asdict(cfg.kd), teacher=teacher,
                        class_weight=balanced_class_weights(data) if cfg.train.class_balance == "loss" else None)
    dm = DermDataModule(data, cfg.train.batch_size, augment=cfg.data.augment, num_workers=cfg.data.num_workers,
                        seed=cfg.train.seed, balanced_sampler=cfg.train.class_balance == "sampler", store=store)
    ckpt_dir = run_dir / "checkpoints"
    callbacks: list[L.Callback] = [
        # best: weights only (evaluation, teaching, export); last: full state, for resuming
        ModelCheckpoint(dirpath=ckpt_dir, filename="best", monitor="val_loss", mode="min", save_weights_only=True,
                        enable_version_counter=False),
        ModelCheckpoint(dirpath=ckpt_dir, save_top_k=0, save_last=True),
        HistoryWriter(run_dir / "history.csv"),
    ]
    if cfg.kd.teacher_epoch < cfg.train.epochs:  # lets this run teach in defective KD
        callbacks.append(SaveAtEpoch(cfg.kd.teacher_epoch, ckpt_dir / early_checkpoint_name(cfg.kd.teacher_epoch)))
    if cfg.train.early_stopping_patience:
        callbacks.append(EarlyStopping("val_loss", patience=cfg.train.early_stopping_patience))
    trainer = L.Trainer(
        max_epochs=cfg.train.epochs, accelerator=cfg.train.accelerator, devices=1, callbacks=callbacks,
        logger=CSVLogger(run_dir, name="logs", version=""), plugins=[AtomicCheckpointIO()],
        enable_progress_bar=cfg.train.progress, enable_model_summary=False, num_sanity_val_steps=0,
        limit_train_batches=cfg.train.limit_train_batches, log_every_n_steps=1,
        deterministic="warn",  # deterministic kernels where they exist, a warning where not
        precision=cfg.train.precision,
    )
    last = ckpt_dir / "last.ckpt"
    trainer.fit(lit, datamodule=dm, ckpt_path=str(last) if resume and last.is_file() else None)

    # the weights tested: best on validation, or the last epoch's for a refit (no validation left)
    best, _ = load_model(ckpt_dir / ("last.ckpt" if cfg.train.refit else "best.ckpt"))
    metrics = evaluate_model(best, data, "test", predictions=run_dir / "predictions.csv")
    metrics.update({"run": run_dir.name, "model": spec, "strategy": cfg.kd.strategy, "teacher": teacher_record,
                    "epochs_trained": trainer.current_epoch,
                    "wall_seconds": round(time.perf_counter() - started, 1)})
    write_json(run_dir / "metrics.json", metrics)
    env.update(status="done", finished=_now(), wall_seconds=metrics["wall_seconds"])
    write_json(run_dir / "env.json", env)
    return StageResult(run_dir.name, run_dir, metrics, reused=False)


def _teacher_store(teacher, teacher_record: dict | None, data: PreparedData, cfg: RunConfig):
    """The teacher-logit store for this run (built once, then reused by every run that
    shares teacher, data, seed and augmentation)."""
    from dermkd.distill.logit_store import open_or_build

    if teacher is None or not (teacher_record or {}).get("sha256"):
        raise DermkdError(f"--teacher-cache needs a trained teacher network; strategy {cfg.kd.strategy!r} has none")
    return open_or_build(teacher, teacher_record["sha256"], data, cfg.kd.teacher_cache, cfg.train.seed,
                         batch_size=2 * cfg.train.batch_size, precision=cfg.train.precision,
                         teacher_image_size=cfg.kd.teacher_image_size)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
