"""Temperature scaling of a finished run: fitted on its validation split, judged on its
test split, stored in the run directory (`RunDir.calibration`) for `dermkd predict`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dermkd.errors import DermkdError
from dermkd.evaluate.calibration import (ECE_BINS, calibration_figures, fit_temperature, is_valid_temperature,
                                         reliability_bins)
from dermkd.evaluate.predict import predict_logits
from dermkd.evaluate.rundata import run_data
from dermkd.io import read_json, write_json
from dermkd.rundir import RunDir
from dermkd.train.checkpoints import load_model


def calibrate_run(run_dir: Path) -> dict[str, Any]:
    """Fit T on the run's validation split; write and return the record."""
    rd = RunDir(run_dir)
    if rd.read_config()["train"].get("refit"):
        raise DermkdError(f"{rd.path} was refit on train + validation: no held-out images are left to calibrate on")
    model, spec = load_model(rd.path)
    data = run_data(rd.path)
    if data.classes != spec["classes"]:
        raise DermkdError(f"{rd.path}: the data's classes differ from the model's")
    val, test = (predict_logits(model, data.images[s]) for s in ("val", "test"))
    t = fit_temperature(val, data.labels["val"])
    record = {
        "temperature": t, "fitted_on": "val", "method": "temperature scaling (NLL, LBFGS)", "ece_bins": ECE_BINS,
        "val": {"before": calibration_figures(val, data.labels["val"]),
                "after": calibration_figures(val, data.labels["val"], t)},
        "test": {"before": calibration_figures(test, data.labels["test"]),
                 "after": calibration_figures(test, data.labels["test"], t)},
        "test_reliability": {"before": reliability_bins(test.softmax(1), data.labels["test"]),
                             "after": reliability_bins((test / t).softmax(1), data.labels["test"])},
    }
    write_json(rd.calibration, record)
    return record


def run_temperature(run_dir: Path) -> float | None:
    """The run's stored temperature, or None when it was never calibrated."""
    rd = RunDir(run_dir)
    if not rd.calibration.is_file():
        return None
    t = read_json(rd.calibration).get("temperature")
    if not isinstance(t, (int, float)) or not is_valid_temperature(float(t)):
        raise DermkdError(f"{rd.calibration}: temperature must be a positive number, not {t!r}")
    return float(t)
