"""One analysis of an imported review in the section "Analyses" (RevMan's conventions).

Each analysis is pooled from the package with the review's own settings
(:func:`trialpool.analysis.revman.pool_review_analysis`, one
:class:`~trialpool.analysis.revman.PackageIndex` per report) and every number RevMan
stored for it is checked (:func:`trialpool.analysis.reproduce.reproduction_checks`); the
checks go to the audit section (:mod:`.audit`). Its part of the report: the data status
panel, what the review recorded (comparison, outcome, measure and model as RevMan prints
them, totals), the totals table (overall and per subgroup), the forest plot in RevMan's
layout, the test for subgroup differences, and one line summing up the audit. Its
per-study data (RevMan's study effects and weights) are exported as
``exports/revman_<id>.csv``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from trialpool.analysis.plan import RevManAnalysis
from trialpool.analysis.reproduce import Check, reproduction_checks
from trialpool.analysis.revman import (
    ReviewPoolResult,
    ReviewTotal,
    model_text,
    pool_review_analysis,
)
from trialpool.errors import TrialpoolError
from trialpool.report.context import Context, RevManRun
from trialpool.report.document import (
    Bullets,
    Code,
    Heading,
    Inlines,
    Link,
    Muted,
    Node,
    Para,
    Status,
    Strong,
    Table,
)
from trialpool.report.exports import write_csv
from trialpool.report.figures.forest import MAX_STUDY_ROWS, studies_not_drawn
from trialpool.report.figures.forest_review import effect_header, measure_label, review_forest
from trialpool.report.format import anchor, num, p_text, p_value, pct, small
from trialpool.report.sections import cumulative

#: the audit section's anchor (the audit line of each analysis links to it)
AUDIT_ANCHOR = "revman-audit"

_TOTALS = {
    "overall": "overall total and subtotals",
    "subgroups": "subtotals only",
    "none": "no totals (study estimates only)",
}


def run(ctx: Context, a: RevManAnalysis) -> RevManRun:
    """Pool ``a`` and check it against RevMan's stored numbers; recorded in ``ctx``."""
    try:
        result = pool_review_analysis(ctx.pkg, a, ctx.index)
    except TrialpoolError as exc:
        run_ = RevManRun(a, None, error=str(exc))
    except ArithmeticError as exc:  # a number out of range that no check caught
        why = f"a number is out of range ({type(exc).__name__}: {exc}); check the package's values"
        run_ = RevManRun(a, None, error=f"analysis {a.id}: {why}")
    else:
        checks = reproduction_checks(ctx.pkg, a, result, ctx.index)
        run_ = RevManRun(a, result, checks)
    ctx.revman_runs.append(run_)
    return run_


def audit_counts(checks: Sequence[Check]) -> tuple[int, int, int]:
    """(agree, known, differ) among ``checks``."""
    statuses = [c.status for c in checks]
    return statuses.count("agrees"), statuses.count("known"), statuses.count("differs")


def _names(labels: Sequence[str]) -> str:
    return ", ".join(dict.fromkeys(labels))


def _status(run_: RevManRun) -> tuple[Status, str]:
    """The data status panel of one analysis, and the studies it still needs data from."""
    a, r = run_.analysis, run_.result
    if r is None:
        return Status("error", f"not pooled: {run_.error}"), "–"
    missing = [s.label for s in r.studies if s.no_data]
    not_estimable = [s for s in r.studies if not s.estimable and not s.no_data]
    k_rows = len(r.studies)
    if a.totals == "none" or (a.totals == "subgroups" and not a.subgroups):
        kind, head = "info", f"{k_rows} study rows, no total (the review's Totals option)"
    elif a.totals == "subgroups":
        pooled = sum(1 for s in r.subgroups if s.estimable)
        kind = "pooled" if pooled else "none"
        head = f"subtotals pooled ({pooled} of {len(r.subgroups)} subgroups), no overall total"
    elif r.estimable:
        kind, head = "pooled", f"pooled, k = {r.k} of {k_rows} study rows"
    else:
        kind, head = ("partial" if r.studies else "none"), f"not estimable: {r.reason}"
    lines: list[Inlines] = []
    if missing:
        lines.append(
            [Strong("Needs "), f"per-arm data of {a.outcome_label} from {_names(missing)}"]
        )
    if not_estimable:
        why = "; ".join(f"{s.label} ({s.reason})" if s.reason else s.label for s in not_estimable)
        lines.append(f"Not estimable, as in RevMan: {why}.")
    for note in r.notes:
        lines.append(Muted(note))
    return Status(kind, head, lines), _names(missing) or "–"  # type: ignore[arg-type]


def _facts(a: RevManAnalysis) -> Bullets:
    label = measure_label(a)
    model = f"{label}, {effect_header(a)}"
    details = [f"recorded as {model_text(a)}"]
    if a.random:
        details.append("τ² by " + ("DerSimonian-Laird" if a.tau2_method == "DL" else "REML"))
        details.append("Hartung-Knapp-Sidik-Jonkman CI" if a.ci_method == "HKSJ" else "Wald CI")
    if a.prediction:
        details.append("prediction interval")
    if a.data_type == "generic":
        details.append(
            "generic inverse variance, estimates entered as natural logs"
            if a.log_data
            else "generic inverse variance"
        )
    if a.swap_events:
        details.append("non-events pooled")
    items: list[Inlines] = [
        [Strong("Comparison: "), a.comparison],
        [
            Strong("Outcome: "),
            Code(a.outcome),
            f" ({a.outcome_label}" + (f", {a.unit}" if a.unit else "") + ")",
            Muted(f" time point {a.timepoint.replace('_', ' ')}"),
        ],
        [Strong("Measure and model: "), f"{model} ({'; '.join(details)})"],
        [
            Strong("Totals: "),
            "overall total" + (" and subtotals" if a.subgroups else "")
            if a.totals == "overall"
            else _TOTALS[a.totals],
        ],
    ]
    if a.reproduces:
        items.append([Strong("Reproduces: "), a.reproduces])
    if a.notes:
        items.append([Strong("Note: "), a.notes])
    return Bullets(items)


def _total_cells(label: str, t: ReviewTotal, random: bool) -> list[Inlines]:
    if not t.estimable:
        return [label, str(t.k), Muted(f"not estimable: {t.reason}"), *[""] * 8]
    df = "–" if t.q_df is None else str(t.q_df)
    return [
        label,
        str(t.k),
        f"{num(t.estimate)} [{num(t.ci_lower)}, {num(t.ci_upper)}]",
        small(t.tau2) if random else "–",
        num(t.q),
        df,
        p_value(t.q_p),
        pct(t.i2),
        num(t.zval),
        p_value(t.p_value),
        "" if t.weight is None else f"{t.weight:.1f}%",
    ]


def totals_table(a: RevManAnalysis, r: ReviewPoolResult) -> Table | None:
    """Overall and subgroup totals: k, estimate [CI], Tau², Chi², df, P, I², Z, P."""
    rows: list[list[Inlines]] = []
    if a.totals != "none":
        for s in r.subgroups:
            rows.append(_total_cells(f"{s.id} {s.label}", s, a.random))
        if a.totals == "overall" or (a.totals == "subgroups" and a.subgroups):
            label = "Total" if a.totals == "overall" else "Total (not shown by the review)"
            rows.append(_total_cells(label, r, a.random))
    if not rows:
        return None
    level = f"{a.level:g}%"
    header = ["Block", "k", f"{measure_label(a)} [{level} CI]", "Tau²", "Chi²", "df"]
    header += ["P (Chi²)", "I²", "Z", "P", "Weight"]
    return Table(header=header, rows=rows, numeric=frozenset({1, 3, 4, 5, 6, 7, 8, 9, 10}))


def _subgroup_test(a: RevManAnalysis, r: ReviewPoolResult) -> Para | None:
    if not a.subgroups or not a.subgroup_test or a.totals == "none":
        return None
    t = r.subgroup_test
    if t is None:
        return Para(
            "Test for subgroup differences: not applicable (fewer than two subgroups with "
            "an estimate)."
        )
    i2 = "" if t.i2 is None else f", I² = {t.i2:.1f}%"
    return Para(
        f"Test for subgroup differences: Chi² = {num(t.q)}, df = {t.df} ({p_text(t.p)}){i2}."
    )


def _verb(n: int, verb: str) -> str:
    return f"{verb}s" if n == 1 else verb


def audit_line(run_: RevManRun) -> Para:
    """ "RevMan's N stored numbers: N agree, K differ by a named RevMan peculiarity, D
    differ", linking to the audit."""
    checks = run_.checks
    if not checks:
        return Para(
            [
                "RevMan stored no numbers for this analysis: nothing to compare (",
                Link("reproduction audit", f"#{AUDIT_ANCHOR}"),
                ").",
            ]
        )
    agree, known, differ = audit_counts(checks)
    return Para(
        [
            Strong(f"RevMan's {len(checks)} stored numbers: "),
            f"{agree} {_verb(agree, 'agree')}, {known} {_verb(known, 'differ')} by a named "
            f"RevMan peculiarity, {differ} {_verb(differ, 'differ')} (",
            Link("reproduction audit", f"#{AUDIT_ANCHOR}"),
            ").",
        ]
    )


_CSV_ARMS = {
    "dichotomous": ["e1", "n1", "e2", "n2"],
    "continuous": ["m1", "sd1", "n1", "m2", "sd2", "n2"],
    "generic": ["estimate", "se"],
}


def _export(ctx: Context, a: RevManAnalysis, r: ReviewPoolResult) -> str:
    """The per-study rows of one analysis (RevMan's study effects and weights)."""
    arms = _CSV_ARMS[a.data_type]
    entered = [f"{k}_entered" if a.data_type == "generic" else k for k in arms]
    header = ["analysis", "subgroup", "study_id", "comparison_id", "label", *entered]
    header += ["yi", "vi", "estimate", "ci_lower", "ci_upper", "weight", "estimable", "reason"]
    header.append("zero_cell_corrected")
    rows: list[list[Any]] = [
        [a.id, s.subgroup, s.study_id, s.comparison_id, s.label,
         *[s.arm_data.get(k) for k in arms], s.yi, s.vi, s.estimate, s.ci_lower, s.ci_upper,
         s.weight, s.estimable, s.reason, s.zero_cell_corrected]
        for s in r.studies
    ]  # fmt: skip
    name = f"exports/revman_{a.id}.csv"
    write_csv(ctx.root / name, header, rows)
    ctx.exported.append(name)
    return name


def analysis_nodes(ctx: Context, a: RevManAnalysis) -> list[Node]:
    """The report's part of one analysis of an imported review."""
    run_ = run(ctx, a)
    status, needs = _status(run_)
    ctx.statuses.append((a, status, needs))
    nodes: list[Node] = [Heading(3, f"Analysis {a.id}: {a.title}", anchor("analysis", a.id))]
    nodes += [status, _facts(a)]
    r = run_.result
    if r is None:
        nodes.append(Para("Forest plot not drawn: the analysis could not be pooled.", cls="note"))
        return nodes
    table = totals_table(a, r)
    if table is not None:
        nodes.append(table)
    path = _export(ctx, a, r)
    caption = (
        f"Analysis {a.id}: {a.title}. {measure_label(a)}, {model_text(a)}, RevMan's layout "
        f"and conventions (per-study data: {path})"
    )
    if len(r.studies) > MAX_STUDY_ROWS:  # said in the figure too
        caption += ". Note: " + studies_not_drawn(len(r.studies))
    nodes.append(
        ctx.figure_later(
            f"forest_{a.id}",
            review_forest,
            (a, r),
            caption,
            alt=f"Forest plot: {a.title}",
            tight=False,
            cost=len(r.studies) + 3 * len(r.subgroups),
        )
    )
    test = _subgroup_test(a, r)
    if test is not None:
        nodes.append(test)
    nodes.extend(cumulative.review_nodes(ctx, a, r))
    nodes.append(audit_line(run_))
    return nodes
