"""Loading a weights file, checked key by key (see `models.pretrained` for where
ImageNet weights come from).

A local file is read with timm's reader (.pth/.pt/.bin/.safetensors, nested
'state_dict'/'model' keys unwrapped) and checked key by key: a classifier of another
size is dropped (it is re-initialised for our classes), any other missing or unexpected
key is an error naming the file, never a silent partial load. A file with foreign key
names (another port of the same network) is renamed first by the `remap` declared beside its source.
"""

from __future__ import annotations

from pathlib import Path

import timm
import torch
from torch import nn

from dermkd.errors import DermkdError
from dermkd.models.remap import Remap


def load_weights_file(net: nn.Module, path: str | Path, classifier: str, remap: Remap | None = None) -> None:
    """Load `path` into `net`; `classifier` names the layer that may differ in size."""
    path = Path(path)
    if not path.is_file():
        raise DermkdError(f"weights file not found: {path}")
    try:
        state = timm.models.load_state_dict(str(path), weights_only=True)
    except Exception as exc:  # unreadable, truncated, or not a weights file
        raise DermkdError(f"cannot read weights file {path}: {type(exc).__name__}: {exc}".splitlines()[0]) from None
    if remap is not None:
        state = remap(state, net)
    load_state_checked(net, state, classifier, f"weights file {path}")


def load_state_checked(net: nn.Module, state: dict[str, torch.Tensor], classifier: str, what: str) -> None:
    """Load `state` into `net`: only the classifier may be missing or of another size."""
    classifier_prefixes = (classifier + ".",)
    own = net.state_dict()
    dropped = [k for k in state if k.startswith(classifier_prefixes) and k in own and state[k].shape != own[k].shape]
    for k in dropped:
        del state[k]
    wrong_shape = [k for k in state if k in own and state[k].shape != own[k].shape]
    result = net.load_state_dict({k: v for k, v in state.items() if k not in wrong_shape}, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith(classifier_prefixes)]
    problems = []
    if wrong_shape:
        problems.append(f"{len(wrong_shape)} with the wrong shape (e.g. {wrong_shape[0]})")
    if missing:
        problems.append(f"{len(missing)} missing (e.g. {missing[0]})")
    if result.unexpected_keys:
        problems.append(f"{len(result.unexpected_keys)} unexpected (e.g. {result.unexpected_keys[0]})")
    if problems:
        raise DermkdError(f"{what} does not match this model: keys " + "; ".join(problems))
