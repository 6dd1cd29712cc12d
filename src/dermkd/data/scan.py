"""Reading the ISIC class-folder layout: `<root>/<class name>/*.jpg|png`.

Folder names are mapped onto the 9-class taxonomy; files with other extensions and
hidden files are ignored. Layout problems are `DermkdError`s with one-line messages.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from dermkd.data.taxonomy import class_order, resolve_classes
from dermkd.errors import DermkdError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


@dataclass(frozen=True)
class Sample:
    path: Path  # absolute
    rel: str  # path relative to the data root, '/'-separated (the split file's key)
    label: str  # canonical class name


def scan_folders(root: str | Path, allow_new_classes: bool = False) -> tuple[list[Sample], list[str]]:
    """All images under `root`'s class folders, and the class names in canonical order."""
    root = Path(root).expanduser()
    if not root.exists():
        raise DermkdError(f"data path does not exist: {root}")
    if not root.is_dir():
        raise DermkdError(f"data path is not a folder: {root}")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        stray = [p.name for p in root.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS][:3]
        hint = f" (found images directly under it, e.g. {stray[0]}: put them in class folders)" if stray else ""
        raise DermkdError(f"no class folders under {root}; expected <root>/<class name>/*.jpg{hint}")
    labels = resolve_classes([p.name for p in folders], allow_new=allow_new_classes)
    samples: list[Sample] = []
    for folder, label in zip(folders, labels):
        files = sorted(
            f for f in folder.rglob("*")
            if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS and not f.name.startswith(".")
        )
        if not files:
            raise DermkdError(f"class folder has no images: {folder}")
        samples.extend(Sample(f.resolve(), f.relative_to(root).as_posix(), label) for f in files)
    log.info("found %d images in %d class folders under %s", len(samples), len(folders), root)
    return samples, class_order(labels)
