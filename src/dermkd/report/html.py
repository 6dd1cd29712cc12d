"""Render a Report as one self-contained HTML file: inline CSS, PNGs as data URIs, no
external resources, so the file can be mailed or archived alone."""

from __future__ import annotations

import base64
import re
from html import escape

from dermkd.report.document import Block, Figure, Report, Table

CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1400px; padding: 0 1rem; color: #222; }
h1 { font-size: 1.6rem; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2rem; margin-top: 2.2rem; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: .78rem; margin: .8rem 0 .3rem; }
caption { text-align: left; font-weight: 600; padding-bottom: .3rem; }
th, td { border: 1px solid #ddd; padding: .25rem .45rem; vertical-align: top; }
th { background: #f3f3f3; } td { font-variant-numeric: tabular-nums; } tr:nth-child(even) td { background: #fafafa; }
.note { font-size: .8rem; color: #555; margin-top: 0; }
figure { display: inline-block; margin: .8rem 1rem .8rem 0; } figure img { max-width: 100%; }
figcaption { font-size: .8rem; color: #555; } code { background: #f3f3f3; padding: 0 .2rem; }
"""


def _text(s: str) -> str:
    """Escape, then show `name` as code (the Markdown convention the sections write)."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escape(s))


def _table(t: Table) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in t.header)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in t.rows)
    note = f'<p class="note">{_text(t.note)}</p>' if t.note else ""
    return (f'<div class="scroll"><table><caption>{escape(t.caption)}</caption><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>{note}")


def _figure(f: Figure) -> str:
    data = base64.b64encode(f.png.read_bytes()).decode("ascii")
    return (f'<figure><img alt="{escape(f.caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{escape(f.caption)}</figcaption></figure>")


def _block(b: Block) -> str:
    if isinstance(b, Table):
        return _table(b)
    if isinstance(b, Figure):
        return _figure(b)
    return f"<p>{_text(b)}</p>"


def render_html(report: Report) -> str:
    parts = [f"<h1>{escape(report.title)}</h1>"]
    for section in report.sections:
        parts.append(f"<section><h2>{escape(section.title)}</h2>")
        parts.extend(_block(b) for b in section.blocks)
        parts.append("</section>")
    body = "\n".join(parts)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(report.title)}</title>'
            f"<style>{CSS}</style></head><body>\n{body}\n</body></html>\n")
