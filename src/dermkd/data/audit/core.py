"""`audit()`: scan, hash (parallel, cached by content), group, and collect the findings."""

from __future__ import annotations

import hashlib
import logging
import statistics
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dermkd.data.audit import phash
from dermkd.data.audit.cache import default_cache_path, load_cache, save_cache
from dermkd.data.audit.groups import UnionFind, near_pairs
from dermkd.data.scan import scan_folders
from dermkd.data.splits import read_split
from dermkd.data.taxonomy import class_order
from dermkd.errors import DermkdError

log = logging.getLogger(__name__)

# Chosen from measurements on isic9 and on synthetic lesions: see the package docstring.
DEFAULT_THRESHOLD = 4


@dataclass
class AuditConfig:
    threshold: int = DEFAULT_THRESHOLD  # max Hamming distance (of 64 bits) for a near duplicate
    workers: int = 4  # threads that read, hash and decode
    cache: Path | None = None  # None: $DERMKD_CACHE_DIR or ~/.cache/dermkd, file audit-cache.json
    allow_new_classes: bool = False  # as for training: unknown class folders are an error unless set


@dataclass
class AuditFile:
    path: Path  # absolute
    rel: str  # shown path: relative to its root, prefixed by the root's name when several roots
    label: str
    split: str | None
    root: str  # the root's name
    sha256: str | None = None
    size_bytes: int | None = None
    width: int | None = None
    height: int | None = None
    format: str | None = None
    mode: str | None = None
    error: str | None = None
    hashes: np.ndarray | None = field(default=None, repr=False)  # (N_VARIANTS,) uint64
    cached: bool = False


@dataclass
class Group:
    kind: str  # "exact": byte-identical files; "near": 2+ different contents within the threshold
    members: list[int]  # indices into AuditResult.files, sorted by shown path
    min_distance: int = 0  # over pairs of different content (near groups)
    max_distance: int = 0  # can exceed the threshold: groups are chained (single linkage)


@dataclass
class AuditResult:
    roots: list[Path]
    root_names: list[str]
    classes: list[str]
    files: list[AuditFile]
    exact_groups: list[Group]
    near_groups: list[Group]
    threshold: int
    split_source: str  # "none", "roots" or "split file <path>"
    seconds: float
    hash_seconds: float
    search_seconds: float
    cached_files: int
    unlisted: list[str] = field(default_factory=list)  # files the split file does not list

    def labels(self, g: Group) -> list[str]:
        return sorted({self.files[i].label for i in g.members})

    def splits(self, g: Group) -> list[str]:
        return sorted({self.files[i].split for i in g.members if self.files[i].split is not None})

    @property
    def conflicts(self) -> list[Group]:
        return [g for g in self.exact_groups + self.near_groups if len(self.labels(g)) > 1]

    @property
    def leakage(self) -> list[Group]:
        return [g for g in self.exact_groups + self.near_groups if len(self.splits(g)) > 1]

    @property
    def unreadable(self) -> list[AuditFile]:
        return [f for f in self.files if f.error]

    def counts(self) -> dict[str, dict[str, int]]:
        """{"total": {class: n}, <root name>: {class: n}, ...}: every file found, readable or not."""
        out: dict[str, dict[str, int]] = {"total": {}}
        for name in self.root_names:
            out[name] = {}
        for f in self.files:
            for key in ("total", f.root):
                out[key][f.label] = out[key].get(f.label, 0) + 1
        return {k: {c: v[c] for c in self.classes if c in v} for k, v in out.items()}

    @property
    def imbalance_ratio(self) -> float | None:
        total = [n for n in self.counts()["total"].values() if n > 0]
        return max(total) / min(total) if total else None

    @property
    def files_per_s(self) -> float:
        return len(self.files) / self.seconds if self.seconds > 0 else float("inf")

    def stats(self) -> dict:
        ok = [f for f in self.files if not f.error and f.width is not None]
        sizes = [f.size_bytes for f in self.files if f.size_bytes is not None]

        def spread(values: list[int]) -> dict | None:
            return {"min": min(values), "median": statistics.median(values), "max": max(values)} if values else None

        return {
            "readable": len(ok),
            "unreadable": len(self.files) - len(ok),
            "width": spread([f.width for f in ok]),
            "height": spread([f.height for f in ok]),
            "sizes": [{"size": s, "count": n} for s, n in
                      Counter(f"{f.width}x{f.height}" for f in ok).most_common(10)],
            "formats": dict(Counter(f.format for f in ok).most_common()),
            "modes": dict(Counter(f.mode for f in ok).most_common()),
            "bytes": {"total": sum(sizes), "mean": sum(sizes) / len(sizes) if sizes else 0},
        }


def audit(roots: list[Path], split_file: Path | None = None, cfg: AuditConfig = AuditConfig(),
          known_sha256: dict[Path, str] | None = None) -> AuditResult:
    """Audit the class-folder trees under `roots` (see the package docstring).

    `known_sha256` (absolute path -> content sha256), from a caller that has just read the
    files (`prepare_data`), spares reading a file again when its hash is in the cache.
    """
    t0 = time.perf_counter()
    _check(cfg)
    roots = [Path(r).expanduser() for r in roots]
    if not roots:
        raise DermkdError("data audit: give at least one data folder")
    if split_file is not None and len(roots) > 1:
        raise DermkdError(f"a split file goes with one data folder, got {len(roots)}; "
                          "give either several folders (one per split) or one folder and a split file")
    resolved = [r.resolve() for r in roots]
    seen: set[Path] = set()
    for r, res in zip(roots, resolved):
        if res in seen:
            raise DermkdError(f"data folder given twice: {r}")
        seen.add(res)
    names = _root_names(resolved)
    several = len(roots) > 1

    files: list[AuditFile] = []
    labels: set[str] = set()
    for root, name in zip(roots, names):
        samples, classes = scan_folders(root, cfg.allow_new_classes)
        labels.update(classes)
        files.extend(AuditFile(s.path, f"{name}/{s.rel}" if several else s.rel, s.label,
                               name if several else None, name) for s in samples)
    split_source, unlisted = ("roots" if several else "none"), []
    if split_file is not None:
        unlisted = _apply_split_file(Path(split_file), files)
        split_source = f"split file {split_file}"

    t_hash = time.perf_counter()
    cache_path = Path(cfg.cache).expanduser() if cfg.cache is not None else default_cache_path()
    cached_entries = load_cache(cache_path)
    with ThreadPoolExecutor(max_workers=cfg.workers) as pool:
        list(pool.map(lambda f: _hash_file(f, cached_entries, (known_sha256 or {}).get(f.path)), files))
    new = {f.sha256: _entry(f) for f in files if f.sha256 is not None and not f.cached}
    if new:
        merged = load_cache(cache_path)  # re-read: another audit may have added entries meanwhile
        merged.update(new)
        save_cache(cache_path, merged)
    hash_seconds = time.perf_counter() - t_hash

    t_search = time.perf_counter()
    exact, near = _group(files, cfg.threshold)
    search_seconds = time.perf_counter() - t_search
    result = AuditResult(
        roots=resolved, root_names=names, classes=class_order(sorted(labels)), files=files,
        exact_groups=exact, near_groups=near, threshold=cfg.threshold, split_source=split_source,
        seconds=time.perf_counter() - t0, hash_seconds=hash_seconds, search_seconds=search_seconds,
        cached_files=sum(f.cached for f in files), unlisted=unlisted,
    )
    log.info("audited %d files in %.2fs (%d from the cache): %d exact groups, %d near groups, %d conflicts",
             len(files), result.seconds, result.cached_files, len(exact), len(near), len(result.conflicts))
    return result


# --------------------------------------------------------------------------- steps
def _check(cfg: AuditConfig) -> None:
    if isinstance(cfg.threshold, bool) or not isinstance(cfg.threshold, int) or not 0 <= cfg.threshold <= 64:
        raise DermkdError(f"audit threshold must be an integer from 0 to 64 (bits of 64), got {cfg.threshold!r}")
    if isinstance(cfg.workers, bool) or not isinstance(cfg.workers, int) or cfg.workers < 1:
        raise DermkdError(f"audit workers must be an integer >= 1, got {cfg.workers!r}")


def _root_names(roots: list[Path]) -> list[str]:
    """Folder names (the split names for leakage); a repeated name gets -2, -3, ..."""
    out: list[str] = []
    for r in roots:
        base = r.name or str(r)
        name, k = base, 2
        while name in out:
            name, k = f"{base}-{k}", k + 1
        out.append(name)
    return out


def _apply_split_file(path: Path, files: list[AuditFile]) -> list[str]:
    rows = read_split(path)
    by_rel = {f.rel: f for f in files}
    missing = [r.path for r in rows if r.path not in by_rel]
    if missing:
        raise DermkdError(f"split file {path} lists {len(missing)} files not under the data folder "
                          f"(e.g. {missing[0]})")
    for r in rows:
        by_rel[r.path].split = r.split
    unlisted = [f.rel for f in files if f.split is None]
    if unlisted:
        log.warning("split file %s does not list %d files (e.g. %s); they count for no split",
                    path, len(unlisted), unlisted[0])
    return unlisted


def _hash_file(f: AuditFile, cache: dict[str, dict], known_sha256: str | None = None) -> None:
    """Read + sha256; decode and pHash only if the content is not in the cache. With the
    content hash already known and cached, the file is not read at all."""
    try:
        if known_sha256 is not None and _valid(cache.get(known_sha256)):
            f.size_bytes, f.sha256, data = f.path.stat().st_size, known_sha256, None
        else:
            data = f.path.read_bytes()
            f.size_bytes, f.sha256 = len(data), hashlib.sha256(data).hexdigest()
    except OSError as exc:
        f.error = f"cannot read: {exc.strerror or exc}"
        return
    entry = cache.get(f.sha256)
    if _valid(entry):
        f.cached = True
    else:
        entry = phash.analyse_bytes(data)
    f.width, f.height, f.format, f.mode, f.error = (entry[k] for k in ("width", "height", "format", "mode", "error"))
    f.hashes = phash.from_hex(entry["phash"]) if entry["phash"] else None


def _valid(entry: object) -> bool:
    if not isinstance(entry, dict) or not {"width", "height", "format", "mode", "phash", "error"} <= entry.keys():
        return False
    ph = entry["phash"]
    return (ph is None and bool(entry["error"])) or (isinstance(ph, list) and len(ph) == phash.N_VARIANTS)


def _entry(f: AuditFile) -> dict:
    return {"width": f.width, "height": f.height, "format": f.format, "mode": f.mode,
            "phash": phash.to_hex(f.hashes) if f.hashes is not None else None, "error": f.error}


def _group(files: list[AuditFile], threshold: int) -> tuple[list[Group], list[Group]]:
    by_sha: dict[str, list[int]] = defaultdict(list)
    for i, f in enumerate(files):
        if f.sha256 is not None:
            by_sha[f.sha256].append(i)

    def order(members: list[int]) -> list[int]:
        return sorted(members, key=lambda i: files[i].rel)

    exact = [Group("exact", order(m)) for m in by_sha.values() if len(m) > 1]

    contents = [sha for sha, m in by_sha.items() if files[m[0]].hashes is not None]
    near: list[Group] = []
    if len(contents) > 1:
        h = np.stack([files[by_sha[sha][0]].hashes for sha in contents])
        ii, jj, _ = near_pairs(h, threshold)
        uf = UnionFind(len(contents))
        for i, j in zip(ii.tolist(), jj.tolist()):
            uf.union(i, j)
        for comp in uf.groups():
            d = phash.distance_matrix(h[comp])
            upper = d[np.triu_indices(len(comp), 1)]
            members = order([i for c in comp for i in by_sha[contents[c]]])
            near.append(Group("near", members, int(upper.min()), int(upper.max())))
    exact.sort(key=lambda g: files[g.members[0]].rel)
    near.sort(key=lambda g: files[g.members[0]].rel)
    return exact, near
