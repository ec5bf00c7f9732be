"""The sensitivity analyses of one block: the variants table, forest plots of changed
study sets, and the leave-one-out table.
"""

from __future__ import annotations

from trialpool.analysis.plan import (
    Analysis,
    ExcludeDerived,
    ExcludeHighRob,
    Hksj,
    LeaveOutHeterogeneous,
    OtherMethod,
    Outliers,
    describe_rule,
    rule_id,
)
from trialpool.analysis.runs import BlockRun, Result, Settings, StudyInfo
from trialpool.analysis.sensitivity import VariantRun, studentized
from trialpool.report.context import Context
from trialpool.report.document import Heading, Inlines, Muted, Node, Para, Strong, Table
from trialpool.report.format import designs_text, effect, lc, num, pct, slug, small
from trialpool.report.sections.plots import forest_node
from trialpool.stats.results import NotPooled, PoolResult


def _title(v: VariantRun) -> str:
    rule = v.rule
    if rule is None:
        return "All designs"
    if isinstance(rule, Hksj):
        return "HKSJ"
    if isinstance(rule, ExcludeDerived):
        return "No derived values"
    if isinstance(rule, ExcludeHighRob):
        return "Excluding high risk of bias"
    if isinstance(rule, OtherMethod):
        return f"Estimator {rule.method}"
    if isinstance(rule, LeaveOutHeterogeneous):
        return f"Leave out heterogeneous studies (I² rule, {rule.i2_threshold:g}%)"
    assert isinstance(rule, Outliers)
    return f"Leave out outliers (|studentized residual| > {rule.z:g})"


def _key(v: VariantRun) -> str:
    """Safe in file names."""
    return "all-designs" if v.rule is None else slug(rule_id(v.rule))


def _rule_text(v: VariantRun, s: Settings) -> str:
    if v.rule is None:
        return "include every design (not only " + designs_text(s.designs) + ")"
    return describe_rule(v.rule)


def _note(v: VariantRun, block: BlockRun, info: StudyInfo) -> str:
    main = block.result
    if v.rule is None:
        return f"adds {info.names(v.added)}" if v.added else "no study of another design has data"
    if v.skipped == "too_few":
        k = main.k if isinstance(main, PoolResult) else len(block.usable)
        return f"not applicable: k = {k} (needs k ≥ 3)"
    if v.skipped == "below_threshold":
        assert isinstance(main, PoolResult) and isinstance(v.rule, LeaveOutHeterogeneous)
        return (
            f"I² = {pct(main.i2)} < {v.rule.i2_threshold:g}%: nothing left out "
            "(same as the main analysis)"
        )
    if v.skipped == "none_met":
        return "no study meets the rule: nothing left out"
    return f"left out: {info.names(v.left_out)}" if v.left_out else ""


def _variant_table(
    main: Result, runs: list[VariantRun], texts: list[tuple[str, str, str]]
) -> Table:
    header = ["Variant", "Rule", "k", "Estimate [CI]", "I²", "Studies / note"]
    rows: list[list[Inlines]] = []
    if isinstance(main, PoolResult):
        model = main.method + (" + HKSJ" if main.hksj else "")
        rows.append([Strong("Main analysis"), model, str(main.k), effect(main), pct(main.i2), ""])
    for v, (title, rule_text, note) in zip(runs, texts, strict=True):
        r = v.result
        if isinstance(r, PoolResult):
            rows.append([title, rule_text, str(r.k), effect(r), pct(r.i2), note])
        elif isinstance(r, NotPooled):
            rows.append([title, rule_text, str(r.k), Muted(f"not pooled: {r.reason}"), "", note])
        else:
            rows.append([title, rule_text, "", Muted(note), "", ""])
    return Table(header=header, rows=rows, numeric=frozenset({2}))


def _loo_table(main: PoolResult, loo: dict[str, Result], info: StudyInfo) -> Table:
    resid = studentized(main, loo)
    rows: list[list[Inlines]] = []
    for sid, r in loo.items():
        if isinstance(r, PoolResult):
            rows.append([info.label(sid), effect(r), small(r.tau2), pct(r.i2), num(resid.get(sid))])
        else:
            rows.append([info.label(sid), Muted(r.reason), "", "", ""])
    return Table(
        header=["Study left out", "Estimate [CI]", "τ²", "I²", "Studentized residual"],
        rows=rows,
        caption="Leave-one-out (each study left out in turn)",
        numeric=frozenset({2, 3, 4}),
    )


def sensitivity_nodes(
    ctx: Context,
    analysis: Analysis,
    b: BlockRun,
    s: Settings,
    tag: str,
    runs: list[VariantRun],
    loo: dict[str, Result] | None,
) -> list[Node]:
    """The sensitivity table, forest plots of changed study sets, and leave-one-out."""
    if not runs and not loo:
        return []
    where = f" — {b.label}" if b.label else ""
    nodes: list[Node] = [
        Heading(4, f"Sensitivity analyses{where}", f"sens-{analysis.id}-{slug(b.label or 'all')}")
    ]
    texts = [(_title(v), _rule_text(v, s), _note(v, b, ctx.studies)) for v in runs]
    has_data = bool(b.result.studies) or any(
        v.result is not None and v.result.studies for v in runs
    )
    if not has_data:
        names = ", ".join(title for title, _, _ in texts)
        nodes.append(Para(f"Not run: no study of any design has data ({names}).", cls="note"))
        return nodes
    nodes.append(_variant_table(b.result, runs, texts))
    main_ids = {st.study_id for st in b.result.studies}
    for v, (title, rule_text, note) in zip(runs, texts, strict=True):
        if v.result is None:
            continue
        ids = {st.study_id for st in v.result.studies}
        key = _key(v)
        if isinstance(v.result, PoolResult) or ids - main_ids:
            ctx.export_result(f"{tag}__{key}", f"{analysis.title}{where} — {title}", v.result)
        if (v.left_out or ids - main_ids) and v.result.studies:
            nodes.append(
                forest_node(
                    ctx,
                    f"forest_{tag}__{key}",
                    analysis,
                    [(None, v.result)],
                    f"{analysis.title}{where}: {lc(title)}",
                    f"{analysis.title}{where}, sensitivity analysis: {rule_text} ({note}).",
                )
            )
    if loo and isinstance(b.result, PoolResult):
        nodes.append(_loo_table(b.result, loo, ctx.studies))
    return nodes
