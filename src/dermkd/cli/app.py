"""`dermkd` commands: train, distill, evaluate, pipeline, demo, models.

Every user error is one line on stderr and a non-zero exit; a run interrupted with
Ctrl-C resumes when the same command is run again.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import warnings
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.logging import RichHandler

from dermkd.cli import options as o
from dermkd.errors import DermkdError

# torch, timm and lightning take seconds to import: commands import what they use, so
# `--help` and argument errors answer at once.

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False,
                  help="Train, distil and evaluate small skin-lesion classifiers (the DSC paper).")
console = Console()


@app.callback(invoke_without_command=True)
def root(ctx: typer.Context) -> None:
    """With no command, show the help."""
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())


@app.command()
def train(
    data: o.Data = None, model: o.Model = None, profile: o.Profile = "cpu", config: o.ConfigFile = None,
    name: o.Name = None, out: o.Out = None, image_size: o.ImageSize = None, split_file: o.SplitFile = None,
    conflict_policy: o.ConflictPolicy = None, near_threshold: o.NearThreshold = None,
    near_duplicates: o.NearDuplicates = None, allow_new_classes: o.AllowNew = None, layout: o.Layout = None,
    metadata: o.Metadata = None, task: o.Task = None, test: o.TestRoot = None,
    split_strategy: o.SplitStrategy = None, folds: o.Folds = None,
    fold: o.Fold = None, class_balance: o.ClassBalance = None, refit: o.Refit = None, epochs: o.Epochs = None,
    batch_size: o.BatchSize = None, seed: o.Seed = None, threads: o.Threads = None, precision: o.Precision = None,
    optimizer: o.Optimizer = None,
    lr: o.Lr = None, scheduler: o.Scheduler = None, backbone_lr_scale: o.BackboneLrScale = None,
    warmup_epochs: o.WarmupEpochs = None, pretrained: o.Pretrained = None,
    pretrained_file: o.PretrainedFile = None, trainable_stages: o.TrainableStages = None,
    bn_momentum: o.BnMomentum = None, objective: o.Objective = None, fresh: o.Fresh = False,
) -> None:
    """Train any registered model on hard labels (the baseline strategy).

    Example: dermkd train --data ../shared/data/isic9/Train --model dsc --profile cpu --name dsc-baseline
    """
    from dermkd.pipeline import load_data
    from dermkd.report.comparison import comparison_rows, print_table
    from dermkd.train.stage import run_stage

    cfg = o.build_run_config(profile, config, {**locals(), "strategy": "baseline"})
    cfg = dataclasses.replace(cfg, name=name or f"train-{cfg.model.name}")
    result = run_stage(cfg, load_data(cfg), Path(cfg.out_dir) / cfg.name, resume=not fresh)
    print_table(comparison_rows([(result.name, result.metrics)]), f"{result.run_dir}: test split")


@app.command()
def distill(
    teacher: Annotated[list[Path], typer.Option(help="Teacher run directory or checkpoint file; repeat it for an "
                                                     "ensemble (the mean of the softened probabilities).")],
    teacher_weight: Annotated[Optional[list[float]], typer.Option(help="With several --teacher: each one's weight "
                                                                       "(repeatable, same order).")] = None,
    student: o.Model = None, pretrained: o.Pretrained = None, pretrained_file: o.PretrainedFile = None,
    trainable_stages: o.TrainableStages = None, strategy: o.StrategyName = None, teacher_epoch: o.TeacherEpoch = None,
    data: o.Data = None, profile: o.Profile = "cpu", config: o.ConfigFile = None, name: o.Name = None,
    out: o.Out = None, image_size: o.ImageSize = None, split_file: o.SplitFile = None, epochs: o.Epochs = None,
    batch_size: o.BatchSize = None, seed: o.Seed = None, threads: o.Threads = None, precision: o.Precision = None,
    optimizer: o.Optimizer = None,
    lr: o.Lr = None, scheduler: o.Scheduler = None, alpha: o.Alpha = None, temperature: o.Temperature = None,
    kd_multiplier: o.KdMultiplier = None, objective: o.Objective = None, bn_momentum: o.BnMomentum = None,
    teacher_cache: o.TeacherCache = None, teacher_image_size: o.TeacherImageSize = None, fresh: o.Fresh = False,
) -> None:
    """Distil a teacher (or an ensemble) into a student (default: standard KD into the DSC student).

    Without --data/--split-file the (first) teacher run's data and split are reused, so the
    student is tested on images the teacher never trained on.

    Example: dermkd distill --teacher runs/lite0 --teacher runs/lite1 --student dsc --alpha 0.9 --temperature 4
    """
    from dermkd.pipeline import load_data
    from dermkd.report.comparison import comparison_rows, print_table
    from dermkd.train.checkpoints import resolve_checkpoint
    from dermkd.train.stage import run_stage

    args = {**locals(), "model": student, "teacher_weights": teacher_weight or None}
    args["strategy"] = strategy or "standard"
    first = teacher[0]
    teacher_run = first if first.is_dir() else None
    if teacher_run is not None and (teacher_run / "config.yaml").is_file():
        done = o.load_yaml(teacher_run / "config.yaml")
        if data is None:
            args["data"] = done["data"]["root"]
            args["image_size"] = image_size or done["data"]["image_size"]
        if split_file is None and data is None:
            args["split_file"] = teacher_run / "split.csv"
    for t in teacher:
        resolve_checkpoint(t)  # fail early and clearly
    if teacher_run is None and split_file is None:
        logging.getLogger(__name__).warning(
            "teacher given as a checkpoint file: its training split is unknown, so the student's test images "
            "may include images the teacher trained on; pass the teacher's --split-file to rule that out")
    cfg = o.build_run_config(profile, config, args)
    cfg = dataclasses.replace(cfg, name=name or f"distill-{cfg.kd.strategy}-{cfg.model.name}")
    source = teacher[0] if len(teacher) == 1 else list(teacher)
    result = run_stage(cfg, load_data(cfg), Path(cfg.out_dir) / cfg.name, teacher_source=source, resume=not fresh)
    print_table(comparison_rows([(result.name, result.metrics)]), f"{result.run_dir}: test split")


@app.command()
def evaluate(
    run: Annotated[Path, typer.Argument(help="Run directory or checkpoint file.")],
    data: o.Data = None, split: Annotated[str, typer.Option(help="Split to score: test | val | train.")] = "test",
    split_file: o.SplitFile = None,
    output: Annotated[Optional[Path], typer.Option(help="Write the metrics JSON here.")] = None,
    predictions: Annotated[Optional[Path], typer.Option(help="Write per-image predictions (CSV) here.")] = None,
) -> None:
    """Score a trained model with all measures (default: the run's own test split).

    A bare checkpoint with --data and no split file is scored on every image under --data.

    Example: dermkd evaluate runs/demo/kd-student --output kd-test.json
    """
    from dermkd.data.prepare import prepare_data
    from dermkd.evaluate.evaluate import evaluate_model
    from dermkd.io import write_json
    from dermkd.report.comparison import comparison_rows, print_table
    from dermkd.train.checkpoints import load_model

    if split not in ("train", "val", "test"):
        raise DermkdError(f"--split must be train, val or test, not {split!r}")
    model, spec = load_model(run)
    run_dir = run if run.is_dir() else None
    args = {"image_size": spec["image_size"], "data": data, "split_file": split_file}
    if run_dir is not None and data is None:
        args["data"] = o.load_yaml(run_dir / "config.yaml")["data"]["root"]
        args["split_file"] = split_file or run_dir / "split.csv"
    if args["data"] is None:
        raise DermkdError("a checkpoint file needs --data")
    cfg = o.build_run_config("paper", None, args)
    whole = args["split_file"] is None
    prepared = prepare_data(cfg.data, Path(cfg.data.root), cfg.train.seed, all_test=whole)
    metrics = evaluate_model(model, prepared, "test" if whole else split, classes=spec["classes"],
                             predictions=predictions)
    metrics["model"] = spec
    if output:
        write_json(output, metrics)
    print_table(comparison_rows([(str(run), metrics)]), f"{run}: {metrics['split']} split, n={metrics['n']}")


@app.command()
def pipeline(
    data: o.Data = None, profile: o.Profile = "cpu", config: o.ConfigFile = None, name: o.Name = None,
    out: o.Out = None, image_size: o.ImageSize = None, split_file: o.SplitFile = None,
    conflict_policy: o.ConflictPolicy = None, near_threshold: o.NearThreshold = None,
    near_duplicates: o.NearDuplicates = None, allow_new_classes: o.AllowNew = None, layout: o.Layout = None,
    metadata: o.Metadata = None, task: o.Task = None, test: o.TestRoot = None,
    split_strategy: o.SplitStrategy = None, folds: o.Folds = None,
    fold: o.Fold = None, class_balance: o.ClassBalance = None, refit: o.Refit = None, epochs: o.Epochs = None,
    batch_size: o.BatchSize = None, seed: o.Seed = None, threads: o.Threads = None, precision: o.Precision = None,
    optimizer: o.Optimizer = None,
    lr: o.Lr = None, scheduler: o.Scheduler = None, backbone_lr_scale: o.BackboneLrScale = None,
    warmup_epochs: o.WarmupEpochs = None, model: o.Model = None, bn_momentum: o.BnMomentum = None,
    teacher_model: Annotated[Optional[str], typer.Option(help="Teacher model name.")] = None,
    teacher_pretrained: o.Pretrained = None, teacher_pretrained_file: o.PretrainedFile = None,
    teacher_trainable_stages: o.TrainableStages = None, strategy: o.StrategyName = None,
    teacher_epoch: o.TeacherEpoch = None, alpha: o.Alpha = None, temperature: o.Temperature = None,
    kd_multiplier: o.KdMultiplier = None, objective: o.Objective = None, teacher_cache: o.TeacherCache = None,
    teacher_image_size: o.TeacherImageSize = None, fresh: o.Fresh = False,
) -> None:
    """Teacher -> baseline student -> KD run (--strategy, default standard), then the comparison table.

    Example: dermkd pipeline --data ../shared/data/isic9/Train --profile cpu --name isic9-cpu
    """
    from dermkd.pipeline import run_pipeline

    cfg = o.build_run_config(profile, config, locals())
    if name is None:
        cfg = dataclasses.replace(cfg, name=f"pipeline-{cfg.profile}")
    run_pipeline(cfg, resume=not fresh)


@app.command()
def demo(
    out: o.Out = None, epochs: o.Epochs = None, threads: o.Threads = None, fresh: o.Fresh = False,
) -> None:
    """The whole pipeline on the embedded synthetic data (a few minutes on 2 cores)."""
    from dermkd.pipeline import run_pipeline

    cfg = o.build_run_config("demo", None, {**locals(), "name": "demo"})
    run_pipeline(cfg, resume=not fresh)


@app.command()
def study(
    config: Annotated[Path, typer.Argument(help="Study YAML (see src/dermkd/configs/study-*.yaml).")],
    out: o.Out = None, fresh: o.Fresh = False,
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


@app.command()
def export(
    run: Annotated[Path, typer.Argument(help="Run directory or checkpoint file.")],
    fmt: Annotated[list[str], typer.Option("--format", help="onnx | onnx-int8-dynamic | onnx-int8-static | "
                                           "torchscript | torch-int8-dynamic (repeatable).")] = ["onnx"],
    out: Annotated[Optional[Path], typer.Option(help="Folder for the exported files; default RUN/export.")] = None,
    check: Annotated[bool, typer.Option("--check/--no-check", help="Score each export on the run's own test "
                                        "split beside eager PyTorch.")] = False,
) -> None:
    """Export a trained model for deployment: <out>/<model>.<format>.<ext> plus a JSON of its metadata.

    Example: dermkd export runs/demo/kd-student --format onnx --format onnx-int8-static --check
    """
    from dermkd.export.formats import FORMATS, export_model, load_predictor
    from dermkd.export.source import source_from_run

    entries = [FORMATS.get(f) for f in fmt]  # unknown names fail before any work
    if not run.exists():
        raise DermkdError(f"run or checkpoint not found: {run}")
    folder = out or ((run if run.is_dir() else run.parent) / "export")
    source = source_from_run(run)
    test = None
    if check:
        from dermkd.evaluate.rundata import run_data

        if not run.is_dir():
            raise DermkdError("--check needs a run directory (its split says which images are test images)")
        data = run_data(run)
        test = (data.images["test"].float() / 255.0, data.labels["test"].numpy())
    for name, entry in zip(fmt, entries):
        path = export_model(source, name, folder / f"{source.spec['name']}.{name}{entry.suffix}")
        line = f"{name}: {path} ({path.stat().st_size / 2**20:.1f} MiB)"
        if test is not None:
            logits = load_predictor(path)(test[0])
            line += f", test top-1 {float((logits.argmax(1) == test[1]).mean()):.4f} (n={len(test[1])})"
        console.print(line)
    if test is not None:
        import torch

        with torch.inference_mode():
            eager = source.model.eval()(test[0]).argmax(1).numpy()
        console.print(f"eager PyTorch: test top-1 {float((eager == test[1]).mean()):.4f}")


@app.command()
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


data_app = typer.Typer(help="Data tools: write the embedded data set, audit a data set.")
app.add_typer(data_app, name="data")


@data_app.command("synth")
def data_synth(
    out: Annotated[Path, typer.Argument(help="Folder to write <class>/synth_NNNN.png into.")],
    per_class: Annotated[int, typer.Option(help="Images per class.")] = 80,
    size: Annotated[int, typer.Option(help="Image size in px.")] = 64,
    seed: Annotated[int, typer.Option(help="Generator seed.")] = 0,
) -> None:
    """Write the embedded synthetic data set as class folders (what `make demo` trains on).

    Example: dermkd data synth /tmp/synthetic --per-class 80 --size 112
    """
    from dermkd.data.synthetic import generate_dataset

    root = generate_dataset(out, per_class, size, seed)
    console.print(f"{9 * per_class} images in 9 class folders under {root}")


@data_app.command("audit")
def data_audit(
    roots: Annotated[list[Path], typer.Argument(help="Class-folder roots; several roots are checked for leakage.")],
    split_file: o.SplitFile = None,
    threshold: Annotated[Optional[int], typer.Option(help="Near-duplicate Hamming threshold (of 64 bits).")] = None,
    out: Annotated[Path, typer.Option(help="Folder for audit.json and audit.html.")] = Path("audit"),
    workers: Annotated[int, typer.Option(help="Hashing threads.")] = 4,
    allow_new_classes: o.AllowNew = None,
) -> None:
    """Audit a data set: counts, sizes, unreadable files, exact and near duplicates,
    label conflicts, leakage across roots or splits, class imbalance.

    Example: dermkd data audit ../shared/data/isic9/Train --out runs/audit-isic9
    """
    from dermkd.data.audit import AuditConfig, audit, print_summary, write_audit

    cfg = AuditConfig(workers=workers, allow_new_classes=bool(allow_new_classes))
    if threshold is not None:
        cfg = dataclasses.replace(cfg, threshold=threshold)
    result = audit(roots, split_file, cfg)
    print_summary(result, console)
    json_path, html_path = write_audit(result, out)
    console.print(f"wrote {json_path} and {html_path}")


@data_app.command("download")
def data_download(
    out: Annotated[Path, typer.Argument(help="Folder for the downloaded images and metadata.csv.")],
    collection: Annotated[Optional[list[int]], typer.Option(help="ISIC Archive collection id (repeatable).")] = None,
    search: Annotated[Optional[str], typer.Option(help="ISIC Archive search query.")] = None,
    limit: Annotated[Optional[int], typer.Option(help="At most this many images (0 = all).")] = None,
    arrange_into: Annotated[Optional[Path], typer.Option(help="Then copy the images into class folders here.")] = None,
    label_column: Annotated[str, typer.Option(help="metadata.csv column holding the label.")] = "diagnosis",
) -> None:
    """Download from the ISIC Archive with isic-cli (needs internet and `pip install isic-cli`).

    Example: dermkd data download runs/isic-dl --collection 249 --limit 500 --arrange-into data/isic-dl
    """
    from dermkd.data.download import arrange_class_folders, run_download

    run_download(out, collection=collection, search=search, limit=limit)
    if arrange_into is not None:
        counts = arrange_class_folders(out, arrange_into, label_column=label_column)
        console.print(f"{sum(counts.values())} images in {len(counts)} class folders under {arrange_into}")


ISIC_TRAIN = Path("../shared/data/isic9/Train")


@app.command()
def bench(
    only: Annotated[Optional[list[str]], typer.Option("--only", help="Run this benchmark only (repeatable).")] = None,
    smoke: Annotated[bool, typer.Option("--smoke", help="Tiny sizes on synthetic data: seconds, not minutes.")] = False,
    data: Annotated[Optional[Path], typer.Option(help=f"Class-folder root; default: {ISIC_TRAIN} if it exists "
                                                      "(and not --smoke), else the embedded synthetic data.")] = None,
    image_size: Annotated[Optional[int], typer.Option(help="Image size in px (default 112; 32 with --smoke).")] = None,
    threads: o.Threads = None,
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
        sidecar = write_markdown(out, figures, machine(), shlex.join(["dermkd", *sys.argv[1:]]), ctx)
        console.print(f"wrote {out} and {sidecar}")


@app.command()
def models() -> None:
    """List registered models, strategies, optimizers and objectives."""
    from dermkd.distill.losses import OBJECTIVES
    from dermkd.distill.strategies import STRATEGIES
    from dermkd.models import MODELS
    from dermkd.train.optimizers import OPTIMIZERS

    for title, reg in (("models", MODELS), ("strategies", STRATEGIES), ("optimizers", OPTIMIZERS),
                       ("objectives", OBJECTIVES)):
        console.print(f"[bold]{title}[/]: {', '.join(reg.names())}")


def _setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s", datefmt="[%X]",
                        handlers=[RichHandler(console=Console(stderr=True), show_path=False)])
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*LeafSpec.*")
    # partial fine-tuning keeps the frozen stages in eval mode on purpose (Classifier.train)
    warnings.filterwarnings("ignore", r".*module\(s\) in eval mode at the start of training.*")


def main() -> None:
    _setup_logging()
    try:
        code = app(standalone_mode=False)
    except typer.TyperException as exc:  # bad flag, bad value, unknown command
        print(f"dermkd: error: {exc.format_message()}", file=sys.stderr)
        sys.exit(2)
    except (DermkdError, OSError) as exc:
        print(f"dermkd: error: {exc}", file=sys.stderr)
        sys.exit(1)
    except (KeyboardInterrupt, typer.Abort):
        print("dermkd: interrupted; run the same command again to resume", file=sys.stderr)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
