"""ONNX Runtime sessions with an explicit thread count, and their runner."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from dermkd.errors import DermkdError
from dermkd.export.deps import require
from dermkd.export.predictor import Images, Runner
from dermkd.export.to_onnx import INPUT_NAME, OUTPUT_NAME

if TYPE_CHECKING:
    import onnxruntime


def ort_session(path: Path, threads: int) -> onnxruntime.InferenceSession:
    """A CPU session running `threads` intra-op threads, one operator at a time.

    ORT's default is a thread per physical core, which oversubscribes the CPU when torch
    or another session runs in the same process. Spinning is off: idle pool threads
    would otherwise busy-wait and slow whatever runs next (the benchmark runs backends in
    turns); with one thread there is no pool and it makes no difference.
    """
    ort = require("onnxruntime")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types (InvalidProtobuf, Fail, ...)
        raise DermkdError(f"ONNX Runtime cannot load {path}: {str(exc).strip().splitlines()[0]}") from None


def ort_runner(path: Path, threads: int) -> Runner:
    session = ort_session(path, threads)

    def run(images: Images) -> np.ndarray:
        x = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else images
        return session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(x, dtype=np.float32)})[0]

    return run
