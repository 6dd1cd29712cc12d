"""`audit.html`: one self-contained page (inline CSS, thumbnails as base64 JPEG data URIs).

Sections in order of urgency: label conflicts, leakage across splits, exact duplicates,
near duplicates; each group is a row of thumbnails with path / label / split captions.
At most `MAX_GROUPS` groups per section are drawn (the JSON lists them all).
"""

from __future__ import annotations

import base64
import io
from html import escape

from PIL import Image

from dermkd.data.audit.core import AuditResult, Group

MAX_GROUPS = 300
THUMB = 96

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse}td,th{padding:2px 10px;border-bottom:1px solid #eee;text-align:left}
td.n{text-align:right}
.group{display:flex;flex-wrap:wrap;gap:8px;align-items:flex-start;padding:8px 0;border-bottom:1px solid #eee}
.meta{width:140px;font-size:12px;color:#555}
figure{margin:0;width:112px;font-size:11px;word-break:break-all}
figure img,figure .missing{display:block;max-width:96px;max-height:96px}
figure .missing{width:96px;height:96px;background:#ddd;color:#900;text-align:center;line-height:96px}
.label{font-weight:600}.note{color:#a60}
"""


class _Thumbs:
    """Each file's thumbnail is made once, however many sections show it."""

    def __init__(self, result: AuditResult):
        self.result = result
        self.cache: dict[int, str | None] = {}

    def __call__(self, i: int) -> str | None:
        if i not in self.cache:
            self.cache[i] = self._make(i)
        return self.cache[i]

    def _make(self, i: int) -> str | None:
        f = self.result.files[i]
        if f.error:
            return None
        try:
            with Image.open(f.path) as img:
                img.draft("RGB", (THUMB, THUMB))
                img = img.convert("RGB")
                img.thumbnail((THUMB, THUMB), Image.Resampling.LANCZOS)
                buf = io.BytesIO()
                img.save(buf, format="JPEG", quality=80)
        except Exception:  # the file changed or vanished since the audit
            return None
        return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(result: AuditResult, thumbs: _Thumbs, i: int) -> str:
    f = result.files[i]
    uri = thumbs(i)
    pic = f'<img src="{uri}" alt="">' if uri else '<div class="missing">unreadable</div>'
    split = f"<br>{escape(f.split)}" if f.split else ""
    return (f'<figure>{pic}<figcaption>{escape(f.rel)}<br><span class="label">{escape(f.label)}</span>'
            f"{split}</figcaption></figure>")


def _section(result: AuditResult, thumbs: _Thumbs, title: str, explain: str, groups: list[Group]) -> str:
    parts = [f"<h2>{escape(title)} ({len(groups)})</h2><p>{escape(explain)}</p>"]
    if not groups:
        parts.append("<p>None found.</p>")
    for n, g in enumerate(groups[:MAX_GROUPS], 1):
        meta = [f"#{n} {g.kind}, {len(g.members)} files"]
        if g.kind == "near":
            meta.append(f"distance {g.min_distance}-{g.max_distance}")
        labels, splits = result.labels(g), result.splits(g)
        if len(labels) > 1:
            meta.append("labels: " + ", ".join(labels))
        if len(splits) > 1:
            meta.append("splits: " + ", ".join(splits))
        figs = "".join(_figure(result, thumbs, i) for i in g.members)
        parts.append(f'<div class="group"><div class="meta">{"<br>".join(escape(m) for m in meta)}</div>{figs}</div>')
    if len(groups) > MAX_GROUPS:
        parts.append(f'<p class="note">Showing the first {MAX_GROUPS} of {len(groups)} groups; '
                     "audit.json lists them all.</p>")
    return "\n".join(parts)


def render_html(result: AuditResult, report: dict) -> str:
    thumbs = _Thumbs(result)
    s = report["summary"]
    rows = [
        ("files", report["n_files"]),
        ("unreadable files", len(report["unreadable"])),
        ("exact duplicate groups", s["exact_groups"]),
        (f"near duplicate groups (distance <= {report['threshold']})", s["near_groups"]),
        ("label conflicts (exact / near)", f"{s['conflicts']['exact']} / {s['conflicts']['near']}"),
        ("leakage groups (exact / near)", f"{s['leakage']['exact']} / {s['leakage']['near']}"),
        ("imbalance ratio", f"{report['imbalance_ratio']:.2f}" if report["imbalance_ratio"] else "-"),
    ]
    summary = "".join(f"<tr><th>{escape(k)}</th><td class=n>{escape(str(v))}</td></tr>" for k, v in rows)
    counts = report["counts"]
    cols = [k for k in counts if k != "total"] if len(result.root_names) > 1 else []
    head = "".join(f"<th>{escape(c)}</th>" for c in ["class", *cols, "total"])
    body = "".join(
        "<tr><td>" + escape(c) + "</td>" + "".join(f"<td class=n>{counts[k].get(c, 0)}</td>" for k in [*cols, "total"])
        + "</tr>" for c in report["classes"]
    )
    unreadable = "".join(f"<li>{escape(u['path'])}: {escape(u['error'] or '')}</li>" for u in report["unreadable"])
    roots = ", ".join(escape(r["path"]) for r in report["roots"])
    conflicts, leakage = result.conflicts, result.leakage
    sections = [
        _section(result, thumbs, "Label conflicts", "Identical or near-identical images filed under different "
                 "classes.", conflicts),
        _section(result, thumbs, "Leakage across splits", "Identical or near-identical images in more than one "
                 "split (split source: " + result.split_source + ").", leakage),
        _section(result, thumbs, "Exact duplicates", "Byte-identical files (same sha256).", result.exact_groups),
        _section(result, thumbs, "Near duplicates", "Different files whose perceptual hashes (any flip, crops up "
                 f"to 10%) differ in at most {result.threshold} of 64 bits; groups are chained, so the largest "
                 "distance within a group can exceed the threshold.", result.near_groups),
    ]
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8><title>dermkd data audit</title>"
        f"<style>{_CSS}</style></head><body>\n<h1>Data audit</h1><p>{roots}</p>"
        f"<table>{summary}</table>\n<h2>Images per class</h2><table><tr>{head}</tr>{body}</table>\n"
        + (f"<h2>Unreadable files ({len(report['unreadable'])})</h2><ul>{unreadable}</ul>\n" if unreadable else "")
        + "\n".join(sections) + "\n</body></html>\n"
    )
