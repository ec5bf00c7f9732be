"""Figures of a review: forest, risk-of-bias, PRISMA flow and funnel plots.

Every function takes plain inputs (pooling results, frames, counts), builds a
matplotlib ``Figure`` on an explicit Agg canvas without touching pyplot's global
state, and returns it; :func:`save` writes it as PNG (150 dpi) and SVG.
"""

from trialpool.report.figures.forest import forest_plot, forest_rows, subgroup_blocks
from trialpool.report.figures.funnel import funnel_from_result, funnel_plot
from trialpool.report.figures.prisma import PrismaCounts, prisma_counts, prisma_flow
from trialpool.report.figures.rob import rob_graph, rob_summary
from trialpool.report.figures.style import save

__all__ = [
    "PrismaCounts",
    "forest_plot",
    "forest_rows",
    "funnel_from_result",
    "funnel_plot",
    "prisma_counts",
    "prisma_flow",
    "rob_graph",
    "rob_summary",
    "save",
    "subgroup_blocks",
]
