"""The six optimizers of the paper's Table 3, with Keras-matching defaults.

All use lr 0.01 in the paper. Keras' `epsilon=None` means 1e-7, while PyTorch's defaults
are 1e-8 (1e-10 for Adagrad); we use Keras' 1e-7 everywhere to match the paper's setup.
Keras Nadam's `schedule_decay=0.004` is PyTorch NAdam's `momentum_decay=0.004`. RMSprop's
"rho 0.9" is PyTorch's `alpha`; its "beta1 0.9" is read as momentum, 0 by default
(`OptimConfig.momentum`, which SGD shares; the paper's SGD has none).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from dermkd.config import OptimConfig
from dermkd.registry import Registry

KERAS_EPS = 1e-7

OptimizerFactory = Callable[[list[torch.nn.Parameter], OptimConfig], torch.optim.Optimizer]

OPTIMIZERS: Registry[OptimizerFactory] = Registry("optimizer")


@OPTIMIZERS.register("adam")
def adam(params, c: OptimConfig):
    return torch.optim.Adam(params, lr=c.lr, betas=(0.9, 0.999), eps=KERAS_EPS, weight_decay=c.weight_decay, amsgrad=False)


@OPTIMIZERS.register("sgd")
def sgd(params, c: OptimConfig):
    return torch.optim.SGD(params, lr=c.lr, momentum=c.momentum, nesterov=False, weight_decay=c.weight_decay)


@OPTIMIZERS.register("adagrad")
def adagrad(params, c: OptimConfig):
    return torch.optim.Adagrad(params, lr=c.lr, eps=KERAS_EPS, weight_decay=c.weight_decay)


@OPTIMIZERS.register("adamax")
def adamax(params, c: OptimConfig):
    return torch.optim.Adamax(params, lr=c.lr, betas=(0.9, 0.999), eps=KERAS_EPS, weight_decay=c.weight_decay)


@OPTIMIZERS.register("nadam")
def nadam(params, c: OptimConfig):
    return torch.optim.NAdam(params, lr=c.lr, betas=(0.9, 0.999), eps=KERAS_EPS, weight_decay=c.weight_decay,
                             momentum_decay=0.004)


@OPTIMIZERS.register("rmsprop")
def rmsprop(params, c: OptimConfig):
    return torch.optim.RMSprop(params, lr=c.lr, alpha=0.9, eps=KERAS_EPS, momentum=c.momentum, weight_decay=c.weight_decay)


def build_optimizer(params: Iterable[torch.nn.Parameter], cfg: OptimConfig,
                    head: Iterable[torch.nn.Parameter] = ()) -> torch.optim.Optimizer:
    """The configured optimizer over the parameters that require gradients: `params` at
    lr * backbone_lr_scale and `head` at lr (one group when the scale is 1)."""
    body, top = [p for p in params if p.requires_grad], [p for p in head if p.requires_grad]
    if cfg.backbone_lr_scale == 1.0 or not top:
        return OPTIMIZERS.get(cfg.name)(body + top, cfg)
    groups = [{"params": body, "lr": cfg.lr * cfg.backbone_lr_scale}, {"params": top, "lr": cfg.lr}]
    return OPTIMIZERS.get(cfg.name)([g for g in groups if g["params"]], cfg)
