"""Checkpoints that describe themselves, written atomically.

A Lightning checkpoint of a `LitClassifier` carries `hyper_parameters["model_spec"]`
(model name, classes, input size, normalisation); `load_model` rebuilds the network from
that alone, so any checkpoint can be evaluated or used as a teacher without its config.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from dermkd.errors import DermkdError
from dermkd.io import atomic_open
from dermkd.models import create_model
from dermkd.models.classifier import Classifier
from dermkd.rundir import RunDir


class AtomicCheckpointIO(TorchCheckpointIO):
    """torch.save to a temp file in the target folder, then rename over the target."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any = None) -> None:
        with atomic_open(path, "wb") as fh:
            torch.save(checkpoint, fh)


def resolve_checkpoint(run_or_ckpt: str | Path) -> Path:
    """A run directory means its best checkpoint; a file is taken as it is."""
    p = Path(run_or_ckpt)
    if p.is_dir():
        p = RunDir(p).best
    if not p.is_file():
        raise DermkdError(f"checkpoint not found: {p}")
    return p


def load_model(run_or_ckpt: str | Path) -> tuple[Classifier, dict]:
    """(model in eval mode, its model_spec) from a run directory or checkpoint file."""
    path = resolve_checkpoint(run_or_ckpt)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        spec = ckpt["hyper_parameters"]["model_spec"]
        state = {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    except Exception as exc:
        raise DermkdError(f"not a dermkd checkpoint: {path} ({type(exc).__name__}: {exc})".splitlines()[0]) from None
    model = create_model(spec["name"], len(spec["classes"]), image_size=spec["image_size"])
    model.load_state_dict(state)
    return model.eval(), spec


def file_sha256(path: str | Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
