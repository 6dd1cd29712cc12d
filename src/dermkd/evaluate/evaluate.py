"""Score a model on one split of prepared data with every measure."""

from __future__ import annotations

from pathlib import Path

import torch

from dermkd.data.prepare import PreparedData
from dermkd.data.taxonomy import code_of
from dermkd.errors import DermkdError
from dermkd.evaluate.metrics import compute_metrics
from dermkd.evaluate.predict import predict_proba
from dermkd.io import write_csv
from dermkd.models.classifier import Classifier


def evaluate_model(model: Classifier, data: PreparedData, split: str = "test", classes: list[str] | None = None,
                   predictions: str | Path | None = None) -> dict:
    """Metrics of `model` on `data`'s `split`; `classes` is the model's own label order.

    `predictions`, if given, receives one CSV row per image (path, label, pred and the
    class probabilities): what paired tests and bootstrap intervals are computed from.
    """
    classes = classes or data.classes
    labels = data.labels[split]
    if classes != data.classes:  # the data's label order differs from the model's
        unknown = sorted(set(data.classes) - set(classes))
        if unknown:
            raise DermkdError(f"the data has classes the model was not trained on: {', '.join(unknown)}")
        labels = torch.tensor([classes.index(c) for c in data.classes])[labels]
    probs = predict_proba(model, data.images[split])
    metrics = compute_metrics(labels.numpy(), probs.argmax(1).numpy(), classes, probs.double().numpy())
    metrics["split"] = split
    if predictions is not None:
        codes = [code_of(c) for c in classes]
        rows = [{"path": p, "label": int(y), "pred": int(pr.argmax()), **{f"p_{c}": round(float(v), 6)
                 for c, v in zip(codes, pr)}} for p, y, pr in zip(data.paths[split], labels.tolist(), probs)]
        write_csv(predictions, rows, ["path", "label", "pred", *(f"p_{c}" for c in codes)])
    return metrics
