"""Numeric precision outside Lightning's Trainer (which applies `train.precision` itself):
the same bfloat16 autocast for forward passes such as the teacher-logit store's build."""

from __future__ import annotations

import contextlib

import torch


def autocast(precision: str, device_type: str = "cpu") -> contextlib.AbstractContextManager:
    """bfloat16 autocast for "bf16-mixed", else nothing (fp32)."""
    if precision == "bf16-mixed":
        return torch.autocast(device_type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
