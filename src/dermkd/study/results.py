"""The study's results table: CSV for people, Parquet for dataframes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from dermkd.evaluate.metrics import MEASURES
from dermkd.io import atomic_open, write_csv
from dermkd.study.grid import AXES


def flatten_metrics(m: dict[str, Any]) -> dict[str, Any]:
    """metrics.json -> one flat results row."""
    out = {k: m.get(k) for k in ("top1_accuracy", "balanced_accuracy", "mcc_multiclass", "roc_auc_macro_ovr",
                                 "log_loss", "n")}
    out.update({f"macro_{k}": m["macro"][k] for k in MEASURES})
    out.update(model=m["model"]["name"], params=m["model"]["parameters"], wall_seconds=m.get("wall_seconds"),
               epochs_trained=m.get("epochs_trained"),
               teacher_sha256=(m.get("teacher") or {}).get("sha256", ""))
    return out


def result_columns() -> list[str]:
    return ["run", *AXES, "sweeps", "status", "error", "model", "params", "n", "top1_accuracy",
            "balanced_accuracy", "mcc_multiclass", "roc_auc_macro_ovr", "log_loss",
            *(f"macro_{k}" for k in MEASURES), "wall_seconds", "epochs_trained", "teacher_sha256"]


def write_results(root: Path, rows: list[dict[str, Any]]) -> None:
    cols = result_columns()
    full = [{c: row.get(c) for c in cols} for row in rows]
    write_csv(root / "results.csv", full, cols)
    table = pa.Table.from_pylist([{c: _plain(v) for c, v in r.items()} for r in full])
    with atomic_open(root / "results.parquet", "wb") as fh:
        pq.write_table(table, fh)


def _plain(v: Any) -> Any:
    """Parquet columns need one type: numbers stay numbers, anything else becomes text."""
    return v if v is None or isinstance(v, (int, float)) else str(v)
