"""Keep exports readable under an INFO log (the CLI's): torch's ONNX exporter and
onnxscript narrate every pass at INFO, and ONNX Runtime's quantiser logs on the root
logger, at INFO for every tensor it leaves unquantised and at WARNING for each weight it
quantises per tensor instead of per channel (dsc's BatchNorm, which follows a ReLU and
cannot fold into a convolution). Hundreds of lines per export, none actionable."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

CHATTY = ("torch.onnx", "onnxscript", "onnx_ir", "onnxruntime")


@contextlib.contextmanager
def quiet_export_logs() -> Iterator[None]:
    """While exporting: the exporters' own loggers keep WARNING and above; records logged
    on the root logger itself (not propagated from named loggers) keep ERROR and above."""
    loggers = [logging.getLogger(name) for name in CHATTY]
    levels = [logger.level for logger in loggers]
    root = logging.getLogger()

    def errors_only(record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR

    for logger in loggers:
        logger.setLevel(logging.WARNING)
    root.addFilter(errors_only)
    try:
        yield
    finally:
        root.removeFilter(errors_only)
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
