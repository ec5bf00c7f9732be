"""Section "Discrepancies": each claim of the audited review marked conflicting, beside
what the primary sources say. Also written as tables/discrepancies.csv.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from trialpool.analysis.runs import table_or_none
from trialpool.report.context import Context
from trialpool.report.document import BR, Code, Heading, Inline, Inlines, Muted, Node, Para, Table
from trialpool.report.format import val

CSV_HEADER = [
    "study_id",
    "field",
    "audited_value",
    "audited_source_id",
    "audited_locator",
    "primary_value",
    "primary_source_id",
    "primary_locator",
    "resolution",
]

_PRIMARY_KINDS = {"primary_article", "registry_record"}


def _note(text: str) -> Para:
    return Para(text, cls="note")


def _others(
    claims: pd.DataFrame, c: Any, audited: str, kinds: dict[str, str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(primary, other) claims of other sources on the same study and field."""
    same = claims[
        (claims["study_id"] == c.study_id).fillna(False)
        & (claims["field"] == c.field).fillna(False)
        & (claims["source_id"] != audited).fillna(False)
        & (claims["status"] != "derived").fillna(True)
    ]
    is_primary = (same["status"] == "primary").fillna(False) | same["source_id"].map(
        lambda x: kinds.get(str(x)) in _PRIMARY_KINDS
    ).astype(bool)
    return same[is_primary], same


def section(ctx: Context) -> list[Node]:
    nodes, flat = _build(ctx)
    ctx.write_table("discrepancies", CSV_HEADER, flat)
    return nodes


def _build(ctx: Context) -> tuple[list[Node], list[list[Any]]]:
    info = ctx.studies
    audited = ctx.plan.audited_source_id
    nodes: list[Node] = [Heading(2, "Discrepancies", "discrepancies")]
    claims = table_or_none(ctx.pkg, "claims")
    sources = table_or_none(ctx.pkg, "sources")
    if not audited:
        nodes.append(_note("The plan names no audited review (audited_source_id): no table."))
        return nodes, []
    if claims is None or claims.empty:
        nodes.append(_note("No claims in the package: no discrepancy table."))
        return nodes, []
    kinds: dict[str, str] = {}
    if sources is not None:
        kinds = {str(r.source_id): str(r.kind) for r in sources.itertuples()}
    nodes.append(
        Para(
            f"Each claim of {audited} that the package marks as conflicting, next to what the "
            "primary sources (the trial's own report or registry record) say for the same "
            "study and field, with the resolution chosen for the package. Every value keeps "
            "its source and locator."
        )
    )
    rows: list[list[Inlines]] = []  # against a primary source
    rows2: list[list[Inlines]] = []  # only other reviews contradict
    flat: list[list[Any]] = []
    theirs = claims[
        (claims["source_id"] == audited).fillna(False)
        & (claims["status"] == "conflicting").fillna(False)
    ]
    order = {sid: i for i, sid in enumerate(info.order)}
    theirs = theirs.assign(_o=theirs["study_id"].map(lambda x: order.get(str(x), 10**6)))
    theirs = theirs.sort_values("_o", kind="stable")
    for c in theirs.itertuples():
        sid = val(c.study_id) or ""
        prim, same = _others(claims, c, audited, kinds)
        resolution = (
            val(getattr(c, "resolution", None)) or val(getattr(c, "note", None)) or "not stated"
        )
        theirs_cell: list[Inline] = [str(c.value), Muted(f" ({c.locator})")]
        cell: list[Inline] = []
        for i, o in enumerate((same if prim.empty else prim).itertuples()):
            if i:
                cell.append(BR)
            cell.extend([str(o.value), Muted(f" ({o.source_id}, {o.locator})")])
            flat.append(
                [sid, c.field, c.value, audited, c.locator, o.value, o.source_id, o.locator,
                 resolution]
            )  # fmt: skip
        if not prim.empty:
            rows.append([info.label(sid), Code(str(c.field)), theirs_cell, cell, resolution])
        else:
            rows2.append(
                [info.label(sid), Code(str(c.field)), theirs_cell, cell or "–", resolution]
            )
    if rows:
        nodes.append(
            Table(
                header=["Study", "Field", audited, "Primary sources", "Resolution"],
                rows=rows,
                caption=f"{audited} vs the primary sources ({len(rows)} claims)",
                full="tables/discrepancies.csv",
            )
        )
    else:
        nodes.append(_note(f"No conflicting claim of {audited} has a primary source to compare."))
    if rows2:
        nodes.append(
            Table(
                header=["Study", "Field", audited, "Other sources (no primary source)", "Note"],
                rows=rows2,
                caption=(
                    f"{audited} claims marked conflicting that only other reviews contradict "
                    f"({len(rows2)} claims)"
                ),
                full="tables/discrepancies.csv",
            )
        )
    return nodes, flat
