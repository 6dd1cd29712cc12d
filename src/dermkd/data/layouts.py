"""Readers for data-set layouts other than class folders: HAM10000, ISIC 2019, a generic CSV.

Each reader returns `LayoutData(samples, classes, groups)`, a named tuple that unpacks as
`samples, classes, groups = read_...(...)`: the `Sample` list of `dermkd.data.scan` (absolute
path, path relative to the image root as the split key, canonical label), the class names
in canonical order, and one group key per sample. Images of one group (one lesion) must
stay in one split. Layout problems are one-line `DermkdError`s naming the file.

The class-folder layout stays in `dermkd.data.scan.scan_folders`.
"""

from __future__ import annotations

import csv
import logging
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from dermkd.data.scan import IMAGE_EXTENSIONS, Sample
from dermkd.data.taxonomy import (
    HAM10000_TO_ISIC9,
    ISIC9,
    ISIC2019_TO_ISIC9,
    class_order,
    normalise,
    resolve,
    try_map_label,
)
from dermkd.errors import DermkdError
from dermkd.registry import Registry

log = logging.getLogger(__name__)


class LayoutData(NamedTuple):
    samples: list[Sample]
    classes: list[str]  # canonical order (class_order)
    groups: list[str]  # one group key per sample


LAYOUTS: Registry[Callable[..., LayoutData]] = Registry("data layout")

# ISIC 2018 task 3 ground truth: the same one-hot format with HAM10000's classes.
_ISIC2018_COLUMNS = ("MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC")


# --------------------------------------------------------------------------- helpers
def read_table(path: Path, required: tuple[str, ...], what: str) -> list[dict[str, str]]:
    """Rows of a CSV (BOM and surrounding spaces tolerated) that has `required` columns."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DermkdError(f"{what} not found: {path}")
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = [h.strip() for h in next(reader, [])]
        missing = [c for c in required if c not in header]
        if missing:
            found = ", ".join(h for h in header if h) or "nothing"
            raise DermkdError(f"{what} {path} lacks column(s) {', '.join(missing)}; found: {found}")
        rows = [
            {h: (row[i].strip() if i < len(row) else "") for i, h in enumerate(header)}
            for row in reader if any(v.strip() for v in row)
        ]
    if not rows:
        raise DermkdError(f"{what} {path} has no rows")
    return rows


def index_images(image_dir: Path, depth: int = 1) -> dict[str, Path]:
    """File stem -> image path, for images in `image_dir` and `depth` levels of subfolders
    (HAM10000 ships in two part folders). The first path in sorted order wins a stem clash."""
    image_dir = Path(image_dir).expanduser()
    if not image_dir.is_dir():
        raise DermkdError(f"image folder not found: {image_dir}")
    found: dict[str, Path] = {}
    clashes = 0
    folders = [image_dir]
    for _ in range(depth + 1):
        subfolders = []
        for folder in folders:
            for p in sorted(folder.iterdir()):
                if p.name.startswith("."):
                    continue
                if p.is_dir():
                    subfolders.append(p)
                elif p.suffix.lower() in IMAGE_EXTENSIONS:
                    if p.stem in found:
                        clashes += 1
                    else:
                        found[p.stem] = p
        folders = subfolders
    if clashes:
        log.warning("%d image names occur twice under %s; the first copy is used", clashes, image_dir)
    return found


def _locate(ids: list[str], index: dict[str, Path], table: Path, image_dir: Path) -> list[Path]:
    missing = [i for i in ids if i not in index]
    if missing:
        raise DermkdError(f"{len(missing)} of {len(ids)} images listed in {table} are missing under "
                          f"{image_dir} (e.g. {missing[0]}.jpg)")
    return [index[i] for i in ids]


def _check_unique(ids: list[str], table: Path, column: str) -> None:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise DermkdError(f"{table}: {column} {i!r} is listed twice")
        seen.add(i)


def _samples(paths: list[Path], root: Path, labels: list[str]) -> list[Sample]:
    root = root.resolve()
    out = []
    for p, label in zip(paths, labels):
        p = p.resolve()
        rel = p.relative_to(root).as_posix() if p.is_relative_to(root) else p.as_posix()
        out.append(Sample(p, rel, label))
    return out


def _finish(samples: list[Sample], groups: list[str], source: Path) -> LayoutData:
    if not samples:
        raise DermkdError(f"no usable images listed in {source}")
    log.info("read %d images of %d groups from %s", len(samples), len(set(groups)), source)
    return LayoutData(samples, class_order(sorted({s.label for s in samples})), groups)


# --------------------------------------------------------------------------- HAM10000
@LAYOUTS.register("ham10000")
def read_ham10000(metadata_csv: Path, image_dir: Path) -> LayoutData:
    """HAM10000_metadata.csv (lesion_id, image_id, dx, ...) with `<image_dir>[/<part>]/<image_id>.jpg`.

    Group = lesion_id: HAM10000 has several images of many lesions.
    """
    metadata_csv, image_dir = Path(metadata_csv).expanduser(), Path(image_dir).expanduser()
    rows = read_table(metadata_csv, ("lesion_id", "image_id", "dx"), "HAM10000 metadata")
    labels: list[str] = []
    for n, row in enumerate(rows, start=2):
        key = normalise(row["dx"])
        if key not in HAM10000_TO_ISIC9:
            raise DermkdError(f"{metadata_csv} row {n}: unknown dx {row['dx']!r}; "
                              f"known: {', '.join(HAM10000_TO_ISIC9)}")
        labels.append(HAM10000_TO_ISIC9[key])
    ids = [r["image_id"] for r in rows]
    empty = [n for n, i in enumerate(ids, start=2) if not i]
    if empty:
        raise DermkdError(f"{metadata_csv} row {empty[0]}: empty image_id")
    _check_unique(ids, metadata_csv, "image_id")
    paths = _locate(ids, index_images(image_dir), metadata_csv, image_dir)
    groups = [r["lesion_id"] or r["image_id"] for r in rows]
    return _finish(_samples(paths, image_dir, labels), groups, metadata_csv)


# --------------------------------------------------------------------------- ISIC 2020
@LAYOUTS.register("isic2020")
def read_isic2020(ground_truth_csv: Path, image_dir: Path) -> LayoutData:
    """ISIC_2020_Training_GroundTruth.csv (image_name, patient_id, lesion_id, diagnosis, ...)
    with `<image_dir>/<image_name>.jpg`.

    `diagnosis` maps through the isic2020 table; diagnoses with no 9-class counterpart
    ("unknown", "cafe-au-lait macule", ...) are skipped with a logged count. Group =
    lesion_id, else patient_id, else the image: images of one lesion stay in one split.
    """
    ground_truth_csv, image_dir = Path(ground_truth_csv).expanduser(), Path(image_dir).expanduser()
    rows = read_table(ground_truth_csv, ("image_name", "diagnosis"), "ISIC 2020 ground truth")
    kept, labels, skipped = [], [], Counter()
    for row in rows:
        label = try_map_label(row["diagnosis"], "isic2020")
        if label is None:
            skipped[row["diagnosis"]] += 1
            continue
        kept.append(row)
        labels.append(label)
    if skipped:
        log.warning("%s: skipped %d images whose diagnosis has no 9-class counterpart (%s)", ground_truth_csv,
                    sum(skipped.values()), ", ".join(f"{k}: {v}" for k, v in skipped.items()))
    ids = [r["image_name"] for r in kept]
    _check_unique(ids, ground_truth_csv, "image_name")
    paths = _locate(ids, index_images(image_dir), ground_truth_csv, image_dir)
    groups = [r.get("lesion_id") or r.get("patient_id") or r["image_name"] for r in kept]
    return _finish(_samples(paths, image_dir, labels), groups, ground_truth_csv)


# --------------------------------------------------------------------------- ISIC 2019
@LAYOUTS.register("isic2019")
def read_isic2019(ground_truth_csv: Path, image_dir: Path, metadata_csv: Path | None = None) -> LayoutData:
    """ISIC_2019_Training_GroundTruth.csv (image + one-hot MEL..UNK) with `<image_dir>/<image>.jpg`.

    Each row must hold exactly one 1 (the rest 0). Rows labelled UNK have no 9-class
    counterpart and are skipped with a logged count. Group = lesion_id from the optional
    ISIC_2019_Training_Metadata.csv (image, ..., lesion_id), else the image id. An ISIC
    2018 task 3 ground truth (AKIEC instead of AK, no SCC/UNK) is read the same way.
    """
    ground_truth_csv, image_dir = Path(ground_truth_csv).expanduser(), Path(image_dir).expanduser()
    rows = read_table(ground_truth_csv, ("image",), "ISIC 2019 ground truth")
    columns = set(rows[0])
    if set(ISIC2019_TO_ISIC9) <= columns:
        codes, scheme = list(ISIC2019_TO_ISIC9), "isic2019"
    elif set(_ISIC2018_COLUMNS) <= columns:
        codes, scheme = list(_ISIC2018_COLUMNS), "ham10000"
    else:
        missing = [c for c in ISIC2019_TO_ISIC9 if c not in columns]
        raise DermkdError(f"ISIC 2019 ground truth {ground_truth_csv} lacks column(s) {', '.join(missing)}")
    ids, labels = [], []
    skipped: Counter[str] = Counter()
    for n, row in enumerate(rows, start=2):
        hot = []
        for code in codes:
            try:
                value = float(row[code])
            except ValueError:
                raise DermkdError(f"{ground_truth_csv} row {n} ({row['image']}): "
                                  f"{code} is {row[code]!r}, not 0 or 1") from None
            if value == 1.0:
                hot.append(code)
            elif value != 0.0:  # NaN too
                raise DermkdError(f"{ground_truth_csv} row {n} ({row['image']}): {code} is {row[code]!r}, not 0 or 1")
        if len(hot) != 1:
            raise DermkdError(f"{ground_truth_csv} row {n} ({row['image']}): expected exactly one 1 among "
                              f"{','.join(codes)}, found {len(hot)}" + (f" ({', '.join(hot)})" if hot else ""))
        name = try_map_label(hot[0], scheme)
        if name is None:
            skipped[hot[0]] += 1
            continue
        if not row["image"]:
            raise DermkdError(f"{ground_truth_csv} row {n}: empty image id")
        ids.append(row["image"])
        labels.append(name)
    if skipped:
        log.warning("%s: skipped %d images without a 9-class counterpart (%s)", ground_truth_csv,
                    sum(skipped.values()), ", ".join(f"{k}: {v}" for k, v in sorted(skipped.items())))
    _check_unique(ids, ground_truth_csv, "image")
    groups = list(ids)
    if metadata_csv is not None:
        metadata_csv = Path(metadata_csv).expanduser()
        meta = read_table(metadata_csv, ("image", "lesion_id"), "ISIC 2019 metadata")
        lesion = {r["image"]: r["lesion_id"] for r in meta}
        groups = [lesion.get(i) or i for i in ids]
        unmatched = sum(i not in lesion for i in ids)
        if unmatched:
            log.warning("%d images of %s are not in %s; each is its own group", unmatched, ground_truth_csv,
                        metadata_csv)
    paths = _locate(ids, index_images(image_dir), ground_truth_csv, image_dir) if ids else []
    return _finish(_samples(paths, image_dir, labels), groups, ground_truth_csv)


# --------------------------------------------------------------------------- generic CSV
@LAYOUTS.register("csv")
def read_csv_layout(csv_path: Path, root: Path | None = None, allow_new: bool = False) -> LayoutData:
    """A CSV with columns path,label[,group]: path relative to `root` (default: the CSV's
    folder) or absolute; label a 9-class name or code (others are an error unless
    `allow_new`, which makes them extra classes under their normalised name). Group
    defaults to the sample's relative path (each image its own group)."""
    csv_path = Path(csv_path).expanduser()
    root = Path(root).expanduser() if root is not None else csv_path.parent
    rows = read_table(csv_path, ("path", "label"), "layout CSV")
    paths, labels, groups = [], [], []
    for n, row in enumerate(rows, start=2):
        if not row["path"]:
            raise DermkdError(f"{csv_path} row {n}: empty path")
        cls = resolve(row["label"]) if row["label"] else None
        if cls is not None:
            labels.append(cls.name)
        elif allow_new and row["label"]:
            labels.append(normalise(row["label"]))
        else:
            known = ", ".join(f"{c.name} ({c.code})" for c in ISIC9)
            raise DermkdError(f"{csv_path} row {n}: unknown label {row['label']!r}; known classes: {known} "
                              "(use --allow-new-classes to accept it)")
        p = Path(row["path"]).expanduser()
        paths.append(p if p.is_absolute() else root / p)
        groups.append(row.get("group", ""))
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise DermkdError(f"{len(missing)} of {len(paths)} images listed in {csv_path} are missing "
                          f"(e.g. {missing[0]})")
    samples = _samples(paths, root, labels)
    _check_unique([s.path.as_posix() for s in samples], csv_path, "path")
    groups = [g or s.rel for g, s in zip(groups, samples)]
    return _finish(samples, groups, csv_path)
