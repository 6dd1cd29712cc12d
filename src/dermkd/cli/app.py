"""`dermkd`: the command table, logging and the one error boundary.

Every user error is one line on stderr and a non-zero exit; a run interrupted with
Ctrl-C resumes when the same command is run again. The commands live in modules by
what they do: `training` (train, distill, pipeline, demo), `scoring` (evaluate, export),
`studies` (study, report), `data_tools` (data synth/audit/download), `bench`.
"""

from __future__ import annotations

import logging
import signal
import sys
import warnings

import typer
from rich.console import Console
from rich.logging import RichHandler

from dermkd.cli import bench, data_tools, scoring, studies, training
from dermkd.cli.knobs import lazy_choices
from dermkd.errors import DermkdError

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False,
                  help="Train, distil and evaluate small skin-lesion classifiers (the DSC paper).")
console = Console()


@app.callback(invoke_without_command=True)
def root(ctx: typer.Context) -> None:
    """With no command, show the help."""
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())


def models() -> None:
    """List the registered models, strategies, optimizers, schedulers, objectives and data layouts."""
    from dermkd.build import REGISTRIES, registry

    for kind in REGISTRIES:
        title = kind[:-1] + "ies" if kind.endswith("y") else kind + "s"
        console.print(f"[bold]{title}[/]: {', '.join(registry(kind).names())}")


for command in (training.train, training.distill, scoring.evaluate, scoring.predict, scoring.calibrate, scoring.card,
                scoring.explain, scoring.serve, training.pipeline, training.demo, studies.study, scoring.export,
                studies.report, bench.bench, models):
    app.command()(command)
data_app = typer.Typer(help="Data tools: write the embedded data set, audit a data set, download from ISIC.")
app.add_typer(data_app, name="data")
for name, command in (("synth", data_tools.data_synth), ("audit", data_tools.data_audit),
                      ("download", data_tools.data_download)):
    data_app.command(name)(command)


def _setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s", datefmt="[%X]",
                        handlers=[RichHandler(console=Console(stderr=True), show_path=False)])
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*LeafSpec.*")
    # a resumed run finds its own checkpoints and logs: expected, not a problem
    warnings.filterwarnings("ignore", ".*Checkpoint directory .* exists and is not empty.*")
    warnings.filterwarnings("ignore", ".*Experiment logs directory .* exists and is not empty.*")
    # partial fine-tuning keeps the frozen stages in eval mode on purpose (Classifier.train)
    warnings.filterwarnings("ignore", r".*module\(s\) in eval mode at the start of training.*")


INTERRUPTED = 130  # the shell's code for a process ended by SIGINT


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM ends a run as Ctrl-C does: status "interrupted", exit 130


def main() -> None:
    _setup_logging()
    signal.signal(signal.SIGTERM, _terminate)
    try:
        code = lazy_choices(typer.main.get_command(app)).main(standalone_mode=False)
    except typer.TyperException as exc:  # bad flag, bad value, unknown command
        print(f"dermkd: error: {exc.format_message()}", file=sys.stderr)
        sys.exit(2)
    except (DermkdError, OSError) as exc:
        print(f"dermkd: error: {exc}", file=sys.stderr)
        sys.exit(1)
    except (KeyboardInterrupt, typer.Abort):
        code = INTERRUPTED
    if code == INTERRUPTED:  # typer turns Ctrl-C into exit code 130 itself
        print("dermkd: interrupted; run the same command again to resume", file=sys.stderr)
    sys.exit(code if isinstance(code, int) else 0)
