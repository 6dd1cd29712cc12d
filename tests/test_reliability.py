"""Nothing lost, nothing leaked (issue 12): runs killed with SIGKILL resume to exactly the
uninterrupted result, Ctrl-C and SIGTERM end with an honest status, one writer per run,
finished runs are not silently reused with another config, checkpoints load without
running code, and a failed checkpoint write is one line."""

from __future__ import annotations

import csv
import errno
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

DERMKD = Path(sys.executable).with_name("dermkd")
TINY = ["train", "--profile", "tiny", "--epochs", "5", "--threads", "1", "--synthetic-per-class", "16"]


def env() -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "COV_"))}
    out.update(COLUMNS="200", NO_COLOR="1", OMP_NUM_THREADS="1")
    return out


def start(cwd: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([str(DERMKD), *args], cwd=cwd, env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def dermkd(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(DERMKD), *args], cwd=cwd, env=env(), capture_output=True, text=True, timeout=600)


def wait_for(predicate, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise TimeoutError("the run did not get there in time")
        time.sleep(0.02)


def epochs_done(run: Path) -> int:
    history = run / "history.csv"
    return max(0, len(history.read_text().splitlines()) - 1) if history.is_file() else 0


def outcome(run: Path) -> tuple[dict, str, list[dict]]:
    """What must be equal between an interrupted-and-resumed run and an uninterrupted one:
    the metrics (less the wall time), the per-image predictions, the history (less seconds)."""
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("wall_seconds", "run"):
        metrics.pop(key)
    with (run / "history.csv").open() as fh:
        history = [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(fh)]
    return metrics, (run / "predictions.csv").read_text(), history


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[dict, str, list[dict]]:
    cwd = tmp_path_factory.mktemp("reference")
    assert dermkd(cwd, *TINY, "--name", "r").returncode == 0
    return outcome(cwd / "runs" / "r")


def test_sigkill_at_a_random_step_then_resume_gives_exactly_the_uninterrupted_run(tmp_path, reference):
    rng = random.Random(2026)
    for attempt in range(2):
        cwd = tmp_path / f"kill{attempt}"
        cwd.mkdir()
        run = cwd / "runs" / "k"
        proc = start(cwd, *TINY, "--name", "k")
        wait_for(lambda: (run / "checkpoints" / "last.ckpt").is_file())  # the first epoch's full state
        time.sleep(rng.uniform(0.0, 2.0))  # somewhere inside a later epoch
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed_after = epochs_done(run)
        assert (run / "checkpoints" / "last.ckpt").is_file() and killed_after < 5, killed_after
        assert json.loads((run / "env.json").read_text())["status"] == "running"  # SIGKILL: nothing could run
        resumed = dermkd(cwd, *TINY, "--name", "k")
        assert resumed.returncode == 0, resumed.stderr
        assert "taking over the lock of a process that is gone" in resumed.stderr
        assert outcome(run) == reference, f"killed after {killed_after} epochs"
        assert json.loads((run / "env.json").read_text())["status"] == "done"
        assert not (run / "run.lock").exists()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_and_sigterm_end_interrupted_in_one_line_and_resume(tmp_path, reference, sig):
    run = tmp_path / "runs" / "i"
    proc = start(tmp_path, *TINY, "--name", "i")
    wait_for(lambda: epochs_done(run) >= 1)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "dermkd: interrupted; run the same command again to resume"
    assert "Traceback" not in err
    assert json.loads((run / "env.json").read_text())["status"] == "interrupted"
    assert not (run / "run.lock").exists()
    assert dermkd(tmp_path, *TINY, "--name", "i").returncode == 0
    assert outcome(run) == reference


def test_a_second_writer_exits_at_once_naming_the_first(tmp_path):
    run = tmp_path / "runs" / "race"
    long = [a if a != "5" else "60" for a in TINY]  # 60 epochs: still running when the second one comes
    first = start(tmp_path, *long, "--name", "race", "--seed", "0")
    wait_for(lambda: (run / "run.lock").is_file())
    second = dermkd(tmp_path, *long, "--name", "race", "--seed", "1")
    assert first.poll() is None, "the first run ended before the second one was checked"
    assert second.returncode == 1
    assert second.stderr.strip() == (f"dermkd: error: runs/race is being written by pid {first.pid} on "
                                     f"{socket.gethostname()}; wait for it, or choose another --name")
    # (checked before the data is read: the error is the only line)
    first.send_signal(signal.SIGTERM)
    first.communicate(timeout=120)
    # everything in the folder is the first run's
    assert "seed: 0" in (run / "config.yaml").read_text()
    record = json.loads((run / "env.json").read_text())
    assert (record["seed"], record["status"]) == (0, "interrupted")


def test_a_finished_run_with_another_config_is_an_error_that_shows_the_diff(run_cli):
    assert run_cli("train", "--profile", "tiny", "--name", "f")[0] == 0
    code, _, err, _ = run_cli("train", "--profile", "tiny", "--name", "f", "--epochs", "3", "--lr", "0.01")
    assert code == 1
    assert err.strip() == ("dermkd: error: runs/f is finished with another config (optim.lr: 0.001 -> 0.01; "
                           "train.epochs: 1 -> 3); use --fresh to retrain it, or another --name")
    before = Path("runs/f/metrics.json").stat().st_mtime_ns
    code, _, err, _ = run_cli("train", "--profile", "tiny", "--name", "f", "--threads", "1")  # same computation
    assert code == 0 and Path("runs/f/metrics.json").stat().st_mtime_ns == before  # reused, not retrained
    code, _, err, _ = run_cli("train", "--profile", "tiny", "--name", "f", "--epochs", "3")
    assert code == 1 and "(train.epochs: 1 -> 3); use --fresh to retrain it, --extend to train it more epochs" in err
    code, _, err, _ = run_cli("train", "--profile", "tiny", "--name", "f", "--epochs", "3", "--extend")
    assert code == 0, err
    with open("runs/f/history.csv") as fh:
        assert [row["epoch"] for row in csv.DictReader(fh)] == ["0", "1", "2"]  # epoch 0 kept, 1-2 added
    assert json.loads(Path("runs/f/metrics.json").read_text())["epochs_trained"] == 3



def test_distill_refuses_an_unfinished_teacher_unless_told(run_cli):
    assert run_cli("train", "--profile", "tiny", "--name", "t", "--model", "resnet18")[0] == 0
    env_file = Path("runs/t/env.json")
    env_file.write_text(json.dumps({**json.loads(env_file.read_text()), "status": "failed"}))
    code, _, err, _ = run_cli("distill", "--teacher", "runs/t", "--profile", "tiny", "--name", "s")
    assert code == 1 and err.strip() == ("dermkd: error: teacher run runs/t is failed, not done; finish it (run its "
                                         "command again), or pass --allow-unfinished-teacher")
    code, _, err, _ = run_cli("distill", "--teacher", "runs/t", "--profile", "tiny", "--name", "s",
                              "--allow-unfinished-teacher")
    assert code == 0, err


def test_a_failure_inside_a_run_records_failed_with_its_error(tmp_path, monkeypatch):
    from dermkd.pipeline import load_data
    from dermkd.profiles import build_config
    from dermkd.train import stage

    cfg = build_config("tiny", {"out_dir": str(tmp_path), "name": "x", "kd": {"strategy": "baseline"}})
    data = load_data(cfg)

    def broken(*args, **kwargs):
        raise RuntimeError("scoring broke\nsecond line")

    monkeypatch.setattr(stage, "evaluate_model", broken)
    with pytest.raises(RuntimeError):
        stage.run_stage(cfg, data, tmp_path / "x")
    env_record = json.loads((tmp_path / "x" / "env.json").read_text())
    assert (env_record["status"], env_record["error"]) == ("failed", "RuntimeError: scoring broke")
    assert not (tmp_path / "x" / "run.lock").exists() and not (tmp_path / "x" / "metrics.json").exists()


def test_a_stale_lock_is_taken_over_and_stale_temp_files_removed(tmp_path, caplog):
    from dermkd.rundir import RunDir
    from dermkd.train.stage import remove_stale_temps

    rd = RunDir(tmp_path / "r")
    (rd.path / "checkpoints").mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    rd.lock_file.write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname()}))
    (rd.path / "env.json").write_text(json.dumps({"status": "running"}))
    assert rd.status() == "interrupted"  # running, but its writer is gone
    leftover = rd.checkpoints / ".best.ckpt.abc123.tmp"
    leftover.write_bytes(b"\0" * 100)
    with caplog.at_level("WARNING"), rd.lock():
        remove_stale_temps(rd)
        assert json.loads(rd.lock_file.read_text())["pid"] == os.getpid()
    assert "taking over the lock" in caplog.text and not leftover.exists() and not rd.lock_file.exists()


def test_a_full_disk_is_one_line_and_the_old_checkpoint_survives(tmp_path, monkeypatch):
    from dermkd.errors import DermkdError
    from dermkd.train.checkpoints import AtomicCheckpointIO

    target = tmp_path / "last.ckpt"
    target.write_bytes(b"old")

    def no_space(obj, fh):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", no_space)
    with pytest.raises(DermkdError, match=r"could not write checkpoint .*last.ckpt: no space left on the device"):
        AtomicCheckpointIO().save_checkpoint({"a": 1}, target)
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]


def test_preflight_refuses_a_run_that_cannot_fit_its_checkpoints(run_cli, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 1000, 1000))
    code, _, err, cwd = run_cli("train", "--profile", "tiny", "--name", "p")
    assert code == 1 and err.strip().startswith("dermkd: error: not enough disk space in runs/p: the checkpoints "
                                                "need about")
    assert json.loads((cwd / "runs" / "p" / "env.json").read_text())["status"] == "failed"


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path):
    from dermkd.errors import DermkdError
    from dermkd.train.checkpoints import load_model

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"hyper_parameters": {"model_spec": Payload()}, "state_dict": {}}, tmp_path / "evil.ckpt")
    with pytest.raises(DermkdError, match=r"refusing to load .*evil.ckpt: it holds objects other than tensors and "
                                          r"plain data \(posix.system\); dermkd never runs code from a checkpoint"):
        load_model(tmp_path / "evil.ckpt")
    assert not marker.exists()
