"""Training augmentation with explicit parameters: every view is a row of numbers.

A view of a (3, H, W) uint8 image is fully described by `PARAMS` (the crop box, two flips,
a rotation angle and four colour factors), sampled by `sample_views` and replayed
exactly by `apply_view`. Live training samples a fresh view per image per epoch
(`TrainAugment`); the teacher-logit store (`distill.logit_store`) samples K views per
image once, saves their parameters beside the teacher's logits, and replays the very
same views to the student, as in Fast Knowledge Distillation (Shen & Xing 2021).

The parameters are `config.AugmentConfig` (the `augment` section of a run's config). The
default distributions are those of the earlier `v2.Compose` pipeline (RandomResizedCrop
scale 0.7-1, ratio 0.9-1.1, both flips, rotation +-20 deg, ColorJitter 0.15/0.15/0.1/0.02),
except that the colour operations run in a fixed order rather than a random one.
"""

from __future__ import annotations

import math

import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from dermkd.config import AugmentConfig

PARAMS = ("top", "left", "height", "width", "hflip", "vflip", "angle",
          "brightness", "contrast", "saturation", "hue")


DEFAULT_AUGMENT = AugmentConfig()


def _uniform(n: int, low: float, high: float, generator: torch.Generator | None) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator, dtype=torch.float64)


def _crop_boxes(n: int, height: int, width: int, cfg: AugmentConfig,
                generator: torch.Generator | None) -> torch.Tensor:
    """(n, 4) top, left, h, w: RandomResizedCrop's rule (10 tries, then the central crop)."""
    boxes = torch.empty(n, 4, dtype=torch.float64)
    area = height * width
    log_ratio = (math.log(cfg.ratio[0]), math.log(cfg.ratio[1]))
    for i in range(n):
        for _ in range(10):
            target = area * _uniform(1, *cfg.scale, generator).item()
            aspect = math.exp(_uniform(1, *log_ratio, generator).item())
            w, h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
            if 0 < w <= width and 0 < h <= height:
                top = int(torch.randint(0, height - h + 1, (1,), generator=generator))
                left = int(torch.randint(0, width - w + 1, (1,), generator=generator))
                boxes[i] = torch.tensor([top, left, h, w], dtype=torch.float64)
                break
        else:
            side = min(height, width)
            boxes[i] = torch.tensor([(height - side) // 2, (width - side) // 2, side, side], dtype=torch.float64)
    return boxes


def sample_views(n: int, height: int, width: int, cfg: AugmentConfig = DEFAULT_AUGMENT,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """(n, len(PARAMS)) float32 view parameters; `generator=None` draws from torch's global RNG."""
    flips = (torch.rand(n, 2, generator=generator, dtype=torch.float64) < cfg.flip_p).double()
    cols = [
        _crop_boxes(n, height, width, cfg, generator),
        flips,
        _uniform(n, -cfg.degrees, cfg.degrees, generator)[:, None],
        _uniform(n, 1 - cfg.brightness, 1 + cfg.brightness, generator)[:, None],
        _uniform(n, 1 - cfg.contrast, 1 + cfg.contrast, generator)[:, None],
        _uniform(n, 1 - cfg.saturation, 1 + cfg.saturation, generator)[:, None],
        _uniform(n, -cfg.hue, cfg.hue, generator)[:, None],
    ]
    return torch.cat(cols, dim=1).float()


def apply_view(image: torch.Tensor, params: torch.Tensor, size: int) -> torch.Tensor:
    """(3, H, W) uint8 + one row of `sample_views` -> (3, size, size) float32 in [0, 1]."""
    top, left, h, w, hflip, vflip, angle, bright, contrast, sat, hue = params.tolist()
    x = F.resized_crop(image, int(top), int(left), int(h), int(w), [size, size], antialias=True)
    if hflip:
        x = F.horizontal_flip(x)
    if vflip:
        x = F.vertical_flip(x)
    x = F.rotate(x, angle)
    x = F.adjust_brightness(x, bright)
    x = F.adjust_contrast(x, contrast)
    x = F.adjust_saturation(x, sat)
    x = F.adjust_hue(x, hue)
    return F.to_dtype(x, torch.float32, scale=True)


class TrainAugment(v2.Transform):
    """A fresh random view per call (global RNG, so DataLoader worker seeding applies)."""

    def __init__(self, size: int, cfg: AugmentConfig = DEFAULT_AUGMENT) -> None:
        super().__init__()
        self.size, self.cfg = size, cfg

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return apply_view(image, sample_views(1, *image.shape[-2:], self.cfg)[0], self.size)
