"""Training samplers whose order depends only on (seed, epoch).

A run resumed from its last checkpoint must draw the epochs it has left exactly as an
uninterrupted run would. Lightning calls `set_epoch` on the training sampler before every
epoch, so each epoch's order (a permutation, or class-weighted draws with replacement)
and the DataLoader's worker base seed come from generators seeded with (seed, epoch),
not from the state that earlier epochs left behind.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


def epoch_seed(seed: int, epoch: int) -> int:
    """A distinct 63-bit seed per (seed, epoch), from the run's one seed."""
    return (seed * 1_000_003 + epoch * 7_919 + 17) % (2**63 - 1)


class EpochSampler(Sampler[int]):
    """`n` indices per epoch: a permutation, or `weights`-proportional draws with replacement."""

    def __init__(self, n: int, seed: int, weights: torch.Tensor | None = None) -> None:
        self.n, self.seed, self.weights = n, seed, weights
        self.generator = torch.Generator()  # the sampler's own draws
        self.loader_generator = torch.Generator()  # the DataLoader's (worker base seeds)
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.loader_generator.manual_seed(epoch_seed(self.seed, epoch) + 1)

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        self.generator.manual_seed(epoch_seed(self.seed, self.epoch))
        if self.weights is None:
            order = torch.randperm(self.n, generator=self.generator)
        else:
            order = torch.multinomial(self.weights, self.n, replacement=True, generator=self.generator)
        return iter(order.tolist())
