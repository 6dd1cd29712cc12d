"""The audit's outputs: `audit.json` (every group listed), `audit.html`, and the terminal summary."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape
from rich.table import Table

from dermkd.data.audit.core import AuditResult, Group
from dermkd.data.audit.report_html import render_html
from dermkd.data.taxonomy import code_of
from dermkd.io import write_json, write_text

JSON_VERSION = 1


def _file(result: AuditResult, i: int) -> dict:
    f = result.files[i]
    return {"path": f.rel, "label": f.label, "split": f.split}


def _group_dict(result: AuditResult, g: Group, with_kind: bool = False) -> dict:
    out: dict = {"kind": g.kind} if with_kind else {}
    out["labels"] = result.labels(g)
    out["splits"] = result.splits(g)
    if g.kind == "near":
        out["min_distance"], out["max_distance"] = g.min_distance, g.max_distance
    out["files"] = [_file(result, i) for i in g.members]
    return out


def to_dict(result: AuditResult) -> dict:
    conflicts, leakage = result.conflicts, result.leakage
    return {
        "version": JSON_VERSION,
        "roots": [{"name": n, "path": str(p)} for n, p in zip(result.root_names, result.roots)],
        "split_source": result.split_source,
        "threshold": result.threshold,
        "n_files": len(result.files),
        "classes": result.classes,
        "counts": result.counts(),
        "imbalance_ratio": result.imbalance_ratio,
        "stats": result.stats(),
        "unreadable": [{"path": f.rel, "error": f.error} for f in result.unreadable],
        "unlisted_in_split_file": result.unlisted,
        "summary": {
            "exact_groups": len(result.exact_groups),
            "exact_files": sum(len(g.members) for g in result.exact_groups),
            "near_groups": len(result.near_groups),
            "near_files": sum(len(g.members) for g in result.near_groups),
            "conflicts": {k: sum(g.kind == k for g in conflicts) for k in ("exact", "near")},
            "leakage": {k: sum(g.kind == k for g in leakage) for k in ("exact", "near")},
        },
        "exact_groups": [[_file(result, i) for i in g.members] for g in result.exact_groups],
        "near_groups": [_group_dict(result, g) for g in result.near_groups],
        "conflicts": [_group_dict(result, g, with_kind=True) for g in conflicts],
        "leakage": [_group_dict(result, g, with_kind=True) for g in leakage],
        "timings": {
            "seconds": round(result.seconds, 4),
            "files_per_s": round(result.files_per_s, 1),
            "cached_files": result.cached_files,
            "hash_seconds": round(result.hash_seconds, 4),
            "search_seconds": round(result.search_seconds, 4),
        },
    }


def write_audit(result: AuditResult, out_dir: Path) -> tuple[Path, Path]:
    """Write `<out_dir>/audit.json` and `<out_dir>/audit.html` (atomically); return both paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = to_dict(result)
    json_path, html_path = out_dir / "audit.json", out_dir / "audit.html"
    write_json(json_path, report)
    write_text(html_path, render_html(result, report))
    return json_path, html_path


def print_summary(result: AuditResult, console) -> None:
    """Rich tables: images per class (per root), image statistics, duplicate findings."""
    counts = result.counts()
    several = len(result.root_names) > 1
    t = Table(title="Images per class")
    t.add_column("class")
    t.add_column("code")
    if several:
        for name in result.root_names:
            t.add_column(name, justify="right")
    t.add_column("total", justify="right")
    for c in result.classes:
        per_root = [str(counts[n].get(c, 0)) for n in result.root_names] if several else []
        t.add_row(c, code_of(c), *per_root, str(counts["total"].get(c, 0)))
    console.print(t)

    st = result.stats()
    s = Table(title="Images")
    s.add_column("", style="bold")
    s.add_column("value")
    s.add_row("files", str(len(result.files)))
    s.add_row("readable / unreadable", f"{st['readable']} / {st['unreadable']}")
    ratio = result.imbalance_ratio
    s.add_row("imbalance ratio (largest / smallest class)", f"{ratio:.2f}" if ratio else "-")
    for dim in ("width", "height"):
        if st[dim]:
            s.add_row(f"{dim} min / median / max (px)", "{min} / {median:g} / {max}".format(**st[dim]))
    s.add_row("commonest sizes", ", ".join(f"{x['size']} ({x['count']})" for x in st["sizes"][:3]) or "-")
    s.add_row("formats", ", ".join(f"{k} ({v})" for k, v in st["formats"].items()) or "-")
    s.add_row("modes", ", ".join(f"{k} ({v})" for k, v in st["modes"].items()) or "-")
    console.print(s)

    conflicts, leakage = result.conflicts, result.leakage
    d = Table(title=f"Duplicates (near: pHash Hamming distance <= {result.threshold} of 64)")
    d.add_column("finding")
    d.add_column("groups", justify="right")
    d.add_column("files", justify="right")

    def row(name: str, groups: list[Group]) -> None:
        d.add_row(name, str(len(groups)), str(sum(len(g.members) for g in groups)))

    row("exact duplicates (same bytes)", result.exact_groups)
    row("near duplicates (resized, re-encoded, cropped, flipped)", result.near_groups)
    row("label conflicts, exact", [g for g in conflicts if g.kind == "exact"])
    row("label conflicts, near", [g for g in conflicts if g.kind == "near"])
    if result.split_source != "none":
        row("leakage across splits, exact", [g for g in leakage if g.kind == "exact"])
        row("leakage across splits, near", [g for g in leakage if g.kind == "near"])
    d.add_row("unreadable files", "", str(len(result.unreadable)))
    d.caption = (f"{len(result.files)} files in {result.seconds:.2f}s ({result.files_per_s:.0f} images/s, "
                 f"{result.cached_files} from the cache)")
    console.print(d)
    for f in result.unreadable[:10]:
        console.print(f"[red]unreadable[/red] {escape(f.rel)}: {escape(f.error or '')}", highlight=False)
    if len(result.unreadable) > 10:
        console.print(f"... and {len(result.unreadable) - 10} more unreadable files (see audit.json)")
