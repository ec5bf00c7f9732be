"""``trialpool pool``: validate, pool one analysis, print it (a table, or one JSON object).

Two ways to ask: by outcome, measure and method (metafor's conventions, as in 0.1), or by
``--analysis ID`` of the analysis plan, pooled with the settings the plan records (a
``RevManAnalysis`` of an imported review uses RevMan's conventions). ``--cumulative`` adds
the cumulative meta-analysis (:mod:`trialpool.analysis.cumulative`): the studies added in
order of year, each step refitted with the same settings.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from rich.console import Console
from rich.table import Table

from trialpool.analysis.cumulative import (
    CumulativeResult,
    cumulative_json,
    cumulative_of_result,
    cumulative_of_review,
    study_years,
)
from trialpool.analysis.plan import Analysis, AnalysisPlan, RevManAnalysis, load_plan
from trialpool.analysis.pooled import Result, json_safe, pool_outcome, result_json
from trialpool.analysis.revman import ReviewPoolResult, pool_review_analysis, review_result_json
from trialpool.errors import AnalysisError, UsageError
from trialpool.package.loader import Package, load_package
from trialpool.stats.results import RATIO_MEASURES, NotPooled, PoolResult, StudyEffect
from trialpool.validate import print_report, validate_package

DEFAULT_PLAN = Path("analysis") / "plan.json"


def _fmt(x: float | None, digits: int = 2) -> str:
    if x is None or not math.isfinite(x):
        return "–"
    return f"{x:.{digits}f}"


def _fmt_p(p: float | None) -> str:
    if p is None or not math.isfinite(p):
        return "–"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def _arm_text(s: StudyEffect, group: int) -> str:
    a = s.arm_data
    if f"e{group}" in a:
        return f"{a[f'e{group}']}/{a[f't{group}']}"
    m, sd, n = a.get(f"m{group}"), a.get(f"sd{group}"), a.get(f"n{group}")
    return f"{_fmt(m)} ({_fmt(sd)}), n={n}"


def _effect_text(s: StudyEffect, measure: str) -> str:
    y = math.exp(s.yi) if measure in RATIO_MEASURES and math.isfinite(s.yi) else s.yi
    return f"{_fmt(y)} [{_fmt(s.ci_lower)}, {_fmt(s.ci_upper)}]"


def print_result(
    result: Result, console: Console, *, outcome: str, timepoint: float | None
) -> None:
    """A readable table (studies, pooled line, heterogeneity), or one sentence for
    an analysis that cannot be pooled."""
    when = f" at {timepoint:g} weeks" if timepoint is not None else ""
    if isinstance(result, NotPooled):
        if result.k == 1 and result.studies:
            s = result.studies[0]
            effect = f"{result.measure} {_effect_text(s, result.measure)}"
            if result.reason.endswith("no events in either arm"):
                effect = "no events in either arm"
            console.out(
                f"not poolable: k = 1 (only {s.label or s.study_id}) — {outcome}{when}, {effect}",
                highlight=False,
            )
        else:
            console.out(
                f"not poolable: k = {result.k} ({result.reason}) — {outcome}{when}",
                highlight=False,
            )
        for m in result.missing:
            console.out(f"  needs: {m}", highlight=False)
        return
    ratio = " (ratio scale)" if result.measure in RATIO_MEASURES else ""
    model = result.method + (" + HKSJ" if result.hksj else "")
    table = Table(title=f"{outcome}{when}: {result.measure}, {model}, k = {result.k}")
    table.add_column("Study")
    table.add_column("Intervention")
    table.add_column("Control")
    table.add_column(f"{result.measure} [{result.level:g}% CI]{ratio}", justify="right")
    table.add_column("Weight %", justify="right")
    for s in result.studies:
        mark = (" †" if s.derived else "") + (" ‡" if s.zero_cell_corrected else "")
        table.add_row(
            (s.label or s.study_id) + mark,
            _arm_text(s, 1),
            _arm_text(s, 2),
            _effect_text(s, result.measure),
            _fmt(s.weight, 1),
        )
    table.add_row(
        "Pooled",
        "",
        "",
        f"{_fmt(result.estimate)} [{_fmt(result.ci_lower)}, {_fmt(result.ci_upper)}]",
        "100.0",
        style="bold",
    )
    console.print(table)
    pi = (
        f"; prediction interval [{_fmt(result.pi_lower)}, {_fmt(result.pi_upper)}]"
        if result.pi_lower is not None
        else ""
    )
    console.out(
        f"Pooled {result.measure}{ratio}: {_fmt(result.estimate, 3)} "
        f"[{_fmt(result.ci_lower, 3)}, {_fmt(result.ci_upper, 3)}], "
        f"{'t' if result.hksj else 'z'} = {_fmt(result.zval)}, p {_fmt_p(result.p_value)}{pi}",
        highlight=False,
    )
    console.out(
        f"Heterogeneity: tau² = {_fmt(result.tau2, 4)}, I² = {_fmt(result.i2, 1)}%, "
        f"Q = {_fmt(result.q)} (df = {result.q_df}, p {_fmt_p(result.q_p)})",
        highlight=False,
    )
    if any(s.derived for s in result.studies):
        console.out("† derived values (computed by the maintainers)", highlight=False)
    if any(s.zero_cell_corrected for s in result.studies):
        console.out("‡ zero cell: 1/2 added to each cell", highlight=False)
    for note in result.notes:
        console.out(f"note: {note}", highlight=False)


def _fmt_ratio(x: float | None, ratio: bool) -> str:
    return _fmt(x, 3 if ratio else 2)


def print_review_result(result: ReviewPoolResult, console: Console, *, title: str) -> None:
    """A RevMan-style table of one imported analysis: rows, subgroup totals, the total."""
    table = Table(
        title=f"Analysis {result.analysis_id}: {title} ({result.measure}, "
        f"{result.model}, {result.level:g}% CI)"
    )
    for col in ("study or subgroup", "weight %", result.measure, "CI"):
        table.add_column(col)
    by_subgroup: dict[str | None, list] = {}
    for s in result.studies:
        by_subgroup.setdefault(s.subgroup, []).append(s)
    groups = [(g.id, g) for g in result.subgroups] or [(None, None)]
    for gid, group in groups:
        if group is not None:
            table.add_row(f"{group.id} {group.label}", "", "", "")
        for s in by_subgroup.get(gid, []):
            if not s.estimable:
                table.add_row(f"  {s.label}", "", "not estimable", s.reason or "")
                continue
            table.add_row(
                f"  {s.label}",
                _fmt(s.weight, 1),
                _fmt_ratio(s.estimate, result.ratio),
                f"[{_fmt_ratio(s.ci_lower, result.ratio)}, {_fmt_ratio(s.ci_upper, result.ratio)}]",
            )
        if group is not None and group.estimable:
            table.add_row(
                f"  Subtotal (k = {group.k})",
                _fmt(group.weight, 1),
                _fmt_ratio(group.estimate, result.ratio),
                f"[{_fmt_ratio(group.ci_lower, result.ratio)}, "
                f"{_fmt_ratio(group.ci_upper, result.ratio)}]",
            )
    if result.estimable:
        table.add_row(
            f"Total (k = {result.k})",
            "100.0",
            _fmt_ratio(result.estimate, result.ratio),
            f"[{_fmt_ratio(result.ci_lower, result.ratio)}, "
            f"{_fmt_ratio(result.ci_upper, result.ratio)}]",
        )
    console.print(table)
    if result.estimable:
        console.out(
            f"Heterogeneity: Tau² = {_fmt(result.tau2, 4)}; Chi² = {_fmt(result.q)}, "
            f"df = {result.q_df} (P = {_fmt_p(result.q_p)}); I² = {_fmt(result.i2, 0)}%",
            highlight=False,
        )
        console.out(
            f"Test for overall effect: Z = {_fmt(result.zval)} (P = {_fmt_p(result.p_value)})",
            highlight=False,
        )
    else:
        console.out(f"Not estimable: {result.reason}", highlight=False)
    if result.subgroup_test is not None:
        t = result.subgroup_test
        console.out(
            f"Test for subgroup differences: Chi² = {_fmt(t.q)}, df = {t.df} "
            f"(P = {_fmt_p(t.p)}), I² = {_fmt(t.i2, 0)}%",
            highlight=False,
        )
    for note in result.notes:
        console.out(f"note: {note}", highlight=False)


def print_cumulative(c: CumulativeResult, console: Console) -> None:
    """The cumulative meta-analysis as a table: one row per study added (its year, k, the
    pooled estimate and CI after adding it, tau² and I²), then its notes."""
    ratio = " (ratio scale)" if c.ratio else ""
    table = Table(title=f"Cumulative meta-analysis: {c.measure}, {c.model}, by year")
    table.add_column("Study added")
    table.add_column("Year", justify="right")
    table.add_column("k", justify="right")
    table.add_column(f"{c.measure} [{c.level:g}% CI]{ratio}", justify="right")
    table.add_column("tau²", justify="right")
    table.add_column("I² %", justify="right")
    digits = 3 if c.ratio else 2
    for s in c.steps:
        year = "–" if s.year is None else str(s.year)
        if not s.fitted:
            table.add_row(s.label, year, str(s.k), f"not fitted: {s.reason}", "", "")
            continue
        table.add_row(
            s.label,
            year,
            str(s.k),
            f"{_fmt(s.estimate, digits)} [{_fmt(s.ci_lower, digits)}, {_fmt(s.ci_upper, digits)}]",
            _fmt(s.tau2, 4),
            _fmt(s.i2, 1),
        )
    console.print(table)
    for note in c.notes:
        console.out(f"note: {note}", highlight=False)


def _plan_for(descriptor: Path, plan: Path | None) -> AnalysisPlan:
    path = plan if plan is not None else descriptor.parent / DEFAULT_PLAN
    if not path.is_file():
        raise UsageError(f"no analysis plan at {path}; give one with --plan")
    return load_plan(path)


def pool_plan_analysis(
    pkg: Package, plan: AnalysisPlan, analysis_id: str
) -> tuple[Analysis | RevManAnalysis, PoolResult | ReviewPoolResult | object]:
    """Pool the plan's analysis ``analysis_id`` with its recorded settings."""
    found = next((a for a in plan.analyses if a.id == analysis_id), None)
    if found is None:
        ids = ", ".join(a.id for a in plan.analyses[:20])
        more = ", ..." if len(plan.analyses) > 20 else ""
        raise AnalysisError(f"no analysis {analysis_id!r} in the plan (it has: {ids}{more})")
    if isinstance(found, RevManAnalysis):
        return found, pool_review_analysis(pkg, found)
    tp = found.timepoint_weeks
    result = pool_outcome(
        pkg,
        found.outcome,
        tp,
        measure=found.measure,
        method=plan.method_for(found),
        hksj=plan.hksj_for(found),
        designs=plan.designs_for(found),
        include_derived=plan.defaults.include_derived,
        convert_medians=plan.defaults.convert_medians,
        level=plan.defaults.level,
        comparison=found.comparison,
    )
    return found, result


def run_pool(
    descriptor: Path | str,
    *,
    outcome: str | None,
    timepoint: float | None,
    measure: str | None,
    method: str | None,
    hksj: bool,
    as_json: bool,
    console: Console,
    analysis: str | None = None,
    plan: Path | None = None,
    cumulative: bool = False,
) -> int:
    """``trialpool pool``: validate first (exit 1 with the issues when invalid), then
    pool and print (JSON object or table). Exit 0 for a pooled result and for a clear
    not-poolable message; AnalysisError (unknown outcome or analysis, impossible request)
    reaches the CLI as one line with exit 1; a missing option is a usage error (exit 2).
    ``cumulative`` adds the cumulative meta-analysis (JSON keys ``cumulative`` and
    ``cumulative_notes``; a second table)."""
    if analysis is None and (outcome is None or measure is None or method is None):
        raise UsageError("give --analysis ID, or --outcome, --measure and --method")
    if analysis is not None and (outcome or measure or method or hksj or timepoint is not None):
        raise UsageError(
            "--analysis takes its settings from the plan: drop --outcome, "
            "--measure, --method, --timepoint and --hksj"
        )
    descriptor = Path(descriptor)
    report = validate_package(descriptor)
    if not report.valid:
        print_report(report, console, as_json=as_json)
        return 1
    pkg = load_package(descriptor)
    level = 95.0
    if analysis is not None:
        the_plan = _plan_for(descriptor, plan)
        found, result = pool_plan_analysis(pkg, the_plan, analysis)
        if isinstance(result, ReviewPoolResult):
            assert isinstance(found, RevManAnalysis)
            cumul = cumulative_of_review(found, result, study_years(pkg)) if cumulative else None
            if as_json:
                payload = review_result_json(result)
                if cumul is not None:
                    payload.update(cumulative_json(cumul))
                console.out(
                    json.dumps(json_safe(payload), ensure_ascii=False, allow_nan=False),
                    highlight=False,
                )
            else:
                print_review_result(result, console, title=found.title)
                if cumul is not None:
                    print_cumulative(cumul, console)
            return 0
        assert isinstance(found, Analysis)
        outcome, timepoint = found.outcome, found.timepoint_weeks
        method, hksj = the_plan.method_for(found), the_plan.hksj_for(found)
        level = the_plan.defaults.level
    else:
        assert outcome is not None and measure is not None and method is not None
        result = pool_outcome(pkg, outcome, timepoint, measure=measure, method=method, hksj=hksj)
    assert isinstance(result, PoolResult | NotPooled) and method is not None
    cumul = (
        cumulative_of_result(result, study_years(pkg), method=method, hksj=hksj, level=level)
        if cumulative
        else None
    )
    if as_json:
        payload = result_json(result, outcome=outcome, timepoint=timepoint)  # type: ignore[arg-type]
        if cumul is not None:
            payload.update(json_safe(cumulative_json(cumul)))
        console.out(json.dumps(payload, ensure_ascii=False, allow_nan=False), highlight=False)
    else:
        print_result(result, console, outcome=outcome, timepoint=timepoint)  # type: ignore[arg-type]
        if cumul is not None:
            print_cumulative(cumul, console)
    return 0
