"""What a run directory records besides its checkpoints: config, env, split, metrics."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata

PACKAGES = ("dermkd", "torch", "torchvision", "timm", "lightning", "torchmetrics", "scikit-learn", "numpy", "pillow")


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def machine() -> dict[str, object]:
    return {"platform": platform.platform(), "processor": platform.machine(), "cpu_count": os.cpu_count()}
