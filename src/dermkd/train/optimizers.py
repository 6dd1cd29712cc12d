"""The six optimizers of the paper's Table 3, with Keras-matching defaults, and the
`Optimization` a `LitClassifier` is handed (optimizer, lr groups, warm-up, schedule).

All use lr 0.01 in the paper. Keras' `epsilon=None` means 1e-7, while PyTorch's defaults
are 1e-8 (1e-10 for Adagrad); we use Keras' 1e-7 everywhere to match the paper's setup.
Keras Nadam's `schedule_decay=0.004` is PyTorch NAdam's `momentum_decay=0.004`. RMSprop's
"rho 0.9" is PyTorch's `alpha`; its "beta1 0.9" is read as momentum, 0 by default
(`optim.momentum`, which SGD shares; the paper's SGD has none). A factory declares the
settings it reads as keyword parameters; a momentum given to one that has none is an
error at the build boundary (`dermkd.build`), not silently dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch

from dermkd.registry import Registry

KERAS_EPS = 1e-7
BETAS = (0.9, 0.999)

Params = Iterable[torch.nn.Parameter] | list[dict[str, Any]]
OptimizerFactory = Callable[..., torch.optim.Optimizer]  # (params, *, lr, weight_decay[, momentum])

OPTIMIZERS: Registry[OptimizerFactory] = Registry("optimizer")


@OPTIMIZERS.register("adam")
def adam(params: Params, *, lr: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=lr, betas=BETAS, eps=KERAS_EPS, weight_decay=weight_decay, amsgrad=False)


@OPTIMIZERS.register("sgd")
def sgd(params: Params, *, lr: float, weight_decay: float = 0.0, momentum: float = 0.0) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=False, weight_decay=weight_decay)


@OPTIMIZERS.register("adagrad")
def adagrad(params: Params, *, lr: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    return torch.optim.Adagrad(params, lr=lr, eps=KERAS_EPS, weight_decay=weight_decay)


@OPTIMIZERS.register("adamax")
def adamax(params: Params, *, lr: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    return torch.optim.Adamax(params, lr=lr, betas=BETAS, eps=KERAS_EPS, weight_decay=weight_decay)


@OPTIMIZERS.register("nadam")
def nadam(params: Params, *, lr: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    return torch.optim.NAdam(params, lr=lr, betas=BETAS, eps=KERAS_EPS, weight_decay=weight_decay,
                             momentum_decay=0.004)


@OPTIMIZERS.register("rmsprop")
def rmsprop(params: Params, *, lr: float, weight_decay: float = 0.0, momentum: float = 0.0) -> torch.optim.Optimizer:
    return torch.optim.RMSprop(params, lr=lr, alpha=0.9, eps=KERAS_EPS, momentum=momentum, weight_decay=weight_decay)


def param_groups(backbone: Iterable[torch.nn.Parameter], head: Iterable[torch.nn.Parameter], lr: float,
                 backbone_lr_scale: float = 1.0) -> list[torch.nn.Parameter] | list[dict[str, Any]]:
    """The parameters that require gradients: `backbone` at lr * backbone_lr_scale and
    `head` at lr (one plain list when the scale is 1)."""
    body, top = [p for p in backbone if p.requires_grad], [p for p in head if p.requires_grad]
    if backbone_lr_scale == 1.0 or not top:
        return body + top
    groups = [{"params": body, "lr": lr * backbone_lr_scale}, {"params": top, "lr": lr}]
    return [g for g in groups if g["params"]]


@dataclass(frozen=True)
class Optimization:
    """Everything `LitClassifier.configure_optimizers` needs, with the names resolved.

    `optimizer`: params -> optimizer, its settings bound; `scheduler`: (optimizer, max_epochs)
    -> a scheduler stepped with the validation loss each epoch (`train.schedulers`), or None.
    """

    optimizer: Callable[[Params], torch.optim.Optimizer]
    scheduler: Callable[[torch.optim.Optimizer, int], Any]  # -> an object with step(val_loss), or None
    lr: float
    backbone_lr_scale: float = 1.0
    warmup_epochs: float = 0.0

    def configure(self, backbone: list[torch.nn.Parameter], head: list[torch.nn.Parameter],
                  max_epochs: int) -> tuple[torch.optim.Optimizer, Any]:
        """(optimizer, scheduler or None) over the parameters that require gradients."""
        opt = self.optimizer(param_groups(backbone, head, self.lr, self.backbone_lr_scale))
        return opt, self.scheduler(opt, max_epochs)
