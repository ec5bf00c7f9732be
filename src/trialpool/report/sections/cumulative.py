"""The cumulative meta-analysis of an analysis, when the plan asks for it (``cumulative``).

Per pooled block of a metafor-style analysis, or per analysis of an imported review, the
cumulative forest plot (:mod:`trialpool.report.figures.forest_cumulative`: studies added
in order of year, each step refitted with the analysis's settings,
:mod:`trialpool.analysis.cumulative`) and its steps as ``exports/cumulative_<key>.csv``.
An analysis without data, or one that cannot be accumulated, gets a one-line note instead.
"""

from __future__ import annotations

from collections.abc import Sequence

from trialpool.analysis.cumulative import (
    CumulativeResult,
    cumulative_json,
    cumulative_of_result,
    cumulative_of_review,
    study_years,
)
from trialpool.analysis.plan import Analysis, RevManAnalysis
from trialpool.analysis.revman import ReviewPoolResult
from trialpool.analysis.runs import Result, Settings
from trialpool.errors import TrialpoolError
from trialpool.report.context import Context
from trialpool.report.document import Node, Para
from trialpool.report.exports import write_csv
from trialpool.report.figures.forest_cumulative import draw_cumulative_forest
from trialpool.report.figures.forest_review import measure_label
from trialpool.report.figures.forest_text import MEASURE_NAMES
from trialpool.report.sections.plots import lower_is_better


def _export(ctx: Context, key: str, c: CumulativeResult) -> str:
    """The steps as a CSV (the keys of ``trialpool pool --cumulative --json``)."""
    steps = cumulative_json(c)["cumulative"]
    header = list(steps[0]) if steps else ["study_id"]
    name = f"exports/cumulative_{key}.csv"
    write_csv(ctx.root / name, header, [[s[h] for h in header] for s in steps])
    ctx.exported.append(name)
    return name


def _figure(
    ctx: Context,
    key: str,
    c: CumulativeResult,
    title: str,
    label: str,
    favours: tuple[str, str],
) -> list[Node]:
    if not c.steps:
        why = c.notes[0].rstrip(".") if c.notes else "no study has data"
        return [Para(f"Cumulative forest plot not drawn: {why}.", cls="note")]
    path = _export(ctx, key, c)
    fitted = sum(s.fitted for s in c.steps)
    caption = (
        f"Cumulative meta-analysis: {title}. {label}, {c.model}; each row pools the studies "
        f"up to and including the one added, in order of year ({fitted} of {len(c.steps)} "
        f"steps estimable; steps: {path})"
    )
    return [
        ctx.figure_later(
            f"cumulative_{key}",
            draw_cumulative_forest,
            (c, f"Cumulative meta-analysis: {title}", label, favours),
            caption,
            alt=f"Cumulative forest plot: {title}",
            tight=False,
            cost=len(c.steps),
        )
    ]


def _favours(ctx: Context, analysis: Analysis) -> tuple[str, str]:
    """The labels under the axis, as the analysis's forest plot has them."""
    lower = lower_is_better(ctx, analysis)
    first, second = analysis.favours
    if lower is None:
        return f"Lower in {first}", f"Lower in {second}"
    left, right = (first, second) if lower else (second, first)
    return f"Favours {left}", f"Favours {right}"


def metafor_nodes(
    ctx: Context,
    analysis: Analysis,
    s: Settings,
    blocks: Sequence[tuple[str | None, str, Result]],
) -> list[Node]:
    """The cumulative forest plot of each block ``(label, key, result)`` of a
    metafor-style analysis, when the plan asks for it."""
    if not ctx.plan.cumulative_for(analysis):
        return []
    years = study_years(ctx.pkg)
    nodes: list[Node] = []
    for label, key, result in blocks:
        title = analysis.title + (f" — {label}" if label else "")
        c = cumulative_of_result(result, years, method=s.method, hksj=s.hksj, level=s.level)
        measure = MEASURE_NAMES.get(analysis.measure, analysis.measure)
        nodes.extend(_figure(ctx, key, c, title, measure, _favours(ctx, analysis)))
    return nodes


def review_nodes(ctx: Context, a: RevManAnalysis, r: ReviewPoolResult) -> list[Node]:
    """The cumulative forest plot of an imported review's analysis (RevMan's engine), when
    the plan asks for it."""
    if not ctx.plan.cumulative_for(a):
        return []
    try:
        c = cumulative_of_review(a, r, study_years(ctx.pkg))
    except TrialpoolError as exc:
        why = str(exc).rstrip(".")
        return [Para(f"Cumulative forest plot not drawn: {why}.", cls="note")]
    if a.graph_labels is not None:
        favours = (a.graph_labels[0], a.graph_labels[1])
    else:
        favours = (f"Lower in {a.favours[0]}", f"Lower in {a.favours[1]}")
    return _figure(ctx, a.id, c, f"Analysis {a.id}: {a.title}", measure_label(a), favours)
