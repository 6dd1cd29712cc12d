"""`dermkd bench`: speed and memory figures, each beside a reference measured in the same run."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

console = Console()

ISIC_TRAIN = Path("../shared/data/isic9/Train")


def bench(
    only: Annotated[Optional[list[str]], typer.Option("--only", help="Run this benchmark only (repeatable).")] = None,
    smoke: Annotated[bool, typer.Option("--smoke", help="Tiny sizes on synthetic data: seconds, not minutes.")] = False,
    data: Annotated[Optional[Path], typer.Option(help=f"Class-folder root; default: {ISIC_TRAIN} if it exists "
                                                      "(and not --smoke), else the embedded synthetic data.")] = None,
    image_size: Annotated[Optional[int], typer.Option(help="Image size in px (default 112; 32 with --smoke).")] = None,
    threads: Annotated[Optional[int], typer.Option(help="CPU threads for torch; default: all.")] = None,
    student_run: Annotated[Optional[Path], typer.Option(help="A trained student run, for accuracy columns.")] = None,
    teacher_run: Annotated[Optional[Path], typer.Option(help="A trained teacher run, for accuracy columns.")] = None,
    live_run: Annotated[Optional[Path], typer.Option(help="A KD run with a live teacher ...")] = None,
    store_run: Annotated[Optional[Path], typer.Option(help="... and the same run with --teacher-cache: the store's "
                                                           "accuracy cost.")] = None,
    study: Annotated[Optional[Path], typer.Option(help="A finished students study (study-students.yaml): the four "
                                                       "runs above are taken from it; explicit flags win.")] = None,
    out: Annotated[Path, typer.Option(help="Markdown to write (a .json sidecar goes beside it).")] = Path(
        "docs/benchmarks.md"),
    write: Annotated[bool, typer.Option("--write/--no-write", help="Write OUT, or only print the table.")] = True,
    merge: Annotated[bool, typer.Option("--merge", help="Keep OUT's sections of the benchmarks not run now "
                                                        "(each says which command measured it).")] = False,
) -> None:
    """Measure speed and memory against references taken in the same run (issue "Fast on a laptop CPU").

    Example: dermkd bench --only framework --only compute --no-write
    """
    import shlex

    import torch

    from dermkd.bench.common import BenchContext, machine
    from dermkd.bench.runner import ordered_names, print_table, run_benchmarks, write_markdown

    names = ordered_names(only)  # an unknown name fails here, before any data is read
    if study is not None:
        from dermkd.bench.study_runs import runs_from_study

        found = runs_from_study(study)
        student_run, teacher_run = student_run or found["student_run"], teacher_run or found["teacher_run"]
        live_run, store_run = live_run or found["live_run"], store_run or found["store_run"]
    if data is None and not smoke and ISIC_TRAIN.is_dir():
        data = ISIC_TRAIN
    ctx = BenchContext(size="smoke" if smoke else "full", data_root=data,
                       image_size=image_size or (32 if smoke else 112),
                       threads=threads or torch.get_num_threads(), student_run=student_run, teacher_run=teacher_run,
                       live_run=live_run, store_run=store_run)
    figures = run_benchmarks(ctx, names)
    print_table(figures, console)
    if write:
        sidecar = write_markdown(out, figures, machine(), shlex.join(["dermkd", *sys.argv[1:]]), ctx, merge)
        console.print(f"wrote {out} and {sidecar}")

