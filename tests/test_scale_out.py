"""Scale-out: the Ray backend of `dermkd study` against the local one, and tracking in
MLflow and TensorBoard. Ray, mlflow-skinny and tensorboard are dev extras: these tests
run in CI, never skip there."""

from __future__ import annotations

import csv
import logging
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from dermkd.errors import DermkdError
from dermkd.study.backends import BackendOptions
from dermkd.study.launch import backend
from dermkd.study.grid import load_study, with_tracking
from dermkd.study.runner import run_study

from test_study import write_study

TIMED = {"wall_seconds"}  # the one column that differs between two runs of the same study


def _table(root: Path) -> list[dict[str, str]]:
    """results.csv without its timings, the study's own folder written as OUT (errors name paths)."""
    with open(root / "results.csv", newline="") as fh:
        return [{k: v.replace(str(root.parent), "OUT") for k, v in row.items() if k not in TIMED}
                for row in csv.DictReader(fh)]


def _flaky_study(tmp_path: Path):
    """defective KD that cannot work (no checkpoint after epoch 5 of 2), a baseline and a
    standard KD run that can."""
    return load_study(write_study(tmp_path, {"a": {"strategy": ["defective", "baseline", "standard"]}},
                                  kd={"teacher_epoch": 5}, train={"threads": 1}, teacher={"name": "resnet18"}))


def test_ray_backend_writes_the_local_backends_results_table(tmp_path, monkeypatch):
    import ray

    study = _flaky_study(tmp_path)
    local = run_study(study, tmp_path / "local")
    monkeypatch.setenv("RAY_worker_niceness", "0")  # what run_on_ray sets for the local instances it starts
    ray.init(num_cpus=2, include_dashboard=False)  # a local instance of 2 workers; run_on_ray joins it
    rows = backend("ray")(study, tmp_path / "ray", True, BackendOptions(retries=1))
    assert not ray.is_initialized()  # shut down after the study
    assert [r["status"] for r in rows] == ["failed", "done", "done"]
    assert "no checkpoint after epoch 5" in rows[0]["error"]  # the task's own error, not Ray's wrapper
    assert [r["error"].replace("/ray/", "/local/") for r in rows] == [r["error"] for r in local]
    assert _table(tmp_path / "ray" / "s") == _table(tmp_path / "local" / "s")
    a, b = (pq.read_table(tmp_path / d / "s" / "results.parquet").drop(list(TIMED)).to_pylist()
            for d in ("ray", "local"))
    assert [{**r, "error": r["error"].replace("/ray/", "/local/")} for r in a] == b
    assert (tmp_path / "ray" / "s" / "study.yaml").read_text() == (tmp_path / "local" / "s" / "study.yaml").read_text()
    assert (tmp_path / "ray" / "s" / "split.csv").read_text() == (tmp_path / "local" / "s" / "split.csv").read_text()
    # resumable as the local one is: nothing retrains, the table is the same
    mtimes = {p: p.stat().st_mtime_ns for p in (tmp_path / "ray").rglob("best.ckpt")}
    again = run_study(study, tmp_path / "ray")
    assert [r["status"] for r in again] == ["failed", "done", "done"]
    assert mtimes == {p: p.stat().st_mtime_ns for p in (tmp_path / "ray").rglob("best.ckpt")}


def test_local_backend_retries_a_failed_run_then_records_it(tmp_path, caplog):
    study = load_study(write_study(tmp_path, {"a": {"strategy": ["defective"]}}, kd={"teacher_epoch": 5}))
    with caplog.at_level(logging.WARNING, logger="dermkd.study.runner"):
        rows = backend("local")(study, tmp_path, True, BackendOptions(retries=2))
    assert [r["status"] for r in rows] == ["failed"]
    tries = [m for m in caplog.messages if "failed; trying again" in m]
    assert len(tries) == 2 and "attempt 1 of 3" in tries[0] and "attempt 2 of 3" in tries[1]


def test_backend_options_are_checked(run_cli, tmp_path):
    path = write_study(tmp_path, {"a": {"strategy": ["baseline"]}})
    for argv, message in [
        (["--backend", "dask"], "unknown study backend 'dask'; known: local, ray"),
        (["--ray-address", "auto"], "--ray-address, --cpus-per-run and --gpus-per-run are for --backend ray"),
        (["--backend", "ray", "--cpus-per-run", "0"], "--cpus-per-run must be > 0"),
        (["--retries", "-1"], "--retries must be >= 0"),
        (["--tracker", "wandb"], "unknown tracker 'wandb'; known: mlflow, none, tensorboard"),
    ]:
        code, out, err, _ = run_cli("study", path, "--dry-run", *argv)
        assert code != 0 and message in err and "Traceback" not in err, (argv, err)


def test_missing_extras_name_what_to_install(monkeypatch, tmp_path):
    from dermkd.config import RunConfig
    from dermkd.rundir import RunDir
    from dermkd.study.ray_backend import _ray
    from dermkd.train.tracking import TRACKERS

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(DermkdError, match=r"--backend ray needs Ray: pip install 'dermkd\[ray\]'"):
        _ray()
    with pytest.raises(DermkdError, match=r"--tracker mlflow needs mlflow: pip install 'dermkd\[mlflow\]'"):
        TRACKERS.get("mlflow")(RunConfig(), RunDir(tmp_path / "r"))


def test_mlflow_tracks_every_run_the_report_and_the_export(run_cli, tmp_path):
    from mlflow.tracking import MlflowClient

    path = write_study(tmp_path, {"a": {"strategy": ["baseline", "standard"]}}, teacher={"name": "resnet18"})
    code, out, err, cwd = run_cli("study", path, "--out", tmp_path / "out", "--tracker", "mlflow")
    assert code == 0, err
    root = tmp_path / "out" / "s"
    uri = (root / "mlruns").as_uri()  # the default: a file store in the study folder
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("s")  # the study's name
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert set(runs) == {"resnet18-s0", "baseline-dsc-adamax-ce-s0", "standard-dsc-from-resnet18-adamax-ce-a0.9-T4-m2-s0"}
    kd = runs["standard-dsc-from-resnet18-adamax-ce-a0.9-T4-m2-s0"]
    assert kd.data.params["kd.alpha"] == "0.9" and kd.data.params["model.name"] == "dsc"
    assert kd.data.params["train.epochs"] == "2"
    assert len(client.get_metric_history(kd.info.run_id, "val_loss")) == 2  # one point per epoch
    metrics = (root / "runs" / kd.info.run_name / "metrics.json").read_text()
    import json

    assert kd.data.metrics["test_top1_accuracy"] == pytest.approx(json.loads(metrics)["top1_accuracy"])
    files = {a.path for a in client.list_artifacts(kd.info.run_id)}
    assert {"config.yaml", "env.json", "history.csv", "metrics.json", "predictions.csv", "best.ckpt"} <= files
    env = json.loads((root / "runs" / kd.info.run_name / "env.json").read_text())
    assert env["tracking"] == {"tracker": "mlflow", "uri": uri, "experiment": "s", "run_id": kd.info.run_id}

    code, out, err, _ = run_cli("export", root / "runs" / kd.info.run_name)
    assert code == 0 and "export logged to MLflow run" in out, err
    exported = {a.path for a in client.list_artifacts(kd.info.run_id, "export")}
    assert exported == {"export/dsc.onnx.onnx", "export/dsc.onnx.onnx.json", "export/dsc.onnx.onnx.card.json"}
    code, out, err, _ = run_cli("report", root, "--tracker", "mlflow")
    assert code == 0, err
    report = [r for r in client.search_runs([experiment.experiment_id]) if r.info.run_name == "report"]
    assert len(report) == 1
    assert {"report/report.md", "report/report.html"} <= {a.path for a in client.list_artifacts(report[0].info.run_id,
                                                                                                 "report")}


def test_a_tracked_rerun_reuses_the_untracked_runs(tmp_path):
    study = load_study(write_study(tmp_path, {"a": {"strategy": ["baseline"]}}))
    first = run_study(study, tmp_path)
    again = run_study(with_tracking(study, "tensorboard", None), tmp_path)
    assert [r["top1_accuracy"] for r in again] == [r["top1_accuracy"] for r in first]
    assert not (tmp_path / "s" / "tensorboard").exists()  # reused, not retrained: nothing new to track


def test_tensorboard_logs_epochs_and_test_metrics(run_cli, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    code, out, err, cwd = run_cli("train", "--profile", "tiny", "--epochs", "3", "--name", "tb",
                                  "--tracker", "tensorboard", "--no-progress")
    assert code == 0, err
    logdir = cwd / "runs" / "tensorboard" / "dermkd" / "tb"
    events = EventAccumulator(str(logdir))
    events.Reload()
    assert [e.step for e in events.Scalars("val_loss")] == sorted({e.step for e in events.Scalars("val_loss")})
    assert len(events.Scalars("val_loss")) == 3
    assert "test_top1_accuracy" in events.Tags()["scalars"]
    import json

    env = json.loads((cwd / "runs" / "tb" / "env.json").read_text())
    assert env["tracking"]["tracker"] == "tensorboard" and Path(env["tracking"]["log_dir"]) == logdir


class _InProcessRay:
    """Just enough of Ray's API for `run_on_ray`'s scheduling, run in this process: tasks
    run when submitted, and every call is kept."""

    class Ref:
        def __init__(self, value=None, error=None):
            self.value, self.error = value, error

    def __init__(self):
        self.submitted, self.options = [], None
        self.init = self.shutdown = lambda **kw: None

    def remote(self, **options):
        self.options = options

        def wrap(fn):
            ray = self

            class Task:
                @staticmethod
                def remote(*args):
                    ray.submitted.append(args[-1])
                    try:
                        return ray.Ref(fn(*args))
                    except Exception as exc:
                        return ray.Ref(error=exc)
            return Task
        return wrap

    def get(self, ref):
        if ref.error is not None:
            raise ref.error
        return ref.value

    def wait(self, refs, num_returns):
        return refs[:num_returns], refs[num_returns:]


def test_ray_schedule_teachers_first_and_a_failed_teacher_fails_its_students(tmp_path, monkeypatch):
    from dermkd.study import ray_backend
    from dermkd.study.runner import Prerequisite

    fake = _InProcessRay()
    monkeypatch.setattr(ray_backend, "_ray", lambda: fake)
    study = load_study(write_study(tmp_path, {"a": {"strategy": ["standard", "baseline"]}},
                                  teacher={"name": "resnet18", "pretrained_file": str(tmp_path / "missing.pth")}))
    rows = ray_backend.run_on_ray(study, tmp_path, opts=BackendOptions(retries=2, cpus_per_run=2, gpus_per_run=0.5))
    assert fake.options == {"num_cpus": 2, "num_gpus": 0.5, "max_retries": 2, "retry_exceptions": True}
    assert isinstance(fake.submitted[0], Prerequisite) and fake.submitted[0].arch == "resnet18"  # teachers first
    assert [s.run_id for s in fake.submitted[1:]] == ["baseline-dsc-adamax-ce-s0"]  # the student is never tried
    assert [r["status"] for r in rows] == ["failed", "done"]
    assert rows[0]["error"].startswith("teacher resnet18-s0 failed: DermkdError: weights file not found")
    assert _table(tmp_path / "s")[0]["error"] == rows[0]["error"].replace(str(tmp_path), "OUT")
