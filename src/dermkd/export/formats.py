"""The export formats, by name, and the two entry points: `export_model` writes a model
file (atomically) and its metadata; `load_predictor` turns that file back into a
`Predictor`. A new format is one registry entry: how to write it, how to load it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dermkd.errors import DermkdError
from dermkd.export.deps import require
from dermkd.export.logs import quiet_export_logs
from dermkd.export.metadata import describe, read_sidecar, write_sidecar
from dermkd.export.ort_runtime import ort_runner
from dermkd.export.predictor import Predictor, Runner, torch_runner
from dermkd.export.quantize import quantize_onnx_dynamic, quantize_onnx_static, quantize_torch_dynamic
from dermkd.export.source import Source
from dermkd.export.staging import staged
from dermkd.export.torchscript import load_torchscript, save_torchscript
from dermkd.registry import Registry


@dataclass(frozen=True)
class ExportFormat:
    summary: str  # one line, for help texts and the metadata file
    suffix: str  # of the model file
    runtime: str  # the package that runs the file
    write: Callable[[Source, Path], None]  # writes the model file at a path (a staging path: see export_model)
    load: Callable[[Path, int], Runner]  # (file, intra-op threads) -> runner
    calibrated: bool = False  # reads training images (static quantisation)


FORMATS: Registry[ExportFormat] = Registry("export format")


def write_onnx(source: Source, path: Path) -> None:
    require("onnx").save(source.onnx, str(path))


def fp32_onnx_beside(source: Source, path: Path) -> Path:
    """The fp32 graph an int8 one is quantised from, written in the export's scratch folder."""
    fp32 = path.with_name(f"{path.stem}.fp32.onnx")
    write_onnx(source, fp32)
    return fp32


def write_onnx_static(source: Source, path: Path) -> None:
    calibration = source.calibration  # first: no export when there are no training images
    quantize_onnx_static(fp32_onnx_beside(source, path), path, calibration)


def load_torchscript_runner(path: Path, threads: int) -> Runner:
    return torch_runner(load_torchscript(path), threads)


FORMATS.register("onnx")(ExportFormat(
    "fp32 ONNX (dynamo exporter), run by ONNX Runtime", ".onnx", "onnxruntime", write_onnx, ort_runner))
FORMATS.register("onnx-int8-dynamic")(ExportFormat(
    "ONNX Runtime dynamic int8: Linear weights int8, activations quantised per batch; convolutions fp32",
    ".onnx", "onnxruntime", lambda s, p: quantize_onnx_dynamic(fp32_onnx_beside(s, p), p), ort_runner))
FORMATS.register("onnx-int8-static")(ExportFormat(
    "ONNX Runtime static int8 (QDQ, per-channel weights), calibrated on training images",
    ".onnx", "onnxruntime", write_onnx_static, ort_runner, calibrated=True))
FORMATS.register("torchscript")(ExportFormat(
    "TorchScript, traced and frozen; optimised for inference on loading", ".pt", "torch",
    lambda s, p: save_torchscript(s.model, p, s.image_size), load_torchscript_runner))
FORMATS.register("torch-int8-dynamic")(ExportFormat(
    "PyTorch dynamic int8 on Linear layers (torch.ao.quantization), saved as TorchScript", ".pt", "torch",
    lambda s, p: save_torchscript(quantize_torch_dynamic(s.model), p, s.image_size), load_torchscript_runner))


def export_model(source: Source, fmt: str, path: str | Path) -> Path:
    """Write `source`'s model as `fmt` to `path`, and its metadata beside it.

    The model file appears complete or not at all (`staging.staged`); the metadata file
    is written after it and records its sha256.
    """
    entry, path = FORMATS.get(fmt), Path(path)
    with staged(path) as staging, quiet_export_logs():
        entry.write(source, staging)
    calibration_images = len(source.calibration) if entry.calibrated else None
    write_sidecar(describe(source, fmt, entry.summary, entry.runtime, path, calibration_images), path)
    return path


def load_predictor(path: str | Path, threads: int = 1) -> Predictor:
    """The exported model at `path`, its format read from the metadata file beside it."""
    path = Path(path)
    if not path.is_file():
        raise DermkdError(f"exported model not found: {path}")
    info = read_sidecar(path)
    entry = FORMATS.get(info.format)
    return Predictor(entry.load(path, threads), info.format, info.image_size, info.classes)
