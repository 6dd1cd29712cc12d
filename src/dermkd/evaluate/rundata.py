"""The data of a finished run as the run saw it: its config's whole data section (root,
layout, metadata, task, class handling), its own split file, its input size. What
scoring, calibrating or benchmarking a trained model on its own test split needs (the
test images are the ones it never trained on)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from dermkd.config import RunConfig
from dermkd.data.prepare import PreparedData
from dermkd.errors import DermkdError
from dermkd.pipeline import load_data
from dermkd.rundir import RunDir


def run_config(run_dir: Path) -> RunConfig:
    """The run's saved config, with its data split pinned to the run's own split file."""
    rd = RunDir(run_dir)
    saved = rd.read_config()
    if not rd.split.is_file():
        raise DermkdError(f"not a run directory: {rd.path} has no {rd.split.name}")
    try:
        cfg = RunConfig.from_dict(saved)
    except DermkdError as exc:
        raise DermkdError(f"{rd.config}: {exc} (a run made by another dermkd version: remove or rename that key "
                          "in its config.yaml)") from None
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, split_file=str(rd.split)))


def run_data(run_dir: Path) -> PreparedData:
    """Decode the run's data and split it as the run did."""
    return load_data(run_config(run_dir))
