"""Grad-CAM overlays (the `grad-cam` package: `pip install 'dermkd[explain]'`), one figure
per image with the models side by side: the image, then each model's heat map over it,
titled with its top class and probability. The layer each model is read at comes from the
model registry (`ModelEntry.cam_layer`), never from a guess at run time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dermkd.data.images import decode_one
from dermkd.errors import DermkdError
from dermkd.io import atomic_open
from dermkd.models import MODELS
from dermkd.models.classifier import Classifier
from dermkd.rundir import RunDir
from dermkd.train.checkpoints import load_model

log = logging.getLogger(__name__)


@dataclass
class Explained:
    label: str  # the model's name in the figure
    model: Classifier
    spec: dict


def teacher_checkpoint(run: Path, recorded: str) -> Path | None:
    """The teacher checkpoint a run recorded: absolute (dermkd records it so), or, in older
    runs, relative to the folder the run was started from, one of the run's ancestors."""
    path = Path(recorded)
    if path.is_absolute():
        return path if path.is_file() else None
    return next((a / path for a in Path(run).resolve().parents if (a / path).is_file()), None)


def models_to_explain(model: Path, compare: list[Path]) -> list[Explained]:
    """The model, the teacher it was distilled from (when its run recorded one that still
    exists), and any `compare` runs or checkpoints."""
    teacher = (RunDir(model).read_env().get("teacher") or {}) if RunDir(model).env.is_file() else {}
    sources = [(model, "explained")]
    if teacher.get("checkpoint"):
        found = teacher_checkpoint(model, teacher["checkpoint"])
        if found is None:
            log.warning("the teacher %s recorded by %s is not there any more: explaining the model alone",
                        teacher["checkpoint"], model)
        else:
            sources.append((found, "teacher"))
    sources += [(c, c.stem) for c in compare]
    out = []
    for path, role in sources:
        net, spec = load_model(path)
        out.append(Explained(f"{spec['name']} ({role})", net, spec))
    return out


def heat_map(e: Explained, image: Path) -> tuple[np.ndarray, np.ndarray, int, float]:
    """(image (S, S, 3) float in [0, 1], Grad-CAM map (S, S) in [0, 1], top class, its probability)."""
    cam_lib = _grad_cam()
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    layer_name = MODELS.get(e.spec["name"]).cam_layer
    if layer_name is None:
        raise DermkdError(f"model {e.spec['name']} has no Grad-CAM layer in the registry")
    decoded = decode_one(image, e.spec["image_size"])
    if decoded.error:
        raise DermkdError(f"{image}: {decoded.error}")
    rgb = decoded.pixels.astype(np.float32) / 255.0
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].contiguous()
    with torch.no_grad():
        probs = torch.softmax(e.model.eval()(x), 1)[0]
    top = int(probs.argmax())
    with cam_lib.GradCAM(model=e.model, target_layers=[e.model.net.get_submodule(layer_name)]) as cam:
        grey = cam(input_tensor=x, targets=[ClassifierOutputTarget(top)])[0]
    return rgb, grey, top, float(probs[top])


def _grad_cam():
    try:
        import pytorch_grad_cam
    except ImportError:
        raise DermkdError("grad-cam is not installed: pip install 'dermkd[explain]'") from None
    return pytorch_grad_cam


def explain_image(models: list[Explained], image: Path, out: Path) -> Path:
    """One PNG: the image, then each model's overlay."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    show_cam_on_image = _grad_cam().utils.image.show_cam_on_image
    fig, axes = plt.subplots(1, len(models) + 1, figsize=(3 * (len(models) + 1), 3.3))
    for i, e in enumerate(models):
        rgb, grey, top, p = heat_map(e, image)
        if i == 0:
            axes[0].imshow(rgb)
            axes[0].set_title(image.name, fontsize=8)
        axes[i + 1].imshow(show_cam_on_image(rgb, grey, use_rgb=True))
        axes[i + 1].set_title(f"{e.label}\n{e.spec['classes'][top]} {p:.2f}", fontsize=8)
    for ax in axes:
        ax.axis("off")
    fig.suptitle("Grad-CAM; research use only, not a medical device", fontsize=8)
    with atomic_open(out, "wb") as fh:
        fig.savefig(fh, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return out
