"""Render a Report as Markdown: the same tables, figures linked as files beside it."""

from __future__ import annotations

import os
from pathlib import Path

from dermkd.report.document import Block, Figure, Report, Table


def _cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def _table(t: Table) -> str:
    lines = [f"**{t.caption}**", "", "| " + " | ".join(map(_cell, t.header)) + " |",
             "|" + "---|" * len(t.header)]
    lines += ["| " + " | ".join(map(_cell, row)) + " |" for row in t.rows]
    if t.note:
        lines += ["", f"*{t.note}*"]
    return "\n".join(lines)


def _figure(f: Figure, base: Path) -> str:
    png, svg = (Path(os.path.relpath(p, base)).as_posix() for p in (f.png, f.svg))
    return f"![{f.caption}]({png})\n\n{f.caption} ([PNG]({png}), [SVG]({svg}))"


def _block(b: Block, base: Path) -> str:
    if isinstance(b, Table):
        return _table(b)
    if isinstance(b, Figure):
        return _figure(b, base)
    return b


def render_markdown(report: Report, base: Path) -> str:
    """`base`: the folder the Markdown file lives in; figure links are relative to it."""
    parts = [f"# {report.title}"]
    for section in report.sections:
        parts.append(f"## {section.title}")
        parts.extend(_block(b, base) for b in section.blocks)
    return "\n\n".join(parts) + "\n"
