"""From a data root (or the embedded generator) to split uint8 tensors, once per run.

Order: scan folders -> read + hash + decode every file once -> skip unreadable files ->
split (new, grouped by content hash, or read from a split file) -> stack per split.
The data fingerprint hashes the sorted (path, label, content hash) list of the files used.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

from dermkd.config import DataConfig
from dermkd.data.audit import AuditConfig, audit
from dermkd.data.audit.groups import UnionFind
from dermkd.data.images import decode_all, stack_chw
from dermkd.data.layouts import LAYOUTS
from dermkd.data.scan import Sample, scan_folders
from dermkd.data.splits import SPLITS, SplitReport, SplitRow, read_split, source_order, stratified_group_split
from dermkd.data.synthetic import generate_dataset
from dermkd.data.taxonomy import binary_label, class_order, resolve
from dermkd.errors import DermkdError

log = logging.getLogger(__name__)

EXTERNAL_TEST = "@test/"  # split-file path prefix of the images of an external test folder


@dataclass
class PreparedData:
    root: Path
    classes: list[str]
    image_size: int
    images: dict[str, torch.Tensor]  # split -> (N, 3, S, S) uint8
    labels: dict[str, torch.Tensor]  # split -> (N,) int64
    paths: dict[str, list[str]]  # split -> relative paths, in the order of `images`
    rows: list[SplitRow]  # the split actually used
    fingerprint: str
    skipped: list[dict[str, str]] = field(default_factory=list)  # unreadable files
    split_report: dict[str, int] = field(default_factory=dict)

    def with_val_in_train(self) -> PreparedData:
        """A copy whose training split also holds the validation images (a refit); the
        validation split is kept as it is, for logging only."""
        merged = dataclasses.replace(self, images=dict(self.images), labels=dict(self.labels), paths=dict(self.paths))
        merged.images["train"] = torch.cat([self.images["train"], self.images["val"]])
        merged.labels["train"] = torch.cat([self.labels["train"], self.labels["val"]])
        merged.paths["train"] = self.paths["train"] + self.paths["val"]
        merged.split_report = {**self.split_report, "refit": "validation images trained on"}
        return merged

    def summary(self) -> dict:
        return {
            "root": str(self.root),
            "classes": self.classes,
            "image_size": self.image_size,
            "counts": {s: int(self.labels[s].numel()) for s in SPLITS},
            "fingerprint": self.fingerprint,
            "skipped_files": self.skipped,
            **self.split_report,
        }


def resolve_root(cfg: DataConfig, cache_dir: str | Path) -> Path:
    """The data root; the embedded synthetic set is generated (once) under `cache_dir`."""
    if cfg.root is not None:
        return Path(cfg.root).expanduser().resolve()
    name = f"synthetic-{cfg.synthetic_size}px-{cfg.synthetic_per_class}x9-seed{cfg.synthetic_seed}"
    return generate_dataset(Path(cache_dir).resolve() / name, cfg.synthetic_per_class, cfg.synthetic_size,
                            cfg.synthetic_seed)


def prepare_data(cfg: DataConfig, root: Path, seed: int, *, all_test: bool = False) -> PreparedData:
    """Decode and split the data under `root`; `all_test` puts every image in the test split."""
    samples, classes, lesions = read_samples(cfg, root)
    external: list[Sample] = []
    if cfg.test_root:  # an external test folder: every image is a test image
        test_samples, test_classes = scan_folders(Path(cfg.test_root).expanduser(), cfg.allow_new_classes)
        external = [dataclasses.replace(s, rel=EXTERNAL_TEST + s.rel) for s in test_samples]
        classes = class_order(sorted(set(classes) | set(test_classes)))
    samples = samples + external
    decoded = decode_all([s.path for s in samples], cfg.image_size, max_pixels=cfg.max_image_pixels)
    skipped = [{"path": s.rel, "reason": d.error} for s, d in zip(samples, decoded) if d.error]
    ok = [(s, d) for s, d in zip(samples, decoded) if not d.error]
    if not ok:
        raise DermkdError(f"no readable images under {root}")
    by_rel = {s.rel: (s, d) for s, d in ok}
    if all_test:
        rows = [SplitRow(s.rel, s.label, "test") for s, _ in ok]
        report = {"split_source": "all images as test"}
    elif cfg.split_file:
        rows = _rows_from_file(cfg.split_file, by_rel, {s.rel: s.label for s in samples})
        report = {"split_source": str(cfg.split_file)}
    else:
        pool = [(s, d) for s, d in ok if not s.rel.startswith(EXTERNAL_TEST)]
        rels = [s.rel for s, _ in pool]
        keys = group_keys(root, rels, [d.sha256 for _, d in pool], cfg, lesions,
                          known_sha256={s.path: d.sha256 for s, d in pool})
        rep: SplitReport = stratified_group_split(
            rels, [s.label for s, _ in pool], keys, val_fraction=cfg.val_fraction,
            test_fraction=0.0 if cfg.test_root else cfg.test_fraction, seed=seed, policy=cfg.conflict_policy,
            folds=cfg.folds, fold=cfg.fold,
            order=source_order(rels) if cfg.split_strategy == "source-shift" else None,
        )
        rows = rep.rows + [SplitRow(s.rel, s.label, "test") for s, _ in ok if s.rel.startswith(EXTERNAL_TEST)]
        report = {"split_source": "new", "split_strategy": cfg.split_strategy, "grouping": f"near duplicates <= {cfg.near_threshold}"
                  if cfg.near_duplicates else "identical files", "duplicate_groups": rep.duplicate_groups,
                  "conflict_groups": rep.conflict_groups, "conflict_files_dropped": len(rep.dropped)}
        if cfg.folds:
            report["fold"] = f"{cfg.fold} of {cfg.folds}"
        if cfg.test_root:
            report["external_test"] = str(cfg.test_root)
            report["test_leakage"] = external_leakage(root, Path(cfg.test_root).expanduser(), cfg)
    classes = [c for c in classes if any(r.label == c for r in rows)] if cfg.split_file else classes
    index = {c: i for i, c in enumerate(classes)}
    images, labels, paths = {}, {}, {}
    for split in SPLITS:
        part = [r for r in rows if r.split == split]
        paths[split] = [r.path for r in part]
        images[split] = stack_chw([by_rel[r.path][1].pixels for r in part])
        labels[split] = torch.tensor([index[r.label] for r in part], dtype=torch.int64)
    empty = [s for s in (("test",) if all_test else SPLITS) if labels[s].numel() == 0]
    if empty:
        raise DermkdError(f"the {'/'.join(empty)} split is empty; add images or change the split fractions")
    if not (all_test or cfg.split_file):
        check_class_coverage(classes, labels, external=bool(cfg.test_root))
    digest = hashlib.sha256()
    for r in sorted(rows, key=lambda r: r.path):
        digest.update(f"{r.path}\t{r.label}\t{by_rel[r.path][1].sha256}\n".encode())
    log.info("split: %s", {s: int(labels[s].numel()) for s in SPLITS})
    return PreparedData(root, classes, cfg.image_size, images, labels, paths, rows, digest.hexdigest(), skipped,
                        report)


def check_class_coverage(classes: list[str], labels: dict[str, torch.Tensor], external: bool = False) -> None:
    """A class with no training image is an error (it would be learnt from nothing). A class
    too small to reach val or test (e.g. isic9's seborrheic keratosis, 2 of 77 images left
    once conflicting near duplicates are dropped) is a warning: it is trained on, and its
    test measures are absent (`absent_classes` in metrics.json). So is a single image in a split."""
    counts = {s: torch.bincount(labels[s], minlength=len(classes)).tolist() for s in SPLITS}
    needed = ("train", "val") if external else SPLITS
    for i, c in enumerate(classes):
        total = sum(counts[s][i] for s in SPLITS)
        if counts["train"][i] == 0:
            raise DermkdError(f"class {c!r} has {total} usable image(s) and none in the train split (after "
                              "duplicates are grouped and conflicts dropped): add images, or remove the class folder")
        missing = [s for s in needed if counts[s][i] == 0]
        if missing:
            log.warning("class %r has %d usable image(s), none in the %s split: it is trained on but not measured "
                        "there (absent_classes in metrics.json)", c, total, "/".join(missing))
    single = [c for i, c in enumerate(classes) if any(counts[s][i] == 1 for s in needed)]
    if single:
        log.warning("%d class(es) have a single image in a split (%s); their measures there rest on one image",
                    len(single), ", ".join(single))


def decode_split(data: PreparedData, split: str, size: int) -> torch.Tensor:
    """The images of `split` decoded again at another size, (N, 3, size, size) uint8 in the
    order of `data.images[split]`: a larger copy for a teacher that sees more pixels."""
    if size == data.image_size:
        return data.images[split]
    decoded = decode_all([data.root / rel for rel in data.paths[split]], size)
    bad = [rel for rel, d in zip(data.paths[split], decoded) if d.error]
    if bad:
        raise DermkdError(f"{len(bad)} {split} images became unreadable since the split was made (e.g. {bad[0]})")
    return stack_chw([d.pixels for d in decoded])


def external_leakage(root: Path, test_root: Path, cfg: DataConfig) -> list[list[str]]:
    """Groups of files that sit both in the training data and in the external test folder
    (identical or near copies, by the audit), each as paths prefixed by their folder name;
    logged as a warning, since such test images overstate what a model has learnt."""
    threshold = cfg.near_threshold if cfg.near_duplicates else 0
    result = audit([root, test_root], cfg=AuditConfig(threshold=threshold, allow_new_classes=cfg.allow_new_classes))
    groups = [[result.files[i].rel for i in g.members] for g in result.leakage]
    if groups:
        shown = "; ".join(" = ".join(g) for g in groups[:3])
        log.warning("%d images of the test folder %s also appear in the training data (copies or near copies), "
                    "e.g. %s; see env.json data.test_leakage", len(groups), test_root, shown)
    return groups


def read_samples(cfg: DataConfig, root: Path) -> tuple[list[Sample], list[str], dict[str, str] | None]:
    """Samples, class names and (for layouts that have one) a lesion id per sample path.

    `task="binary"` maps every class onto benign / malignant (taxonomy.binary_label).
    """
    layout = LAYOUTS.get(cfg.layout)
    if layout.needs_metadata and not cfg.metadata:
        raise DermkdError(f"the {cfg.layout} layout needs its metadata CSV: pass --metadata PATH")
    metadata = Path(cfg.metadata).expanduser() if cfg.metadata else None
    samples, classes, groups = layout.read(root, metadata, cfg.allow_new_classes)
    lesions = None if groups is None else {s.rel: g for s, g in zip(samples, groups)}
    if cfg.task == "binary":
        samples = [dataclasses.replace(s, label=binary_label(s.label)) for s in samples]
        classes = [c for c in ("benign", "malignant") if any(s.label == c for s in samples)]
    return samples, classes, lesions


def group_keys(root: Path, rels: list[str], hashes: list[str], cfg: DataConfig,
               lesions: dict[str, str] | None = None, known_sha256: dict[Path, str] | None = None) -> list[str]:
    """A group key per file; files that must share a split share a key.

    Joined: identical content (sha256), the audit's near duplicates (class-folder data;
    its near groups list the byte copies of their members too), and the layout's lesion
    id (several images of one lesion, e.g. HAM10000's lesion_id).
    """
    uf = UnionFind(len(rels))
    first: dict[str, int] = {}
    links = [hashes]
    if lesions is not None:
        links.append(["lesion:" + lesions[rel] for rel in rels])
    if cfg.near_duplicates and LAYOUTS.get(cfg.layout).near_duplicates:
        result = audit([root], cfg=AuditConfig(threshold=cfg.near_threshold, allow_new_classes=cfg.allow_new_classes),
                       known_sha256=known_sha256)
        near = {result.files[i].rel: f"near:{k}" for k, g in enumerate(result.near_groups) for i in g.members}
        links.append([near.get(rel, f"file:{rel}") for rel in rels])
    for keys in links:
        for i, key in enumerate(keys):
            uf.union(first.setdefault(key, i), i)
    return [hashes[uf.find(i)] for i in range(len(rels))]


def _rows_from_file(split_file: str, by_rel: dict, labels: dict[str, str]) -> list[SplitRow]:
    """The split file's rows, checked against the data: every path under the root, every
    label known and equal to the data's own label for that file (folder or layout)."""
    rows = read_split(split_file)
    all_rel = set(labels)
    missing = [r.path for r in rows if r.path not in all_rel]
    if missing:
        raise DermkdError(f"split file lists {len(missing)} files not under the data root (e.g. {missing[0]})")
    known = set(labels.values())
    unknown = sorted({r.label for r in rows if resolve(r.label) is None and r.label not in known})
    if unknown:
        raise DermkdError(f"split file lists unknown labels: {', '.join(unknown)}; known: the 9 classes (names or "
                          "codes) and the data's own labels")
    for r in rows:
        cls = resolve(r.label)
        r.label = cls.name if cls else r.label
    wrong = [r for r in rows if r.path in labels and labels[r.path] != r.label]
    if wrong:
        raise DermkdError(f"split file labels {len(wrong)} files unlike the data does, e.g. {wrong[0].path}: "
                          f"{wrong[0].label!r} in the split file, {labels[wrong[0].path]!r} in the data")
    unread = [r.path for r in rows if r.path not in by_rel]
    if unread:
        log.warning("split file lists %d unreadable files; they are left out", len(unread))
    return [r for r in rows if r.path in by_rel]
