"""The paper's Table 4 as data, so the report can set our numbers beside its claims.

Copied from the paper text (`shared/paper/000_35afbc7af1daaaa4.txt`), one row per optimizer.
The paper's "Accuracy" is the macro one-vs-rest accuracy (our `ovr_accuracy`), not top-1.
Nadam is printed "Namax" and its FNR "0.0427s"; read as 0.0427.
"""

from __future__ import annotations

# paper column -> our results.csv column (all macro one-vs-rest averages)
PAPER_COLUMNS: dict[str, str] = {
    "sensitivity": "macro_sensitivity", "specificity": "macro_specificity", "precision": "macro_precision",
    "npv": "macro_npv", "fpr": "macro_fpr", "fdr": "macro_fdr", "fnr": "macro_fnr",
    "accuracy": "macro_ovr_accuracy", "f1": "macro_f1",
}

# our optimizer name -> the name in the paper's figures (its Table 4 prints Nadam as "Namax")
PAPER_OPTIMIZER_NAMES: dict[str, str] = {
    "adagrad": "AdaGrad", "sgd": "SGD", "rmsprop": "RMSprop", "nadam": "Nadam",
    "adamax": "Adamax", "adam": "Adam",
}

_ORDER = tuple(PAPER_COLUMNS)
_ROWS: dict[str, tuple[float, ...]] = {
    "adagrad": (0.9661, 0.9686, 0.9686, 0.9661, 0.0314, 0.0314, 0.0339, 0.9673, 0.9673),
    "sgd": (0.9915, 0.9941, 0.9941, 0.9915, 0.0059, 0.0059, 0.0085, 0.9928, 0.9928),
    "rmsprop": (0.9744, 0.9620, 0.9621, 0.9744, 0.0380, 0.0379, 0.0256, 0.9682, 0.9682),
    "nadam": (0.9573, 0.9620, 0.9614, 0.9580, 0.0380, 0.0386, 0.0427, 0.9597, 0.9594),
    "adamax": (0.9916, 0.9957, 0.9958, 0.9915, 0.0043, 0.0042, 0.0084, 0.9936, 0.9937),
    "adam": (0.9497, 0.9451, 0.9457, 0.9492, 0.0549, 0.0543, 0.0503, 0.9474, 0.9477),
}

# optimizer -> paper column -> value
PAPER_TABLE4: dict[str, dict[str, float]] = {opt: dict(zip(_ORDER, row)) for opt, row in _ROWS.items()}
