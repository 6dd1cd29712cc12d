"""Data-set layouts: class folders, HAM10000, ISIC 2019/2020, a generic CSV.

Each reader returns `LayoutData(samples, classes, groups)`, a named tuple that unpacks as
`samples, classes, groups = read_...(...)`: the `Sample` list of `dermkd.data.scan` (absolute
path, path relative to the image root as the split key, canonical label), the class names
in canonical order, and one group key per sample. Images of one group (one lesion) must
stay in one split. Layout problems are one-line `DermkdError`s naming the file.

`LAYOUTS` holds every layout, class folders (`dermkd.data.scan.scan_folders`) included,
behind one signature: `Layout.read(root, metadata, allow_new)`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from dermkd.data.scan import Sample, scan_folders
from dermkd.data.tables import check_unique, index_images, locate_images, read_table, to_samples
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
    groups: list[str] | None  # one group key (lesion) per sample; None: no lesion ids (class folders)


@dataclass(frozen=True)
class Layout:
    """A data-set layout: how its samples are read, and what it needs."""

    read: Callable[[Path, Path | None, bool], LayoutData]  # (image root, metadata CSV, allow_new)
    needs_metadata: bool
    # class folders carry no lesion ids: near-duplicate images (audit pHash) are grouped instead
    near_duplicates: bool = False


LAYOUTS: Registry[Layout] = Registry("data layout")


def _finish(samples: list[Sample], groups: list[str], source: Path) -> LayoutData:
    if not samples:
        raise DermkdError(f"no usable images listed in {source}")
    log.info("read %d images of %d groups from %s", len(samples), len(set(groups)), source)
    return LayoutData(samples, class_order(sorted({s.label for s in samples})), groups)

# ISIC 2018 task 3 ground truth: the same one-hot format with HAM10000's classes.
_ISIC2018_COLUMNS = ("MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC")


# --------------------------------------------------------------------------- HAM10000
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
    check_unique(ids, metadata_csv, "image_id")
    paths = locate_images(ids, index_images(image_dir), metadata_csv, image_dir)
    groups = [r["lesion_id"] or r["image_id"] for r in rows]
    return _finish(to_samples(paths, image_dir, labels), groups, metadata_csv)


# --------------------------------------------------------------------------- ISIC 2020
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
    check_unique(ids, ground_truth_csv, "image_name")
    paths = locate_images(ids, index_images(image_dir), ground_truth_csv, image_dir)
    groups = [r.get("lesion_id") or r.get("patient_id") or r["image_name"] for r in kept]
    return _finish(to_samples(paths, image_dir, labels), groups, ground_truth_csv)


# --------------------------------------------------------------------------- ISIC 2019
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
    check_unique(ids, ground_truth_csv, "image")
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
    paths = locate_images(ids, index_images(image_dir), ground_truth_csv, image_dir) if ids else []
    return _finish(to_samples(paths, image_dir, labels), groups, ground_truth_csv)


# --------------------------------------------------------------------------- generic CSV
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
    samples = to_samples(paths, root, labels)
    check_unique([s.path.as_posix() for s in samples], csv_path, "path")
    groups = [g or s.rel for g, s in zip(groups, samples)]
    return _finish(samples, groups, csv_path)


def _read_folders(root: Path, metadata: Path | None, allow_new: bool) -> LayoutData:
    samples, classes = scan_folders(root, allow_new)
    return LayoutData(samples, classes, None)


LAYOUTS.register("folders")(Layout(_read_folders, needs_metadata=False, near_duplicates=True))
LAYOUTS.register("ham10000")(Layout(lambda root, meta, allow_new: read_ham10000(meta, root), needs_metadata=True))
LAYOUTS.register("isic2020")(Layout(lambda root, meta, allow_new: read_isic2020(meta, root), needs_metadata=True))
LAYOUTS.register("isic2019")(Layout(lambda root, meta, allow_new: read_isic2019(meta, root), needs_metadata=True))
LAYOUTS.register("csv")(Layout(lambda root, meta, allow_new: read_csv_layout(meta, root, allow_new),
                               needs_metadata=True))
