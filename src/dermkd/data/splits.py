"""Leakage-free stratified train/val/test splits, saved as CSV (path, label, split).

Files are grouped (byte-identical files, and near duplicates found by the audit's
perceptual hash) and a group always lands in one split. A group whose copies carry
different labels is a label conflict, resolved by an explicit, logged policy (`drop`,
the default; `keep-first`; `keep-majority`). Groups are assigned per class from one
seeded permutation, so a split is reproducible from the seed.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dermkd.errors import DermkdError
from dermkd.io import write_csv

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


@dataclass
class SplitRow:
    path: str  # relative to the data root
    label: str
    split: str


@dataclass
class SplitReport:
    rows: list[SplitRow]
    duplicate_groups: int = 0  # groups of >1 files (identical, or near duplicates)
    conflict_groups: int = 0  # groups whose files carry different labels
    dropped: list[str] = field(default_factory=list)  # paths removed by the conflict policy


def group_by_key(paths: list[str], labels: list[str], keys: list[str], policy: str) -> tuple[list[list[int]], SplitReport]:
    """Group sample indices by group key (content hash, or a near-duplicate group) and
    apply the label-conflict policy: `drop` the whole group, `keep-first` the copies with
    the label of the first copy by path, `keep-majority` the copies with the most common
    label (a tie drops the group: no label is better supported than another)."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, key in enumerate(keys):
        groups[key].append(i)
    report = SplitReport(rows=[])
    kept: list[list[int]] = []
    for members in groups.values():
        members.sort(key=lambda i: paths[i])
        if len(members) > 1:
            report.duplicate_groups += 1
        votes = Counter(labels[i] for i in members)
        if len(votes) > 1:
            report.conflict_groups += 1
            ranked = votes.most_common()
            if policy == "keep-first":
                keep = labels[members[0]]
            elif policy == "keep-majority" and ranked[0][1] > ranked[1][1]:
                keep = ranked[0][0]
            else:
                report.dropped.extend(paths[i] for i in members)
                continue
            report.dropped.extend(paths[i] for i in members if labels[i] != keep)
            members = [i for i in members if labels[i] == keep]
        kept.append(members)
    log.info("%d duplicate groups, %d with conflicting labels (%s): %d files dropped",
             report.duplicate_groups, report.conflict_groups, policy, len(report.dropped))
    return kept, report


def source_order(paths: list[str]) -> list[int]:
    """The source-shift split's ordering key per file: the ISIC id in its name (the
    archive numbers images as they arrive, so a low id is an old image, usually from
    another source and year), or failing that the last number in the file name."""
    keys = []
    for path in paths:
        name = Path(path).name
        match = ISIC_ID.search(name) or LAST_NUMBER.search(name)
        if match is None:
            raise DermkdError(f"the source-shift split orders images by the ISIC id in their names; {path} has none")
        keys.append(int(match.group(1)))
    return keys


ISIC_ID = re.compile(r"ISIC_0*(\d+)")
LAST_NUMBER = re.compile(r"(\d+)(?!.*\d)")


def stratified_group_split(
    paths: list[str], labels: list[str], keys: list[str], *,
    val_fraction: float, test_fraction: float, seed: int, policy: str = "drop",
    folds: int | None = None, fold: int = 0, order: list[int] | None = None,
) -> SplitReport:
    """Per class, a seeded permutation of the groups (`keys`) goes to test, val, train.

    With `folds` (stratified grouped k-fold), the permutation is dealt into `folds`
    folds round-robin; fold `fold` is the test split and `val_fraction` of the groups of
    the others is the validation split. Every group is a test group in exactly one fold.

    With `order` (one number per file, e.g. `source_order`), the split is a source-shift
    split: per class the groups with the lowest order (a group's is its smallest) are the
    test split, and with `folds` the folds are consecutive blocks of that order, so each
    test fold is one era of the archive. The validation split is still drawn at random
    from the rest: model selection sees only the training sources, as it would in use.
    """
    groups, report = group_by_key(paths, labels, keys, policy)
    by_class: dict[str, list[list[int]]] = defaultdict(list)
    for members in groups:
        by_class[labels[members[0]]].append(members)
    rng = np.random.default_rng(seed)
    for label in sorted(by_class):
        class_groups = sorted(by_class[label], key=lambda m: paths[m[0]])
        n = len(class_groups)
        if order is None:
            ranked = rng.permutation(n)
            in_test = [rank % folds == fold for rank in range(n)] if folds else None
        else:  # oldest first; ties broken by path (the sort above)
            ranked = np.array(sorted(range(n), key=lambda g: min(order[i] for i in class_groups[g])), dtype=np.int64)
            in_test = [rank * folds // n == fold for rank in range(n)] if folds else None
        if in_test is not None:
            test = [g for rank, g in enumerate(ranked) if in_test[rank]]
            rest = [g for rank, g in enumerate(ranked) if not in_test[rank]]
            n_test = len(test)
        else:
            n_test = _share(n, test_fraction, n)
            test, rest = list(ranked[:n_test]), list(ranked[n_test:])
        if order is not None:  # validation: random among the non-test groups
            rest = list(rng.permutation(np.array(rest, dtype=np.int64))) if rest else []
        ranked = np.array(test + rest, dtype=np.int64)
        n_val = _share(n, val_fraction, n - n_test)
        for rank, g in enumerate(ranked):
            split = "test" if rank < n_test else "val" if rank < n_test + n_val else "train"
            report.rows.extend(SplitRow(paths[i], label, split) for i in class_groups[g])
    report.rows.sort(key=lambda r: r.path)
    return report


def _share(n: int, fraction: float, available: int) -> int:
    """round(n * fraction), at least 1 when the class has 3+ groups, leaving one group
    of the `available` ones for training."""
    k = int(round(n * fraction))
    if fraction > 0 and n >= 3:
        k = max(k, 1)
    return max(0, min(k, available - 1))


def write_split(path: str | Path, rows: list[SplitRow]) -> None:
    write_csv(path, [vars(r) for r in rows], ["path", "label", "split"])


def read_split(path: str | Path) -> list[SplitRow]:
    path = Path(path)
    if not path.is_file():
        raise DermkdError(f"split file not found: {path}")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DermkdError(f"split file {path} line {line}: not UTF-8 text (byte {raw[exc.start]:#04x})") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if reader.fieldnames is None or not {"path", "label", "split"} <= set(reader.fieldnames):
        raise DermkdError(f"split file {path} must have columns path,label,split")
    rows = [SplitRow(r["path"], r["label"], r["split"]) for r in reader]
    bad = [r for r in rows if r.split not in SPLITS]
    if bad:
        raise DermkdError(f"split file {path}: unknown split {bad[0].split!r} for {bad[0].path} (use train/val/test)")
    if not rows:
        raise DermkdError(f"split file {path} is empty")
    seen: dict[str, str] = {}
    for n, r in enumerate(rows, start=2):
        if r.path in seen:  # in two splits it would leak; twice in one split it would count twice
            raise DermkdError(f"split file {path} line {n}: {r.path} is listed twice ({seen[r.path]} and {r.split})")
        seen[r.path] = r.split
    return rows
