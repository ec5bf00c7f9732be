"""Section "Study flow (PRISMA 2020)": the flow diagram of the package's screening records
and the excluded records with their reasons.
"""

from __future__ import annotations

from trialpool.analysis.runs import table_or_none
from trialpool.report.context import Context
from trialpool.report.document import Heading, Inlines, Muted, Node, Para, Table
from trialpool.report.figures import prisma
from trialpool.report.format import val


def section(ctx: Context) -> list[Node]:
    nodes: list[Node] = [Heading(2, "Study flow (PRISMA 2020)", "prisma")]
    screening = table_or_none(ctx.pkg, "screening")
    if screening is None or screening.empty:
        nodes.append(Para("No screening records in the package: no flow diagram.", cls="note"))
        return nodes
    counts = prisma.prisma_counts(screening)
    fig = prisma.prisma_flow(counts)
    nodes.append(
        ctx.figure(
            "prisma_flow",
            fig,
            "PRISMA 2020 flow diagram of the package's screening records.",
            alt="PRISMA 2020 flow diagram",
        )
    )
    if counts.identified is None:
        nodes.append(
            Para(
                f"The package records the studies of the review ({counts.included_studies} "
                f"included, {counts.awaiting} awaiting classification, {counts.ongoing} "
                "ongoing"
                + (
                    f", {counts.excluded_eligibility} excluded"
                    if counts.excluded_eligibility is not None
                    else ""
                )
                + "), not its search: the records identified and screened are not reported.",
                cls="note",
            )
        )
    audited = ctx.plan.audited_source_id
    if audited:
        nodes.append(
            Para(
                f"The diagram counts the package's own screening records (studies considered "
                f"for this dataset). It is not {audited}'s PRISMA diagram unless its counts "
                "are recorded as screening rows.",
                cls="note",
            )
        )
    reasons = screening[(screening["decision"] == "exclude").fillna(False)]
    if not reasons.empty:
        rows: list[list[Inlines]] = [
            [str(r.label), str(r.stage), val(r.reason) or "not stated", Muted(str(r.source_id))]
            for r in reasons.itertuples()
        ]
        nodes.append(
            Table(
                header=["Record", "Stage", "Reason", "Source"],
                rows=rows,
                caption="Excluded records and reasons",
            )
        )
    return nodes
