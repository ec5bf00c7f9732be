"""report.html: the report's Markdown rendered by markdown-it into one self-contained page.

Each node's Markdown (the text of report.md) goes through markdown-it-py (CommonMark
with tables), which escapes every text. On top of it: raw HTML is kept only for the
report's own tags (``<br>``, ``<sub>``, the heading anchors) and any other becomes
escaped text; links are followed only to http(s) URLs and in-page anchors, and links to
the report's own files are shown as text; figures are embedded as base64 PNG, each
the lighter copy :mod:`.embed` makes of figures/NAME.png (the 74 analyses of CD008625:
a page of 3.2 MB instead of 19.6 MB). No script, no external reference: a
Content-Security-Policy forbids any. The title and every heading are cut as
:mod:`.document` cuts them.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.token import Token

from trialpool import __version__
from trialpool.report.document import (
    MAX_HEADING_CHARS,
    FigureNode,
    Heading,
    Link,
    Node,
    Status,
    md_inlines,
    md_node,
    safe_url,
    shorten,
)
from trialpool.report.embed import light_png

_OWN_TAG = re.compile(r'^(?:<br>|</?sub>|<a id="[A-Za-z0-9_-]+">|</a>)$')
_ANCHOR = re.compile(r'^<a id="([A-Za-z0-9_-]+)">$')
_FIGURE = re.compile(r"^figures/[A-Za-z0-9_.-]+\.(?:png|svg)$")

_CSS = """
:root { --fg:#1d1d1f; --muted:#5a5a5a; --line:#d0d4d9; --accent:#1F4E79; }
* { box-sizing: border-box; }
body { font-family: "DejaVu Sans", "Segoe UI", Helvetica, Arial, sans-serif; color: var(--fg);
  margin: 0; line-height: 1.45; font-size: 15px; background: #fff; }
header.top { background: #1F4E79; color: #fff; padding: 18px 32px; }
header.top h1 { margin: 0 0 4px 0; font-size: 24px; }
header.top p { margin: 2px 0; color: #e8eef5; font-size: 14px; }
main { max-width: 1180px; margin: 0 auto; padding: 8px 32px 48px 32px; }
nav.toc { background: #f4f6f8; border: 1px solid var(--line); padding: 10px 18px; margin: 18px 0;
  border-radius: 4px; font-size: 14px; }
nav.toc ol { margin: 4px 0; padding-left: 22px; }
h2 { border-bottom: 2px solid var(--accent); padding-bottom: 4px; margin-top: 40px; }
h3 { margin-top: 30px; color: var(--accent); }
h4 { margin-top: 20px; }
table { border-collapse: collapse; margin: 0 0 18px 0; font-size: 13px; width: 100%; }
th, td { border: 1px solid var(--line); padding: 4px 7px; vertical-align: top; text-align: left; }
th { background: #eef2f6; }
td[style*="right"] { white-space: nowrap; font-variant-numeric: tabular-nums; }
sub { color: var(--muted); font-size: 12px; vertical-align: baseline; }
code { font-family: "DejaVu Sans Mono", Consolas, monospace; font-size: 12.5px;
  background: #f2f2f2; padding: 0 3px; border-radius: 2px; }
figure { margin: 12px 0 22px 0; }
figure p { margin: 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figure p + p { font-size: 13px; color: var(--muted); margin-top: 4px; }
.status { border-left: 6px solid #999; background: #f7f7f7; padding: 8px 14px;
  margin: 10px 0 14px 0; }
.status blockquote { margin: 0; }
.status p { margin: 0; font-size: 15px; }
.status ul { margin: 4px 0 0 0; padding-left: 20px; }
.status-pooled { border-color: #2e7d32; background: #eef7ee; }
.status-partial { border-color: #c79100; background: #fff8e1; }
.status-none { border-color: #8a8a8a; background: #f3f3f3; }
.status-error { border-color: #b71c1c; background: #fdecea; }
.status-info { border-color: #1F4E79; background: #eef3f9; }
main > blockquote { font-size: 13.5px; color: #333; background: #fbfbf3;
  border: 1px solid #ecebd0; padding: 6px 10px; margin: 1em 0; }
main > blockquote p { margin: 0; }
footer { color: var(--muted); font-size: 12px; border-top: 1px solid var(--line);
  margin-top: 40px; padding-top: 10px; }
"""

_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def _only_own_markup(state: StateCore) -> None:
    """Foreign raw HTML becomes text; file links become text; anchors move onto headings."""
    tokens = state.tokens
    for token in tokens:
        if token.type == "html_block":
            token.type = "text"
        if token.type != "inline" or not token.children:
            continue
        kept: list[Token] = []
        in_file_link = False
        for child in token.children:
            if child.type == "html_inline" and not _OWN_TAG.match(child.content):
                child.type = "text"
            if child.type == "link_open" and safe_url(str(child.attrGet("href") or "")) is None:
                in_file_link = True
                continue
            if child.type == "link_close" and in_file_link:
                in_file_link = False
                continue
            kept.append(child)
        token.children = kept
    # <a id="x"></a> alone in the paragraph before a heading: the heading's id
    i = 0
    while i + 3 < len(tokens):
        kids = tokens[i + 1].children or []
        anchor = _ANCHOR.match(kids[0].content) if len(kids) == 2 else None
        if (
            tokens[i].type == "paragraph_open"
            and tokens[i + 3].type == "heading_open"
            and anchor
            and kids[0].type == "html_inline"
            and kids[1].content == "</a>"
        ):
            tokens[i + 3].attrSet("id", anchor.group(1))
            del tokens[i : i + 3]
        i += 1


def _embedded_image(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    """A figure's PNG as a data: URI: its lighter copy given in ``env["embedded"]``, else
    one made from the file in the report folder ``env["folder"]``."""
    token = tokens[idx]
    src = str(token.attrGet("src") or "")
    png = env.get("embedded", {}).get(src)
    if png is None:
        path = Path(env["folder"]) / src
        if not src.endswith(".png") or not path.is_file():
            return html.escape(self.renderInlineAsText(token.children or [], options, env))
        png = light_png(path)
    token.attrSet("src", "data:image/png;base64," + base64.b64encode(png).decode())
    return str(self.image(tokens, idx, options, env))


def _markdown_it() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": True}).enable("table")
    md.validateLink = lambda url: safe_url(url) is not None or bool(_FIGURE.match(url))  # type: ignore[method-assign]
    md.core.ruler.push("only_own_markup", _only_own_markup)
    md.add_render_rule("image", _embedded_image)
    return md


_MD = _markdown_it()


def _node_html(node: Node, env: dict[str, Any]) -> str:
    part = _MD.render(md_node(node), env)
    if isinstance(node, Status):
        return f'<div class="status status-{html.escape(node.kind, quote=True)}">\n{part}</div>\n'
    if isinstance(node, FigureNode):
        return f"<figure>\n{part}</figure>\n"
    return part


def render_html(
    doc: Sequence[Node],
    *,
    title: str,
    subtitle: Sequence[str],
    folder: Path,
    footer: str | None = None,
    embedded: Mapping[str, bytes] | None = None,
) -> str:
    """The self-contained HTML page of a document whose figures are in ``folder``
    (``footer``: the closing line, plain text, a report's by default; ``embedded``: the
    PNG to embed for a figure's path, figures/NAME.png)."""
    env: dict[str, Any] = {"folder": folder, "embedded": embedded or {}}
    body = "".join(_node_html(node, env) for node in doc)
    toc = "".join(
        f"1. {md_inlines(Link(n.text, '#' + n.anchor), MAX_HEADING_CHARS)}\n"
        for n in doc
        if isinstance(n, Heading) and n.level == 2
    )
    title = shorten(title, MAX_HEADING_CHARS)
    subs = "".join(f"<p>{html.escape(shorten(s, MAX_HEADING_CHARS))}</p>" for s in subtitle)
    version = html.escape(__version__)
    closing = (
        f"Written by trialpool {version}. Self-contained: every figure is embedded at screen "
        "resolution; the same figures are in figures/ as PNG (150 dpi) and SVG."
        if footer is None
        else html.escape(footer)
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta name="generator" content="trialpool {version}">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f'<header class="top"><h1>{html.escape(title)}</h1>{subs}</header>\n<main>\n'
        f'<nav class="toc"><strong>Contents</strong>\n{_MD.render(toc, env)}</nav>\n'
        f"{body}\n"
        f"<footer>{closing}</footer>\n"
        "</main>\n</body>\n</html>\n"
    )
