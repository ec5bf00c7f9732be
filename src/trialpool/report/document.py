"""The report's content as a list of nodes, and that list written as Markdown.

The Markdown is the report: ``report.md`` is this text, and ``report.html`` is the same
text rendered by markdown-it (:mod:`trialpool.report.render`). Plain ``str`` pieces are
text from the data: :func:`md_text` HTML-escapes them and escapes the Markdown
specials, so they can never become markup; links are written only for http(s) URLs
and in-page anchors (:func:`safe_url`).
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from trialpool.report.format import sentence

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

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#])")


def md_text(text: str) -> str:
    """Text safe in Markdown: HTML-escaped, Markdown specials escaped, one line."""
    text = re.sub(r"\s+", " ", str(text))
    return _MD_SPECIAL.sub(r"\\\1", html.escape(text, quote=False))


def _md_inline(item: Inline) -> str:
    if isinstance(item, str):
        return md_text(item)
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
            return f"{lead}**{md_text(core)}**{trail}"
        return f"{lead}<sub>{md_text(core)}</sub>{trail}"
    if isinstance(item, Code):
        return "`" + item.text.replace("`", "'") + "`" if item.text else ""
    url = safe_url(item.url)
    if url is None:
        return md_text(item.text)
    return f"[{md_text(item.text)}](<{url.replace('>', '%3E')}>)"


def md_inlines(content: Inlines) -> str:
    """Inline content as Markdown."""
    if isinstance(content, (str, Link, Strong, Code, Muted, LineBreak)):
        return _md_inline(content)
    return "".join(_md_inline(i) for i in content)


def _md_table(node: Table) -> str:
    out = [f"**{md_text(node.caption)}**\n"] if node.caption else []
    out.append("| " + " | ".join(md_text(h) for h in node.header) + " |")
    aligns = ("---:" if i in node.numeric else "---" for i in range(len(node.header)))
    out.append("|" + "|".join(aligns) + "|")
    out.extend("| " + " | ".join(md_inlines(c) for c in row) + " |" for row in node.rows)
    return "\n".join(out) + "\n"


def md_node(node: Node) -> str:
    """One block as Markdown (ending with a newline)."""
    if isinstance(node, Heading):
        anchor = re.sub(r"[^A-Za-z0-9_-]", "", node.anchor)
        level = "#" * min(max(node.level, 2), 4)
        return f'<a id="{anchor}"></a>\n\n{level} {md_text(node.text)}\n'
    if isinstance(node, Para):
        text = md_inlines(node.content)
        return f"> {text}\n" if node.cls == "note" else f"{text}\n"
    if isinstance(node, Bullets):
        return "".join(f"- {md_inlines(i)}\n" for i in node.items)
    if isinstance(node, Table):
        return _md_table(node)
    if isinstance(node, FigureNode):
        svg = f" (SVG: [{node.rel_svg}]({node.rel_svg}))" if node.rel_svg else ""
        caption = md_text(sentence(node.caption))
        return f"![{md_text(node.alt)}]({node.rel_png})\n\n*{caption}*{svg}\n"
    lines = "".join(f"> - {md_inlines(line)}\n" for line in node.lines)
    return f"> **{md_text(node.headline)}**\n{'>' + chr(10) if lines else ''}{lines}"


def render_markdown(doc: Sequence[Node], *, title: str, subtitle: Sequence[str]) -> str:
    """The Markdown text of a document (figures as relative PNG links)."""
    parts = [f"# {md_text(title)}\n"]
    parts.extend(f"{md_text(s)}  " for s in subtitle)
    parts.append("")
    parts.extend(md_node(node) for node in doc)
    return "\n".join(parts).rstrip() + "\n"
