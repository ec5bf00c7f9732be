"""Section "Exports": the files written beside the report (escalc and robvis CSVs, tables,
reproduce.R).
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
    items: list[Inlines] = [
        [
            Code("exports/reproduce.R"),
            ": refits every pooled number with metafor from the "
            "escalc CSVs and prints a comparison with this report (Rscript exports/reproduce.R).",
        ],
    ]
    items.extend([Code(p)] for p in ctx.exported)
    items.extend([Code(p)] for p in _TABLES)
    return [
        Heading(2, "Exports", "exports"),
        Para(
            "CSV cells that a spreadsheet would read as a formula are prefixed with a single quote."
        ),
        Bullets(items),
    ]
