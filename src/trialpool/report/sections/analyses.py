"""Section "Analyses": each analysis of the plan with its data status, pooled result,
forest plot, per-study data, sensitivity analyses and funnel plot.

Analyses of an imported review (``engine = "revman"``) are pooled with RevMan's
conventions by :mod:`trialpool.analysis.revman`; their part of the report comes from
:func:`revman_blocks`.
"""

from __future__ import annotations

from trialpool.analysis.plan import Analysis, AnalysisPlan, RevManAnalysis
from trialpool.analysis.runs import BlockRun, Result, Settings, run_blocks, settings_for
from trialpool.analysis.sensitivity import run_variants
from trialpool.report.context import Context
from trialpool.report.document import Bullets, Code, Heading, Inlines, Node, Para, Strong
from trialpool.report.figures import forest
from trialpool.report.format import anchor, designs_text, slug
from trialpool.report.sections import cumulative, revman
from trialpool.report.sections.plots import forest_node, funnel_nodes
from trialpool.report.sections.results import result_table, study_table
from trialpool.report.sections.sensitivity import sensitivity_nodes
from trialpool.report.sections.status import analysis_status
from trialpool.stats.results import PoolResult, SubgroupResult


def intro(plan: AnalysisPlan | None = None) -> list[Node]:
    """The section's heading and lead paragraph (each analysis follows)."""
    analyses = [] if plan is None else list(plan.analyses)
    revman_ = any(isinstance(a, RevManAnalysis) for a in analyses)
    metafor = not revman_ or any(isinstance(a, Analysis) for a in analyses)
    lead: list[str] = []
    if metafor:
        lead.append(
            "Each analysis of the plan: its data status, pooled result, forest plot, "
            "per-study data and sensitivity analyses."
        )
    if revman_:
        who = (
            "Analyses of the imported review are"
            if metafor
            else "Each analysis of the imported review is"
        )
        lead.append(
            f"{who} pooled from the package with the review's own settings (RevMan's "
            "conventions): data status, totals, the forest plot in RevMan's layout, and how "
            "the numbers compare with those RevMan stored."
        )
    return [Heading(2, "Analyses", "analyses"), Para(" ".join(lead))]


def _facts(analysis: Analysis, s: Settings) -> Bullets:
    """Outcome, measure and model, designs; what it reproduces; the plan's note."""
    meta: list[Inlines] = [
        [
            Strong("Outcome: "),
            Code(analysis.outcome),
            f" ({analysis.outcome_label}" + (f", {analysis.unit}" if analysis.unit else "") + ")",
        ],
        [
            Strong("Measure and model: "),
            f"{analysis.measure}; {s.method}"
            + (" with HKSJ" if s.hksj else " (Wald-type z CI)")
            + f"; {s.level:g}% CI",
        ],
        [
            Strong("Designs: "),
            designs_text(s.designs)
            + ("; derived rows included" if s.include_derived else "; derived rows excluded"),
        ],
    ]
    if analysis.reproduces:
        meta.append([Strong("Reproduces: "), analysis.reproduces])
    if analysis.notes:
        meta.append([Strong("Note: "), analysis.notes])
    return Bullets(meta)


def _main_forest(
    ctx: Context,
    analysis: Analysis,
    s: Settings,
    blocks: list[BlockRun],
    subgroups: SubgroupResult | None,
) -> list[Node]:
    """The forest plot of every block, and the test for subgroup differences."""
    caption = f"{analysis.title}: {analysis.measure}, {s.method}" + (" + HKSJ" if s.hksj else "")
    if analysis.subgroup_by == "timepoint" and len(blocks) > 1:
        caption += (
            ". Time points are separate pools of largely the same patients: no total and no "
            "test for subgroup differences."
        )
    forest_blocks: list[tuple[str | None, Result]] = [(b.label, b.result) for b in blocks]
    nodes = [
        forest_node(
            ctx,
            f"forest_{analysis.id}",
            analysis,
            forest_blocks,
            analysis.title,
            caption,
            subgroups=subgroups,
        )
    ]
    if subgroups is not None:
        test = forest.subgroup_test_text(subgroups)
        nodes.append(
            Para(
                (test + ".")
                if test
                else "Test for subgroup differences not available (fewer than two subgroups "
                "with an estimate, or a study in two subgroups)."
            )
        )
    return nodes


def _tag(analysis: Analysis, b: BlockRun) -> str:
    """The block's key in file names."""
    if b.label is None:
        return analysis.id
    if analysis.subgroup_by == "timepoint" and b.timepoint is not None:
        return f"{analysis.id}_{b.timepoint:g}w".replace(".", "p")
    return f"{analysis.id}_{slug(b.label)}"


def _block_nodes(ctx: Context, analysis: Analysis, s: Settings, b: BlockRun) -> list[Node]:
    """One block's per-study data (exported), sensitivity analyses and funnel plot."""
    tag = _tag(analysis, b)
    where = f" — {b.label}" if b.label else ""
    path = ctx.export_result(tag, f"{analysis.title}{where}", b.result)
    nodes: list[Node] = []
    if b.result.studies:
        cap = f"Per-study data{where}" + (f" (exported: {path})" if path else "")
        control = analysis.favours[1][:1].upper() + analysis.favours[1][1:]
        nodes.append(study_table(b.result, ctx.studies, cap, (analysis.favours[0], control)))
    all_designs = ctx.plan.all_designs_for(analysis)
    runs, loo = run_variants(ctx.pkg, analysis, b, s, all_designs=all_designs)
    nodes.extend(sensitivity_nodes(ctx, analysis, b, s, tag, runs, loo))
    nodes.extend(funnel_nodes(ctx, tag, analysis, b.label, b.result))
    return nodes


def revman_blocks(ctx: Context, analysis: RevManAnalysis) -> list[Node]:
    """The part of the report of one analysis of an imported review (RevMan's
    conventions): :func:`trialpool.report.sections.revman.analysis_nodes`."""
    return revman.analysis_nodes(ctx, analysis)


def run_analysis(ctx: Context, analysis: Analysis | RevManAnalysis) -> list[Node]:
    """Pool one analysis with its variants; return its part of the report."""
    if isinstance(analysis, RevManAnalysis):
        return revman_blocks(ctx, analysis)
    s = settings_for(ctx.plan, analysis)
    blocks, subgroups = run_blocks(ctx.pkg, ctx.studies, analysis, s)
    nodes: list[Node] = [
        Heading(3, analysis.title, anchor("analysis", analysis.id)),
        analysis_status(ctx, analysis, blocks, s),
        _facts(analysis, s),
    ]
    if not blocks:
        nodes.append(Para("Forest plot not drawn: no data for this outcome.", cls="note"))
        return nodes
    if any(isinstance(b.result, PoolResult) for b in blocks):
        labelled = [(b.label or "All studies", b.result) for b in blocks]
        nodes.append(result_table(labelled, analysis.measure))
    nodes.extend(_main_forest(ctx, analysis, s, blocks, subgroups))
    steps = [(b.label, _tag(analysis, b), b.result) for b in blocks]
    nodes.extend(cumulative.metafor_nodes(ctx, analysis, s, steps))
    for b in blocks:
        nodes.extend(_block_nodes(ctx, analysis, s, b))
    return nodes
