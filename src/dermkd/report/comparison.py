"""The comparison table: one row per run, the paper's ten measures (macro one-vs-rest)
beside true top-1 accuracy, balanced accuracy and multiclass MCC."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from dermkd.evaluate.metrics import MEASURES
from dermkd.io import write_csv, write_text

# column -> header; macro_* are one-vs-rest averages (the paper's Table 4 convention)
HONEST = {"top1_accuracy": "Top-1", "balanced_accuracy": "Bal.Acc", "mcc_multiclass": "MCC"}
SHORT = {"sensitivity": "Sens", "specificity": "Spec", "precision": "Prec", "npv": "NPV", "fpr": "FPR",
         "fdr": "FDR", "fnr": "FNR", "ovr_accuracy": "OvR-Acc", "f1": "F1", "mcc": "OvR-MCC"}


def comparison_rows(results: list[tuple[str, dict]]) -> list[dict]:
    """(label, metrics.json) pairs -> flat rows."""
    rows = []
    for label, m in results:
        model = m.get("model") or {}  # a scored predictions CSV has no model record
        row = {"run": label, "model": model.get("name", ""), "params": model.get("parameters"),
               "strategy": m.get("strategy", ""), "n_test": m["n"]}
        row.update({k: m[k] for k in HONEST})
        row.update({f"macro_{k}": m["macro"][k] for k in MEASURES})
        row["wall_seconds"] = m.get("wall_seconds")
        rows.append(row)
    return rows


def columns() -> list[str]:
    return ["run", "model", "params", "strategy", "n_test", *HONEST, *(f"macro_{k}" for k in MEASURES),
            "wall_seconds"]


def _header(col: str) -> str:
    return HONEST.get(col) or SHORT.get(col.removeprefix("macro_")) or col


def print_table(rows: list[dict], title: str, console: Console | None = None) -> None:
    """Measures down, runs across: fits a terminal for a handful of runs."""
    table = Table(title=title, caption="Top-1, Bal.Acc, MCC: multiclass; the rest: macro one-vs-rest (the paper's).")
    table.add_column("measure")
    for row in rows:
        table.add_column(str(row["run"]), justify="right")
    for col in columns()[1:]:
        table.add_row(_header(col), *(_fmt(row[col]) for row in rows))
    (console or Console()).print(table)


def write_tables(rows: list[dict], out_dir: str | Path) -> None:
    out_dir = Path(out_dir)
    write_csv(out_dir / "comparison.csv", rows, columns())
    head = "| " + " | ".join(_header(c) for c in columns()) + " |"
    sep = "|" + "---|" * len(columns())
    body = ["| " + " | ".join(_fmt(r[c]) for c in columns()) + " |" for r in rows]
    note = "\nTop-1, Bal.Acc and MCC are multiclass; the other measures are macro one-vs-rest averages.\n"
    write_text(out_dir / "comparison.md", "\n".join([head, sep, *body]) + "\n" + note)


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    if isinstance(v, int) and v > 99999:
        return f"{v / 1e6:.2f}M"
    return "" if v is None else str(v)
