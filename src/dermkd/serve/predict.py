"""Batch prediction in the ISIC challenge submission format.

`predictions.csv` holds `image` (the file name without its extension) and one probability
column per class, named by the class code (MEL, NV, ...), and nothing else, so that
`isic-challenge-scoring classification` reads it as it is. What a person also wants (the
top class, the malignant probability, the file's path, and why a file could not be read)
goes into `<out>.details.csv` beside it. An unreadable file is listed there with its
reason and never stops the batch.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.special

from dermkd.data.images import decode_all
from dermkd.data.scan import IMAGE_EXTENSIONS
from dermkd.data.taxonomy import code_of, is_malignant
from dermkd.errors import DermkdError
from dermkd.export.predictor import Predictor
from dermkd.io import read_json, write_csv
from dermkd.rundir import RunDir
from dermkd.serve.card import card_beside, check_card

log = logging.getLogger(__name__)
LIST_COLUMNS = ("image", "path")  # a CSV list of inputs names its files in one of these


def open_model(model: str | Path, threads: int = 1, calibrated: bool = True, onnx: bool = False) -> Predictor:
    """A run directory or checkpoint (PyTorch; with `onnx`, its ONNX export on ONNX Runtime,
    made once and kept in RUN/export), or an exported model file (read through its metadata
    sidecar, run by its own runtime). A run directory calibrated by `dermkd calibrate` has
    its logits divided by the stored temperature unless `calibrated` is off."""
    path = Path(model)
    if path.is_dir() or path.suffix == ".ckpt":
        from dermkd.evaluate.run_calibration import run_temperature
        from dermkd.export.predictor import eager
        from dermkd.train.checkpoints import load_model

        net, spec = load_model(path)
        predictor = onnx_of_run(path, threads) if onnx else eager(net, spec["image_size"], spec["classes"], threads)
        if path.is_dir() and RunDir(path).model_card.is_file():
            check_card(read_json(RunDir(path).model_card), predictor)
        t = run_temperature(path) if path.is_dir() and calibrated else None
        return predictor if t is None else _scaled(predictor, t)
    from dermkd.export.formats import load_predictor
    predictor = load_predictor(path, threads)
    if not card_beside(path).is_file():
        return predictor
    card = read_json(card_beside(path))
    check_card(card, predictor)
    t = (card.get("calibration") or {}).get("temperature") if calibrated else None
    return predictor if t is None else _scaled(predictor, float(t))


def _scaled(predictor: Predictor, t: float) -> Predictor:
    """`predictor` with its logits divided by temperature `t` (calibrated probabilities)."""
    return dataclasses.replace(predictor, run=lambda x: predictor.run(x) / t, backend=f"{predictor.backend}, T={t:.3f}")


def onnx_of_run(run: Path, threads: int) -> Predictor:
    """The run's ONNX export on ONNX Runtime; exported (atomically) when there is none for
    its current best checkpoint."""
    from dermkd.export.formats import export_model, load_predictor
    from dermkd.export.metadata import read_sidecar
    from dermkd.export.source import source_from_run
    from dermkd.train.checkpoints import file_sha256, resolve_checkpoint

    folder = (RunDir(run) if run.is_dir() else RunDir.of_checkpoint(run)).export
    checkpoint = resolve_checkpoint(run)
    target = folder / f"{checkpoint.parent.parent.name}.serve.onnx"
    if not target.is_file() or read_sidecar(target).meta["source"]["sha256"] != file_sha256(checkpoint):
        export_model(source_from_run(run), "onnx", target)
    return load_predictor(target, threads)


def collect_inputs(inputs: list[Path]) -> list[Path]:
    """Image files from files, folders (searched recursively) and CSV lists, in order,
    each once."""
    found: dict[Path, None] = {}
    for item in inputs:
        if item.is_dir():
            files = sorted(p for p in item.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        elif item.suffix.lower() == ".csv":
            files = _listed(item)
        elif item.exists() or item.suffix.lower() in IMAGE_EXTENSIONS:
            files = [item]  # a missing image file is reported per file, not as a failure of the batch
        else:
            raise DermkdError(f"input not found: {item}")
        found.update(dict.fromkeys(files))
    if not found:
        raise DermkdError(f"no images in {', '.join(map(str, inputs))}")
    return list(found)


def _listed(table: Path) -> list[Path]:
    with table.open(newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    column = next((c for c in LIST_COLUMNS if rows and c in rows[0]), None)
    if column is None:
        raise DermkdError(f"{table}: a list of inputs needs a column {' or '.join(LIST_COLUMNS)}")
    return [p if p.is_absolute() else table.parent / p for p in (Path(r[column]) for r in rows if r[column])]


@dataclass
class Prediction:
    path: Path
    probabilities: np.ndarray | None  # (C,), None when the file could not be read
    error: str = ""


def flips(batch: np.ndarray) -> Iterator[np.ndarray]:
    """The test-time views: as is, mirrored left-right, up-down, and both."""
    yield batch
    yield batch[..., ::-1]
    yield batch[..., ::-1, :]
    yield batch[..., ::-1, ::-1]


def predict_files(predictor: Predictor, paths: list[Path], *, batch_size: int = 32, tta: bool = False,
                  progress: bool = True) -> list[Prediction]:
    """Softmax probabilities (averaged over the flips with `tta`) for every readable file."""
    from rich.progress import track

    out: list[Prediction] = []
    batches = range(0, len(paths), batch_size)
    for start in track(batches, description="predicting", disable=not progress or len(paths) < 2 * batch_size,
                       transient=True):
        chunk = paths[start:start + batch_size]
        decoded = list(zip(chunk, decode_all(chunk, predictor.image_size)))  # logs each skip
        good = [(p, d.pixels) for p, d in decoded if d.error is None]
        out += [Prediction(p, None, d.error) for p, d in decoded if d.error is not None]
        if good:
            x = np.stack([px for _, px in good]).transpose(0, 3, 1, 2).astype(np.float32) / 255.0
            views = list(flips(x)) if tta else [x]
            probs = np.mean([softmax(predictor(np.ascontiguousarray(v))) for v in views], axis=0)
            out += [Prediction(p, pr) for (p, _), pr in zip(good, probs)]
    order = {p: i for i, p in enumerate(paths)}
    return sorted(out, key=lambda r: order[r.path])


def softmax(logits: np.ndarray) -> np.ndarray:
    """(B, C) logits -> (B, C) probabilities."""
    return scipy.special.softmax(logits, axis=1)


def write_predictions(out: Path, results: list[Prediction], classes: tuple[str, ...]) -> Path:
    """The ISIC-format CSV at `out` and the details beside it; returns the details' path."""
    codes = [code_of(c) for c in classes]
    malignant = np.array([is_malignant(c) for c in classes])
    scored = [r for r in results if r.probabilities is not None]
    write_csv(out, [{"image": r.path.stem, **{c: f"{p:.6f}" for c, p in zip(codes, r.probabilities)}}
                    for r in scored], ["image", *codes])
    details = out.with_name(out.stem + ".details.csv")
    rows = []
    for r in results:
        row = {"image": r.path.stem, "path": str(r.path), "error": r.error, "top_class": "", "top_probability": "",
               "malignant_probability": ""}
        if r.probabilities is not None:
            top = int(r.probabilities.argmax())
            row.update(top_class=classes[top], top_probability=f"{r.probabilities[top]:.6f}",
                       malignant_probability=f"{r.probabilities[malignant].sum():.6f}")
        rows.append(row)
    write_csv(details, rows, ["image", "path", "top_class", "top_probability", "malignant_probability", "error"])
    return details
