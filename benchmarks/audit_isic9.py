"""Benchmark `dermkd data audit` on the isic9 Train set: a cold run (fresh, empty cache:
every file is read, hashed, decoded and pHashed) and a second run (same cache: files are
only read and sha256-hashed). Prints one table; writes nothing but a temporary cache.

    .venv/bin/python benchmarks/audit_isic9.py [DATA_DIR] [--workers N]

Note: the OS page cache is not dropped, so both runs read files from memory if they were
read recently; the cold/cached difference is decoding + hashing, not disk I/O.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from dermkd.data.audit import DEFAULT_THRESHOLD, AuditConfig, audit

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "isic9" / "Train"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--workers", type=int, default=AuditConfig().workers)
    args = ap.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory(prefix="dermkd-audit-bench-") as tmp:
        cfg = AuditConfig(workers=args.workers, cache=Path(tmp) / "audit-cache.json")
        runs = [("1st, cold", audit([args.data], cfg=cfg)), ("2nd, cached", audit([args.data], cfg=cfg))]
    t = Table(title=f"dermkd data audit of {args.data}")
    for col in ("run", "files", "cached", "seconds", "hash s", "search s", "images/s"):
        t.add_column(col, justify="left" if col == "run" else "right")
    for name, r in runs:
        t.add_row(name, str(len(r.files)), str(r.cached_files), f"{r.seconds:.2f}", f"{r.hash_seconds:.2f}",
                  f"{r.search_seconds:.2f}", f"{r.files_per_s:.0f}")
    console.print(t)
    first, second = runs[0][1], runs[1][1]
    conflicts = first.conflicts
    console.print(f"speed-up second/first: {first.seconds / second.seconds:.1f}x")
    console.print(f"exact groups: {len(first.exact_groups)}   near groups (threshold {DEFAULT_THRESHOLD}): "
                  f"{len(first.near_groups)}   label conflicts: {sum(g.kind == 'exact' for g in conflicts)} exact, "
                  f"{sum(g.kind == 'near' for g in conflicts)} near   unreadable: {len(first.unreadable)}")
    console.print(f"workers {args.workers}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
                  f"load average {' / '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
