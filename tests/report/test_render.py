"""report.html from the report's Markdown (markdown-it): escaping, links, anchors, figures."""

from __future__ import annotations

import base64
import io
from pathlib import Path

from PIL import Image

from trialpool.report.document import (
    Code,
    FigureNode,
    Heading,
    Link,
    Muted,
    Para,
    Status,
    Table,
    md_node,
)
from trialpool.report.embed import light_png
from trialpool.report.render import render_html

EVIL = '<img src=x onerror="alert(1)"> & <script>alert(2)</script>'


def _page(nodes: list, folder: Path) -> str:
    return render_html(nodes, title="T <b>", subtitle=["s & t"], folder=folder)


def test_data_text_is_escaped_everywhere(tmp_path: Path) -> None:
    nodes = [
        Heading(2, EVIL, "h"),
        Para([EVIL, Muted(EVIL), Code(EVIL)]),
        Table(header=[EVIL], rows=[[EVIL]], caption=EVIL),
        Status("none", EVIL, [EVIL]),
    ]
    page = _page(nodes, tmp_path)
    assert "<script" not in page and "<img src=x" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; &amp; " in page


def test_only_the_reports_own_tags_pass_as_html(tmp_path: Path) -> None:
    """Raw HTML that reaches the Markdown other than <br>, <sub> and anchors is text."""
    from trialpool.report.render import _MD

    out = _MD.render('<b>x</b> <sub>y</sub><br><a id="k"></a>\n\n<div onclick="z">w</div>\n')
    assert "<b>" not in out and "&lt;b&gt;x&lt;/b&gt;" in out
    assert "<div" not in out and "&lt;div onclick=&quot;z&quot;&gt;" in out
    assert '<sub>y</sub><br><a id="k"></a>' in out


def test_links_only_to_http_and_anchors(tmp_path: Path) -> None:
    nodes = [
        Para(
            [
                Link("bad", "javascript:alert(1)"),
                Link("data", "data:text/html,x"),
                Link("ok", "https://doi.org/10.1/x(y)"),
                Link("here", "#sources"),
            ]
        )
    ]
    page = _page(nodes, tmp_path)
    assert "javascript:" not in page and "data:text" not in page
    assert '<a href="https://doi.org/10.1/x(y)">ok</a>' in page
    assert '<a href="#sources">here</a>' in page


def test_anchor_becomes_the_heading_id_and_toc_entry(tmp_path: Path) -> None:
    page = _page([Heading(2, "Methods", "methods"), Heading(3, "Sub", "sub-1")], tmp_path)
    assert '<h2 id="methods">Methods</h2>' in page and '<h3 id="sub-1">Sub</h3>' in page
    assert '<a href="#methods">Methods</a>' in page and 'href="#sub-1"' not in page  # level 2


def test_figure_embedded_and_file_link_shown_as_text(tmp_path: Path) -> None:
    (tmp_path / "figures").mkdir()
    Image.new("RGB", (90, 60), "white").save(tmp_path / "figures" / "f.png")
    node = FigureNode("figures/f.png", "figures/f.svg", "A caption", "alt <text>")
    assert md_node(node).startswith("![alt &lt;text&gt;](figures/f.png)")
    page = _page([node], tmp_path)
    # the lighter copy (two thirds the size, a palette) of the figure's PNG is embedded
    light = light_png(tmp_path / "figures" / "f.png")
    assert f'src="data:image/png;base64,{base64.b64encode(light).decode()}"' in page
    with Image.open(io.BytesIO(light)) as embedded:
        assert embedded.size == (60, 40) and embedded.mode == "P"
    assert 'alt="alt &lt;text&gt;"' in page
    assert "(SVG: figures/f.svg)" in page and 'href="figures' not in page
    assert page.count("<figure>") == 1


def test_status_kind_and_numeric_columns(tmp_path: Path) -> None:
    page = _page(
        [
            Status("partial", "head", ["line"]),
            Table(header=["a", "k"], rows=[["x", "3"]], numeric=frozenset({1})),
        ],
        tmp_path,
    )
    assert '<div class="status status-partial">' in page
    assert '<td style="text-align:right">3</td>' in page
    assert "Content-Security-Policy" in page and "<title>T &lt;b&gt;</title>" in page
