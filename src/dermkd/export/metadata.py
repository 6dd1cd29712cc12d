"""The JSON file beside every exported model (`model.onnx` -> `model.onnx.json`), in the
spirit of MONAI's bundle metadata: what the model expects and returns, where its weights
came from, and the software that made it, so that it can be served without dermkd's
checkpoint or config."""

from __future__ import annotations

import datetime as dt
import json
import platform
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from dermkd.errors import DermkdError
from dermkd.export.source import Source
from dermkd.export.to_onnx import INPUT_NAME, OUTPUT_NAME
from dermkd.io import write_json
from dermkd.train.checkpoints import file_sha256

PACKAGES = ("dermkd", "torch", "onnx", "onnxscript", "onnxruntime", "timm")


def sidecar_path(model_path: Path) -> Path:
    return model_path.with_name(model_path.name + ".json")


def versions() -> dict[str, str | None]:
    """Installed versions (None: not installed), read without importing the packages."""
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            found[name] = None
    return found


def describe(source: Source, fmt: str, summary: str, runtime: str, model_path: Path,
             calibration_images: int | None) -> dict:
    size, classes = source.image_size, source.classes
    names = runtime == "onnxruntime"  # TorchScript takes and returns positional tensors
    return {
        "format": fmt,
        "summary": summary,
        "runtime": runtime,
        "file": model_path.name,
        "sha256": file_sha256(model_path),
        "bytes": model_path.stat().st_size,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "input": {**({"name": INPUT_NAME} if names else {}), "dtype": "float32", "shape": ["batch", 3, size, size],
                  "layout": "NCHW, RGB", "range": [0.0, 1.0],
                  "normalisation": "inside the model: (x - mean) / std; feed pixel values / 255",
                  "mean": source.spec["mean"], "std": source.spec["std"]},
        "output": {**({"name": OUTPUT_NAME} if names else {}), "dtype": "float32",
                   "shape": ["batch", len(classes)], "meaning": "logits; softmax gives class probabilities",
                   "classes": classes},
        "model": source.spec,
        "source": {"checkpoint": None if source.checkpoint is None else str(source.checkpoint),
                   "sha256": source.checkpoint_sha256},
        "calibration_images": calibration_images,
        "versions": versions(),
    }


def write_sidecar(meta: dict, model_path: Path) -> None:
    write_json(sidecar_path(model_path), meta)


@dataclass(frozen=True)
class ExportInfo:
    """What loading an exported model needs from its metadata file."""

    format: str
    image_size: int
    classes: tuple[str, ...]
    meta: dict[str, Any]  # the whole file


def read_sidecar(model_path: Path) -> ExportInfo:
    path = sidecar_path(model_path)
    if not path.is_file():
        raise DermkdError(f"{model_path} has no metadata file {path.name} beside it; export it with dermkd")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        return ExportInfo(meta["format"], int(meta["model"]["image_size"]), tuple(meta["model"]["classes"]), meta)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise DermkdError(f"{path} is not an export metadata file ({type(exc).__name__}: {exc})") from None
