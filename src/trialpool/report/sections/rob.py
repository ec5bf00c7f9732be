"""Section "Risk of bias": per tool, the robvis-style graph and summary, the robvis CSV,
and every judgement with its support.
"""

from __future__ import annotations

import pandas as pd

from trialpool.analysis.runs import table_or_none
from trialpool.report.context import Context
from trialpool.report.document import Code, Heading, Node, Para, Strong, Table
from trialpool.report.exports import TOOL_DOMAINS, robvis_table, robvis_template, write_csv
from trialpool.report.figures import rob
from trialpool.report.format import val

_TOOL_NAMES = {
    "rob1": "Cochrane RoB 1",
    "rob2": "RoB 2",
    "robins_i": "ROBINS-I",
    "other": "Another tool (the review's own levels and domains)",
}


def _tool(ctx: Context, bias: pd.DataFrame, tool: str) -> list[Node]:
    """The nodes of one tool (``bias`` holds every tool's rows; ``tool``'s are drawn)."""
    sub = bias[(bias["tool"] == tool).fillna(False)]
    if sub.empty:
        return []
    name = _TOOL_NAMES[tool]
    labels = dict(ctx.studies.labels)
    assessors = ", ".join(sorted({str(a) for a in sub["assessor"].dropna()}))
    nodes: list[Node] = [
        Heading(3, name, f"rob-{tool}"),
        Para([Strong("Assessed by: "), assessors or "not stated"]),
        ctx.figure(
            f"rob_graph_{tool}",
            rob.rob_graph(sub, tool),
            f"{name}: risk-of-bias graph (share of studies per judgement, per domain).",
            alt=f"{name} risk-of-bias graph",
        ),
        ctx.figure(
            f"rob_summary_{tool}",
            rob.rob_summary(sub, labels, tool),
            f"{name}: risk-of-bias summary (one row per study).",
            alt=f"{name} risk-of-bias summary",
        ),
    ]
    header, rows = robvis_table(bias, tool, labels)
    write_csv(ctx.root / "exports" / f"robvis_{tool}.csv", header, rows)
    ctx.exported.append(f"exports/robvis_{tool}.csv")
    nodes.append(
        Para(
            [
                "robvis-ready table: ",
                Code(f"exports/robvis_{tool}.csv"),
                f' (robvis template "{robvis_template(bias, tool)}"; read with read.csv(..., '
                "check.names = FALSE)).",
            ]
        )
    )
    support = [
        [
            ctx.studies.label(str(r.study_id)),
            val(getattr(r, "domain_label", None)) or Code(str(r.domain)),
            str(r.result_scope),
            str(r.judgement).replace("_", " "),
            val(r.support) or "",
        ]
        for r in sub.itertuples()
    ]
    nodes.append(
        Table(
            header=["Study", "Domain", "Scope", "Judgement", "Support"],
            rows=support,
            caption=f"{name}: judgements and their support",
        )
    )
    return nodes


def section(ctx: Context) -> list[Node]:
    nodes: list[Node] = [Heading(2, "Risk of bias", "rob")]
    bias = table_or_none(ctx.pkg, "bias_judgements")
    if bias is None or bias.empty:
        nodes.append(
            Para(
                "No risk-of-bias judgements are in the package, so no risk-of-bias graph or "
                "summary is drawn (the review's own judgements were not available).",
                cls="note",
            )
        )
        return nodes
    for tool in _TOOL_NAMES:
        nodes.extend(_tool(ctx, bias, tool))
    other = sorted(set(bias["tool"].dropna().astype(str)) - set(TOOL_DOMAINS))
    if other:
        nodes.append(Para(f"Tools not drawn: {', '.join(other)}.", cls="note"))
    return nodes
