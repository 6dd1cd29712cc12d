"""Run one training stage (a teacher, a baseline student, a KD student) into its run dir.

The run directory (`dermkd.rundir.RunDir`) receives the resolved config, the split, the
environment record (versions, machine, seed, data fingerprint, teacher record, status,
wall time), the history, the best and last checkpoints, the Lightning CSV log, and the
test-split metrics and per-image predictions of the best-on-validation checkpoint. A
stage whose metrics exist is finished and is skipped; one killed midway resumes from its
last checkpoint.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

from dermkd.build import resolve
from dermkd.config import RunConfig
from dermkd.data.datamodule import DermDataModule
from dermkd.data.prepare import PreparedData
from dermkd.data.splits import write_split
from dermkd.errors import DermkdError
from dermkd.evaluate.evaluate import evaluate_model
from dermkd.io import write_json, write_yaml
from dermkd.models import create_model
from dermkd.rundir import RunDir
from dermkd.train.checkpoints import load_model
from dermkd.train.history import HistoryWriter, SaveAtEpoch
from dermkd.train.records import machine, versions
from dermkd.train.trainer import build_module, build_trainer, determinism

log = logging.getLogger(__name__)


@dataclass
class StageResult:
    name: str
    run_dir: Path
    metrics: dict
    reused: bool  # True when a finished run was found and not retrained


def balanced_class_weights(data: PreparedData) -> list[float]:
    """w_c = N / (C n_c) over the training split (scikit-learn's "balanced"); 0 for a class
    with no training image."""
    counts = torch.bincount(data.labels["train"], minlength=len(data.classes)).double()
    present = counts > 0
    weights = torch.zeros_like(counts)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights.tolist()


def run_stage(cfg: RunConfig, data: PreparedData, run_dir: str | Path, *,
              teacher_source: Path | list[Path] | None = None, resume: bool = True) -> StageResult:
    """Train `cfg.model` with strategy `cfg.kd.strategy` on `data`, then score it on the test split."""
    rd = RunDir(run_dir)
    if resume and rd.is_finished():
        done = rd.read_env()["data"]["fingerprint"]
        if done != data.fingerprint:
            raise DermkdError(f"{rd.path} was trained on other data (fingerprint {done[:12]} != "
                              f"{data.fingerprint[:12]}); choose another --name or --fresh")
        log.info("%s is finished; reusing it (use --fresh to retrain)", rd.path)
        return StageResult(rd.name, rd.path, rd.read_metrics(), reused=True)
    started = time.perf_counter()
    if cfg.train.refit:
        data = data.with_val_in_train()
    with determinism(cfg.train.seed, cfg.train.threads):
        metrics = _train_and_test(cfg, data, rd, teacher_source, resume)
    metrics["wall_seconds"] = round(time.perf_counter() - started, 1)
    write_json(rd.metrics, metrics)
    env = {**rd.read_env(), "status": "done", "finished": _now(), "wall_seconds": metrics["wall_seconds"]}
    write_json(rd.env, env)
    return StageResult(rd.name, rd.path, metrics, reused=False)


def _train_and_test(cfg: RunConfig, data: PreparedData, rd: RunDir, teacher_source: Path | list[Path] | None,
                    resume: bool) -> dict:
    strategy = resolve(cfg).strategy
    teacher, teacher_record = strategy.teacher(teacher_source, len(data.classes), dataclasses.asdict(cfg.kd))
    if teacher_record is not None and teacher_record.get("classes", data.classes) != data.classes:
        raise DermkdError(f"teacher classes {teacher_record['classes']} differ from the data's {data.classes}")
    store = None
    if cfg.kd.teacher_cache:
        store = _teacher_store(teacher, teacher_record, data, cfg)
        teacher = None  # the store replaces the live teacher

    if not resume:  # --fresh: nothing of an earlier attempt may leak into this one
        shutil.rmtree(rd.checkpoints, ignore_errors=True)
        for name in RunDir.RESULTS:
            getattr(rd, name).unlink(missing_ok=True)
    rd.path.mkdir(parents=True, exist_ok=True)
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, root=str(data.root)))  # fully resolved
    write_yaml(rd.config, cfg.to_dict())
    write_split(rd.split, data.rows)
    write_json(rd.env, {"status": "running", "started": _now(), "seed": cfg.train.seed, "versions": versions(),
                        "machine": machine(), "data": data.summary(), "strategy": cfg.kd.strategy,
                        "teacher": teacher_record, "teacher_store": store.describe() if store is not None else None})

    m = cfg.model
    model = create_model(m.name, len(data.classes), image_size=data.image_size, pretrained=m.pretrained,
                         pretrained_file=m.pretrained_file, trainable_stages=m.trainable_stages,
                         bn_momentum=m.bn_momentum)
    spec = {**model.describe(), "classes": data.classes, "image_size": data.image_size}
    lit = build_module(cfg, model, spec, teacher,
                       class_weight=balanced_class_weights(data) if cfg.train.class_balance == "loss" else None)
    dm = DermDataModule(data, cfg.train.batch_size, augment=cfg.augment if cfg.data.augment else None,
                        num_workers=cfg.data.num_workers, seed=cfg.train.seed,
                        balanced_sampler=cfg.train.class_balance == "sampler", store=store)
    trainer = build_trainer(cfg, _callbacks(cfg, rd), rd)
    trainer.fit(lit, datamodule=dm, ckpt_path=str(rd.last) if resume and rd.last.is_file() else None)

    # the weights tested: best on validation, or the last epoch's for a refit (no validation left)
    best, _ = load_model(rd.last if cfg.train.refit else rd.best)
    metrics = evaluate_model(best, data, "test", predictions=rd.predictions)
    metrics.update({"run": rd.name, "model": spec, "strategy": cfg.kd.strategy, "teacher": teacher_record,
                    "epochs_trained": trainer.current_epoch})
    return metrics


def _callbacks(cfg: RunConfig, rd: RunDir) -> list[L.Callback]:
    callbacks: list[L.Callback] = [
        # best: weights only (evaluation, teaching, export); last: full state, for resuming
        ModelCheckpoint(dirpath=rd.checkpoints, filename=rd.best.stem, monitor="val_loss", mode="min",
                        save_weights_only=True, enable_version_counter=False),
        ModelCheckpoint(dirpath=rd.checkpoints, save_top_k=0, save_last=True),
        HistoryWriter(rd.history),
    ]
    if cfg.kd.teacher_epoch < cfg.train.epochs:  # lets this run teach in defective KD
        callbacks.append(SaveAtEpoch(cfg.kd.teacher_epoch, rd.epoch_checkpoint(cfg.kd.teacher_epoch)))
    if cfg.train.early_stopping_patience:
        callbacks.append(EarlyStopping("val_loss", patience=cfg.train.early_stopping_patience))
    return callbacks


def _teacher_store(teacher, teacher_record: dict | None, data: PreparedData, cfg: RunConfig):
    """The teacher-logit store for this run (built once, then reused by every run that
    shares teacher, data, seed and augmentation)."""
    from dermkd.distill.logit_store import open_or_build

    if teacher is None or not (teacher_record or {}).get("sha256"):
        raise DermkdError(f"--teacher-cache needs a trained teacher network; strategy {cfg.kd.strategy!r} has none")
    return open_or_build(teacher, teacher_record["sha256"], data, cfg.kd.teacher_cache, cfg.train.seed,
                         augment=cfg.augment, batch_size=2 * cfg.train.batch_size, precision=cfg.train.precision,
                         teacher_image_size=cfg.kd.teacher_image_size)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
