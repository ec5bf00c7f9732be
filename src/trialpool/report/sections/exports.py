"""Section "Exports": the files written beside the report (escalc and robvis CSVs, tables,
reproduce.R; for an imported review's analyses, RevMan's per-study data and the audit).
"""

from __future__ import annotations

from trialpool.report.context import Context
from trialpool.report.document import Bullets, Code, Heading, Inlines, Node, Para

_TABLES = (
    "tables/study_characteristics.csv",
    "tables/discrepancies.csv",
    "tables/reproduction_audit.csv",
)


def section(ctx: Context) -> list[Node]:
    items: list[Inlines] = []
    if ctx.metafor_analyses or not ctx.revman_analyses:
        items.append(
            [
                Code("exports/reproduce.R"),
                ": refits every pooled number with metafor from the "
                "escalc CSVs and prints a comparison with this report (Rscript "
                "exports/reproduce.R)."
                if not ctx.revman_analyses
                else ": refits every number pooled with metafor's conventions from the "
                "escalc CSVs and prints a comparison with this report (Rscript "
                "exports/reproduce.R); the analyses of the imported review are audited "
                "against RevMan's own numbers instead.",
            ]
        )
    if ctx.revman_analyses:
        items.append(
            [
                Code("exports/revman_<analysis>.csv"),
                ": per analysis of the imported review, each study row as RevMan's "
                "conventions give it: the entered data, the effect yi and its variance vi "
                "(natural log for ratio measures), estimate and CI, weight (percent) and "
                "whether it is estimable.",
            ]
        )
        items.append(
            [
                Code("tables/revman_audit.csv"),
                ": every number RevMan stored next to trialpool's, with the tolerance and "
                "status of the comparison.",
            ]
        )
    items.extend([Code(p)] for p in ctx.exported)
    items.extend([Code(p)] for p in _TABLES)
    return [
        Heading(2, "Exports", "exports"),
        Para(
            "CSV cells that a spreadsheet would read as a formula are prefixed with a single quote."
        ),
        Bullets(items),
    ]
