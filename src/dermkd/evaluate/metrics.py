"""Classification measures, per class one-vs-rest (OvR) and summarised, from labels.

The paper reports ten measures per class, each from that class's OvR TP/FP/FN/TN. Its
"accuracy" is the OvR one, (TP + TN) / N, which we call `ovr_accuracy` because it is not
top-1 accuracy: every sample of the other eight classes that is neither labelled nor
predicted as class k is a true negative for k, so on 9 classes each OvR accuracy sits near
1 even when top-1 accuracy is mediocre (a classifier that is right 70% of the time has a
macro OvR accuracy of about 1 - 2 * 0.3 / 9 = 0.93). The paper's Table 4 numbers look like
macro averages of these OvR measures, so we report both them and the honest multiclass
figures (top-1, balanced accuracy, multiclass MCC, ROC AUC, log loss) side by side.

A ratio whose denominator is 0 is 0.0 (scikit-learn's zero_division=0), never NaN, so a
class that is never predicted or absent from the labels gives numbers, not warnings.
"""

from __future__ import annotations

import numpy as np

from dermkd.errors import DermkdError

MEASURES: tuple[str, ...] = (
    "sensitivity", "specificity", "precision", "npv", "fpr",
    "fdr", "fnr", "ovr_accuracy", "f1", "mcc",
)


def _labels(y, name: str, num_classes: int) -> np.ndarray:
    """Check one label vector: 1-D integers in [0, num_classes)."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise DermkdError(f"{name} must be 1-D, got shape {y.shape}")
    if y.size and not np.issubdtype(y.dtype, np.integer):
        raise DermkdError(f"{name} must hold integer class indices, got dtype {y.dtype}")
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise DermkdError(f"{name} has labels outside [0, {num_classes}): {y.min()}..{y.max()}")
    return y.astype(np.int64)


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """(C, C) int64 counts, rows = true class, columns = predicted class.

    Bad labels raise DermkdError rather than being silently dropped or wrapped, because a
    mismatched class mapping would otherwise yield plausible but wrong metrics.
    """
    if num_classes < 1:
        raise DermkdError(f"num_classes must be at least 1, got {num_classes}")
    t = _labels(y_true, "y_true", num_classes)
    p = _labels(y_pred, "y_pred", num_classes)
    if t.size != p.size:
        raise DermkdError(f"y_true has {t.size} labels but y_pred has {p.size}")
    if t.size == 0:
        raise DermkdError("cannot compute metrics on zero samples")
    flat = np.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes).astype(np.int64)


def ovr_counts(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class one-vs-rest TP/FP/FN/TN, each shape (C,), from a confusion matrix."""
    cm = np.asarray(cm, dtype=np.int64)
    tp = np.diag(cm).copy()
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    tn = cm.sum() - tp - fp - fn
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn}


def _ratio(num, den) -> np.ndarray:
    """num / den elementwise, 0.0 where den == 0 (zero_division=0), without warnings."""
    num, den = np.broadcast_arrays(np.asarray(num, float), np.asarray(den, float))
    return np.divide(num, den, out=np.zeros(num.shape), where=den != 0)


def measures_from_counts(tp, fp, fn, tn) -> dict[str, np.ndarray]:
    """The ten MEASURES from OvR counts; arrays (one entry per class) or scalars."""
    tp, fp, fn, tn = (np.asarray(x, dtype=float) for x in (tp, fp, fn, tn))
    # Float before multiplying: the MCC denominator overflows int64 from ~50k samples.
    mcc_den = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return {
        "sensitivity": _ratio(tp, tp + fn),
        "specificity": _ratio(tn, fp + tn),
        "precision": _ratio(tp, tp + fp),
        "npv": _ratio(tn, tn + fn),
        "fpr": _ratio(fp, fp + tn),
        "fdr": _ratio(fp, fp + tp),
        "fnr": _ratio(fn, fn + tp),
        "ovr_accuracy": _ratio(tn + tp, tp + fp + tn + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "mcc": _ratio(tp * tn - fp * fn, mcc_den),
    }


def _mcc_multiclass(cm: np.ndarray) -> float:
    """Gorodkin's R_K multiclass MCC (what scikit-learn's matthews_corrcoef computes)."""
    cm = cm.astype(float)
    t_sum, p_sum, n = cm.sum(axis=1), cm.sum(axis=0), cm.sum()
    cov_tp = np.trace(cm) * n - t_sum @ p_sum
    cov_pp = n * n - p_sum @ p_sum
    cov_tt = n * n - t_sum @ t_sum
    return float(_ratio(cov_tp, np.sqrt(cov_tt * cov_pp)))


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of x, tied values sharing the mean of their ranks."""
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    return (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]


def _roc_auc_macro_ovr(y: np.ndarray, probs: np.ndarray) -> float | None:
    """Macro OvR ROC AUC by the Mann-Whitney U statistic (ties count one half).

    Classes without both positives and negatives in y have no AUC and are skipped; None if
    no class has one.
    """
    aucs = []
    for k in range(probs.shape[1]):
        pos = y == k
        n_pos, n_neg = int(pos.sum()), int((~pos).sum())
        if n_pos and n_neg:
            rank_sum = _average_ranks(probs[:, k])[pos].sum()
            aucs.append((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))
    return float(np.mean(aucs)) if aucs else None


def _floats(d: dict[str, np.ndarray], index=()) -> dict[str, float]:
    return {m: float(d[m][index]) for m in MEASURES}


def compute_metrics(y_true, y_pred, class_names: list[str], probs: np.ndarray | None = None) -> dict:
    """All reported metrics as a JSON-friendly dict (plain floats, ints, lists).

    "micro" sums TP/FP/FN/TN over classes before dividing; for single-label multiclass
    data every error is one FP and one FN, so micro sensitivity, precision and F1 all
    equal top-1 accuracy. "macro" averages the per-class OvR values, like the paper, over
    the classes present in `y_true` (as balanced accuracy does): a class with no test
    image has no sensitivity to average. Those classes are listed in "absent_classes".
    """
    class_names = list(class_names)
    if len(set(class_names)) != len(class_names):
        raise DermkdError(f"class_names has duplicates: {class_names}")
    cm = confusion_matrix(y_true, y_pred, len(class_names))
    counts = ovr_counts(cm)
    per_class = measures_from_counts(**counts)
    micro = measures_from_counts(**{k: v.sum() for k, v in counts.items()})
    support = cm.sum(axis=1)
    n = int(cm.sum())
    out = {
        "n": n,
        "top1_accuracy": float(np.trace(cm) / n),
        "balanced_accuracy": float(per_class["sensitivity"][support > 0].mean()),
        "mcc_multiclass": _mcc_multiclass(cm),
        "macro": {m: float(per_class[m][support > 0].mean()) for m in MEASURES},
        "absent_classes": [name for name, k in zip(class_names, support) if k == 0],
        "micro": _floats(micro),
        "per_class": {
            name: {**_floats(per_class, k), "support": int(support[k])}
            for k, name in enumerate(class_names)
        },
        "confusion_matrix": cm.tolist(),
        "class_names": class_names,
    }
    if probs is not None:
        probs = np.asarray(probs, dtype=float)
        if probs.shape != (n, len(class_names)):
            raise DermkdError(f"probs must have shape ({n}, {len(class_names)}), got {probs.shape}")
        y = np.asarray(y_true, dtype=np.int64)
        out["roc_auc_macro_ovr"] = _roc_auc_macro_ovr(y, probs)
        p_true = np.clip(probs[np.arange(n), y], 1e-15, 1.0)
        out["log_loss"] = float(-np.log(p_true).mean())
    return out
