"""`dermkd data ...`: write the embedded data set, audit a data set, download from ISIC."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

console = Console()


def data_synth(
    out: Annotated[Path, typer.Argument(help="Folder to write <class>/synth_NNNN.png into.")],
    per_class: Annotated[int, typer.Option(help="Images per class.")] = 80,
    size: Annotated[int, typer.Option(help="Image size in px.")] = 64,
    seed: Annotated[int, typer.Option(help="Generator seed.")] = 0,
) -> None:
    """Write the embedded synthetic data set as class folders (what `make demo` trains on).

    Example: dermkd data synth /tmp/synthetic --per-class 80 --size 112
    """
    from dermkd.data.synthetic import generate_dataset

    root = generate_dataset(out, per_class, size, seed)
    console.print(f"{9 * per_class} images in 9 class folders under {root}")


def data_audit(
    roots: Annotated[list[Path], typer.Argument(help="Class-folder roots; several roots are checked for leakage.")],
    split_file: Annotated[Optional[Path], typer.Option(help="A split CSV (path,label,split): leakage across "
                                                          "its splits.")] = None,
    threshold: Annotated[Optional[int], typer.Option(help="Near-duplicate Hamming threshold (of 64 bits).")] = None,
    out: Annotated[Path, typer.Option(help="Folder for audit.json and audit.html.")] = Path("audit"),
    workers: Annotated[int, typer.Option(help="Hashing threads.")] = 4,
    allow_new_classes: Annotated[bool, typer.Option("--allow-new-classes", help="Accept folders outside the "
                                                                               "9-class taxonomy.")] = False,
) -> None:
    """Audit a data set: counts, sizes, unreadable files, exact and near duplicates,
    label conflicts, leakage across roots or splits, class imbalance.

    Example: dermkd data audit ../shared/data/isic9/Train --out runs/audit-isic9
    """
    from dermkd.data.audit import AuditConfig, audit, print_summary, write_audit

    cfg = AuditConfig(workers=workers, allow_new_classes=allow_new_classes)
    if threshold is not None:
        cfg = dataclasses.replace(cfg, threshold=threshold)
    result = audit(roots, split_file, cfg)
    print_summary(result, console)
    json_path, html_path = write_audit(result, out)
    console.print(f"wrote {json_path} and {html_path}")


def data_download(
    out: Annotated[Path, typer.Argument(help="Folder for the downloaded images and metadata.csv.")],
    collection: Annotated[Optional[list[int]], typer.Option(help="ISIC Archive collection id (repeatable).")] = None,
    search: Annotated[Optional[str], typer.Option(help="ISIC Archive search query.")] = None,
    limit: Annotated[Optional[int], typer.Option(help="At most this many images (0 = all).")] = None,
    arrange_into: Annotated[Optional[Path], typer.Option(help="Then copy the images into class folders here.")] = None,
    label_column: Annotated[str, typer.Option(help="metadata.csv column holding the label.")] = "diagnosis",
) -> None:
    """Download from the ISIC Archive with isic-cli (needs internet and `pip install isic-cli`).

    Example: dermkd data download runs/isic-dl --collection 249 --limit 500 --arrange-into data/isic-dl
    """
    from dermkd.data.download import arrange_class_folders, run_download

    run_download(out, collection=collection, search=search, limit=limit)
    if arrange_into is not None:
        counts = arrange_class_folders(out, arrange_into, label_column=label_column)
        console.print(f"{sum(counts.values())} images in {len(counts)} class folders under {arrange_into}")

