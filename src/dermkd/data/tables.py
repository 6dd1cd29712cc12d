"""Reading metadata tables and finding the images they list: the shared steps of the
layout readers (`dermkd.data.layouts`) and the ISIC download (`dermkd.data.download`)."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

from dermkd.data.scan import IMAGE_EXTENSIONS, Sample
from dermkd.errors import DermkdError

log = logging.getLogger(__name__)


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


def locate_images(ids: list[str], index: dict[str, Path], table: Path, image_dir: Path) -> list[Path]:
    missing = [i for i in ids if i not in index]
    if missing:
        raise DermkdError(f"{len(missing)} of {len(ids)} images listed in {table} are missing under "
                          f"{image_dir} (e.g. {missing[0]}.jpg)")
    return [index[i] for i in ids]


def check_unique(ids: list[str], table: Path, column: str) -> None:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise DermkdError(f"{table}: {column} {i!r} is listed twice")
        seen.add(i)


def to_samples(paths: list[Path], root: Path, labels: list[str]) -> list[Sample]:
    root = root.resolve()
    out = []
    for p, label in zip(paths, labels):
        p = p.resolve()
        rel = p.relative_to(root).as_posix() if p.is_relative_to(root) else p.as_posix()
        out.append(Sample(p, rel, label))
    return out
