"""The stage planner (one reading of each strategy's semantics, for the pipeline and the
study) and the trainer factory's context managers, which restore what they change."""

from __future__ import annotations

import pytest
import torch

from dermkd.errors import DermkdError
from dermkd.plan import plan_stages
from dermkd.profiles import build_config
from dermkd.train.trainer import build_trainer, determinism, torch_threads

# strategy -> (the KD stage's name, the stage that teaches it, the architecture it trains)
EXPECTED = {
    "baseline": ("kd-student", None, "dsc"),
    "standard": ("kd-student", "teacher", "dsc"),
    "reversed": ("kd-teacher", "baseline-student", "resnet18"),
    "defective": ("kd-student", "teacher", "dsc"),
    "self": ("kd-student", "baseline-student", "dsc"),
    "teacher-free": ("kd-student", None, "dsc"),
}


@pytest.mark.parametrize("strategy", sorted(EXPECTED))
def test_plan_stages_reads_each_strategy(strategy):
    cfg = build_config("tiny", {"kd": {"strategy": strategy, "teacher_cache": 4}})
    teacher, baseline, kd = plan_stages(cfg)
    assert (teacher.name, teacher.cfg.model.name, teacher.cfg.kd.strategy, teacher.source) == \
        ("teacher", "resnet18", "baseline", None)
    assert (baseline.name, baseline.cfg.model.name, baseline.cfg.kd.strategy) == ("baseline-student", "dsc", "baseline")
    assert (kd.name, kd.source, kd.cfg.model.name) == EXPECTED[strategy]
    assert kd.cfg.kd.strategy == strategy
    # only a stage that a trained network teaches stores teacher logits
    assert (teacher.cfg.kd.teacher_cache, baseline.cfg.kd.teacher_cache) == (0, 0)
    assert kd.cfg.kd.teacher_cache == (4 if EXPECTED[strategy][1] else 0)


def test_reversed_kd_of_an_ensemble_is_an_error():
    cfg = build_config("tiny", {"kd": {"strategy": "reversed"}, "teacher": {"name": "resnet18+dsc"}})
    with pytest.raises(DermkdError, match="reversed KD trains the teacher architecture; an ensemble has none"):
        plan_stages(cfg)


def test_determinism_and_threads_restore_the_callers_settings():
    threads = torch.get_num_threads()
    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
              torch.utils.deterministic.fill_uninitialized_memory)
    with determinism(7, threads=1):
        assert torch.get_num_threads() == 1 and torch.are_deterministic_algorithms_enabled()
        assert torch.utils.deterministic.fill_uninitialized_memory is False
        first = torch.rand(3)
    with determinism(7, threads=1):
        assert torch.equal(torch.rand(3), first)  # one seed, the same draws
    assert torch.get_num_threads() == threads
    assert (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
            torch.utils.deterministic.fill_uninitialized_memory) == before
    with pytest.raises(RuntimeError), torch_threads(1):
        raise RuntimeError("restored even on an error")
    assert torch.get_num_threads() == threads


def test_the_trainer_without_a_run_dir_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = build_config("tiny", {"train": {"epochs": 3}})
    trainer = build_trainer(cfg, [], max_epochs=1)
    assert trainer.max_epochs == 1 and trainer.logger is None and trainer.checkpoint_callback is None
    assert list(tmp_path.iterdir()) == []
