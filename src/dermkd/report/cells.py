"""How numbers are printed in every table, in one place so HTML and Markdown agree."""

from __future__ import annotations

import math

MISSING = "—"

# results.csv column -> table header; all in stats.BOOT_STATS, so each gets an interval
METRIC_COLUMNS: dict[str, str] = {
    "top1_accuracy": "Top-1", "balanced_accuracy": "Bal. acc",
    "macro_sensitivity": "Sensitivity", "macro_specificity": "Specificity", "macro_precision": "Precision",
    "macro_npv": "NPV", "macro_fpr": "FPR", "macro_fdr": "FDR", "macro_fnr": "FNR",
    "macro_ovr_accuracy": "OvR accuracy", "macro_f1": "F-score", "macro_mcc": "MCC (OvR)",
}

METRIC_NOTE = ("Top-1 and Bal. acc are multiclass; every other column is the macro average of per-class "
               "one-vs-rest values (the paper's convention; its \"accuracy\" is our OvR accuracy). "
               "Cells: value [95% bootstrap CI over test images, 1000 resamples, seed 0].")


def value(v: float | None) -> str:
    return MISSING if v is None or math.isnan(v) else f"{v:.4f}"


def with_ci(v: float | None, ci: tuple[float, float] | None) -> str:
    """'0.7123 [0.6500, 0.7700]'; the bare value when there is no interval."""
    return value(v) if ci is None or v is None else f"{v:.4f} [{ci[0]:.4f}, {ci[1]:.4f}]"


def signed(v: float) -> str:
    return f"{v:+.4f}"


def p_value(p: float) -> str:
    return f"p = {p:.4f}" if p >= 1e-4 else f"p = {p:.1e}"


def mean_sd(values: list[float]) -> str:
    """'0.7123 ± 0.0100' (sample sd); a single value has no spread."""
    if len(values) < 2:
        return value(values[0]) if values else MISSING
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((x - mean) ** 2 for x in values) / (len(values) - 1))
    return f"{mean:.4f} ± {sd:.4f}"


def count(n: float | None) -> str:
    """12.3M / 45.6G style for parameter and FLOP counts."""
    if n is None:
        return MISSING
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= scale:
            return f"{n / scale:.2f}{suffix}"
    return f"{n:.0f}"
