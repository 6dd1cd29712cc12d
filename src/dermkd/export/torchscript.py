"""TorchScript files: traced, frozen, saved; optimised for inference when loaded.

`torch.jit.trace` is deprecated in torch 2.14 (it warns, pointing at torch.compile and
torch.export) but works, and it is the one torch format that loads without dermkd and
without a compile step. Freezing turns the weights into constants so that conv+BN fold;
`torch.jit.optimize_for_inference` (oneDNN layouts, fusions) is applied after loading
because its output does not survive a save/load in torch 2.14 ("required keyword
attribute 'value' is undefined"). Measured here: frozen+optimised TorchScript is about
1.4x eager PyTorch for dsc and resnet50, for under a second of tracing. torch.compile
reached 1.4-2.3x but compiles for 30-40 s per model and input shape on this machine (and
again in every new process unless its cache is warm), so it is a runtime backend
(`dermkd.export.predictor.compiled`), not a file.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from dermkd.errors import DermkdError
from dermkd.export.quantize import torch_quantization_warnings_silenced


@contextlib.contextmanager
def jit_deprecation_silenced() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.\w+` is deprecated", category=FutureWarning)
        yield


def save_torchscript(module: nn.Module, path: Path, image_size: int) -> None:
    """Trace `module` (eval mode; our models' control flow does not depend on the data)
    on a random batch, freeze it and save it to `path`. The tracer's own check (two more
    forward passes compared op by op) is off: it took 3/4 of ResNet-50's tracing time,
    and the export tests compare the loaded model's outputs with eager PyTorch."""
    example = torch.rand(2, 3, image_size, image_size)
    with torch.no_grad(), jit_deprecation_silenced(), torch_quantization_warnings_silenced():
        torch.jit.save(torch.jit.freeze(torch.jit.trace(module.eval(), example, check_trace=False)), str(path))


def load_torchscript(path: Path) -> torch.jit.ScriptModule:
    with jit_deprecation_silenced():
        try:
            module = torch.jit.load(str(path), map_location="cpu")
        except (RuntimeError, ValueError) as exc:
            raise DermkdError(f"not a TorchScript model: {path} ({str(exc).strip().splitlines()[0]})") from None
        return torch.jit.optimize_for_inference(module.eval())
