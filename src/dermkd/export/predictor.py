"""One calling convention for every backend, so a benchmark or a server treats them alike:

    predictor(images) -> logits

`images` is float (B, 3, S, S) RGB in [0, 1], as a numpy array or a torch tensor; `logits`
is a float32 numpy array (B, C). Normalisation is inside every backend's model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from dermkd.errors import DermkdError
from dermkd.export.quantize import torch_quantization_warnings_silenced

Images = np.ndarray | torch.Tensor
Runner = Callable[[Images], np.ndarray]


@dataclass(frozen=True)
class Predictor:
    run: Runner  # the backend: images -> logits, no checks
    backend: str  # e.g. "eager", "onnx-int8-static"
    image_size: int
    classes: tuple[str, ...]

    def __call__(self, images: Images) -> np.ndarray:
        shape = tuple(images.shape)
        if len(shape) != 4 or shape[1:] != (3, self.image_size, self.image_size):
            raise DermkdError(f"{self.backend} model takes images of shape (B, 3, {self.image_size}, "
                              f"{self.image_size}), got {shape}")
        if not (images.dtype.is_floating_point if isinstance(images, torch.Tensor)
                else np.issubdtype(images.dtype, np.floating)):
            raise DermkdError(f"{self.backend} model takes float images in [0, 1], got {images.dtype}")
        if shape[0] == 0:  # backends differ on empty batches; the answer is no rows
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        low, high = float(images.min()), float(images.max())
        if low < -1e-3 or high > 1 + 1e-3:  # 0-255 pixels as floats would be scored silently wrong
            raise DermkdError(f"{self.backend} model takes float images in [0, 1], got values in [{low:g}, {high:g}] "
                              "(divide 0-255 pixels by 255)")
        return self.run(images)


def torch_runner(module: Callable[[torch.Tensor], torch.Tensor], threads: int) -> Runner:
    """Run a torch module with `threads` intra-op threads. torch's thread pool is per
    process, so the count is set for each call and given back after it (a no-op costing
    about 0.1 us when it does not change)."""

    def run(images: Images) -> np.ndarray:
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            with torch.inference_mode(), torch_quantization_warnings_silenced():
                return module(torch.as_tensor(images, dtype=torch.float32)).numpy()
        finally:
            torch.set_num_threads(before)

    return run


def eager(model: nn.Module, image_size: int, classes: list[str], threads: int) -> Predictor:
    """The reference: the PyTorch model as trained, in eval mode."""
    return Predictor(torch_runner(model.eval(), threads), "eager", image_size, tuple(classes))


def compiled(model: nn.Module, image_size: int, classes: list[str], threads: int) -> Predictor:
    """`torch.compile` (inductor, C++ code built with the system compiler). Compilation
    happens at the first call of each input shape (a second shape recompiles once with a
    dynamic batch); see `dermkd.export.torchscript` for what it costs here."""
    return Predictor(torch_runner(torch.compile(model.eval()), threads), "compile", image_size, tuple(classes))
