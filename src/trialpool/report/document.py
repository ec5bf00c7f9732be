"""The report's content as a list of nodes, and that list written as Markdown.

The Markdown is the report: ``report.md`` is this text, and ``report.html`` is the same
text rendered by markdown-it (:mod:`trialpool.report.render`). Plain ``str`` pieces are
text from the data: :func:`md_text` HTML-escapes them and escapes the Markdown
specials, so they can never become markup; links are written only for http(s) URLs
and in-page anchors (:func:`safe_url`).

Texts of any length are kept in the data but shortened here: a piece of text is cut
(with an ellipsis) at :data:`MAX_TEXT_CHARS` characters, in a table cell at
:data:`MAX_CELL_CHARS`, in a heading or a figure's alternative text at
:data:`MAX_HEADING_CHARS`; a table shows at most :data:`MAX_TABLE_ROWS` rows and says
where the others are (its ``full`` CSV) when it has more.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from trialpool.report.format import sentence
from trialpool.text import MAX_TEXT_CHARS, md_text, shorten

#: the longest piece of text in a table cell
MAX_CELL_CHARS = 1_000
#: the longest heading, and a figure's alternative text
MAX_HEADING_CHARS = 300
#: the most rows a table shows (the first ones)
MAX_TABLE_ROWS = 500

# --- inline pieces -------------------------------------------------------------------


@dataclass(frozen=True)
class Link:
    """A text link (http(s) or an in-page #anchor)."""

    text: str
    url: str


@dataclass(frozen=True)
class Strong:
    """Bold text."""

    text: str


@dataclass(frozen=True)
class Code:
    """Monospace text (identifiers, file names)."""

    text: str


@dataclass(frozen=True)
class Muted:
    """Small grey text (source ids, notes)."""

    text: str


@dataclass(frozen=True)
class LineBreak:
    """A line break inside a paragraph or table cell."""


BR = LineBreak()

Inline = str | Link | Strong | Code | Muted | LineBreak
Inlines = Inline | Sequence[Inline]


# --- blocks --------------------------------------------------------------------------


@dataclass
class Heading:
    level: int
    text: str
    anchor: str


@dataclass
class Para:
    content: Inlines
    cls: str | None = None  # "note": a remark set apart (a quote in Markdown)


@dataclass
class Bullets:
    items: list[Inlines]


@dataclass
class Table:
    header: list[str]
    rows: list[list[Inlines]]
    caption: str | None = None
    numeric: frozenset[int] = frozenset()  # right-aligned columns
    full: str | None = None  # the file with every row, named when rows are left out


@dataclass
class FigureNode:
    rel_png: str  # relative to the report folder
    rel_svg: str | None
    caption: str
    alt: str


@dataclass
class Status:
    kind: Literal["pooled", "partial", "none", "error", "info"]
    headline: str
    lines: list[Inlines] = field(default_factory=list)


Node = Heading | Para | Bullets | Table | FigureNode | Status


def safe_url(url: str) -> str | None:
    """The URL if it is http(s) or an in-page anchor; None otherwise (never javascript:)."""
    url = url.strip()
    if re.match(r"^https?://[^\s<>\"']+$", url, flags=re.IGNORECASE):
        return url
    if re.match(r"^#[A-Za-z0-9_-]+$", url):
        return url
    return None


# --- Markdown ------------------------------------------------------------------------


def _md_inline(item: Inline, limit: int = MAX_TEXT_CHARS, *, in_table: bool = False) -> str:
    if isinstance(item, str):
        return md_text(item, limit)
    if isinstance(item, LineBreak):
        return "<br>"
    if isinstance(item, (Strong, Muted)):
        # markers hug the text; surrounding spaces stay outside (CommonMark flanking rules)
        core = item.text.strip()
        lead = " " if item.text[:1].isspace() else ""
        trail = " " if item.text[-1:].isspace() else ""
        if not core:
            return lead or trail
        if isinstance(item, Strong):
            return f"{lead}**{md_text(core, limit)}**{trail}"
        return f"{lead}<sub>{md_text(core, limit)}</sub>{trail}"
    if isinstance(item, Code):
        if not item.text:
            return ""
        code = shorten(item.text, limit).replace("`", "'")
        # a pipe ends a table cell even in a code span unless escaped (GFM tables)
        return "`" + (code.replace("|", "\\|") if in_table else code) + "`"
    url = safe_url(item.url)
    if url is None:
        return md_text(item.text, limit)
    return f"[{md_text(item.text, limit)}](<{url.replace('>', '%3E')}>)"


def md_inlines(content: Inlines, limit: int = MAX_TEXT_CHARS, *, in_table: bool = False) -> str:
    """Inline content as Markdown (each piece of text at most ``limit`` characters)."""
    if isinstance(content, (str, Link, Strong, Code, Muted, LineBreak)):
        return _md_inline(content, limit, in_table=in_table)
    return "".join(_md_inline(i, limit, in_table=in_table) for i in content)


def _md_table(node: Table) -> str:
    out = [f"**{md_text(node.caption, MAX_HEADING_CHARS)}**\n"] if node.caption else []
    out.append("| " + " | ".join(md_text(h, MAX_HEADING_CHARS) for h in node.header) + " |")
    aligns = ("---:" if i in node.numeric else "---" for i in range(len(node.header)))
    out.append("|" + "|".join(aligns) + "|")
    out.extend(
        "| " + " | ".join(md_inlines(c, MAX_CELL_CHARS, in_table=True) for c in row) + " |"
        for row in node.rows[:MAX_TABLE_ROWS]
    )
    text = "\n".join(out) + "\n"
    if len(node.rows) > MAX_TABLE_ROWS:
        where = f"; every row is in {node.full}" if node.full else ""
        note = f"Showing the first {MAX_TABLE_ROWS} of {len(node.rows)} rows{where}."
        text += f"\n*{md_text(note)}*\n"
    return text


def md_node(node: Node) -> str:
    """One block as Markdown (ending with a newline)."""
    if isinstance(node, Heading):
        anchor = re.sub(r"[^A-Za-z0-9_-]", "", node.anchor)
        level = "#" * min(max(node.level, 2), 4)
        return f'<a id="{anchor}"></a>\n\n{level} {md_text(node.text, MAX_HEADING_CHARS)}\n'
    if isinstance(node, Para):
        text = md_inlines(node.content)
        return f"> {text}\n" if node.cls == "note" else f"{text}\n"
    if isinstance(node, Bullets):
        return "".join(f"- {md_inlines(i)}\n" for i in node.items)
    if isinstance(node, Table):
        return _md_table(node)
    if isinstance(node, FigureNode):
        svg = f" (SVG: [{node.rel_svg}]({node.rel_svg}))" if node.rel_svg else ""
        caption = md_text(sentence(shorten(node.caption)))
        alt = md_text(node.alt, MAX_HEADING_CHARS)
        return f"![{alt}]({node.rel_png})\n\n*{caption}*{svg}\n"
    lines = "".join(f"> - {md_inlines(line)}\n" for line in node.lines)
    return f"> **{md_text(node.headline)}**\n{'>' + chr(10) if lines else ''}{lines}"


def render_markdown(doc: Sequence[Node], *, title: str, subtitle: Sequence[str]) -> str:
    """The Markdown text of a document (figures as relative PNG links)."""
    parts = [f"# {md_text(title, MAX_HEADING_CHARS)}\n"]
    parts.extend(f"{md_text(s, MAX_HEADING_CHARS)}  " for s in subtitle)
    parts.append("")
    parts.extend(md_node(node) for node in doc)
    return "\n".join(parts).rstrip() + "\n"
