"""Data-parallel training (Lightning DDP, gloo on CPU): the ranks' shards of the one
(seed, epoch) order, and 2 processes against 1 on tiny data, the same test metrics
within a stated tolerance (on CPU each rank's BatchNorm sees its own half-batch)."""

from __future__ import annotations

import json

import pytest

from dermkd.config import TrainConfig
from dermkd.data.samplers import EpochSampler
from dermkd.errors import DermkdError


@pytest.mark.parametrize("n", [20, 21])
def test_the_ranks_batches_together_are_the_single_process_batches(n):
    single = list(EpochSampler(n, seed=3))
    ranks = [EpochSampler(n, seed=3, rank=r, world=2) for r in range(2)]
    for s in ranks:
        s.set_epoch(0)
    shards = [list(s) for s in ranks]
    assert len(shards[0]) == len(shards[1]) == len(ranks[0]) == -(-n // 2)
    padded = single + single[:2 * len(shards[0]) - n]
    b = 4  # per-rank batch; the single process's batch is 2 b
    for i in range(0, len(shards[0]), b):
        assert sorted(shards[0][i:i + b] + shards[1][i:i + b]) == sorted(padded[2 * i:2 * i + 2 * b])


def test_more_than_one_device_needs_ddp():
    with pytest.raises(DermkdError, match="devices > 1 needs --parallel ddp"):
        TrainConfig(devices=2).validate()
    TrainConfig(devices=2, parallel="ddp").validate()


def test_two_processes_match_one_within_tolerance(run_cli):
    common = ("--profile", "tiny", "--epochs", "3", "--no-augment", "--threads", "1", "--no-progress")
    code, _, err, cwd = run_cli("train", *common, "--name", "one", "--batch-size", "16")
    assert code == 0, err
    code, _, err, _ = run_cli("train", *common, "--name", "two", "--batch-size", "8", "--devices", "2",
                              "--parallel", "ddp")
    assert code == 0, err
    one, two = (json.loads((cwd / "runs" / r / "metrics.json").read_text()) for r in ("one", "two"))
    hist = {r: (cwd / "runs" / r / "history.csv").read_text().splitlines() for r in ("one", "two")}
    assert len(hist["one"]) == len(hist["two"]) == 4  # header + one row per epoch, written once (rank 0)
    assert two["n"] == one["n"]  # the whole test split, scored once, not per rank
    # Tolerance: the same images in the same steps (effective batch 16 both), but BatchNorm
    # statistics over 8 images per rank instead of 16
    assert two["log_loss"] == pytest.approx(one["log_loss"], abs=0.05)
    train = {r: [float(line.split(",")[1]) for line in hist[r][1:]] for r in hist}
    assert train["two"] == pytest.approx(train["one"], rel=0.05)
    env = json.loads((cwd / "runs" / "two" / "env.json").read_text())
    assert env["parallel"] == {"devices": 2, "parallel": "ddp", "batch_per_device": 8, "effective_batch": 16}


def test_kd_on_two_processes_with_a_live_teacher_and_with_the_logit_store(run_cli):
    """The frozen teacher stays outside the DDP-wrapped module (not wrapped, eval mode on
    every rank); the store is memory-mapped read-only by each rank."""
    common = ("--profile", "tiny", "--epochs", "2", "--threads", "1", "--no-progress")
    code, _, err, cwd = run_cli("train", *common, "--model", "resnet18", "--name", "teacher")
    assert code == 0, err
    for name, extra in (("live", ("--parallel", "ddp")), ("store", ("--parallel", "ddp_fork", "--teacher-cache", "2"))):
        code, _, err, _ = run_cli("distill", *common, "--teacher", cwd / "runs" / "teacher", "--name", name,
                                  "--batch-size", "8", "--devices", "2", *extra)
        assert code == 0, err
        env = json.loads((cwd / "runs" / name / "env.json").read_text())
        assert env["status"] == "done" and env["parallel"]["effective_batch"] == 16
        assert (env["teacher_store"] is not None) == (name == "store")
        history = (cwd / "runs" / name / "history.csv").read_text().splitlines()
        assert len(history) == 3 and history[1].split(",")[3] != ""  # the KD term was logged


def test_a_study_file_makes_every_run_data_parallel(tmp_path):
    from dermkd.study.grid import load_study
    from test_study import write_study

    study = load_study(write_study(tmp_path, {"a": {"strategy": ["baseline", "standard"]}},
                                   train={"devices": 2, "parallel": "ddp"}))
    for spec in study.specs():
        train = study.run_config(spec, str(tmp_path)).train
        assert (train.devices, train.parallel) == (2, "ddp")
