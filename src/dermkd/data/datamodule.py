"""Lightning DataModule over the in-memory uint8 cache: no epoch re-decodes a JPEG.

With a teacher-logit store, training batches are (images, labels, teacher logits) of the
store's replayed views (see `distill.logit_store`); otherwise (images, labels).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from dermkd.config import AugmentConfig
from dermkd.data.augment import DEFAULT_AUGMENT
from dermkd.data.prepare import PreparedData
from dermkd.data.samplers import EpochSampler
from dermkd.data.transforms import eval_transform, train_transform

if TYPE_CHECKING:
    from dermkd.distill.logit_store import LogitStore


class CachedImages(Dataset):
    """(N, 3, S, S) uint8 images + (N,) labels -> (float image in [0, 1], label)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transform(self.images[i]), self.labels[i]


class DermDataModule(L.LightningDataModule):
    def __init__(self, data: PreparedData, batch_size: int, *, augment: AugmentConfig | None = DEFAULT_AUGMENT,
                 num_workers: int = 0, seed: int = 0, balanced_sampler: bool = False,
                 store: LogitStore | None = None) -> None:
        super().__init__()
        self.data = data
        self.store = store
        self.balanced_sampler = balanced_sampler
        self.batch_size = batch_size
        self.augment = augment
        self.num_workers = num_workers
        self.seed = seed

    def dataset(self, split: str, train: bool = False) -> Dataset:
        if train and self.store is not None:
            from dermkd.distill.logit_store import StoredViews

            return StoredViews(self.data.images[split], self.data.labels[split], self.store, self.data.image_size)
        tf = train_transform(self.data.image_size, self.augment) if train and self.augment else eval_transform()
        return CachedImages(self.data.images[split], self.data.labels[split], tf)

    def loader(self, split: str, train: bool = False) -> DataLoader:
        ds = self.dataset(split, train)
        sampler = None
        if train:  # the order of each epoch depends on (seed, epoch) only: resumable exactly
            weights = None
            if self.balanced_sampler:  # each class equally likely per draw
                labels = self.data.labels[split]
                counts = torch.bincount(labels, minlength=len(self.data.classes)).clamp(min=1)
                weights = (1.0 / counts)[labels].double()
            rank, world = (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)
            sampler = EpochSampler(len(ds), self.seed, weights, rank, world)
        return DataLoader(
            ds,
            batch_size=self.batch_size,
            sampler=sampler,
            # A last batch of one sample breaks BatchNorm in train mode.
            drop_last=train and len(sampler) > self.batch_size,
            num_workers=self.num_workers,
            # workers start afresh each epoch, seeded from the epoch's generator (not persistent:
            # a persistent worker's RNG would carry the earlier epochs' state into a resumed run;
            # the restart costs 0.1-0.2 s an epoch, see bench/datapath.py)
            generator=sampler.loader_generator if sampler is not None else None,
        )

    def train_dataloader(self) -> DataLoader:
        return self.loader("train", train=True)

    def val_dataloader(self) -> DataLoader:
        return self.loader("val")

    def test_dataloader(self) -> DataLoader:
        return self.loader("test")
