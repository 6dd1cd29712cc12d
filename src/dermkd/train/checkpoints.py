"""Checkpoints that describe themselves, written atomically.

A Lightning checkpoint of a `LitClassifier` carries `hyper_parameters["model_spec"]`
(model name, classes, input size, normalisation); `load_model` rebuilds the network from
that alone, so any checkpoint can be evaluated or used as a teacher without its config.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import pickle
import re
import shutil
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from dermkd.errors import DermkdError
from dermkd.io import atomic_open
from dermkd.models import create_model
from dermkd.models.classifier import Classifier
from dermkd.rundir import RunDir


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM until the block is done: an interrupt that lands inside
    torch.save's C++ writer surfaces as an unrelated RuntimeError; held, it arrives just
    after, as the KeyboardInterrupt it is (the main thread only: signals go there)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, held)


class AtomicCheckpointIO(TorchCheckpointIO):
    """torch.save to a temp file in the target folder, then rename over the target; a
    failed write (a full disk) is a one-line error and leaves the old checkpoint whole."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any = None) -> None:
        try:
            with signals_deferred(), atomic_open(path, "wb") as fh:
                torch.save(checkpoint, fh)
        except (OSError, RuntimeError) as exc:  # torch reports a full disk as RuntimeError
            reason = "no space left on the device" if _disk_full(exc, Path(path)) else str(exc).splitlines()[0]
            raise DermkdError(f"could not write checkpoint {path}: {reason}") from None


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
    try:  # weights_only: tensors and plain data only, so a checkpoint from elsewhere cannot run code
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL (\S+)", str(exc))
        raise DermkdError(f"refusing to load {path}: it holds objects other than tensors and plain data "
                          f"({found.group(1) if found else 'code'}); dermkd never runs code from a checkpoint") from None
    except Exception as exc:  # not a torch file at all: truncated, another format
        raise DermkdError(f"not a dermkd checkpoint: {path} ({type(exc).__name__}: {exc})".splitlines()[0]) from None
    try:
        spec = ckpt["hyper_parameters"]["model_spec"]
        state = {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    except Exception as exc:
        raise DermkdError(f"not a dermkd checkpoint: {path} ({type(exc).__name__}: {exc})".splitlines()[0]) from None
    model = create_model(spec["name"], len(spec["classes"]), image_size=spec["image_size"])
    model.load_state_dict(state)
    return model.eval(), spec


def _disk_full(exc: BaseException, path: Path) -> bool:
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    try:
        return shutil.disk_usage(path.parent).free < 2**20
    except OSError:
        return False


def file_sha256(path: str | Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
