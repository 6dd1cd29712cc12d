"""Class-imbalance options: class-weighted losses and the balanced sampler."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from dermkd.data.datamodule import DermDataModule
from dermkd.distill.losses import OBJECTIVES, squared_hinge
from dermkd.pipeline import load_data
from dermkd.profiles import build_config
from dermkd.train.stage import balanced_class_weights, run_stage


def test_balanced_weights_are_n_over_c_times_count():
    data = SimpleNamespace(labels={"train": torch.tensor([0, 0, 0, 1])}, classes=["a", "b", "c"])
    # N = 4 over the C = 2 classes present: 4 / (2 * 3), 4 / (2 * 1); absent class c gets 0
    assert balanced_class_weights(data) == pytest.approx([2 / 3, 2.0, 0.0])


def test_weighted_losses_are_weighted_means():
    torch.manual_seed(0)
    z, y = torch.randn(5, 3), torch.tensor([0, 1, 1, 2, 0])
    w = torch.tensor([1.0, 3.0, 0.5])
    per_ce = F.cross_entropy(z, y, reduction="none")
    expected = (per_ce * w[y]).sum() / w[y].sum()
    assert OBJECTIVES.get("ce")(None, class_weight=w)(z, y).item() == pytest.approx(expected.item(), abs=1e-6)
    t = 2 * F.one_hot(y, 3).float() - 1
    per_hinge = (1 - t * z).clamp(min=0).pow(2).sum(1)
    assert squared_hinge(z, y, w).item() == pytest.approx(((per_hinge * w[y]).sum() / w[y].sum()).item(), abs=1e-6)
    assert squared_hinge(z, y).item() == pytest.approx(per_hinge.mean().item(), abs=1e-6)


def test_balanced_sampler_draws_classes_equally():
    labels = torch.tensor([0] * 90 + [1] * 10)
    data = SimpleNamespace(images={"train": torch.zeros(100, 3, 8, 8, dtype=torch.uint8)},
                           labels={"train": labels}, classes=["a", "b"], image_size=8)
    dm = DermDataModule(data, batch_size=50, augment=None, seed=0, balanced_sampler=True)
    loader = dm.train_dataloader()
    drawn = []
    for epoch in range(20):  # Lightning calls set_epoch before each epoch
        loader.sampler.set_epoch(epoch)
        drawn += [y for _, y in loader]
    share = (torch.cat(drawn) == 1).float().mean().item()
    assert 0.45 < share < 0.55  # 10% of the images, half of the draws
    plain = DermDataModule(data, batch_size=50, augment=None, seed=0)
    assert (torch.cat([y for _, y in plain.train_dataloader()]) == 1).float().mean().item() == pytest.approx(0.1)


@pytest.mark.parametrize("balance", ["loss", "sampler"])
def test_training_with_class_balance_runs(tmp_path, balance):
    cfg = build_config("tiny", {"out_dir": str(tmp_path), "name": balance, "kd": {"strategy": "baseline"},
                                "train": {"class_balance": balance, "limit_train_batches": 2}})
    result = run_stage(cfg, load_data(cfg), tmp_path / balance)
    assert result.metrics["n"] == 9


def test_each_epochs_order_depends_on_seed_and_epoch_only():
    """What makes a resumed run draw exactly what an uninterrupted one draws."""
    from dermkd.data.samplers import EpochSampler

    def order(seed, epoch, sampler=None):
        sampler = sampler or EpochSampler(50, seed)
        sampler.set_epoch(epoch)
        return list(sampler)

    long_lived = EpochSampler(50, 0)
    history = [order(0, e, sampler=long_lived) for e in range(4)]  # one sampler through 4 epochs
    assert [order(0, e) for e in range(4)] == history  # a new sampler (a resumed run) per epoch: the same
    assert len({tuple(o) for o in history}) == 4 and sorted(history[0]) == list(range(50))
    assert order(1, 0) != history[0]
