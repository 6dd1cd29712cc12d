"""Commands over many runs: study (a grid, resumable) and report (its tables and figures)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

console = Console()
Out = Annotated[Optional[Path], typer.Option(help="Folder for run directories (default: the study's out_dir).")]
Fresh = Annotated[bool, typer.Option("--fresh", help="Retrain even if a finished or partial run exists.")]


def study(
    config: Annotated[Path, typer.Argument(help="Study YAML (see src/dermkd/configs/study-*.yaml).")],
    out: Out = None, fresh: Fresh = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the runs and exit.")] = False,
) -> None:
    """Run a grid of strategies x optimizers x teachers x objectives x seeds (resumable).

    Example: dermkd study src/dermkd/configs/study-cpu.yaml
    """
    from dermkd.study.grid import load_study
    from dermkd.study.runner import run_study

    plan = load_study(config)
    if dry_run:
        for spec in plan.specs():
            console.print(f"{spec.run_id}  [dim]({', '.join(spec.sweeps)})[/]")
        console.print(f"{len(plan.specs())} runs")
        return
    rows = run_study(plan, out or plan.base_config().out_dir, resume=not fresh)
    failed = [r for r in rows if r["status"] == "failed"]
    console.print(f"{len(rows) - len(failed)} runs done, {len(failed)} failed; results in "
                  f"{Path(out or plan.base_config().out_dir) / plan.name}/results.csv")


def report(
    study_dir: Annotated[Path, typer.Argument(help="A finished (or partly finished) study directory.")],
    out: Annotated[Optional[Path], typer.Option(help="Output folder (default: STUDY_DIR/report).")] = None,
) -> None:
    """Write the study report: Table 4 replica, strategy and teacher tables, figures, tests.

    Example: dermkd report runs/cpu-study
    """
    from dermkd.report.study_report import write_report

    html = write_report(study_dir, out)
    console.print(f"report: {html} (and report.md, figures beside it)")

