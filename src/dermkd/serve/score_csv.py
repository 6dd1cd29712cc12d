"""Score an ISIC-format predictions CSV (`image` + one probability column per class code,
as `dermkd predict` writes it) against a folder of labelled images (class folders): the
same measures as `dermkd evaluate`, matched by image id (the file name without extension)."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np

from dermkd.data.scan import scan_folders
from dermkd.data.taxonomy import resolve
from dermkd.errors import DermkdError
from dermkd.evaluate.metrics import compute_metrics
from dermkd.io import write_csv

log = logging.getLogger(__name__)


def score_predictions(predictions: Path, data_root: Path, allow_new: bool = False,
                      truth_out: Path | None = None) -> dict:
    """All measures of the CSV's probabilities against the labels of the images under
    data_root; `truth_out`: also write the ISIC ground-truth CSV of the predicted images
    (`image`, then the predictions' class columns, one-hot), which the official
    `isic-challenge-scoring classification TRUTH PREDICTIONS` reads beside them."""
    with predictions.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        rows = list(reader)
    if not header or header[0] != "image" or len(header) < 3:
        raise DermkdError(f"{predictions} is not an ISIC-format predictions CSV (image, then one column per class)")
    classes = [(resolve(code).name if resolve(code) else code) for code in header[1:]]
    samples, _ = scan_folders(data_root, allow_new)
    labels: dict[str, set[str]] = {}
    for s in samples:
        labels.setdefault(s.path.stem, set()).add(s.label)
    predicted = {r["image"] for r in rows}
    # an id under two labels (isic9 has such copies) cannot be scored, but only matters if predicted
    ambiguous = sorted(i for i in predicted if len(labels.get(i, ())) > 1)
    if ambiguous:
        raise DermkdError(f"{len(ambiguous)} predicted image ids are under two class folders of {data_root} "
                          f"(e.g. {ambiguous[0]}: {', '.join(sorted(labels[ambiguous[0]]))}); their label is unknown")
    truth = {i: next(iter(v)) for i, v in labels.items() if len(v) == 1}
    missing = [r["image"] for r in rows if r["image"] not in truth]
    if missing:
        raise DermkdError(f"{len(missing)} predicted images are not under {data_root} (e.g. {missing[0]})")
    unknown = sorted({truth[r["image"]] for r in rows} - set(classes))
    if unknown:
        raise DermkdError(f"the labelled images have classes the predictions do not: {', '.join(unknown)}")
    unscored = len(truth) - len(rows)
    if unscored:
        log.warning("%d labelled images under %s have no prediction; they are left out", unscored, data_root)
    try:
        probs = np.array([[float(r[c]) for c in header[1:]] for r in rows], dtype=np.float64)
    except ValueError as exc:
        raise DermkdError(f"{predictions}: a probability is not a number ({exc})") from None
    y = np.array([classes.index(truth[r["image"]]) for r in rows])
    if truth_out is not None:
        write_csv(truth_out, [{"image": r["image"], **{c: float(k == j) for j, c in enumerate(header[1:])}}
                              for r, k in zip(rows, y)], header)
    metrics = compute_metrics(y, probs.argmax(1), classes, probs)
    metrics["split"] = f"{predictions.name} vs {data_root}"
    return metrics
