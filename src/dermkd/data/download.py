"""Downloading images from the ISIC Archive with `isic-cli`, and arranging them into class folders.

`isic-cli` (PyPI: isic-cli, the ISIC Archive's own client; not a dependency of dermkd) is
run as a subprocess: `isic image download [--search QUERY] [--collections IDS] [--limit N]
OUTDIR` writes `<isic_id>.<ext>` images plus `metadata.csv` (isic_id, attribution,
copyright_license, then the clinical/acquisition fields such as diagnosis or
diagnosis_1..5 and benign_malignant) into OUTDIR. `arrange_class_folders` then copies the
images into the `<root>/<class name>/` layout that `scan_folders` reads.
"""

from __future__ import annotations

import filecmp
import logging
import shlex
import shutil
import subprocess
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from dermkd.data.tables import index_images, read_table
from dermkd.data.taxonomy import LABEL_SCHEMES, class_order, normalise, try_map_label
from dermkd.errors import DermkdError
from dermkd.io import atomic_open

log = logging.getLogger(__name__)

ISIC_EXECUTABLE = "isic"
INSTALL_HINT = "isic-cli is not installed: pip install isic-cli"
METADATA_FILE = "metadata.csv"
# Columns holding benign/malignant rather than a diagnosis: mapped with the "binary" scheme.
BINARY_COLUMNS = ("benign_malignant", "diagnosis_1", "target")


def build_download_command(out_dir: Path, collection: int | Sequence[int] | None = None,
                           search: str | None = None, limit: int | None = None) -> list[str]:
    """The `isic image download` command line (the one place that knows isic-cli's syntax).

    `collection`: one collection id or several (comma-joined); `search`: an ISIC Archive
    query such as 'diagnosis_3:"Melanoma Invasive"'; `limit`: at most that many images
    (isic-cli's 0 means all; None leaves the option out).
    """
    cmd = [ISIC_EXECUTABLE, "image", "download"]
    if search:
        cmd += ["--search", search]
    if collection is not None:
        ids = [collection] if isinstance(collection, int) else list(collection)
        if not ids or any(isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in ids):
            raise DermkdError(f"ISIC collection ids must be non-negative integers, got {collection!r}")
        cmd += ["--collections", ",".join(str(i) for i in ids)]
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise DermkdError(f"download limit must be a non-negative integer (0 = all), got {limit!r}")
        cmd += ["--limit", str(limit)]
    cmd.append(str(out_dir))
    return cmd


def run_download(out_dir: Path, collection: int | Sequence[int] | None = None, search: str | None = None,
                 limit: int | None = None) -> Path:
    """Run isic-cli to download into `out_dir`; returns the path of its metadata.csv."""
    if shutil.which(ISIC_EXECUTABLE) is None:
        raise DermkdError(INSTALL_HINT)
    out_dir = Path(out_dir).expanduser()
    cmd = build_download_command(out_dir, collection=collection, search=search, limit=limit)
    log.info("running %s", shlex.join(cmd))
    try:
        proc = subprocess.run(cmd, check=False)
    except OSError as exc:
        raise DermkdError(f"could not run {cmd[0]}: {exc}") from None
    if proc.returncode != 0:
        raise DermkdError(f"isic-cli failed (exit status {proc.returncode}): {shlex.join(cmd)}")
    metadata = out_dir / METADATA_FILE
    if not metadata.is_file():
        raise DermkdError(f"isic-cli finished but wrote no {METADATA_FILE} in {out_dir}")
    return metadata


def arrange_class_folders(download_dir: Path, out_root: Path, label_column: str = "diagnosis",
                          scheme: str = "isic2020") -> dict[str, int]:
    """Copy (never move) each downloaded `<isic_id>.<ext>` into `<out_root>/<class>/`.

    Labels come from `label_column` of `<download_dir>/metadata.csv`, mapped with `scheme`
    (see `dermkd.data.taxonomy.LABEL_SCHEMES`). With a benign/malignant column
    (benign_malignant, diagnosis_1, target) the default scheme becomes "binary", giving
    `benign/` and `malignant/` folders (scan them with allow_new_classes). Images with an
    empty, unmappable (e.g. 'unknown') or unknown label are skipped and counted in the log.
    Each copy is atomic; an identical file already in place is left alone, so a re-run is
    cheap. Returns the number of images per class, in canonical class order.
    """
    download_dir, out_root = Path(download_dir).expanduser(), Path(out_root).expanduser()
    if label_column in BINARY_COLUMNS and scheme == "isic2020":
        scheme = "binary"
    if scheme not in LABEL_SCHEMES:
        raise DermkdError(f"unknown label scheme {scheme!r}; known: {', '.join(LABEL_SCHEMES)}")
    metadata = download_dir / METADATA_FILE
    rows = read_table(metadata, ("isic_id", label_column), "ISIC download metadata")
    ids = [r["isic_id"] for r in rows]
    dup = [i for i, n in Counter(ids).items() if n > 1]
    if dup:
        raise DermkdError(f"{metadata}: isic_id {dup[0]!r} is listed twice")
    index = index_images(download_dir, depth=0)
    missing = [i for i in ids if i not in index]
    if missing:
        raise DermkdError(f"{len(missing)} of {len(ids)} images listed in {metadata} are missing in "
                          f"{download_dir} (e.g. {missing[0]}.jpg); re-run the download")
    counts: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    known = {normalise(k) for k in LABEL_SCHEMES[scheme]}
    for row in rows:
        raw = row[label_column]
        if not raw:
            skipped["<empty>"] += 1
            continue
        name = try_map_label(raw, scheme) if normalise(raw) in known else None
        if name is None:
            skipped[raw] += 1
            continue
        src = index[row["isic_id"]]
        _copy_atomic(src, out_root / name / src.name)
        counts[name] += 1
    if skipped:
        log.warning("%s: skipped %d images with no class (%s)", metadata, sum(skipped.values()),
                    ", ".join(f"{k}: {v}" for k, v in skipped.most_common()))
    if not counts:
        seen = ", ".join(repr(k) for k, _ in skipped.most_common(5))
        raise DermkdError(f"no image in {metadata} has a {label_column} label mappable with scheme "
                          f"{scheme!r} (seen: {seen})")
    log.info("arranged %d images in %d class folders under %s", sum(counts.values()), len(counts), out_root)
    return {c: counts[c] for c in class_order(list(counts))}


def _copy_atomic(src: Path, dest: Path) -> None:
    """Copy `src` to `dest` through a temp file beside it; skip if an identical file is there."""
    if dest.is_file() and filecmp.cmp(src, dest, shallow=False):
        return
    with atomic_open(dest, "wb") as out, src.open("rb") as inp:
        shutil.copyfileobj(inp, out)
