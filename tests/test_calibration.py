"""Temperature scaling: the fit recovers a known temperature, the figures match hand
computations, a run is calibrated on its validation split, and predict applies it."""

from __future__ import annotations

import csv
import json

import pytest
import torch
import torch.nn.functional as F

from dermkd.evaluate.calibration import calibration_figures, ece_of, fit_temperature, reliability_bins


def test_fit_temperature_recovers_an_overconfidence_of_three():
    g = torch.Generator().manual_seed(0)
    true_logits = torch.randn(4000, 5, generator=g) * 1.5
    labels = torch.multinomial(torch.softmax(true_logits, 1), 1, generator=g).squeeze(1)  # calibrated at T=1
    assert fit_temperature(true_logits * 3.0, labels) == pytest.approx(3.0, rel=0.08)
    assert fit_temperature(true_logits, labels) == pytest.approx(1.0, rel=0.08)


def test_calibration_figures_by_hand():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    labels = torch.tensor([0, 0, 0])
    p = torch.softmax(logits, 1)
    figures = calibration_figures(logits, labels)
    brier = float(((p - torch.tensor([[1.0, 0.0]] * 3)) ** 2).sum(1).mean())
    assert figures["brier"] == pytest.approx(brier) and figures["nll"] == pytest.approx(float(F.cross_entropy(
        logits, labels)))
    # ECE, 15 bins: confidences 0.881 (right) and twice 0.731 (one right, one wrong, one bin):
    # 1/3 |1 - 0.881| + 2/3 |0.5 - 0.731|
    conf = p.max(1).values
    assert figures["ece"] == pytest.approx(float(abs(1 - conf[0]) / 3 + 2 * abs(0.5 - conf[1]) / 3), abs=1e-6)
    halved = calibration_figures(logits, labels, temperature=2.0)
    assert halved["nll"] == pytest.approx(float(F.cross_entropy(logits / 2, labels)))


def test_reliability_bins_by_hand_and_their_weighted_gap_is_torchmetrics_ece():
    p = torch.tensor([[0.95, 0.05], [0.9, 0.1], [0.35, 0.65], [0.25, 0.75]])
    labels = torch.tensor([0, 1, 1, 0])
    b = reliability_bins(p, labels, n_bins=5)  # (0.6, 0.8]: 0.65 right, 0.75 wrong; (0.8, 1]: 0.95 right, 0.9 wrong
    assert b["count"] == [2, 2] and b["accuracy"] == [0.5, 0.5]
    assert b["confidence"] == pytest.approx([0.7, 0.925])
    from torchmetrics.classification import MulticlassCalibrationError

    g = torch.Generator().manual_seed(1)
    probs = torch.softmax(torch.randn(300, 9, generator=g) * 2, 1)
    y = torch.randint(0, 9, (300,), generator=g)
    b = reliability_bins(probs, y)
    assert sum(b["count"]) == 300
    assert ece_of(b) == pytest.approx(float(MulticlassCalibrationError(9, n_bins=15, norm="l1")(probs, y)), abs=1e-6)


def test_calibrate_a_run_then_predict_applies_it(run_cli, tmp_path):
    from helpers import write_image

    assert run_cli("train", "--profile", "tiny", "--name", "c", "--epochs", "2")[0] == 0
    code, out, err, cwd = run_cli("calibrate", "runs/c")
    assert code == 0, err
    record = json.loads((cwd / "runs" / "c" / "calibration.json").read_text())
    assert record["temperature"] > 0 and record["fitted_on"] == "val"
    assert record["val"]["after"]["nll"] <= record["val"]["before"]["nll"] + 1e-9  # the fit's own objective
    assert f"temperature {record['temperature']:.3f}" in out and "test (n=" in out
    n_test = record["test"]["before"]["n"]
    assert [sum(record["test_reliability"][k]["count"]) for k in ("before", "after")] == [n_test, n_test]
    assert (cwd / "runs" / "c" / "reliability.png").stat().st_size > 5000 and "reliability diagram" in out
    for i in range(3):
        write_image(tmp_path / "new" / f"ISIC_{i:07d}.png", 100 + i)
    assert run_cli("predict", "runs/c", tmp_path / "new", "--out", "cal.csv")[0] == 0
    assert run_cli("predict", "runs/c", tmp_path / "new", "--out", "raw.csv", "--no-calibration")[0] == 0
    cal, raw = (list(csv.DictReader((cwd / name).open())) for name in ("cal.csv", "raw.csv"))
    t = record["temperature"]
    for a, b in zip(cal, raw):
        codes = [k for k in a if k != "image"]
        logp = torch.tensor([float(b[k]) for k in codes]).log()  # raw log-probabilities = logits + const
        expected = torch.softmax(logp / t, 0)
        assert torch.allclose(torch.tensor([float(a[k]) for k in codes]), expected, atol=1e-4)


def test_a_refit_run_cannot_be_calibrated(run_cli):
    assert run_cli("train", "--profile", "tiny", "--name", "r", "--refit")[0] == 0
    code, _, err, _ = run_cli("calibrate", "runs/r")
    assert code == 1 and "was refit on train + validation: no held-out images are left to calibrate on" in err


def test_an_export_carries_the_runs_card_and_temperature(run_cli):
    pytest.importorskip("onnxruntime")
    import numpy as np

    from dermkd.serve.predict import open_model

    assert run_cli("train", "--profile", "tiny", "--name", "e", "--epochs", "2")[0] == 0
    assert run_cli("calibrate", "runs/e")[0] == 0
    code, out, err, cwd = run_cli("export", "runs/e", "--format", "onnx")
    assert code == 0 and ", card dsc.onnx.onnx.card.json" in out, (out, err)
    exported = next((cwd / "runs" / "e" / "export").glob("*.onnx"))
    card = json.loads(exported.with_name(exported.name + ".card.json").read_text())
    assert card["file"] == exported.name and card["calibration"]["temperature"] > 0
    x = np.random.default_rng(0).random((2, 3, 32, 32)).astype(np.float32)
    calibrated, raw = open_model(exported), open_model(exported, calibrated=False)
    assert np.allclose(calibrated(x), raw(x) / card["calibration"]["temperature"], atol=1e-5)
    assert np.allclose(calibrated(x), open_model(cwd / "runs" / "e")(x), atol=1e-4)  # = the calibrated run
