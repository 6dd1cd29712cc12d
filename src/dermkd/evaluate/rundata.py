"""The data of a finished run as the run saw it: its config's data settings, its own
split file, its input size. What scoring, calibrating or benchmarking a trained model
on its own test split needs (the test images are the ones it never trained on)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

from dermkd.config import RunConfig
from dermkd.data.prepare import PreparedData
from dermkd.errors import DermkdError
from dermkd.pipeline import load_data


def run_config(run_dir: Path) -> RunConfig:
    """The run's saved config.yaml, with its data split pinned to the run's split.csv."""
    config, split = run_dir / "config.yaml", run_dir / "split.csv"
    for path in (config, split):
        if not path.is_file():
            raise DermkdError(f"not a run directory: {run_dir} has no {path.name}")
    try:
        saved = yaml.safe_load(config.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise DermkdError(f"{config} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(saved, dict):
        raise DermkdError(f"{config} must hold a mapping")
    cfg = RunConfig.from_dict(saved)
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, split_file=str(split)))


def run_data(run_dir: Path) -> PreparedData:
    """Decode the run's data and split it as the run did."""
    return load_data(run_config(run_dir))
