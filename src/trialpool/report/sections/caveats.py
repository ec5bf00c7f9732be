"""Section "What the data can and cannot show": the plan's caveats and counts from the data."""

from __future__ import annotations

from typing import Any

from trialpool.analysis.runs import code_text, table_or_none
from trialpool.report.context import Context
from trialpool.report.document import Bullets, Heading, Inlines, Muted, Node, Para, Strong
from trialpool.report.format import number, val

_OUTCOME_TABLES = ("continuous_outcomes", "dichotomous_outcomes")


def _when(row: Any) -> str:
    """ "at 24 weeks", or the row's time point code when it states no weeks ("as reported")."""
    weeks = number(getattr(row, "timepoint_weeks", None))
    if weeks is not None:
        return f"at {weeks:g} weeks"
    code = val(getattr(row, "timepoint", None))
    return code_text(code) if code else "(time point not stated)"


def _outcome_rows(ctx: Context) -> list[Inlines]:
    """Rows per verification status, each derived row and how, studies without data."""
    items: list[Inlines] = []
    with_data: set[str] = set()
    for name in _OUTCOME_TABLES:
        frame = table_or_none(ctx.pkg, name)
        label = name.replace("_", " ")
        if frame is None:
            continue
        if frame.empty:
            items.append(f"No {label} rows in the package.")
            continue
        with_data |= {str(s) for s in frame["study_id"].dropna()}
        ver = (
            frame["verification"].value_counts().to_dict()
            if "verification" in frame.columns
            else {}
        )
        parts = ", ".join(f"{v} {k}" for k, v in ver.items())
        items.append(
            f"{len(frame)} {label} row(s): {parts}. Derived rows are marked † wherever used."
        )
        der = (
            frame[(frame.get("verification") == "derived").fillna(False)]
            if "verification" in frame.columns
            else frame.iloc[0:0]
        )
        for r in der.itertuples():
            how = val(getattr(r, "derivation", None)) or "derivation not stated"
            where = f"{ctx.studies.label(str(r.study_id))}, {r.arm_id}, {r.outcome}"
            items.append(Muted(f"Derived: {where} {_when(r)} — {how}"))
    none = [s for s in ctx.studies.order if s not in with_data]
    if none:
        items.append(f"Studies with no outcome data in the package: {ctx.studies.names(none)}.")
    return items


def _other_rows(ctx: Context) -> list[Inlines]:
    """The audited review's own results, risk-of-bias assessors, non-randomised studies."""
    pkg, info = ctx.pkg, ctx.studies
    items: list[Inlines] = []
    audited = ctx.plan.audited_source_id
    pub = table_or_none(pkg, "published_results")
    if audited and pub is not None:
        own = pub[(pub["source_id"] == audited).fillna(False)]
        if own.empty:
            items.append(
                f"The pooled results of the audited review ({audited}) are not in the package "
                "(not available in the sources read); the reproduction audit compares with the "
                "pooled results of other reviews that the package records."
            )
    bias = table_or_none(pkg, "bias_judgements")
    if bias is None or bias.empty:
        items.append("No risk-of-bias judgements are in the package.")
    else:
        assessors = sorted({str(a) for a in bias["assessor"].dropna()})
        items.append(f"Risk-of-bias judgements by: {', '.join(assessors)}.")
    non_rct = [s for s in info.order if info.designs.get(s) != "rct"]
    if non_rct and ctx.revman_analyses:
        by_design: dict[str, int] = {}
        for s in non_rct:
            design = info.designs.get(s, "?").replace("_", " ")
            by_design[design] = by_design.get(design, 0) + 1
        counts = ", ".join(f"{n} {d}" for d, n in by_design.items())
        items.append(
            f"Designs: {len(non_rct)} of {len(info.order)} studies are not recorded as "
            f"randomised trials in the package ({counts}; an imported review states designs "
            "in prose only). The review's analyses pool the study rows the review pooled, "
            "whatever their recorded design."
        )
    if non_rct and ctx.metafor_analyses:
        items.append(
            "Studies not labelled as randomised trials in the package (left out of RCT-only "
            "analyses, kept in the all-designs variants): "
            + ", ".join(
                f"{info.label(s)} ({info.designs.get(s, '?').replace('_', ' ')})" for s in non_rct
            )
            + "."
        )
    return items


def section(ctx: Context) -> list[Node]:
    nodes: list[Node] = [Heading(2, "What the data can and cannot show", "caveats")]
    if ctx.plan.caveats:
        nodes.append(Para([Strong("Known limits of the sources"), " (from the analysis plan):"]))
        nodes.append(Bullets(list(ctx.plan.caveats)))
        nodes.append(Para([Strong("From the data"), " (counted by this report):"]))
    nodes.append(Bullets(_outcome_rows(ctx) + _other_rows(ctx)))
    return nodes
