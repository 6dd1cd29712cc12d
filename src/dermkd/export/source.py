"""What an export starts from: a model, its description, where its weights came from,
and (for static quantisation) training images to calibrate on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from dermkd.errors import DermkdError
from dermkd.evaluate.rundata import run_data
from dermkd.export.quantize import calibration_images
from dermkd.export.to_onnx import onnx_graph
from dermkd.models.classifier import Classifier
from dermkd.train.checkpoints import file_sha256, load_model, resolve_checkpoint

if TYPE_CHECKING:
    import onnx

CALIBRATION_IMAGES = 64  # a trained dsc then agreed with fp32 on 99.7% of its test images; time grows with it


@dataclass
class Source:
    """One model to export, in any number of formats (its ONNX graph is made once)."""

    model: Classifier
    spec: dict[str, Any]  # the checkpoint's model_spec: Classifier.describe() + classes + image_size
    checkpoint: Path | None = None  # None: weights not from a file (tests, benchmarks on random weights)
    train_images: Callable[[], torch.Tensor] | None = None  # uint8 (N, 3, S, S), read only if needed
    calibration_size: int = CALIBRATION_IMAGES

    @classmethod
    def from_model(cls, model: Classifier, classes: list[str], image_size: int, **kwargs: Any) -> Source:
        return cls(model.eval(), {**model.describe(), "classes": list(classes), "image_size": image_size}, **kwargs)

    @property
    def image_size(self) -> int:
        return int(self.spec["image_size"])

    @property
    def classes(self) -> list[str]:
        return list(self.spec["classes"])

    @cached_property
    def checkpoint_sha256(self) -> str | None:
        return None if self.checkpoint is None else file_sha256(self.checkpoint)

    @cached_property
    def onnx(self) -> onnx.ModelProto:
        """Exported once and shared by the fp32 and the int8 ONNX formats."""
        return onnx_graph(self.model, self.image_size)

    @cached_property
    def calibration(self) -> np.ndarray:
        if self.train_images is None:
            raise DermkdError("static quantisation calibrates on training images: export from a run directory "
                              "(its split.csv and config.yaml), not from a bare checkpoint")
        return calibration_images(self.train_images(), self.calibration_size)


def source_from_run(run_or_ckpt: str | Path, train_images: Callable[[], torch.Tensor] | None = None) -> Source:
    """A trained model from a run directory (its best checkpoint; its own training split
    for calibration, decoded only if a format needs it) or from a checkpoint file.
    `train_images` stands in for the run's training split where the caller has it already."""
    model, spec = load_model(run_or_ckpt)
    run_dir = Path(run_or_ckpt)
    if train_images is None and run_dir.is_dir():
        train_images = lambda: run_data(run_dir).images["train"]  # noqa: E731 - read on first use
    return Source(model, spec, checkpoint=resolve_checkpoint(run_or_ckpt), train_images=train_images)
