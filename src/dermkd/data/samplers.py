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
    """`n` indices per epoch: a permutation, or `weights`-proportional draws with replacement.

    Under data-parallel training (`world` ranks) rank r takes positions r, r + world, ... of
    the same order, padded by wrapping around to equal lengths: the ranks' batches i
    together are the single-process order's batch i of world x the per-rank batch size."""

    def __init__(self, n: int, seed: int, weights: torch.Tensor | None = None, rank: int = 0, world: int = 1) -> None:
        self.n, self.seed, self.weights, self.rank, self.world = n, seed, weights, rank, world
        self.generator = torch.Generator()  # the sampler's own draws
        self.loader_generator = torch.Generator()  # the DataLoader's (worker base seeds)
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.loader_generator.manual_seed(epoch_seed(self.seed, epoch) + 1)

    def __len__(self) -> int:
        return -(-self.n // self.world)

    def __iter__(self) -> Iterator[int]:
        self.generator.manual_seed(epoch_seed(self.seed, self.epoch))
        if self.weights is None:
            order = torch.randperm(self.n, generator=self.generator)
        else:
            order = torch.multinomial(self.weights, self.n, replacement=True, generator=self.generator)
        if self.world > 1:
            order = torch.cat([order, order[:len(self) * self.world - self.n]])[self.rank::self.world]
        return iter(order.tolist())
