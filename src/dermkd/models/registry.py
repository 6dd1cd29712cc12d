"""The model registry: `create_model(name, num_classes, ...)` is the one way in.

Students and teachers are registered under one name space, in the spirit of timm's
`register_model`: an entry is a factory `(num_classes, image_size) -> nn.Module`, and
`create_model` adds pretrained weights, partial freezing and the `Classifier` wrapper.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import timm
from torch import nn

from dermkd.errors import DermkdError
from dermkd.models.classifier import Classifier
from dermkd.models.dsc import DSC
from dermkd.models.freezing import frozen_modules
from dermkd.models.weights import create_timm_pretrained, load_weights_file
from dermkd.registry import Registry


@dataclass(frozen=True)
class ModelEntry:
    build: Callable[[int, int], nn.Module]  # (num_classes, image_size) -> random weights
    classifier: str | None = None  # name of the classification layer; None = timm's cfg
    timm_name: str | None = None  # set for timm models: enables hub weights and stages


MODELS: Registry[ModelEntry] = Registry("model")

MODELS.register("dsc")(ModelEntry(build=lambda c, s: DSC(num_classes=c, image_size=s), classifier="head.8"))
MODELS.register("dsc_gap")(ModelEntry(build=lambda c, s: DSC(num_classes=c, image_size=s, pool="gap"),
                                      classifier="head.8"))


def _timm_entry(timm_name: str) -> ModelEntry:
    return ModelEntry(build=lambda c, s: timm.create_model(timm_name, pretrained=False, num_classes=c),
                      timm_name=timm_name)


# Teachers (and compact students) from timm; all take the same input size.
for _name in ("resnet50", "resnet18", "densenet121", "efficientnet_b0", "mobilenetv3_large_100", "vgg16_bn",
              "mobilenetv3_small_100"):
    MODELS.register(_name)(_timm_entry(_name))


def create_model(
    name: str,
    num_classes: int,
    *,
    image_size: int = 224,
    pretrained: Literal["none", "imagenet"] = "none",
    pretrained_file: str | Path | None = None,
    trainable_stages: int | Literal["all"] = "all",
    bn_momentum: float | None = None,
) -> Classifier:
    """Build a registered model for `num_classes` classes, inputs in [0, 1].

    `pretrained_file` wins over `pretrained`; "imagenet" downloads through timm's hub.
    `bn_momentum`, if given, replaces the running-stat momentum of every BatchNorm layer.
    """
    entry = MODELS.get(name)
    if num_classes < 2:
        raise DermkdError(f"num_classes must be >= 2, got {num_classes}")
    if entry.timm_name is None and (pretrained != "none" or trainable_stages != "all"):
        if pretrained_file is None and pretrained != "none":
            raise DermkdError(f"{name} has no ImageNet weights; use --pretrained none or --pretrained-file")
        if trainable_stages != "all":
            raise DermkdError(f"{name} has no stage list; trainable_stages must be 'all'")
    if pretrained == "imagenet" and pretrained_file is None and entry.timm_name is not None:
        net = create_timm_pretrained(entry.timm_name, num_classes)
    else:
        net = entry.build(num_classes, image_size)
        if pretrained_file is not None:
            classifier = entry.classifier or net.pretrained_cfg["classifier"]
            load_weights_file(net, pretrained_file, classifier)
    if bn_momentum is not None:
        for module in net.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.momentum = bn_momentum
    if entry.timm_name is not None:
        cfg = net.pretrained_cfg
        model = Classifier(net, name, num_classes, mean=tuple(cfg["mean"]), std=tuple(cfg["std"]))
    else:
        model = Classifier(net, name, num_classes)
    model.freeze(frozen_modules(net, trainable_stages))
    return model
