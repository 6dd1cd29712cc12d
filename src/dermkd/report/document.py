"""The report as data: sections of paragraphs, tables and figures.

Sections are built once and rendered twice (HTML and Markdown), so the two outputs can
never disagree on a number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Table:
    caption: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""


@dataclass
class Figure:
    caption: str
    png: Path
    svg: Path


Block = str | Table | Figure  # a str is one paragraph


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)


@dataclass
class Report:
    title: str
    sections: list[Section]
