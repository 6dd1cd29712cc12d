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


def is_valid_temperature(t: float) -> bool:
    return math.isfinite(t) and t > 0
