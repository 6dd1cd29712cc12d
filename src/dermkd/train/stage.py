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
import os
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
from dermkd.knobs import flat_paths
from dermkd.models import create_model
from dermkd.rundir import RunDir
from dermkd.train.checkpoints import load_model
from dermkd.train.history import EpochSeed, HistoryWriter, SaveAtEpoch
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
              teacher_source: Path | list[Path] | None = None, resume: bool = True,
              extend: bool = False) -> StageResult:
    """Train `cfg.model` with strategy `cfg.kd.strategy` on `data`, then score it on the test split.

    The run directory is locked while it is written; its status ends as done, failed (with
    the one-line error) or interrupted on every way out that Python sees (SIGKILL leaves
    "running" behind a stale lock, which `RunDir.status` reads as interrupted).
    """
    rd = RunDir(run_dir)
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, root=str(data.root)))  # fully resolved
    if resume and rd.is_finished():
        diff = check_same_run(rd, cfg, data.fingerprint, allow_more_epochs=extend)
        if not diff:
            log.info("%s is finished; reusing it (use --fresh to retrain)", rd.path)
            return StageResult(rd.name, rd.path, rd.read_metrics(), reused=True)
        log.info("%s: extending from %s to %s epochs, from its last checkpoint", rd.path, *diff["train.epochs"])
    with rd.lock():
        rd.metrics.unlink(missing_ok=True)  # an extended run is unfinished until its new last epoch is scored
        remove_stale_temps(rd)
        started = time.perf_counter()
        try:
            with determinism(cfg.train.seed, cfg.train.threads):
                metrics = _train_and_test(cfg, data.with_val_in_train() if cfg.train.refit else data, rd,
                                          teacher_source, resume)
            metrics["wall_seconds"] = round(time.perf_counter() - started, 1)
            write_json(rd.metrics, metrics)
            _set_status(rd, "done", finished=_now(), wall_seconds=metrics["wall_seconds"])
        except KeyboardInterrupt:
            _set_status(rd, "interrupted", finished=_now())
            raise
        except BaseException as exc:
            _set_status(rd, "failed", finished=_now(), error=f"{type(exc).__name__}: {exc}".splitlines()[0])
            raise
    return StageResult(rd.name, rd.path, metrics, reused=False)


# Settings that do not change what a run computes: a finished run re-invoked with other
# values of these is the same run (the data itself is checked by its fingerprint).
SAME_RUN_IGNORES = ("name", "out_dir", "profile", "data.root", "data.split_file", "data.num_workers",
                    "train.progress", "train.threads", "train.accelerator", "train.tracker", "train.tracking_uri",
                    "train.experiment")


def check_same_run(rd: RunDir, cfg: RunConfig, fingerprint: str, allow_more_epochs: bool = False) -> dict:
    """A finished run may be reused only by the config and data it was made with. Returns
    {} for the same run, or {"train.epochs": (old, new)} when only a larger epoch count
    differs and `allow_more_epochs`; anything else is an error listing the differences."""
    done = rd.read_env()["data"]["fingerprint"]
    if done != fingerprint:
        raise DermkdError(f"{rd.path} was trained on other data (fingerprint {done[:12]} != "
                          f"{fingerprint[:12]}); choose another --name or --fresh")
    saved, now = flat_paths(rd.read_config()), flat_paths(cfg.to_dict())
    diff = {k: (saved.get(k), now.get(k)) for k in sorted(set(saved) | set(now))
            if saved.get(k) != now.get(k) and k not in SAME_RUN_IGNORES and k in now}
    epochs = diff.get("train.epochs")
    if allow_more_epochs and set(diff) == {"train.epochs"} and epochs[0] is not None and epochs[1] > epochs[0]:
        return diff
    if diff:
        listed = "; ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in diff.items())
        more = ", --extend to train it more epochs" if set(diff) == {"train.epochs"} else ""
        raise DermkdError(f"{rd.path} is finished with another config ({listed}); use --fresh to retrain it{more}, "
                          "or another --name")
    return {}


def remove_stale_temps(rd: RunDir) -> None:
    """Temp files that a killed write left behind (`io.temp_beside` names them .<name>.*.tmp)."""
    for folder in (rd.path, rd.checkpoints):
        for tmp in folder.glob(".*.tmp") if folder.is_dir() else ():
            log.info("removing %s, left by an interrupted write", tmp)
            tmp.unlink(missing_ok=True)


def _set_status(rd: RunDir, status: str, **fields) -> None:
    env = rd.read_env() if rd.env.is_file() else {}
    write_json(rd.env, {**env, "status": status, **fields})


def _train_and_test(cfg: RunConfig, data: PreparedData, rd: RunDir, teacher_source: Path | list[Path] | None,
                    resume: bool) -> dict:
    parts = resolve(cfg)
    strategy = parts.strategy
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
    write_yaml(rd.config, cfg.to_dict())
    write_split(rd.split, data.rows)
    tracker = parts.tracker(cfg, rd)
    write_json(rd.env, {"status": "running", "started": _now(), "seed": cfg.train.seed, "versions": versions(),
                        "machine": machine(), "data": data.summary(), "strategy": cfg.kd.strategy,
                        "teacher": teacher_record, "teacher_store": store.describe() if store is not None else None,
                        "parallel": _parallel(cfg), "tracking": tracker.record()})

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
    preflight(rd, model)
    trainer = build_trainer(cfg, _callbacks(cfg, rd), rd, loggers=[tracker.logger] if tracker.logger else [])
    try:
        trainer.fit(lit, datamodule=dm, ckpt_path=str(rd.last) if resume and rd.last.is_file() else None)
    except SystemExit:  # Lightning turns Ctrl-C (and SIGTERM) into exit(1) after its own clean-up
        if trainer.interrupted or trainer.received_sigterm:
            raise KeyboardInterrupt from None
        raise

    # the weights tested: best on validation, or the last epoch's for a refit (no validation left)
    best, _ = load_model(rd.last if cfg.train.refit else rd.best)
    metrics = evaluate_model(best, data, "test", predictions=rd.predictions)
    metrics.update({"run": rd.name, "model": spec, "strategy": cfg.kd.strategy, "teacher": teacher_record,
                    "epochs_trained": trainer.current_epoch})
    tracker.finish(rd, metrics)
    return metrics


def _parallel(cfg: RunConfig) -> dict:
    """What data-parallel training this run used; the batch size is per device."""
    t = cfg.train
    record = {"devices": t.devices, "parallel": t.parallel, "batch_per_device": t.batch_size,
              "effective_batch": t.batch_size * t.devices}
    if t.devices > 1:
        log.info("data-parallel: %d x %s ranks, batch %d per device, effective batch %d", t.devices, t.parallel,
                 t.batch_size, record["effective_batch"])
    return record


def preflight(rd: RunDir, model: torch.nn.Module) -> None:
    """The run folder must be writable and hold the checkpoints: best (weights) and last
    (weights + optimizer state, about 3x the weights with Adam-like optimizers), each
    written beside its old copy first."""
    probe = rd.path / f".write-test-{os.getpid()}.tmp"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise DermkdError(f"cannot write into {rd.path}: {exc.strerror or exc}") from None
    weights = sum(p.numel() * p.element_size() for p in model.state_dict().values())
    need, free = 2 * (weights + 3 * weights), shutil.disk_usage(rd.path).free
    if free < need:
        raise DermkdError(f"not enough disk space in {rd.path}: the checkpoints need about {need / 2**20:.0f} MiB, "
                          f"{free / 2**20:.0f} MiB are free")


def _callbacks(cfg: RunConfig, rd: RunDir) -> list[L.Callback]:
    callbacks: list[L.Callback] = [
        # best: weights only (evaluation, teaching, export); last: full state, for resuming
        # both at the end of each epoch, after its validation, lr step and history row, best first:
        # last.ckpt then carries this epoch's best score and history
        ModelCheckpoint(dirpath=rd.checkpoints, filename=rd.best.stem, monitor="val_loss", mode="min",
                        save_weights_only=True, save_on_train_epoch_end=True, enable_version_counter=False),
        # the full state, atomically (AtomicCheckpointIO)
        ModelCheckpoint(dirpath=rd.checkpoints, filename=rd.last.stem, monitor=None, save_top_k=1,
                        save_on_train_epoch_end=True, enable_version_counter=False),
        HistoryWriter(rd.history),
        EpochSeed(cfg.train.seed),
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
