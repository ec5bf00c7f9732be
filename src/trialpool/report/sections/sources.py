"""Section "Sources": every source of the package with its citation and a safe link."""

from __future__ import annotations

from urllib.parse import quote

from trialpool.analysis.runs import table_or_none
from trialpool.report.context import Context
from trialpool.report.document import (
    Code,
    Heading,
    Inline,
    Inlines,
    Link,
    Node,
    Para,
    Table,
    safe_url,
)
from trialpool.report.format import val


def section(ctx: Context) -> list[Node]:
    sources = table_or_none(ctx.pkg, "sources")
    nodes: list[Node] = [Heading(2, "Sources", "sources")]
    if sources is None or sources.empty:
        nodes.append(Para("No sources in the package.", cls="note"))
        return nodes
    rows: list[list[Inlines]] = []
    for r in sources.itertuples():
        links: list[Inline] = []
        doi = val(getattr(r, "doi", None))
        if doi:
            links.append(Link(f"doi:{doi}", "https://doi.org/" + quote(doi, safe="/:;()._-")))
        url = val(getattr(r, "url", None))
        if url and safe_url(url) and not (doi and doi in url):
            if links:
                links.append(" · ")
            links.append(Link("link", url))
        rows.append(
            [Code(str(r.source_id)), str(r.kind).replace("_", " "), str(r.citation), links or "–"]
        )
    nodes.append(Table(header=["Source id", "Kind", "Citation", "Link"], rows=rows))
    return nodes
