"""Refit on train + validation: more training images, the last epoch tested."""

from __future__ import annotations

import torch

from dermkd.evaluate.evaluate import evaluate_model
from dermkd.io import read_json
from dermkd.pipeline import load_data
from dermkd.profiles import build_config
from dermkd.train.checkpoints import load_model
from dermkd.train.stage import run_stage


def test_refit_trains_on_validation_images_and_tests_the_last_epoch(tmp_path):
    cfg = build_config("tiny", {"out_dir": str(tmp_path), "train": {"epochs": 2, "refit": True},
                                "kd": {"strategy": "baseline"}})
    data = load_data(cfg)
    result = run_stage(cfg, data, tmp_path / "refit")
    env = read_json(tmp_path / "refit" / "env.json")
    n_train, n_val = len(data.labels["train"]), len(data.labels["val"])
    assert env["data"]["counts"]["train"] == n_train + n_val and env["data"]["counts"]["val"] == n_val
    assert env["data"]["refit"] == "validation images trained on"
    # the split file still says which images are validation images, and the test split is untouched
    split = (tmp_path / "refit" / "split.csv").read_text().splitlines()
    assert sum(line.endswith(",val") for line in split) == n_val
    last, _ = load_model(tmp_path / "refit" / "checkpoints" / "last.ckpt")
    again = evaluate_model(last, data, "test")
    assert again["top1_accuracy"] == result.metrics["top1_accuracy"] and result.metrics["n"] == again["n"]
    assert torch.equal(data.images["train"], load_data(cfg).images["train"])  # the caller's data is not changed
