"""The figures of one analysis: forest plots, and the funnel plot with Egger's test."""

from __future__ import annotations

from trialpool.analysis.plan import Analysis
from trialpool.analysis.runs import Result, outcome_infos
from trialpool.errors import TrialpoolError
from trialpool.report.context import Context
from trialpool.report.document import Node, Para
from trialpool.report.figures import forest, funnel
from trialpool.report.format import lc, num, p_value
from trialpool.stats import small_study
from trialpool.stats.results import RATIO_MEASURES, PoolResult, SubgroupResult


def lower_is_better(ctx: Context, analysis: Analysis) -> bool | None:
    """The side of benefit for the forest plot's labels: the plan's ``lower_is_better``,
    or None ("Lower in ..." labels) for a plan built from the data whose outcome's
    direction is unclear or not applicable in the package's ``outcomes``."""
    if not ctx.plan_from_data:
        return analysis.lower_is_better
    info = outcome_infos(ctx.pkg).get(analysis.outcome)
    return None if info is None else info.lower_is_better


def forest_node(
    ctx: Context,
    key: str,
    analysis: Analysis,
    blocks: list[tuple[str | None, Result]],
    title: str,
    caption: str,
    subgroups: SubgroupResult | None = None,
) -> Node:
    """A forest plot figure node, or a paragraph saying why none is drawn."""
    if not any(r.studies for _, r in blocks):
        return Para(f"Forest plot not drawn: no study has usable data for {lc(title)}.", cls="note")
    n_studies = sum(len(r.studies) for _, r in blocks)
    if n_studies > forest.MAX_STUDY_ROWS:  # said in the figure too
        caption = f"{caption.rstrip('.')}. Note: " + forest.studies_not_drawn(n_studies)
    fig = forest.forest_plot(
        blocks,
        measure=analysis.measure,
        outcome_label=analysis.outcome_label,
        unit=analysis.unit,
        lower_is_better=lower_is_better(ctx, analysis),
        favours=analysis.favours,
        title=title,
        subgroup_test=subgroups,
    )
    return ctx.figure(key, fig, caption, alt=f"Forest plot: {title}")


def _egger(r: PoolResult) -> tuple[dict[str, float | int | None] | None, str]:
    """Egger's regression test (metafor regtest) for the plot, and as a sentence."""
    try:
        eg = small_study.regtest(
            [st.yi for st in r.studies],
            [st.vi for st in r.studies],
            method="FE" if r.method in ("FE", "MH") else r.method,
            hksj=r.hksj,
            level=r.level,
        )
    except TrialpoolError as exc:
        return None, f"Egger's test not computed: {exc}"
    stat = "t" if eg.df is not None else "z"
    df = f" (df = {eg.df})" if eg.df is not None else ""
    text = (
        f"Egger's regression test (metafor regtest: {r.method if r.method != 'MH' else 'FE'} "
        f"meta-regression on the standard error): {stat} = {num(eg.zval)}{df}, "
        f"P = {p_value(eg.pval)}; limit estimate as SE → 0: {num(eg.estimate)} "
        f"[{num(eg.ci_lower)}, {num(eg.ci_upper)}]"
        + (" (log scale)." if r.measure in RATIO_MEASURES else ".")
    )
    return {stat: eg.zval, "p": eg.pval, "intercept": eg.estimate, "slope": eg.slope}, text


def funnel_nodes(
    ctx: Context, key: str, analysis: Analysis, label: str | None, r: Result
) -> list[Node]:
    """Funnel plot and Egger's test when k is large enough; otherwise a plain note."""
    min_k = ctx.plan.defaults.funnel_min_k
    k = r.k if isinstance(r, PoolResult) else len(r.studies)
    where = f" ({label})" if label else ""
    if not isinstance(r, PoolResult) or r.k < min_k:
        return [
            Para(
                f"k = {k}{where}: funnel plot and Egger's test not shown (need k ≥ {min_k}).",
                cls="note",
            )
        ]
    egger, egger_text = _egger(r)
    fig = funnel.funnel_from_result(
        r, labels=False, egger=egger, title=f"Funnel plot: {analysis.title}{where}"
    )
    return [
        ctx.figure(
            f"funnel_{key}",
            fig,
            f"Funnel plot{where}, k = {r.k}.",
            alt=f"Funnel plot: {analysis.title}{where}",
        ),
        Para(egger_text),
    ]
