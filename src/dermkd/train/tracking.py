"""Experiment tracking beside the run directory (`--tracker`): the run's resolved config
as params, its per-epoch metrics (a Lightning logger next to the CSV one), its test
metrics, and its files as artifacts (config, environment, history, predictions, the
best checkpoint; later `dermkd export` files and `dermkd report` pages join them).

The run directory stays the record of truth; a tracker is a view for teams that browse
runs in MLflow or TensorBoard. Each tracker is a registry entry
(`RunConfig, RunDir -> Tracker`) and imports its library only when chosen, with a one-line
error naming the extra to install. `env.json` records where the run was tracked
(`"tracking"`), so that later commands attach their files to the same MLflow run.

MLflow 3 keeps its file store (a folder, no server or database) in maintenance mode and
refuses it unless `MLFLOW_ALLOW_FILE_STORE` is set; dermkd sets it for file URIs only,
since the file store is the one that works with mlflow-skinny and no server. Pass
`--tracking-uri http://...` (a server) or `sqlite:///...` (full mlflow) for the others.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dermkd.config import RunConfig
from dermkd.errors import DermkdError
from dermkd.knobs import flat_paths
from dermkd.registry import Registry
from dermkd.rundir import RunDir

log = logging.getLogger(__name__)


class Tracker:
    """No tracking: the base of the others, and the `none` entry."""

    logger: Any = None  # a Lightning logger to add beside the CSV one, or None

    def __init__(self, cfg: RunConfig, rd: RunDir) -> None:
        pass

    @staticmethod
    def default_uri(folder: Path) -> str | None:
        """Where this tracker writes when no --tracking-uri is given, for runs under `folder`."""
        return None

    def record(self) -> dict[str, Any] | None:
        """What env.json keeps of it (None: not tracked)."""
        return None

    def finish(self, rd: RunDir, metrics: dict[str, Any]) -> None:
        """Log the test metrics and the run's files once the run is scored."""


TRACKERS: Registry[type[Tracker]] = Registry("tracker")
TRACKERS.register("none")(Tracker)

# the files of a finished run that go to the tracker as artifacts (the model: best.ckpt)
RUN_ARTIFACTS = ("config", "env", "split", "history", "metrics", "predictions", "best")


def test_scalars(metrics: dict[str, Any]) -> dict[str, float]:
    """The headline test figures as test_<name> scalars (nested and non-numeric ones left out)."""
    return {f"test_{k}": float(v) for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _experiment(cfg: RunConfig) -> str:
    return cfg.train.experiment or "dermkd"


def _need(module: str, extra: str) -> Any:
    try:
        return __import__(module)
    except ImportError:
        raise DermkdError(f"--tracker {extra} needs {module}: pip install 'dermkd[{extra}]'") from None


def mlflow_uri(uri: str) -> str:
    """`uri`, with MLflow's file store allowed when it is one (above)."""
    if uri.startswith("file:") or "://" not in uri:
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return uri


def location(cfg: RunConfig) -> str | None:
    """The run's --tracking-uri, else its tracker's default under OUT."""
    return cfg.train.tracking_uri or TRACKERS.get(cfg.train.tracker).default_uri(Path(cfg.out_dir))


class MlflowTracker(Tracker):
    @staticmethod
    def default_uri(folder: Path) -> str:
        return (folder.expanduser().resolve() / "mlruns").as_uri()

    def __init__(self, cfg: RunConfig, rd: RunDir) -> None:
        _need("mlflow", "mlflow")
        from lightning.pytorch.loggers import MLFlowLogger

        self.uri = mlflow_uri(location(cfg))
        try:
            self.logger = MLFlowLogger(experiment_name=_experiment(cfg), run_name=rd.name, tracking_uri=self.uri,
                                       tags={"dermkd.run_dir": str(rd.path.resolve())})
            self.logger.log_hyperparams(flat_paths(cfg.to_dict()))
        except Exception as exc:  # an unreachable server, a bad URI
            raise DermkdError(f"MLflow at {self.uri}: {str(exc).splitlines()[0][:200]}") from None
        self.experiment = _experiment(cfg)

    def record(self) -> dict[str, Any]:
        return {"tracker": "mlflow", "uri": self.uri, "experiment": self.experiment, "run_id": self.logger.run_id}

    def finish(self, rd: RunDir, metrics: dict[str, Any]) -> None:
        self.logger.log_metrics(test_scalars(metrics))
        client = self.logger.experiment
        client.log_dict(self.logger.run_id, metrics, "metrics.json")  # before run_stage adds its wall time
        log_files(self.record(), [getattr(rd, name) for name in RUN_ARTIFACTS if name != "metrics"])
        self.logger.finalize("success")


class TensorBoardTracker(Tracker):
    """Scalars and hparams only: TensorBoard has no artifact store (the files stay in the run)."""

    @staticmethod
    def default_uri(folder: Path) -> str:
        return str(folder.expanduser().resolve() / "tensorboard")

    def __init__(self, cfg: RunConfig, rd: RunDir) -> None:
        if not (_importable("tensorboard") or _importable("tensorboardX")):
            raise DermkdError("--tracker tensorboard needs tensorboard: pip install 'dermkd[tensorboard]'")
        from lightning.pytorch.loggers import TensorBoardLogger

        self.root = Path(location(cfg)).expanduser().resolve()
        self.logger = TensorBoardLogger(str(self.root), name=_experiment(cfg), version=rd.name,
                                        default_hp_metric=False)
        self.params = flat_paths(cfg.to_dict())

    def record(self) -> dict[str, Any]:
        return {"tracker": "tensorboard", "uri": str(self.root), "log_dir": self.logger.log_dir}

    def finish(self, rd: RunDir, metrics: dict[str, Any]) -> None:
        scalars = test_scalars(metrics)
        self.logger.log_hyperparams({k: str(v) if v is None else v for k, v in self.params.items()}, scalars)
        self.logger.finalize("success")


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


TRACKERS.register("mlflow")(MlflowTracker)
TRACKERS.register("tensorboard")(TensorBoardTracker)


def log_files(tracking: dict[str, Any] | None, files: Iterable[Path], folder: str | None = None) -> int:
    """Attach files to the MLflow run that `tracking` (env.json's record) names; returns how
    many. Other trackers keep no files; a missing file is left out."""
    if not tracking or tracking.get("tracker") != "mlflow":
        return 0
    _need("mlflow", "mlflow")
    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow_uri(tracking["uri"]))
    n = 0
    for f in files:
        if Path(f).is_file():
            client.log_artifact(tracking["run_id"], str(f), folder)
            n += 1
    return n


def log_report(tracker: str, uri: str | None, study_dir: Path, report_dir: Path) -> str:
    """The report's files as artifacts of an MLflow run "report" in the study's experiment
    (the one its runs were tracked in); where they went, in words."""
    if tracker != "mlflow":
        TRACKERS.get(tracker)  # an unknown name lists the known ones
        raise DermkdError(f"--tracker {tracker} keeps no files; the report stays in {report_dir} "
                          "(use --tracker mlflow)")
    _need("mlflow", "mlflow")
    from mlflow.tracking import MlflowClient

    from dermkd.io import load_yaml

    plan = load_yaml(study_dir / "study.yaml") if (study_dir / "study.yaml").is_file() else {}
    name = ((plan.get("base") or {}).get("train") or {}).get("experiment") or plan.get("name") or study_dir.name
    uri = mlflow_uri(uri or MlflowTracker.default_uri(Path(study_dir)))
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(name)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(name)
    run = client.create_run(experiment_id, run_name="report", tags={"dermkd.study_dir": str(Path(study_dir).resolve())})
    client.log_artifacts(run.info.run_id, str(report_dir), "report")
    client.set_terminated(run.info.run_id)
    return f"{uri}, experiment {name!r}, run {run.info.run_id}"
