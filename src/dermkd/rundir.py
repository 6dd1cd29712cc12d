"""The run directory: the one place that knows its file names.

A run directory (`runs/<name>/`) holds the resolved config, the split, the environment
record, the training history, the checkpoints, the test metrics and predictions, and,
for a run that failed inside a study, its error. Every module that reads or writes one
goes through `RunDir`, so a file name is spelt once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dermkd.errors import DermkdError
from dermkd.io import load_yaml, read_json


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
