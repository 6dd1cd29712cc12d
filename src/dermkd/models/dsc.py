"""The DSC student of the paper's Table 2, read as PAPER-NOTES resolves it.

    input (3, S, S)                      S a multiple of 8 (224 in the paper)
    conv 2x2 same 64, ReLU      -> (64, S, S)
    conv 2x2 same 64, ReLU      -> (64, S, S)
    maxpool 2/2                 -> (64, S/2, S/2)
    conv 2x2 same 32, ReLU  x2  -> (32, S/2, S/2)
    batchnorm (Keras momentum .99 = PyTorch .01, eps 1e-3)
    maxpool 2/2                 -> (32, S/4, S/4)
    conv 2x2 same 32, ReLU  x2  -> (32, S/4, S/4)
    maxpool 2/2                 -> (32, S/8, S/8)
    flatten                     -> 32 * (S/8)^2   (25088 at 224)
    dense 2048, ReLU
    dense 1024, batchnorm, ReLU, dropout .4
    dense 1024, ReLU
    dense num_classes (logits)

The paper does not state the conv activations; ReLU is used after each conv. Keras'
"same" padding with an even (2x2) kernel pads one pixel on the right and bottom only;
`ZeroPad2d((0, 1, 0, 1))` reproduces that. About 54.6M parameters at 224 px, 51.4M of
them in the first dense layer.
"""

from __future__ import annotations

from typing import Literal

from torch import nn

from dermkd.errors import DermkdError

KERAS_BN_MOMENTUM = 0.01  # Keras momentum 0.99 is PyTorch momentum 1 - 0.99
KERAS_BN_EPS = 1e-3


def conv2x2_same(c_in: int, c_out: int) -> nn.Sequential:
    """2x2 conv, stride 1, Keras 'same' padding (right/bottom), then ReLU."""
    return nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(c_in, c_out, 2), nn.ReLU(inplace=True))


class DSC(nn.Module):
    """`pool="flatten"` is the paper's; `pool="gap"` (registered as dsc_gap) replaces the
    32*(S/8)^2-wide flatten with global average pooling, so the first dense layer has 32
    inputs instead of 25088 and the model has about 3.2M parameters at any input size."""

    def __init__(self, num_classes: int = 9, image_size: int = 224, dropout: float = 0.4,
                 pool: Literal["flatten", "gap"] = "flatten") -> None:
        super().__init__()
        if image_size < 8 or image_size % 8:
            raise DermkdError(f"dsc needs an input size that is a positive multiple of 8, got {image_size}")
        self.features = nn.Sequential(
            conv2x2_same(3, 64),
            conv2x2_same(64, 64),
            nn.MaxPool2d(2),
            conv2x2_same(64, 32),
            conv2x2_same(32, 32),
            nn.BatchNorm2d(32, eps=KERAS_BN_EPS, momentum=KERAS_BN_MOMENTUM),
            nn.MaxPool2d(2),
            conv2x2_same(32, 32),
            conv2x2_same(32, 32),
            nn.MaxPool2d(2),
            *([nn.AdaptiveAvgPool2d(1)] if pool == "gap" else []),
            nn.Flatten(),
        )
        flat = 32 if pool == "gap" else 32 * (image_size // 8) ** 2
        self.head = nn.Sequential(
            nn.Linear(flat, 2048),
            nn.ReLU(inplace=True),
            nn.Linear(2048, 1024),
            nn.BatchNorm1d(1024, eps=KERAS_BN_EPS, momentum=KERAS_BN_MOMENTUM),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(1024, 1024),
            nn.ReLU(inplace=True),
            nn.Linear(1024, num_classes),
        )

    def forward(self, x):  # (B, 3, S, S) normalised -> (B, num_classes)
        return self.head(self.features(x))
