"""Post-hoc temperature scaling (Guo et al. 2017) and the figures that judge it.

One scalar T > 0 divides the logits: it changes the confidence, never the ranking, so
top-1 and every threshold-free measure stay as they are. T is fitted on the validation
split by minimising the negative log-likelihood; the test split then shows ECE
(torchmetrics, 15 equal-width bins, L1), Brier score and NLL before and after.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassCalibrationError

ECE_BINS = 15


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, steps: int = 200) -> float:
    """The T minimising NLL(softmax(logits / T), labels); logits (N, C), labels (N,)."""
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)  # T = exp(log_t) stays positive
    z, y = logits.double(), labels.long()
    opt = torch.optim.LBFGS([log_t], lr=0.5, max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(z / log_t.exp(), y)
        loss.backward()
        return loss

    opt.step(closure)
    return float(log_t.detach().exp())


def calibration_figures(logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0) -> dict[str, float]:
    """ECE (15 bins), Brier score (mean over images of sum_c (p_c - y_c)^2) and NLL."""
    z = logits.double() / temperature
    probs = torch.softmax(z, dim=1)
    onehot = F.one_hot(labels.long(), probs.shape[1]).double()
    ece = MulticlassCalibrationError(probs.shape[1], n_bins=ECE_BINS, norm="l1")(probs.float(), labels.long())
    return {"ece": float(ece), "brier": float(((probs - onehot) ** 2).sum(1).mean()),
            "nll": float(F.cross_entropy(z, labels.long())), "n": int(len(labels))}


def reliability_bins(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = ECE_BINS) -> dict[str, list[float]]:
    """The reliability diagram's points: images binned by top-1 confidence into `n_bins`
    equal-width bins (as torchmetrics' ECE bins them); per non-empty bin its mean confidence,
    accuracy and count. sum(count * |accuracy - confidence|) / N is the ECE. probs (N, C)."""
    conf, pred = probs.double().max(dim=1)
    correct = (pred == labels.long()).double()
    edges = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64)
    which = (torch.bucketize(conf, edges, right=False) - 1).clamp(0, n_bins - 1)  # bins (lo, hi]
    out: dict[str, list[float]] = {"confidence": [], "accuracy": [], "count": []}
    for b in range(n_bins):
        members = which == b
        if members.any():
            out["confidence"].append(float(conf[members].mean()))
            out["accuracy"].append(float(correct[members].mean()))
            out["count"].append(int(members.sum()))
    return out


def ece_of(bins: dict[str, list[float]]) -> float:
    """The expected calibration error of `reliability_bins`: the count-weighted mean gap."""
    n = sum(bins["count"])
    return sum(k * abs(a - c) for k, a, c in zip(bins["count"], bins["accuracy"], bins["confidence"])) / max(n, 1)


def is_valid_temperature(t: float) -> bool:
    return math.isfinite(t) and t > 0
