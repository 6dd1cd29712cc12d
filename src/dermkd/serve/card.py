"""The model card of a finished run, in the spirit of a MONAI bundle's `metadata.json`:
what the model takes and gives, what it was trained and tested on, how well it did (with
95% bootstrap intervals), how it is calibrated, what taught it, where its weights came
from, and what it is for. `check_card` runs a dummy forward pass against the card's
declared shapes, so a card that does not match its model is caught when it is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dermkd.data.taxonomy import code_of, is_malignant
from dermkd.errors import DermkdError
from dermkd.evaluate.stats import bootstrap_ci
from dermkd.export.predictor import Predictor
from dermkd.io import read_json, write_json, write_text
from dermkd.report.loading import read_predictions
from dermkd.rundir import RunDir

CARD_VERSION = 1
INTENDED_USE = ("Research use only: not a medical device, not validated for diagnosis or for any clinical "
                "decision. Trained on dermoscopic images; other image sources, skin types and acquisition "
                "settings may degrade it without warning.")
CI_METRICS = ("top1_accuracy", "balanced_accuracy", "mcc_multiclass")


def build_card(run_dir: Path) -> dict[str, Any]:
    """The card of a finished run (its metrics, split, env record and calibration if any)."""
    rd = RunDir(run_dir)
    if not rd.is_finished():
        raise DermkdError(f"{rd.path} is not a finished run (no {rd.metrics.name}); train it first")
    metrics, env = rd.read_metrics(), rd.read_env()
    spec = metrics["model"]
    pred = read_predictions(rd.predictions)
    intervals = bootstrap_ci(pred.labels, pred.preds, len(spec["classes"]))
    return {
        "card_version": CARD_VERSION, "run": rd.name, "model": spec["name"], "parameters": spec["parameters"],
        "classes": [{"index": i, "name": c, "code": code_of(c), "malignant": is_malignant(c)}
                    for i, c in enumerate(spec["classes"])],
        "input": {"shape": [None, 3, spec["image_size"], spec["image_size"]], "dtype": "float32",
                  "range": spec["input_range"], "channel_order": "RGB",
                  "normalisation": {"mean": spec["mean"], "std": spec["std"], "applied": "inside the model"}},
        "output": {"shape": [None, len(spec["classes"])], "meaning": "logits; softmax gives probabilities"},
        "training_data": {"fingerprint": env["data"]["fingerprint"], "counts": env["data"]["counts"],
                          "split_source": env["data"].get("split_source"), "split_file": rd.split.name},
        "test_metrics": {k: {"value": metrics[k], "ci95": list(intervals[k])} for k in CI_METRICS if k in intervals}
        | {"n": metrics["n"]},
        "calibration": read_json(rd.calibration) if rd.calibration.is_file() else None,
        "distilled_from": env.get("teacher"), "strategy": env.get("strategy"),
        "initial_weights": spec.get("initial_weights"), "versions": env.get("versions"),
        "intended_use": INTENDED_USE,
    }


def write_card(run_dir: Path) -> tuple[Path, Path]:
    """RUN/model_card.json and a Markdown rendering beside it."""
    rd = RunDir(run_dir)
    card = build_card(rd.path)
    write_json(rd.model_card, card)
    md = rd.model_card.with_suffix(".md")
    write_text(md, render_markdown(card))
    return rd.model_card, md


def card_beside(model_file: Path) -> Path:
    """Where an exported model's card lives: <file>.card.json."""
    return model_file.with_name(model_file.name + ".card.json")


def write_export_card(run_dir: Path, model_file: Path) -> Path:
    """The run's card, for one of its exported files (the calibration travels with it)."""
    card = {**build_card(run_dir), "file": model_file.name}
    write_json(card_beside(model_file), card)
    return card_beside(model_file)


def render_markdown(card: dict[str, Any]) -> str:
    lines = [f"# Model card: {card['run']} ({card['model']}, {card['parameters']:,} parameters)", "",
             f"**Intended use.** {card['intended_use']}", "", "## Classes", "",
             "| index | class | code | malignant |", "|---|---|---|---|"]
    lines += [f"| {c['index']} | {c['name']} | {c['code']} | {'yes' if c['malignant'] else 'no'} |"
              for c in card["classes"]]
    shape = card["input"]["shape"]
    lines += ["", "## Input and output", "", f"Input: float32 RGB in [0, 1], shape (B, 3, {shape[2]}, {shape[3]}); "
              f"normalised inside the model (mean {card['input']['normalisation']['mean']}, std "
              f"{card['input']['normalisation']['std']}). Output: logits (B, {card['output']['shape'][1]}).", "",
              f"## Test split (n = {card['test_metrics']['n']}), 95% bootstrap intervals", ""]
    lines += [f"- {k}: {v['value']:.3f} [{v['ci95'][0]:.3f}, {v['ci95'][1]:.3f}]"
              for k, v in card["test_metrics"].items() if k != "n"]
    cal = card["calibration"]
    lines += ["", "## Calibration", "", "not calibrated (`dermkd calibrate`)" if cal is None else
              f"temperature {cal['temperature']:.3f} (fitted on validation); test ECE "
              f"{cal['test']['before']['ece']:.3f} -> {cal['test']['after']['ece']:.3f}",
              "", "## Provenance", "", f"- training data fingerprint: {card['training_data']['fingerprint']}",
              f"- strategy: {card['strategy']}; teacher: {(card['distilled_from'] or {}).get('model', 'none')}",
              f"- initial weights: {card['initial_weights']}", ""]
    return "\n".join(lines)


def check_card(card: dict[str, Any], predictor: Predictor) -> None:
    """A forward pass of zeros in the card's input shape must give the card's output shape."""
    _, channels, height, width = card["input"]["shape"]
    out = predictor(np.zeros((1, channels, height, width), dtype=np.float32))
    expected = (1, card["output"]["shape"][1])
    if tuple(out.shape) != expected or [c["name"] for c in card["classes"]] != list(predictor.classes):
        raise DermkdError(f"the model card does not match its model: output {tuple(out.shape)} for {expected}, "
                          f"classes {list(predictor.classes)}")
