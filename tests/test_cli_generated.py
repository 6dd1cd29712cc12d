"""The run commands' flags are generated from the config: every knob is a flag, its help
shows the profile's resolved default and the registry's choices, flags land in the
saved config, and a run re-made from its own config.yaml gives the same predictions."""

from __future__ import annotations

import re

import pytest
import yaml

from dermkd.build import registry
from dermkd.cli.training import DISTILL_OPTIONS, PIPELINE_OPTIONS, TRAIN_OPTIONS
from dermkd.knobs import get_path, knobs
from dermkd.profiles import build_config, help_config
from dermkd.study.grid import AXES


def help_rows(out: str) -> dict[str, str]:
    """flag -> the text of its help row(s) up to the next flag, in rich's boxed help."""
    rows: dict[str, str] = {}
    current = None
    for line in out.splitlines():
        m = re.match(r"^│ (?:\*  |   )?(--[a-z][a-z0-9-]*)", line)  # a flag in the first column
        if m:
            current = m.group(1)
            rows[current] = ""
        if current:
            rows[current] += " " + line.strip("│ ")
    return rows


def shown(value) -> str:
    return ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


@pytest.mark.parametrize("command, selected", [("train", TRAIN_OPTIONS), ("distill", DISTILL_OPTIONS),
                                               ("pipeline", PIPELINE_OPTIONS)])
def test_every_selected_knob_is_a_flag_with_the_profiles_default(run_cli, command, selected):
    code, out, err, _ = run_cli(command, "--help")
    assert code == 0, err
    rows = help_rows(out)
    defaults = help_config("cpu")
    for k in selected:
        flag = k.flags[0].split("/")[0]
        assert flag in rows, flag
        value = get_path(defaults, k.path)
        if value is not None and not isinstance(value, bool):
            assert f"[default: {shown(value)}]" in re.sub(r"\s+", " ", rows[flag]), (flag, rows[flag])


def test_distill_help_has_panels_in_order_and_registry_choices(run_cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # no wrapped choice lists
    code, out, err, _ = run_cli("distill", "--help")
    assert code == 0, err
    panels = re.findall(r"╭─ (\w+) ─", out)
    assert panels == ["Options", "Data", "Model", "Distillation", "Optimisation", "Run"]
    flat = re.sub(r"[\s│]+", "", out)
    for kind, flag in (("strategy", "--strategy"), ("optimizer", "--optimizer"), ("scheduler", "--scheduler"),
                       ("objective", "--objective"), ("layout", "--layout")):
        assert flag + "<" + "|".join(registry(kind).names()) + ">" in flat, kind
    assert re.search(r"--alpha<float>.*?\[default:0\.9\]", flat)
    assert "--model,--student<" + "|".join(registry("model").names()) + ">" in flat


def test_pipeline_teacher_flag_lists_the_model_registry(run_cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")
    code, out, _, _ = run_cli("pipeline", "--help")
    flat = re.sub(r"[\s│]+", "", out)
    assert code == 0 and "--teacher,--teacher-model<" + "|".join(registry("model").names()) + ">" in flat
    assert "pipinstall'dermkd[weights]'" in flat  # help text is not read as rich markup


def test_pipeline_takes_every_knob_and_study_axes_use_the_same_paths():
    assert {k.path for k in PIPELINE_OPTIONS} == {k.path for k in knobs()}
    by_name = {n: k.path for k in knobs() for n in k.names}
    assert AXES == {axis: by_name[axis] for axis in AXES}
    assert AXES["student"] == "model.name" and AXES["teacher"] == "teacher.name" and AXES["optimizer"] == "optim.name"


def test_print_config_is_the_resolved_config(run_cli):
    code, out, err, _ = run_cli("pipeline", "--profile", "tiny", "--alpha", "0.25", "--teacher", "resnet18",
                                "--augment-scale", "0.5", "0.9", "--augment-degrees", "10", "--no-augment",
                                "--trainable-stages", "all", "--print-config")
    assert code == 0, err
    printed = yaml.safe_load(out)
    expected = build_config("tiny", {"name": "pipeline-tiny", "kd": {"alpha": 0.25}, "teacher": {"name": "resnet18"},
                                     "augment": {"scale": [0.5, 0.9], "degrees": 10.0}, "data": {"augment": False},
                                     "model": {"trainable_stages": "all"}})
    assert printed == expected.to_dict()


def test_a_flag_at_its_default_value_still_wins_over_the_config_file(run_cli, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("kd: {alpha: 0.3}\noptim: {lr: 0.05}\n")
    code, out, err, _ = run_cli("distill", "--teacher", "/nonexistent", "--profile", "tiny", "--config", cfg,
                                "--alpha", "0.9", "--print-config")
    assert code == 1 and "checkpoint not found" in err  # the teacher is checked first ...
    code, out, err, _ = run_cli("pipeline", "--profile", "tiny", "--config", cfg, "--alpha", "0.9", "--print-config")
    printed = yaml.safe_load(out)
    assert code == 0 and printed["kd"]["alpha"] == 0.9 and printed["optim"]["lr"] == 0.05  # ... flag 0.9 beats 0.3


def test_an_unknown_registry_name_fails_at_the_build_boundary_before_any_data(run_cli):
    code, _, err, cwd = run_cli("train", "--profile", "tiny", "--scheduler", "step", "--data", "/nonexistent")
    assert code == 1
    assert err.strip() == "dermkd: error: unknown scheduler 'step'; known: cosine, none, plateau"
    assert not (cwd / "runs").exists()


def _predictions(run) -> str:
    return (run / "predictions.csv").read_text()


@pytest.mark.parametrize("command", ["train", "distill", "pipeline"])
def test_flag_to_config_yaml_and_back_gives_the_same_run(run_cli, command):
    """A run's flags land in its config.yaml, and re-running from that file alone (another
    name) reproduces its predictions exactly."""
    flags = ["--profile", "tiny", "--lr", "0.002", "--seed", "3", "--batch-size", "8"]
    teacher = []
    if command == "distill":
        code, _, err, cwd = run_cli("train", "--profile", "tiny", "--name", "t", "--model", "resnet18", "--seed", "3")
        assert code == 0, err
        teacher = ["--teacher", cwd / "runs" / "t"]
        flags += ["--alpha", "0.5", "--temperature", "2"]
    code, _, err, cwd = run_cli(command, *teacher, *flags, "--name", "first")
    assert code == 0, err
    run = cwd / "runs" / "first"
    if command == "pipeline":
        run = run / "kd-student"
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["optim"]["lr"] == 0.002 and saved["train"]["seed"] == 3 and saved["train"]["batch_size"] == 8
    if command == "distill":
        assert (saved["kd"]["alpha"], saved["kd"]["temperature"], saved["kd"]["strategy"]) == (0.5, 2.0, "standard")
    config = run.parent / "first.yaml" if command == "pipeline" else run / "config.yaml"
    if command == "pipeline":  # the pipeline's stages share one config; re-make it from the KD stage's
        saved.update(name="first", out_dir="runs")
        config.write_text(yaml.safe_dump(saved))
    code, _, err, _ = run_cli(command, *teacher, "--profile", "tiny", "--config", config, "--name", "second")
    assert code == 0, err
    again = cwd / "runs" / "second" / ("kd-student" if command == "pipeline" else "")
    assert _predictions(again) == _predictions(run)
