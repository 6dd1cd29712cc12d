"""Score a model on one split of prepared data with every measure."""

from __future__ import annotations

import torch

from dermkd.data.prepare import PreparedData
from dermkd.errors import DermkdError
from dermkd.evaluate.metrics import compute_metrics
from dermkd.evaluate.predict import predict_proba
from dermkd.models.classifier import Classifier


def evaluate_model(model: Classifier, data: PreparedData, split: str = "test", classes: list[str] | None = None) -> dict:
    """Metrics of `model` on `data`'s `split`; `classes` is the model's own label order."""
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
    return metrics
