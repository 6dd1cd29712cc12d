"""Atomic writes for writers that want a path, not an open file.

torch.onnx, onnxruntime.quantization and torch.jit write to a path, and the quantisers
leave scratch files beside their output (pre-processed and augmented models). So an
export writes into a private temporary folder beside the target (same file system, so
the final rename is atomic, as in `dermkd.io.atomic_open`), and only the finished file is
renamed onto the target; on any failure the folder goes, with every partial file in it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from dermkd.io import FILE_MODE


@contextlib.contextmanager
def staged(target: Path) -> Iterator[Path]:
    """Yield a path in a scratch folder beside `target`; when the block succeeds, the file
    written there replaces `target`. Scratch files written beside it are removed either way."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent) as scratch:
        path = Path(scratch) / target.name
        yield path
        with open(path, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(path, FILE_MODE)
        os.replace(path, target)
