"""End to end on the embedded synthetic data: tiny images, few steps, real files."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from dermkd.io import read_json
from dermkd.pipeline import load_data, run_pipeline
from dermkd.profiles import build_config
from dermkd.train.stage import run_stage

DERMKD = str(Path(sys.executable).with_name("dermkd"))


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    cfg = build_config("tiny", {"out_dir": str(out), "name": "e2e", "train": {"epochs": 2}})
    results = run_pipeline(cfg)
    return out / "e2e", results


def test_pipeline_writes_complete_run_records(pipeline_run):
    base, results = pipeline_run
    assert [r.name for r in results] == ["teacher", "baseline-student", "kd-student"]
    for stage in ("teacher", "baseline-student", "kd-student"):
        d = base / stage
        for f in ("config.yaml", "split.csv", "metrics.json", "history.csv", "env.json",
                  "checkpoints/best.ckpt", "checkpoints/last.ckpt"):
            assert (d / f).is_file(), f"{stage}/{f} missing"
        assert not list(d.rglob("*.tmp")), "temporary files left behind"
        with (d / "history.csv").open() as fh:
            rows = list(csv.DictReader(fh))
        assert [int(r["epoch"]) for r in rows] == [0, 1]
        assert all(float(r["val_loss"]) > 0 for r in rows)
        env = read_json(d / "env.json")
        assert env["status"] == "done" and env["seed"] == 0
        assert len(env["data"]["fingerprint"]) == 64 and env["versions"]["torch"]
        m = read_json(d / "metrics.json")
        assert m["n"] == env["data"]["counts"]["test"] == 9
        assert set(m["macro"]) >= {"sensitivity", "specificity", "npv", "fdr", "ovr_accuracy", "mcc"}
        cfg = yaml.safe_load((d / "config.yaml").read_text())
        assert cfg["data"]["image_size"] == 32
    assert (base / "comparison.csv").is_file() and (base / "comparison.md").is_file()
    # every stage used the same split
    splits = {(base / s / "split.csv").read_text() for s in ("teacher", "baseline-student", "kd-student")}
    assert len(splits) == 1 and splits == {(base / "split.csv").read_text()}


def test_kd_run_records_its_teacher(pipeline_run):
    base, _ = pipeline_run
    teacher_ckpt = base / "teacher" / "checkpoints" / "best.ckpt"
    rec = read_json(base / "kd-student" / "env.json")["teacher"]
    assert rec["sha256"] == hashlib.sha256(teacher_ckpt.read_bytes()).hexdigest()
    assert rec["model"] == "resnet18"
    assert rec["test_metrics"]["top1_accuracy"] == read_json(base / "teacher" / "metrics.json")["top1_accuracy"]
    assert read_json(base / "baseline-student" / "env.json")["teacher"] is None


def test_evaluate_reproduces_saved_metrics(pipeline_run, tmp_path):
    base, _ = pipeline_run
    out = tmp_path / "eval.json"
    proc = subprocess.run([DERMKD, "evaluate", str(base / "kd-student"), "--output", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    got, saved = read_json(out), read_json(base / "kd-student" / "metrics.json")
    assert got["n"] == saved["n"]
    assert got["top1_accuracy"] == pytest.approx(saved["top1_accuracy"], abs=1e-6)
    assert got["macro"]["f1"] == pytest.approx(saved["macro"]["f1"], abs=1e-6)


def test_finished_stages_are_reused(pipeline_run):
    base, _ = pipeline_run
    before = {p: p.stat().st_mtime_ns for p in base.rglob("*.ckpt")}
    cfg = build_config("tiny", {"out_dir": str(base.parent), "name": "e2e", "train": {"epochs": 2}})
    results = run_pipeline(cfg)
    assert all(r.reused for r in results)
    assert before == {p: p.stat().st_mtime_ns for p in base.rglob("*.ckpt")}


def test_interrupted_stage_resumes_from_last_checkpoint(tmp_path):
    cfg = build_config("tiny", {"out_dir": str(tmp_path), "name": "r", "kd": {"strategy": "baseline"}})
    data = load_data(cfg)
    run_stage(cfg, data, tmp_path / "r")
    first = (tmp_path / "r" / "history.csv").read_text().splitlines()[1]
    (tmp_path / "r" / "metrics.json").unlink()  # as if killed before the end
    cfg2 = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=2))
    run_stage(cfg2, data, tmp_path / "r")
    lines = (tmp_path / "r" / "history.csv").read_text().splitlines()
    assert len(lines) == 3 and lines[1] == first  # epoch 0 kept, epoch 1 added, not restarted


def test_same_seed_same_result(tmp_path):
    metrics = []
    for name in ("a", "b"):
        cfg = build_config("tiny", {"out_dir": str(tmp_path), "name": name, "kd": {"strategy": "baseline"}})
        metrics.append(run_stage(cfg, load_data(cfg), tmp_path / name).metrics)
    assert metrics[0]["confusion_matrix"] == metrics[1]["confusion_matrix"]
    assert (tmp_path / "a" / "history.csv").read_text().split("\n")[1].rsplit(",", 1)[0] == \
        (tmp_path / "b" / "history.csv").read_text().split("\n")[1].rsplit(",", 1)[0]


def test_bf16_mixed_kd_run_trains_fp32_weights(tmp_path):
    """--precision bf16-mixed: a live-teacher KD run trains under autocast, keeps fp32
    weights in its checkpoint and records the precision in its config."""
    cfg = build_config("tiny", {"out_dir": str(tmp_path), "name": "bf16", "train": {"precision": "bf16-mixed"}})
    data = load_data(cfg)
    teacher = run_stage(dataclasses.replace(cfg, kd=dataclasses.replace(cfg.kd, strategy="baseline")), data,
                        tmp_path / "teacher").run_dir
    result = run_stage(cfg, data, tmp_path / "kd", teacher_source=teacher)
    with (tmp_path / "kd" / "predictions.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert result.metrics["n"] == len(rows) == len(data.labels["test"])
    assert result.metrics["top1_accuracy"] == pytest.approx(sum(r["label"] == r["pred"] for r in rows) / len(rows))
    assert yaml.safe_load((tmp_path / "kd" / "config.yaml").read_text())["train"]["precision"] == "bf16-mixed"
    state = torch.load(tmp_path / "kd" / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=False)
    weights = [v for v in _tensors(state) if v.is_floating_point()]
    assert weights and all(v.dtype == torch.float32 for v in weights)


def _tensors(obj):
    """Every tensor in a nested checkpoint structure."""
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _tensors(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _tensors(v)


def test_student_learns_the_embedded_data(tmp_path):
    """The embedded data is learnable: a short DSC run is far above chance (1/9)."""
    cfg = build_config("tiny", {
        "out_dir": str(tmp_path), "name": "learn", "kd": {"strategy": "baseline"},
        "data": {"synthetic_per_class": 40}, "train": {"epochs": 8, "batch_size": 32},
    })
    m = run_stage(cfg, load_data(cfg), tmp_path / "learn").metrics
    assert m["top1_accuracy"] > 0.4, m["top1_accuracy"]
    assert m["balanced_accuracy"] > 0.4


def test_fresh_run_discards_the_earlier_attempt(tmp_path):
    cfg = build_config("tiny", {"out_dir": str(tmp_path), "name": "f", "kd": {"strategy": "baseline"}})
    data = load_data(cfg)
    run_stage(cfg, data, tmp_path / "f")
    stale = tmp_path / "f" / "checkpoints" / "stale.ckpt"
    stale.write_bytes(b"old")
    result = run_stage(cfg, data, tmp_path / "f", resume=False)
    assert not result.reused and not stale.exists()
    assert len((tmp_path / "f" / "history.csv").read_text().splitlines()) == 2  # header + 1 epoch


def test_a_resumed_job_keeps_its_first_split(tmp_path):
    from dermkd.pipeline import pin_split

    cfg = build_config("tiny")
    csv_path = tmp_path / "split.csv"
    assert pin_split(cfg, csv_path, resume=True).data.split_file is None  # nothing to keep yet
    csv_path.write_text("path,label,split\n")
    assert pin_split(cfg, csv_path, resume=True).data.split_file == str(csv_path)
    assert pin_split(cfg, csv_path, resume=False).data.split_file is None  # --fresh: a new split
    explicit = build_config("tiny", {"data": {"split_file": "mine.csv"}})
    assert pin_split(explicit, csv_path, resume=True).data.split_file == "mine.csv"
