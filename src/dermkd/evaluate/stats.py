"""Uncertainty and significance for evaluation results.

One test-set number hides how much it would move on another draw of patients, and two
models a point apart may not differ at all. Bootstrap intervals say how wide the first is;
McNemar (same test set), Wilcoxon (paired seeds/folds) and Friedman (several configs over
the same seeds/folds) say whether the second is real.
"""

from __future__ import annotations

import numpy as np
from scipy import stats as sps

from dermkd.errors import DermkdError
from dermkd.evaluate.metrics import MEASURES, _ratio, confusion_matrix, measures_from_counts

BOOT_STATS: tuple[str, ...] = (
    "top1_accuracy", "balanced_accuracy", "mcc_multiclass", *(f"macro_{m}" for m in MEASURES))
_CHUNK = 2_000_000  # resampled labels per bincount, to bound memory on large test sets


def _boot_indices(n: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n) sample indices drawn with replacement; shared with tests to re-derive."""
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def _boot_confusions(codes: np.ndarray, idx: np.ndarray, num_classes: int) -> np.ndarray:
    """(B, C, C) confusion matrices of the resamples; codes[i] = true*C + pred."""
    cc = num_classes * num_classes
    out = np.empty((idx.shape[0], num_classes, num_classes), dtype=np.int64)
    step = max(1, _CHUNK // max(1, idx.shape[1]))
    for s in range(0, idx.shape[0], step):
        block = idx[s:s + step]
        flat = codes[block] + (np.arange(block.shape[0]) * cc)[:, None]
        out[s:s + step] = np.bincount(flat.ravel(), minlength=block.shape[0] * cc).reshape(
            -1, num_classes, num_classes)
    return out


def _boot_statistics(cms: np.ndarray) -> dict[str, np.ndarray]:
    """BOOT_STATS for a stack of confusion matrices, each a (B,) array (one pass, no loop)."""
    cms = cms.astype(float)
    tp = np.diagonal(cms, axis1=1, axis2=2)
    t_sum, p_sum = cms.sum(axis=2), cms.sum(axis=1)  # support, predicted counts: (B, C)
    n = t_sum.sum(axis=1)
    fp, fn = p_sum - tp, t_sum - tp
    per_class = measures_from_counts(tp, fp, fn, n[:, None] - tp - fp - fn)
    present = t_sum > 0  # classes present in this resample
    trace = tp.sum(axis=1)
    cov_tp = trace * n - (t_sum * p_sum).sum(axis=1)  # Gorodkin's R_K, as in metrics.py
    cov_pp = n * n - (p_sum * p_sum).sum(axis=1)
    cov_tt = n * n - (t_sum * t_sum).sum(axis=1)
    out = {
        "top1_accuracy": trace / n,
        "balanced_accuracy": (per_class["sensitivity"] * present).sum(axis=1) / present.sum(axis=1),
        "mcc_multiclass": _ratio(cov_tp, np.sqrt(cov_tt * cov_pp)),
    }
    # macro averages, like metrics.compute_metrics, run over the classes present in y_true
    out.update({f"macro_{m}": (per_class[m] * present).sum(axis=1) / present.sum(axis=1) for m in MEASURES})
    return out


def bootstrap_ci(y_true, y_pred, num_classes: int, n_boot: int = 1000,
                 confidence: float = 0.95, seed: int = 0) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap interval over test samples for each of BOOT_STATS.

    Resamples patients (rows), so the interval reflects test-set sampling noise only, not
    training variance across seeds (use paired_wilcoxon / friedman for that).
    """
    confusion_matrix(y_true, y_pred, num_classes)  # validates labels, lengths, emptiness
    if n_boot < 1:
        raise DermkdError(f"n_boot must be at least 1, got {n_boot}")
    if not 0.0 < confidence < 1.0:
        raise DermkdError(f"confidence must be strictly between 0 and 1, got {confidence}")
    t = np.asarray(y_true, dtype=np.int64)
    codes = t * num_classes + np.asarray(y_pred, dtype=np.int64)
    idx = _boot_indices(t.size, n_boot, seed)
    values = _boot_statistics(_boot_confusions(codes, idx, num_classes))
    q = [(1 - confidence) / 2, 1 - (1 - confidence) / 2]
    return {k: tuple(float(x) for x in np.quantile(v, q)) for k, v in values.items()}


def _vectors(*named: tuple[str, object], numeric: bool = False) -> list[np.ndarray]:
    """1-D arrays of one common non-zero length, or DermkdError naming the culprit."""
    arrays = []
    for name, v in named:
        a = np.asarray(v, dtype=float) if numeric else np.asarray(v)
        if a.ndim != 1:
            raise DermkdError(f"{name} must be 1-D, got shape {a.shape}")
        if numeric and not np.all(np.isfinite(a)):
            raise DermkdError(f"{name} has non-finite values")
        arrays.append(a)
    sizes = {n: a.size for (n, _), a in zip(named, arrays)}
    if len(set(sizes.values())) != 1:
        raise DermkdError(f"lengths differ: {sizes}")
    if arrays[0].size == 0:
        raise DermkdError(f"{', '.join(sizes)} are empty")
    return arrays


def mcnemar(y_true, pred_a, pred_b) -> dict:
    """McNemar's test of two classifiers on the same samples, from their discordant pairs.

    Exact binomial below 25 discordant pairs, where the chi-square approximation is poor.
    """
    t, a, b = _vectors(("y_true", y_true), ("pred_a", pred_a), ("pred_b", pred_b))
    ok_a, ok_b = a == t, b == t
    b01, b10 = int(np.sum(~ok_a & ok_b)), int(np.sum(ok_a & ~ok_b))
    n = b01 + b10
    if n == 0:
        return {"b01": 0, "b10": 0, "statistic": 0.0, "p_value": 1.0, "method": "exact"}
    if n < 25:
        k = min(b01, b10)
        p = sps.binomtest(k, n, 0.5, alternative="two-sided").pvalue
        return {"b01": b01, "b10": b10, "statistic": float(k), "p_value": float(p),
                "method": "exact"}
    stat = (abs(b01 - b10) - 1) ** 2 / n
    return {"b01": b01, "b10": b10, "statistic": float(stat),
            "p_value": float(sps.chi2.sf(stat, 1)), "method": "chi2"}


def paired_accuracy_difference(y_true, pred_a, pred_b, n_boot: int = 2000, confidence: float = 0.95,
                               seed: int = 0) -> tuple[float, float, float]:
    """top-1(b) - top-1(a) on the same samples, with a paired percentile bootstrap interval
    (both models resampled on the same rows, so their shared hard and easy images cancel)."""
    t, a, b = _vectors(("y_true", y_true), ("pred_a", pred_a), ("pred_b", pred_b))
    d = (b == t).astype(np.float64) - (a == t).astype(np.float64)  # (N,) per-sample difference
    boot = d[_boot_indices(d.size, n_boot, seed)].mean(axis=1)
    lo, hi = np.quantile(boot, [(1 - confidence) / 2, 1 - (1 - confidence) / 2])
    return float(d.mean()), float(lo), float(hi)


def paired_metric_difference(y_true, pred_a, pred_b, num_classes: int, metric: str = "balanced_accuracy",
                             n_boot: int = 2000, confidence: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """metric(b) - metric(a) for any of BOOT_STATS (e.g. balanced accuracy), with a paired
    percentile bootstrap interval: both models' confusion matrices from the same resampled rows."""
    if metric not in BOOT_STATS:
        raise DermkdError(f"unknown metric {metric!r}; known: {', '.join(BOOT_STATS)}")
    t, a, b = _vectors(("y_true", y_true), ("pred_a", pred_a), ("pred_b", pred_b))
    everyone = np.arange(t.size)[None]
    idx = _boot_indices(t.size, n_boot, seed)
    point, boot = [], []
    for pred in (a, b):
        codes = t * num_classes + pred
        point.append(_boot_statistics(_boot_confusions(codes, everyone, num_classes))[metric][0])
        boot.append(_boot_statistics(_boot_confusions(codes, idx, num_classes))[metric])
    lo, hi = np.nanquantile(boot[1] - boot[0], [(1 - confidence) / 2, 1 - (1 - confidence) / 2])
    return float(point[1] - point[0]), float(lo), float(hi)


def paired_wilcoxon(scores_a, scores_b) -> dict:
    """Wilcoxon signed-rank test of paired scores (same seeds/folds), two-sided."""
    a, b = _vectors(("scores_a", scores_a), ("scores_b", scores_b), numeric=True)
    d = a - b
    out = {"statistic": None, "p_value": 1.0, "n": int(d.size), "median_diff": float(np.median(d))}
    if d.size < 2:
        return {**out, "note": "fewer than 2 pairs: no test possible"}
    if np.all(d == 0):
        return {**out, "note": "all paired differences are zero"}
    res = sps.wilcoxon(a, b)
    return {**out, "statistic": float(res.statistic), "p_value": float(res.pvalue)}


def friedman(scores: dict[str, list[float]]) -> dict:
    """Friedman test: do k >= 3 configurations differ, blocked by seed/fold?

    mean_rank is 1 (worst) .. k (best) per block, averaged, to see who leads if p is small.
    """
    if not scores:
        raise DermkdError("friedman needs at least one configuration's scores")
    names = list(scores)
    arrays = _vectors(*((f"scores[{k!r}]", scores[k]) for k in names), numeric=True)
    k, n = len(names), arrays[0].size
    out = {"statistic": None, "p_value": None, "k": k, "n": n}
    if k < 3:
        return {**out, "note": f"Friedman needs at least 3 configurations, got {k}"}
    if n < 2:
        return {**out, "note": f"Friedman needs at least 2 blocks (seeds/folds), got {n}"}
    table = np.column_stack(arrays)  # (n blocks, k configs)
    out["mean_rank"] = dict(zip(names, sps.rankdata(table, axis=1).mean(axis=0).tolist()))
    if np.all(table == table[:, :1]):
        return {**out, "p_value": 1.0, "note": "all configurations tie in every block"}
    res = sps.friedmanchisquare(*arrays)
    return {**out, "statistic": float(res.statistic), "p_value": float(res.pvalue)}


def _fmt_p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3g}"


def describe_difference(name_a: str, name_b: str, test: dict, alpha: float = 0.05) -> str:
    """One plain-language sentence for a mcnemar or paired_wilcoxon result (A vs B)."""
    if not 0.0 < alpha < 1.0:
        raise DermkdError(f"alpha must be strictly between 0 and 1, got {alpha}")
    if "b01" in test:
        label, direction = "McNemar", np.sign(test["b10"] - test["b01"])  # > 0: A better
    elif "median_diff" in test:
        label, direction = "Wilcoxon", np.sign(test["median_diff"])
    else:
        raise DermkdError("describe_difference needs a mcnemar or paired_wilcoxon result")
    p = test.get("p_value")
    if p is None:
        return f"cannot compare {name_a} and {name_b}: {test.get('note', 'no p-value')}"
    ptxt = f"{label} {_fmt_p(p)}"
    if p >= alpha:
        return (f"no significant difference between {name_a} and {name_b} ({ptxt}); "
                "the evidence is too weak to rank them")
    if direction > 0:
        return f"{name_a} better than {name_b} ({ptxt})"
    if direction < 0:
        return f"{name_a} worse than {name_b} ({ptxt})"
    return f"{name_a} and {name_b} differ significantly ({ptxt}) but neither leads overall"
