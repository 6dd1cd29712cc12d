"""The run directory: the one place that knows its file names.

A run directory (`runs/<name>/`) holds the resolved config, the split, the environment
record, the training history, the checkpoints, the test metrics and predictions, and,
for a run that failed inside a study, its error. Every module that reads or writes one
goes through `RunDir`, so a file name is spelt once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dermkd.errors import DermkdError
from dermkd.io import load_yaml, read_json

log = logging.getLogger(__name__)
STATUSES = ("running", "done", "failed", "interrupted")


@dataclass(frozen=True)
class RunDir:
    path: Path

    def __init__(self, path: str | Path) -> None:
        object.__setattr__(self, "path", Path(path))

    @classmethod
    def of_checkpoint(cls, checkpoint: str | Path) -> RunDir:
        """The run a checkpoint file (`<run>/checkpoints/x.ckpt`) belongs to."""
        return cls(Path(checkpoint).parent.parent)

    @property
    def name(self) -> str:
        return self.path.name

    # the files
    config = property(lambda self: self.path / "config.yaml")  # the fully resolved RunConfig
    split = property(lambda self: self.path / "split.csv")  # path,label,split of every image used
    env = property(lambda self: self.path / "env.json")  # versions, machine, data fingerprint, status
    history = property(lambda self: self.path / "history.csv")  # one row per epoch
    metrics = property(lambda self: self.path / "metrics.json")  # test-split measures: the run is finished
    predictions = property(lambda self: self.path / "predictions.csv")  # per test image
    error = property(lambda self: self.path / "error.txt")  # a failed study run's traceback
    logs = property(lambda self: self.path / "logs")  # Lightning's CSV logger
    checkpoints = property(lambda self: self.path / "checkpoints")
    best = property(lambda self: self.path / "checkpoints" / "best.ckpt")  # weights, best on validation
    last = property(lambda self: self.path / "checkpoints" / "last.ckpt")  # full state, for resuming
    export = property(lambda self: self.path / "export")  # default folder of `dermkd export`
    calibration = property(lambda self: self.path / "calibration.json")  # `dermkd calibrate`: the temperature
    reliability = property(lambda self: self.path / "reliability")  # its diagram: the stem of .png and .svg
    model_card = property(lambda self: self.path / "model_card.json")  # `dermkd card` (and .md beside it)
    lock_file = property(lambda self: self.path / "run.lock")  # pid and host of the one writer

    RESULTS = ("metrics", "history", "predictions")  # what a fresh attempt must not inherit

    def split_for(self, fold: int | None) -> Path:
        """The split file of a multi-run folder (pipeline, study); one per fold with k-fold."""
        return self.split if fold is None else self.path / f"split-f{fold}.csv"

    def epoch_checkpoint(self, epoch: int) -> Path:
        """The weights after `epoch` (what defective KD teaches from)."""
        return self.checkpoints / f"epoch-{epoch}.ckpt"

    def is_finished(self) -> bool:
        return self.metrics.is_file()

    def read_config(self) -> dict[str, Any]:
        """The run's saved config as a nested dict; a run without one is a one-line error."""
        if not self.config.is_file():
            raise DermkdError(f"{self.path} is not a run directory (no {self.config.name}); pass a run made by "
                              "dermkd train/distill/pipeline, or a checkpoint file with --data")
        return load_yaml(self.config)

    def read_env(self) -> dict[str, Any]:
        return read_json(self.env)

    def read_metrics(self) -> dict[str, Any]:
        return read_json(self.metrics)

    def status(self) -> str | None:
        """running | done | failed | interrupted (env.json), or None before a first attempt.
        A "running" run whose writer is gone (its lock is stale) was interrupted."""
        if not self.env.is_file():
            return None
        status = self.read_env().get("status")
        return "interrupted" if status == "running" and self._holder() is None else status

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run's lock file while writing it: a second writer (another process on
        this host, or any on another host) fails at once with a one-line error naming the
        holder; a lock left by a dead process on this host is taken over."""
        self.path.mkdir(parents=True, exist_ok=True)
        me = {"pid": os.getpid(), "host": socket.gethostname()}
        for _ in range(2):
            try:
                fd = os.open(self.lock_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self.ensure_unlocked()
                log.warning("%s: taking over the lock of a process that is gone", self.path)
                self.lock_file.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as fh:
                json.dump(me, fh)
            break
        try:
            yield
        finally:
            self.lock_file.unlink(missing_ok=True)

    def ensure_unlocked(self) -> None:
        """A one-line error naming the live writer of this run, if there is one (checked
        before a command spends time on the data; `lock` checks again, atomically)."""
        holder = self._holder()
        if holder is not None:
            raise DermkdError(f"{self.path} is being written by pid {holder['pid']} on {holder['host']}; "
                              "wait for it, or choose another --name")

    def _holder(self) -> dict[str, Any] | None:
        """The live holder of the lock ({pid, host}), or None (no lock, or a stale one)."""
        try:
            holder = json.loads(self.lock_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if holder.get("host") != socket.gethostname():
            return holder  # another machine's process: cannot be checked from here, so it is live
        try:
            os.kill(int(holder["pid"]), 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # alive, another user's
        return holder
