"""Commands that use a trained model: evaluate, export."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from dermkd.errors import DermkdError

console = Console()
SplitFile = Annotated[Optional[Path], typer.Option(help="Reuse a split CSV (path,label,split).")]


def evaluate(
    run: Annotated[Path, typer.Argument(help="Run directory, checkpoint file, or an ISIC-format predictions CSV "
                                             "(dermkd predict) to score against --data.")],
    data: Annotated[Optional[Path], typer.Option(help="Score on this class-folder root instead of the run's data; "
                                                      "without --split-file every image is a test image.")] = None,
    split: Annotated[str, typer.Option(help="Split to score: test | val | train.")] = "test",
    split_file: SplitFile = None,
    output: Annotated[Optional[Path], typer.Option(help="Write the metrics JSON here.")] = None,
    predictions: Annotated[Optional[Path], typer.Option(help="Write per-image predictions (CSV) here.")] = None,
    allow_new_classes: Annotated[bool, typer.Option("--allow-new-classes", help="With --data: accept class "
                                                    "folders outside the 9-class taxonomy.")] = False,
    truth_out: Annotated[Optional[Path], typer.Option(help="Scoring a predictions CSV: also write the ISIC "
                                                           "ground-truth CSV of its images (for isic-challenge-scoring)."
                                                      )] = None,
) -> None:
    """Score a trained model with all measures (default: the run's own test split, read with
    the run's whole data config: layout, metadata, task, class handling).

    A bare checkpoint with --data and no split file is scored on every image under --data;
    a predictions CSV (dermkd predict) is scored against the labelled images under --data.

    Example: dermkd evaluate runs/demo/kd-student --output kd-test.json
    """
    from dermkd.config import DataConfig
    from dermkd.data.prepare import prepare_data
    from dermkd.evaluate.evaluate import evaluate_model
    from dermkd.evaluate.rundata import run_config
    from dermkd.io import write_json
    from dermkd.report.comparison import comparison_rows, print_table
    from dermkd.train.checkpoints import load_model

    if split not in ("train", "val", "test"):
        raise DermkdError(f"--split must be train, val or test, not {split!r}")
    if truth_out is not None and run.suffix.lower() != ".csv":
        raise DermkdError("--truth-out is for scoring a predictions CSV (dermkd predict's output)")
    if run.suffix.lower() == ".csv":  # an ISIC-format predictions file (dermkd predict)
        from dermkd.serve.score_csv import score_predictions

        if data is None:
            raise DermkdError("scoring a predictions CSV needs --data: a folder of labelled images (class folders)")
        metrics = score_predictions(run, data, allow_new_classes, truth_out)
        if output:
            write_json(output, metrics)
        return print_table(comparison_rows([(str(run), metrics)]), f"{run}: n={metrics['n']}")
    model, spec = load_model(run)
    if run.is_dir() and data is None:
        cfg = run_config(run).data
        if split_file is not None:
            cfg = dataclasses.replace(cfg, split_file=str(split_file))
    elif data is None:
        raise DermkdError("a checkpoint file needs --data")
    else:  # other images: class folders, labelled as the model's task labels them
        task = "binary" if set(spec["classes"]) <= {"benign", "malignant"} else "multiclass"
        cfg = DataConfig(root=str(data), task=task, split_file=str(split_file) if split_file else None,
                         allow_new_classes=allow_new_classes or (run.is_dir()
                                                                 and run_config(run).data.allow_new_classes))
    cfg = dataclasses.replace(cfg, image_size=spec["image_size"])
    cfg.validate()
    whole = cfg.split_file is None
    prepared = prepare_data(cfg, Path(cfg.root).expanduser(), 0, all_test=whole)
    metrics = evaluate_model(model, prepared, "test" if whole else split, classes=spec["classes"],
                             predictions=predictions)
    metrics["model"] = spec
    if output:
        write_json(output, metrics)
    print_table(comparison_rows([(str(run), metrics)]), f"{run}: {metrics['split']} split, n={metrics['n']}")


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
    from dermkd.export.metadata import sidecar_path
    from dermkd.export.source import source_from_run
    from dermkd.rundir import RunDir

    entries = [FORMATS.get(f) for f in fmt]  # unknown names fail before any work
    if not run.exists():
        raise DermkdError(f"run or checkpoint not found: {run}")
    folder = out or RunDir(run if run.is_dir() else run.parent).export
    source = source_from_run(run)
    test = None
    if check:
        from dermkd.evaluate.rundata import run_data

        if not run.is_dir():
            raise DermkdError("--check needs a run directory (its split says which images are test images)")
        data = run_data(run)
        test = (data.images["test"].float() / 255.0, data.labels["test"].numpy())
    finished = run.is_dir() and RunDir(run).is_finished()
    written: list[Path] = []
    for name, entry in zip(fmt, entries):
        path = export_model(source, name, folder / f"{source.spec['name']}.{name}{entry.suffix}")
        written += [path, sidecar_path(path)]
        line = f"{name}: {path} ({path.stat().st_size / 2**20:.1f} MiB)"
        if finished:
            from dermkd.serve.card import write_export_card

            written.append(write_export_card(run, path))
            line += f", card {written[-1].name}"
        if test is not None:
            logits = load_predictor(path)(test[0])
            line += f", test top-1 {float((logits.argmax(1) == test[1]).mean()):.4f} (n={len(test[1])})"
        console.print(line)
    if test is not None:
        import torch

        with torch.inference_mode():
            eager = source.model.eval()(test[0]).argmax(1).numpy()
        console.print(f"eager PyTorch: test top-1 {float((eager == test[1]).mean()):.4f}")
    if run.is_dir() and RunDir(run).env.is_file():
        from dermkd.train.tracking import log_files

        tracking = RunDir(run).read_env().get("tracking")
        if log_files(tracking, written, "export"):
            console.print(f"export logged to MLflow run {tracking['run_id']} at {tracking['uri']}")


def predict(
    model: Annotated[Path, typer.Argument(help="Run directory, checkpoint, or exported model file (e.g. .onnx).")],
    inputs: Annotated[list[Path], typer.Argument(help="Image files, folders (searched recursively) or CSV lists "
                                                      "(a column image or path).")],
    out: Annotated[Path, typer.Option(help="The ISIC-format CSV to write; <out>.details.csv goes beside it.")] = Path(
        "predictions.csv"),
    tta: Annotated[bool, typer.Option("--tta", help="Average the probabilities over the image and its flips.")] = False,
    batch_size: Annotated[int, typer.Option(help="Images per forward pass.")] = 32,
    threads: Annotated[int, typer.Option(help="CPU threads for the model.")] = 1,
    calibration: Annotated[bool, typer.Option("--calibration/--no-calibration", help="Apply the run's temperature "
                                              "(dermkd calibrate) to a run directory's probabilities.")] = True,
) -> None:
    """Predict class probabilities for images, in the ISIC challenge submission format.

    predictions.csv: image (file name without extension) and one probability column per class code.
    predictions.details.csv: the path, top class, malignant probability and any error, per file.

    Example: dermkd predict runs/demo/kd-student/export/dsc.onnx path/to/images --out preds.csv --tta
    """
    from dermkd.serve.predict import collect_inputs, open_model, predict_files, write_predictions

    if batch_size < 1 or threads < 1:
        raise DermkdError("--batch-size and --threads must be >= 1")
    predictor = open_model(model, threads, calibrated=calibration)
    paths = collect_inputs(inputs)
    results = predict_files(predictor, paths, batch_size=batch_size, tta=tta)
    details = write_predictions(out, results, predictor.classes)
    failed = [r for r in results if r.probabilities is None]
    console.print(f"{len(results) - len(failed)} images scored into {out} ({predictor.backend}{', TTA' if tta else ''})"
                  f"; {len(failed)} unreadable, listed in {details}")


def calibrate(run: Annotated[Path, typer.Argument(help="A finished run directory.")]) -> None:
    """Fit a temperature on the run's validation split; report ECE, Brier and NLL before and
    after on its test split; store it for `dermkd predict` (RUN/calibration.json), and draw the
    test split's reliability diagram before and after (RUN/reliability.png and .svg).

    Example: dermkd calibrate runs/demo/kd-student
    """
    from dermkd.evaluate.run_calibration import calibrate_run
    from dermkd.report.figures import reliability
    from dermkd.rundir import RunDir

    record = calibrate_run(run)
    bins, t = record["test_reliability"], record["temperature"]
    figure = reliability({"before (T = 1)": bins["before"], f"after (T = {t:.2f})": bins["after"]},
                         RunDir(run).reliability, f"{RunDir(run).name}, test split")
    n_val = record["val"]["after"]["n"]
    console.print(f"temperature {record['temperature']:.3f} (fitted on {n_val} validation images)")
    for split in ("val", "test"):
        before, after = record[split]["before"], record[split]["after"]
        console.print(f"{split} (n={before['n']}): ECE {before['ece']:.4f} -> {after['ece']:.4f}, Brier "
                      f"{before['brier']:.4f} -> {after['brier']:.4f}, NLL {before['nll']:.4f} -> {after['nll']:.4f}")
    console.print(f"reliability diagram: {figure.png}")


def card(run: Annotated[Path, typer.Argument(help="A finished run directory.")]) -> None:
    """Write the run's model card: classes (codes, malignant flags), input and output shapes,
    training-data fingerprint and split, test metrics with 95% CIs, calibration, teacher,
    weights' origin, intended use (RUN/model_card.json and .md).

    Example: dermkd card runs/demo/kd-student
    """
    from dermkd.serve.card import write_card
    from dermkd.serve.predict import open_model

    json_path, md_path = write_card(run)
    open_model(run)  # loading a run with a card checks the card against the model
    console.print(f"wrote {json_path} and {md_path} (checked against the model)")


def explain(
    model: Annotated[Path, typer.Argument(help="Run directory or checkpoint; a KD run's teacher is shown beside it.")],
    images: Annotated[list[Path], typer.Argument(help="Image files.")],
    compare: Annotated[Optional[list[Path]], typer.Option(help="Another run or checkpoint to show beside it "
                                                               "(repeatable).")] = None,
    out: Annotated[Path, typer.Option(help="Folder for the overlays (<image>.gradcam.png).")] = Path("explain"),
) -> None:
    """Grad-CAM overlays, one PNG per image: the image, then each model's heat map with its top class.

    Example: dermkd explain runs/demo/kd-student lesion.jpg --out explain
    """
    from dermkd.serve.explain import explain_image, models_to_explain

    models = models_to_explain(model, list(compare or []))
    for image in images:
        path = explain_image(models, image, out / f"{image.stem}.gradcam.png")
        console.print(f"{path} ({', '.join(m.label for m in models)})")


def serve(
    model: Annotated[Path, typer.Argument(help="Run directory, checkpoint, or exported model file (e.g. .onnx).")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    threads: Annotated[int, typer.Option(help="CPU threads for the model.")] = 1,
    max_upload_mb: Annotated[float, typer.Option(help="Largest accepted image, MiB (413 above).")] = 10.0,
    max_concurrent: Annotated[int, typer.Option(help="Requests in flight at once; the next gets a 503.")] = 4,
    max_batch: Annotated[int, typer.Option(help="Micro-batching: most images per forward pass.")] = 16,
    max_delay_ms: Annotated[float, typer.Option(help="Micro-batching: longest wait for company, ms.")] = 5.0,
    backend: Annotated[str, typer.Option(help="A run's backend: onnx (ONNX Runtime, exported once into RUN/export) "
                                              "| eager (PyTorch).")] = "onnx",
) -> None:
    """Serve the model over HTTP (FastAPI + uvicorn): POST /v1/predict, GET /v1/model, /healthz,
    /readyz, /metrics, /docs, and a page at /.

    Example: dermkd serve runs/demo/kd-student --port 8000
    """
    from dermkd.serve.app import create_app

    if max_concurrent < 1 or threads < 1 or max_upload_mb <= 0:
        raise DermkdError("--max-concurrent and --threads must be >= 1, --max-upload-mb > 0")
    import uvicorn

    if max_batch < 1 or max_delay_ms < 0:
        raise DermkdError("--max-batch must be >= 1 and --max-delay-ms >= 0")
    if backend not in ("onnx", "eager"):
        raise DermkdError(f"--backend must be onnx or eager, not {backend!r}")
    app = create_app(model, threads=threads, max_upload=int(max_upload_mb * 2**20), max_concurrent=max_concurrent,
                     max_batch=max_batch, max_delay=max_delay_ms / 1000, backend=backend)
    uvicorn.run(app, host=host, port=port, log_level="warning")
