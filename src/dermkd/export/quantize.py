"""int8 quantisation, the three ways measured in `dermkd.bench.inference`.

* ONNX Runtime dynamic: int8 weights for MatMul/Gemm (the Linear layers) only, activations
  quantised per batch at run time. Convolutions stay fp32 on purpose: ORT's dynamic
  ConvInteger kernels ran 4-7x slower than fp32 here (dsc and resnet50, 112 px). The DSC
  student keeps 94% of its weights in its Linear layers (51.4M of 54.6M at 224 px), so
  this is where it shrinks; a ResNet-50 barely changes.
* ONNX Runtime static: QDQ, uint8 activations and per-channel int8 weights (the layout
  ORT recommends for x86 with VNNI), activation ranges from MinMax calibration on 64
  training images. Per-channel weights roughly halved resnet50's error against fp32 at
  the same speed. The classification layer stays fp32: quantised, its uint8 output
  rounds close logits together, and a trained dsc then predicted another class than fp32
  for 3.7% of its test images; with the layer in fp32, for 0.3% (256 calibration
  images instead of 64, or entropy/percentile calibration, only got to 1.4%).
* PyTorch dynamic: `torch.ao.quantization.quantize_dynamic` on nn.Linear (fbgemm kernels).
  torch.ao.quantization is deprecated since torch 2.10 (its successor is the separate
  torchao package) but still present and working in 2.14; its deprecation warnings are
  silenced here, and a torch without it gets a DermkdError.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dermkd.errors import DermkdError
from dermkd.export.deps import require
from dermkd.export.to_onnx import INPUT_NAME

CALIBRATION_BATCH = 8


class ImageBatches:
    """ORT's CalibrationDataReader (it accepts any object with `get_next`): the calibration
    images in batches, then None."""

    def __init__(self, images: np.ndarray, batch_size: int = CALIBRATION_BATCH) -> None:
        self._batches = iter([images[i:i + batch_size] for i in range(0, len(images), batch_size)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {INPUT_NAME: batch}


def calibration_images(images: torch.Tensor, n: int, seed: int = 0) -> np.ndarray:
    """`n` images drawn without replacement from a uint8 (N, 3, S, S) training split, as
    float32 in [0, 1] (the exported model's input)."""
    if len(images) == 0:
        raise DermkdError("static quantisation needs training images for calibration; the train split is empty")
    pick = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:n]
    return images[pick.sort().values].float().div_(255.0).numpy()


def preprocessed(src: Path, dst: Path) -> Path:
    """`src` after ORT's pre-processing (shape inference, graph optimisation), which ORT
    asks for before quantising; written beside `dst` (an export's scratch folder)."""
    shape_inference = require("onnxruntime.quantization.shape_inference")
    prepared = dst.with_name(f"{dst.stem}.preprocessed.onnx")
    shape_inference.quant_pre_process(src, prepared)
    return prepared


def quantize_onnx_dynamic(src: Path, dst: Path) -> None:
    q = require("onnxruntime.quantization")
    q.quantize_dynamic(preprocessed(src, dst), dst, op_types_to_quantize=["MatMul", "Gemm"],
                       weight_type=q.QuantType.QInt8)


def classification_layer(path: Path) -> list[str]:
    """The name of the graph's last MatMul/Gemm node: every registered model ends in one."""
    graph = require("onnx").load(str(path)).graph
    return [node.name for node in graph.node if node.op_type in ("MatMul", "Gemm")][-1:]


def quantize_onnx_static(src: Path, dst: Path, calibration: np.ndarray) -> None:
    q = require("onnxruntime.quantization")
    prepared = preprocessed(src, dst)
    q.quantize_static(prepared, dst, ImageBatches(calibration), quant_format=q.QuantFormat.QDQ,
                      per_channel=True, activation_type=q.QuantType.QUInt8, weight_type=q.QuantType.QInt8,
                      nodes_to_exclude=classification_layer(prepared))


@contextlib.contextmanager
def torch_quantization_warnings_silenced() -> Iterator[None]:
    """torch 2.14 warns that torch.ao.quantization and quantised tensors are deprecated,
    on quantising and on the first quantised forward; the module docstring says why they
    are used all the same."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"torch\.ao\.quantization is deprecated", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=r".*quantized tensor creation functions.*deprecated")
        yield


def quantize_torch_dynamic(model: nn.Module) -> nn.Module:
    """A copy of `model` whose nn.Linear layers hold int8 weights."""
    try:
        from torch.ao.quantization import quantize_dynamic
    except ImportError:
        raise DermkdError(f"torch {torch.__version__} has no torch.ao.quantization; "
                          "use the onnx-int8-dynamic format instead") from None
    with torch_quantization_warnings_silenced():
        return quantize_dynamic(model.eval(), {nn.Linear}, dtype=torch.qint8)
