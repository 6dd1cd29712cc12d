"""Commands over many runs: study (a grid, resumable) and report (its tables and figures)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

console = Console()
Out = Annotated[Optional[Path], typer.Option(help="Folder for run directories (default: the study's out_dir).")]
Fresh = Annotated[bool, typer.Option("--fresh", help="Retrain even if a finished or partial run exists.")]
Tracker = Annotated[Optional[str], typer.Option(help="Track every run in mlflow or tensorboard (none: off); "
                                                     "default: the study file's.")]
TrackingUri = Annotated[Optional[str], typer.Option(help="MLflow tracking URI (default: a file store OUT/mlruns) "
                                                         "or TensorBoard folder.")]


def study(
    config: Annotated[Path, typer.Argument(help="Study YAML (see src/dermkd/configs/study-*.yaml).")],
    out: Out = None, fresh: Fresh = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the runs and exit.")] = False,
    backend: Annotated[str, typer.Option(help="Where the runs execute: local (this process, one after another) "
                                              "| ray (Ray tasks; pip install 'dermkd[ray]').")] = "local",
    ray_address: Annotated[Optional[str], typer.Option(help="An existing Ray cluster ('auto', "
                                                            "'ray://head:10001'); default: a local instance.")] = None,
    cpus_per_run: Annotated[float, typer.Option(help="Ray: CPUs each run asks for (and its torch threads, "
                                                     "unless the study sets them).")] = 1.0,
    gpus_per_run: Annotated[float, typer.Option(help="Ray: GPUs each run asks for.")] = 0.0,
    retries: Annotated[int, typer.Option(help="Try a failed run again this many times before recording "
                                              "it as failed.")] = 1,
    tracker: Tracker = None, tracking_uri: TrackingUri = None,
) -> None:
    """Run a grid of strategies x optimizers x teachers x objectives x seeds (resumable).

    Example: dermkd study src/dermkd/configs/study-cpu.yaml --backend ray --tracker mlflow
    """
    from dermkd.study.backends import BackendOptions
    from dermkd.study.launch import backend as find_backend
    from dermkd.study.grid import load_study, with_tracking

    run = find_backend(backend)
    opts = BackendOptions(retries, ray_address, cpus_per_run, gpus_per_run).validate(backend)
    plan = with_tracking(load_study(config), tracker, tracking_uri)
    if dry_run:
        for spec in plan.specs():
            console.print(f"{spec.run_id}  [dim]({', '.join(spec.sweeps)})[/]")
        console.print(f"{len(plan.specs())} runs")
        return
    rows = run(plan, out or plan.base_config().out_dir, not fresh, opts)
    failed = [r for r in rows if r["status"] == "failed"]
    console.print(f"{len(rows) - len(failed)} runs done, {len(failed)} failed; results in "
                  f"{Path(out or plan.base_config().out_dir) / plan.name}/results.csv")


def report(
    study_dir: Annotated[Path, typer.Argument(help="A finished (or partly finished) study directory.")],
    out: Annotated[Optional[Path], typer.Option(help="Output folder (default: STUDY_DIR/report).")] = None,
    tracker: Annotated[Optional[str], typer.Option(help="Also log the report's files to mlflow, as a run "
                                                        "'report' in the study's experiment.")] = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Write the study report: Table 4 replica, strategy and teacher tables, figures, tests.

    Example: dermkd report runs/cpu-study
    """
    from dermkd.report.study_report import write_report

    html = write_report(study_dir, out)
    console.print(f"report: {html} (and report.md, figures beside it)")
    if tracker not in (None, "none"):
        from dermkd.train.tracking import log_report

        where = log_report(tracker, tracking_uri, study_dir, html.parent)
        console.print(f"report logged to {where}")

