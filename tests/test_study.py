"""Studies: grid expansion, and every strategy / optimizer / objective / teacher end to end."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from dermkd.distill.strategies import STRATEGIES
from dermkd.errors import DermkdError
from dermkd.study.grid import load_study, varied_axes
from dermkd.study.runner import run_study
from dermkd.train.optimizers import OPTIMIZERS

CONFIGS = Path(__file__).resolve().parents[1] / "src" / "dermkd" / "configs"
FAST_TEACHERS = ["resnet50", "resnet18", "densenet121", "efficientnet_b0", "mobilenetv3_large_100"]


def write_study(tmp_path: Path, sweeps: dict, **base) -> Path:
    train = {"epochs": 2, "limit_train_batches": 2, **base.pop("train", {})}
    study = {"name": "s", "profile": "tiny", "seeds": [0],
             "base": {"train": train, "kd": {"teacher_epoch": 1}, **base}, "sweeps": sweeps}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


def test_shipped_study_configs_expand():
    cpu = load_study(CONFIGS / "study-cpu.yaml")
    paper = load_study(CONFIGS / "study-paper.yaml")
    assert len(cpu.specs()) == 16 and cpu.profile == "cpu-scratch"  # the committed study: ResNet-50 from scratch
    students = load_study(CONFIGS / "study-students.yaml")
    assert {s.student for s in students.specs()} == {"dsc", "dsc_gap", "mobilenetv3_small_100", "efficientnet_b0",
                                                    "resnet18"}
    assert sorted(s.teacher_cache for s in students.specs() if s.student == "dsc" and s.strategy == "standard") == [0, 8]
    assert [s.strategy for s in students.specs() if "reference" in s.sweeps] == ["baseline"]
    assert len(paper.specs()) == 3 * 19 and paper.profile == "paper"
    assert {s.strategy for s in paper.specs()} == set(STRATEGIES.names())
    assert {s.optimizer for s in paper.specs()} == set(OPTIMIZERS.names())
    assert {s.teacher for s in paper.specs()} >= {"resnet50", "vgg16_bn", "densenet121"}
    assert {s.objective for s in paper.specs()} == {"ce", "svm"}
    for name in ("study-kd-pretrained.yaml", "study-kd-pretrained-shift.yaml"):
        kd = load_study(CONFIGS / name)
        assert kd.teacher_seed == 0 and kd.seeds == [0, 1, 2, 3, 4]
        assert sorted((s.strategy, s.teacher) for s in kd.specs() if s.seed == 0) == [
            ("baseline", "-"), ("standard", "efficientnet_lite0"), ("standard", "efficientnet_lite0+efficientnet_lite1")]
        cfg = kd.base_config()
        assert (cfg.teacher.pretrained, cfg.teacher.trainable_stages, cfg.kd.teacher_cache) == ("imagenet", 3, 8)
    assert load_study(CONFIGS / "study-kd-pretrained-shift.yaml").base_config().data.split_strategy == "source-shift"
    tuned = load_study(CONFIGS / "study-kd-tuned.yaml")  # the grid's choice on validation, over 5 seeds
    kd = tuned.base_config().kd
    assert (kd.alpha, kd.temperature, kd.kd_multiplier, kd.teacher_cache) == (0.5, 2, 1, 8)
    assert sorted(s.run_id for s in tuned.specs() if s.seed == 0) == [
        "baseline-dsc-adamax-ce-s0", "standard-dsc-from-efficientnet_lite0-adamax-ce-a0.5-T2-m1-tc8-s0"]
    assert len(load_study(CONFIGS / "study-kd-grid.yaml").specs()) == 8 and tuned.seeds == [0, 1, 2, 3, 4]
    shift = load_study(CONFIGS / "study-kd-tuned-shift.yaml")  # the same choice, never re-tuned on this split
    assert shift.base_config().data.split_strategy == "source-shift" and shift.base_config().kd == kd
    assert [s.run_id for s in shift.specs()] == [s.run_id for s in tuned.specs()]
    pretrained = load_study(CONFIGS / "study-cpu-pretrained.yaml")  # study-cpu.yaml with the ImageNet teacher
    cfg = pretrained.base_config()
    teacher = (cfg.teacher.name, cfg.teacher.pretrained, cfg.teacher.trainable_stages)
    assert teacher == ("efficientnet_lite0", "imagenet", 3)
    assert (cfg.train.epochs, cfg.kd.teacher_epoch) == (6, 2) and len(pretrained.specs()) == 14
    assert {s.optimizer for s in pretrained.specs()} == set(OPTIMIZERS.names())
    assert {s.strategy for s in pretrained.specs()} == set(STRATEGIES.names())
    students = load_study(CONFIGS / "study-students-pretrained.yaml")  # the Pareto chart with that teacher
    assert sorted((s.student, s.pretrained) for s in students.specs() if "students" in s.sweeps) == [
        ("dsc", "none"), ("dsc_gap", "none"), ("efficientnet_lite0", "imagenet"), ("efficientnet_lite0", "none"),
        ("mobilenetv3_small_100", "none")]
    assert students.base_config().teacher == cfg.teacher and students.base_config().kd == cfg.kd
    assert students.base_config().train.epochs == cfg.train.epochs  # so its teacher can be reused
    for path in CONFIGS.glob("study-*.yaml"):  # every shipped study file loads and expands
        assert load_study(path).specs(), path


def test_a_sweep_may_be_a_union_of_grids_and_a_student_may_start_pretrained(tmp_path):
    study = load_study(write_study(tmp_path, {
        "students": [{"strategy": ["standard"], "student": ["dsc", "efficientnet_lite0"]},
                     {"strategy": ["standard", "reversed"], "student": ["efficientnet_lite0"],
                      "pretrained": ["imagenet"]},
                     {"strategy": ["standard"], "student": ["dsc"]}],  # a repeat: listed once, one sweep name
    }, teacher={"name": "resnet18"}))
    ids = [s.run_id for s in study.specs()]
    assert ids == ["standard-dsc-from-resnet18-adamax-ce-a0.9-T4-m2-s0",
                   "standard-efficientnet_lite0-from-resnet18-adamax-ce-a0.9-T4-m2-s0",
                   "standard-efficientnet_lite0-imagenet-from-resnet18-adamax-ce-a0.9-T4-m2-s0",
                   "reversed-resnet18-adamax-ce-a0.9-T4-m2-s0"]  # reversed trains the teacher: no student start
    assert [s.sweeps for s in study.specs()] == [("students",)] * 4
    specs = study.specs()
    assert study.run_config(specs[2], str(tmp_path)).model.pretrained == "imagenet"
    assert study.run_config(specs[1], str(tmp_path)).model.pretrained == "none"
    assert study.run_config(specs[3], str(tmp_path)).model == study.base_config().teacher
    assert varied_axes(study.sweeps["students"]) == ["strategy", "student", "pretrained"]
    assert varied_axes({"strategy": ["baseline"]}) == []


@pytest.mark.parametrize("sweep", [[], ["standard"], [{"strategy": ["standard"]}, "x"], "standard"])
def test_a_malformed_sweep_is_one_clear_error(tmp_path, sweep):
    with pytest.raises(DermkdError, match="sweep 'a' must map axes to lists of values"):
        load_study(write_study(tmp_path, {"a": sweep}))


def test_grid_dedupes_and_normalises(tmp_path):
    study = load_study(write_study(tmp_path, {
        "a": {"strategy": ["baseline", "standard"], "teacher": ["resnet18", "resnet50"]},
        "b": {"strategy": ["standard"], "teacher": ["resnet18"]},
    }))
    ids = [s.run_id for s in study.specs()]
    # baseline ignores the teacher axis: one baseline run, not two
    assert ids == ["baseline-dsc-adamax-ce-s0", "standard-dsc-from-resnet18-adamax-ce-a0.9-T4-m2-s0",
                   "standard-dsc-from-resnet50-adamax-ce-a0.9-T4-m2-s0"]
    assert study.specs()[1].sweeps == ("a", "b")


@pytest.mark.parametrize("bad, message", [
    ({"a": {"colour": ["red"]}}, "unknown axes colour"),
    ({"a": {"seed": [1]}}, "unknown axes seed"),
    ({"a": {"strategy": []}}, "non-empty list"),
    ({}, "no sweeps"),
])
def test_bad_study_files(tmp_path, bad, message):
    with pytest.raises(DermkdError, match=message):
        load_study(write_study(tmp_path, bad))


def test_unknown_names_fail_when_loading(tmp_path):
    study = load_study(write_study(tmp_path, {"a": {"optimizer": ["adamw"]}}))
    with pytest.raises(DermkdError, match="unknown optimizer 'adamw'"):
        study.run_config(study.specs()[0], str(tmp_path))


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("study")
    path = write_study(tmp, {
        "strategies": {"strategy": STRATEGIES.names()},
        "optimizers": {"strategy": ["baseline"], "optimizer": OPTIMIZERS.names()},
        "objectives": {"strategy": ["baseline", "standard", "teacher-free"], "objective": ["svm"]},
        "teachers": {"strategy": ["standard"], "teacher": FAST_TEACHERS},
    }, teacher={"name": "resnet18"})
    study = load_study(path)
    return study, run_study(study, tmp), tmp / "s"


def test_every_strategy_optimizer_objective_teacher_runs(tiny_study):
    study, rows, root = tiny_study
    assert [r["status"] for r in rows] == ["done"] * len(study.specs()), [r["error"] for r in rows]
    assert {r["strategy"] for r in rows} == set(STRATEGIES.names())
    assert {r["optimizer"] for r in rows} == set(OPTIMIZERS.names())
    assert {r["objective"] for r in rows} == {"ce", "svm"}
    assert {r["teacher"] for r in rows if r["strategy"] == "standard"} == set(FAST_TEACHERS)
    reversed_row = next(r for r in rows if r["strategy"] == "reversed")
    assert reversed_row["model"] == "resnet18"  # the teacher architecture is the one trained
    # each teacher architecture was trained once, however many runs it taught
    assert sorted(p.name for p in (root / "teachers").iterdir()) == sorted(f"{t}-s0" for t in FAST_TEACHERS)


def test_results_table_csv_and_parquet(tiny_study):
    study, rows, root = tiny_study
    with (root / "results.csv").open() as fh:
        table = list(csv.DictReader(fh))
    assert [r["run"] for r in table] == [s.run_id for s in study.specs()]
    pq_rows = pq.read_table(root / "results.parquet").to_pylist()
    assert [r["run"] for r in pq_rows] == [r["run"] for r in table]
    for r in pq_rows:  # each row is its run's own metrics.json
        metrics = json.loads((root / "runs" / r["run"] / "metrics.json").read_text())
        assert r["top1_accuracy"] == metrics["top1_accuracy"] and r["params"] == metrics["model"]["parameters"] > 0
    assert {"macro_sensitivity", "macro_npv", "balanced_accuracy", "wall_seconds"} <= set(pq_rows[0])


def test_defective_and_self_learn_from_the_right_checkpoints(tiny_study):
    study, rows, root = tiny_study
    from dermkd.io import read_json

    defective = next(r["run"] for r in rows if r["strategy"] == "defective")
    rec = read_json(root / "runs" / defective / "env.json")["teacher"]
    assert rec["checkpoint"].endswith("teachers/resnet18-s0/checkpoints/epoch-1.ckpt")
    self_run = next(r["run"] for r in rows if r["strategy"] == "self")
    rec = read_json(root / "runs" / self_run / "env.json")["teacher"]
    assert "/runs/baseline-dsc-adamax-ce-s0/" in rec["checkpoint"] and rec["model"] == "dsc"
    tf = next(r["run"] for r in rows if r["strategy"] == "teacher-free" and r["objective"] == "ce")
    assert read_json(root / "runs" / tf / "env.json")["teacher"] == {"model": "virtual", "p_correct": 0.9}


def test_rerun_skips_finished_runs_and_records_failures(tiny_study, tmp_path):
    study, rows, root = tiny_study
    before = {p: p.stat().st_mtime_ns for p in root.rglob("best.ckpt")}
    again = run_study(study, root.parent)
    assert [r["top1_accuracy"] for r in again] == [r["top1_accuracy"] for r in rows]
    assert before == {p: p.stat().st_mtime_ns for p in root.rglob("best.ckpt")}
    # a run that cannot work (no checkpoint after epoch 5 of 2) is recorded, the grid goes on
    bad = load_study(write_study(tmp_path, {"a": {"strategy": ["defective", "baseline"]}},
                                 kd={"teacher_epoch": 5}))
    out = run_study(bad, tmp_path)
    assert [r["status"] for r in out] == ["failed", "done"]
    assert "no checkpoint after epoch 5" in out[0]["error"]
    assert (tmp_path / "s" / "runs" / out[0]["run"] / "error.txt").is_file()


@pytest.mark.slow
def test_vgg16_bn_teacher_runs(tmp_path):
    study = load_study(write_study(tmp_path, {"t": {"strategy": ["standard"], "teacher": ["vgg16_bn"]}}))
    assert [r["status"] for r in run_study(study, tmp_path)] == ["done"]


def test_kfold_study_runs_every_config_once_per_fold(tmp_path):
    path = write_study(tmp_path, {"a": {"strategy": ["baseline", "self"]}})
    raw = yaml.safe_load(path.read_text())
    raw["folds"] = 2
    path.write_text(yaml.safe_dump(raw))
    study = load_study(path)
    rows = run_study(study, tmp_path)
    assert [r["run"] for r in rows] == ["baseline-dsc-adamax-ce-s0-f0", "baseline-dsc-adamax-ce-s0-f1",
                                        "self-dsc-adamax-ce-a0.9-T4-m2-s0-f0", "self-dsc-adamax-ce-a0.9-T4-m2-s0-f1"]
    assert all(r["status"] == "done" for r in rows), [r["error"] for r in rows]
    tests = []
    for fold in (0, 1):
        with (tmp_path / "s" / f"split-f{fold}.csv").open() as fh:
            tests.append({r["path"] for r in csv.DictReader(fh) if r["split"] == "test"})
    assert tests[0] and tests[1] and not tests[0] & tests[1]
    from dermkd.report.study_report import write_report

    html = write_report(tmp_path / "s", latency_reps=1)
    md = html.with_name("report.md").read_text()
    assert "| baseline-dsc-adamax-ce | 2 |" in md  # mean ± sd over the two folds, one configuration
