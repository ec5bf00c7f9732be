"""Section "Reproduction audit": each published pooled result beside the same pool
recomputed from the package, or exactly what is missing to recompute it. Also written
as tables/reproduction_audit.csv.

Rows are matched to the package's outcomes by ``outcome_code`` (an
``outcomes.outcome_id``). The numbers of an imported review's own analyses (rows of
scope study, subgroup or subgroup_difference, and rows whose ``analysis_id`` is a
RevMan analysis of the plan) belong to the RevMan audit: every number RevMan stored next
to the same number recomputed with RevMan's conventions (one
:class:`~trialpool.analysis.reproduce.Check` each, made while the analysis ran), summed
up per analysis with every number that does not agree listed and its reason, and
written in full to tables/revman_audit.csv (:func:`revman_audit_rows`).
"""

from __future__ import annotations

from typing import Any

from trialpool.analysis.runs import (
    Settings,
    StudyInfo,
    outcome_infos,
    outcome_kind,
    pool,
    subset_package,
    table_or_none,
    usable_studies,
)
from trialpool.package.loader import Package
from trialpool.report.context import Context
from trialpool.report.document import (
    Code,
    Heading,
    Inline,
    Inlines,
    Link,
    Muted,
    Node,
    Para,
    Strong,
    Table,
)
from trialpool.report.format import anchor, lc, num, number, pct, timepoint, val
from trialpool.report.sections.revman import AUDIT_ANCHOR, audit_counts
from trialpool.stats.results import PoolResult

CSV_HEADER = [
    "result_id",
    "source_id",
    "locator",
    "outcome_code",
    "timepoint_weeks",
    "timepoint_label",
    "measure",
    "published_estimate",
    "published_ci_lower",
    "published_ci_upper",
    "recomputed_estimate",
    "status",
]

_HR_NOTE = (
    "not recomputed: hazard ratios need per-study log hazard ratios and their SEs "
    "(time-to-event data), which the package schema does not hold"
)
_NO_TIME = "not recomputed: the source does not state the time point, so the pool cannot be matched"
_SURVIVAL_RR = (
    "not recomputed: a risk ratio of survival needs survivor counts pooled as such; the "
    "package pools deaths (an odds ratio of survival is recomputed as 1/OR of death)"
)


def _no_weeks(label: str) -> str:
    return (
        f"not recomputed: the source prints the time point as {label!r}, not in weeks, "
        "so the pool cannot be matched"
    )


def _named_studies(note: str | None, pkg: Package) -> list[str]:
    """Study ids whose label (or first author and year) appears in a free-text note."""
    if not note:
        return []
    studies = table_or_none(pkg, "studies")
    if studies is None:
        return []
    text = note.casefold()
    found = []
    for r in studies.itertuples():
        names = {str(r.label).casefold()}
        if val(getattr(r, "first_author", None)) and val(getattr(r, "year", None)):
            names.add(f"{str(r.first_author).casefold()} {int(r.year)}")
        if any(n and n in text for n in names):
            found.append(str(r.study_id))
    return found


def _audit_method(model: str | None, measure: str, default: str) -> tuple[str, str]:
    """The method matching a source's printed model, and how it was read."""
    if not model:
        return default, f"model not stated: {default} (plan default)"
    m = model.casefold()
    if "fix" in m or m in {"fe", "iv", "mh", "m-h"}:
        meth = (
            "MH"
            if measure in {"RR", "OR", "RD"} and ("m-h" in m or "mh" in m or "fix" in m)
            else "FE"
        )
        return meth, f"model {model!r} read as {meth}"
    if "random" in m or "dl" in m or "dersimonian" in m:
        return "DL", f"model {model!r} read as DL (RevMan's random effects)"
    if "reml" in m:
        return "REML", f"model {model!r} read as REML"
    return default, f"model {model!r} not recognised: {default} (plan default)"


#: published_results.scope values of a review's own per-study and per-subgroup numbers
REVMAN_SCOPES = frozenset({"study", "subgroup", "subgroup_difference"})


def _outcome_name(pkg: Package, code: str | None, printed: str) -> str:
    """The outcome's label in the package's ``outcomes``, else its code, else as printed."""
    info = outcome_infos(pkg).get(code) if code else None
    if info is not None:
        return info.label
    return code or printed


def is_revman_row(r: Any, revman_ids: set[str]) -> bool:
    """Whether a published_results row holds a number of an imported review's own
    analysis (a study's effect, a subgroup, a test for subgroup differences, or a row of
    a RevMan analysis of the plan): audited by :func:`revman_audit_rows`, not here."""
    if val(getattr(r, "scope", None)) in REVMAN_SCOPES:
        return True
    analysis_id = val(getattr(r, "analysis_id", None))
    return analysis_id is not None and analysis_id in revman_ids


#: tables/revman_audit.csv: one row per number RevMan stored
REVMAN_CSV_HEADER = [
    "analysis",
    "scope",
    "where",
    "quantity",
    "revman",
    "trialpool",
    "difference",
    "tolerance",
    "status",
    "known_reason",
]


def revman_audit_rows(ctx: Context) -> list[list[Any]]:
    """The rows of tables/revman_audit.csv: every number RevMan stored for the plan's
    RevMan analyses next to trialpool's (``difference`` = trialpool − RevMan), with the
    tolerance it was compared at and its status (agrees, known, differs)."""
    rows: list[list[Any]] = []
    for run in ctx.revman_runs:
        for c in run.checks:
            diff = None if c.ours is None or c.published is None else c.ours - c.published
            rows.append(
                [c.analysis_id, c.scope, c.where, c.quantity, c.published, c.ours, diff,
                 c.tolerance, c.status, c.known]
            )  # fmt: skip
    return rows


def _g(value: float | None, digits: int = 10) -> str:
    return "–" if value is None else f"{value:.{digits}g}".replace("-", "−")


def _revman_nodes(ctx: Context) -> list[Node]:
    """The RevMan audit: a summary per analysis and every number that does not agree."""
    nodes: list[Node] = [
        Heading(3, "RevMan's stored results", AUDIT_ANCHOR),
        Para(
            "Every number RevMan stored with the review (each total and subtotal, each "
            "study's effect, CI and weight, the test for subgroup differences) next to the "
            "same number recomputed by trialpool from the package with RevMan's conventions. "
            "Numbers are compared at the precision the source kept: full doubles (RevMan 5 "
            "files) to 1e-6 relative, rounded numbers (a Cochrane data package's 6 decimals, "
            "a RevMan 5 CSV export's 8) to half a unit of the last decimal. A difference "
            "explained by a named RevMan peculiarity is marked known, never hidden."
        ),
    ]
    summary: list[list[Inlines]] = []
    others: list[list[Inlines]] = []
    totals = [0, 0, 0, 0]
    for run in ctx.revman_runs:
        a = run.analysis
        link = Link(f"{a.id} {a.title}", "#" + anchor("analysis", a.id))
        if run.result is None:
            summary.append([link, "0", "", "", "", Muted(f"not pooled: {run.error}")])
            continue
        agree, known, differ = audit_counts(run.checks)
        n = len(run.checks)
        for i, v in enumerate((n, agree, known, differ)):
            totals[i] += v
        note = "" if n else Muted("RevMan stored no numbers")
        summary.append([link, str(n), str(agree), str(known), str(differ), note])
        for c in run.checks:
            if c.status == "agrees":
                continue
            diff = None if c.ours is None or c.published is None else c.ours - c.published
            why: Inlines = [Strong("known: "), str(c.known)] if c.known else Strong("differs")
            others.append(
                [a.id, c.where, Code(c.quantity), _g(c.published), _g(c.ours), _g(diff, 3),
                 _g(c.tolerance, 2), why]
            )  # fmt: skip
    summary.append([Strong("All analyses"), *(Strong(str(v)) for v in totals), ""])
    nodes.append(
        Table(
            header=["Analysis", "Numbers compared", "Agree", "Known", "Differ", "Note"],
            rows=summary,
            caption="RevMan's stored numbers per analysis",
            numeric=frozenset({1, 2, 3, 4}),
        )
    )
    if others:
        header = ["Analysis", "Where", "Quantity", "RevMan", "trialpool"]
        header += ["trialpool − RevMan", "Tolerance", "Status"]
        nodes.append(
            Table(
                header=header,
                rows=others,
                caption=f"Numbers that do not agree ({len(others)})",
                numeric=frozenset({3, 4, 5, 6}),
                full="tables/revman_audit.csv",
            )
        )
    elif totals[0]:
        nodes.append(Para(f"All {totals[0]} stored numbers agree."))
    nodes.append(Para(["Every number, with its tolerance: ", Code("tables/revman_audit.csv"), "."]))
    ctx.write_table("revman_audit", REVMAN_CSV_HEADER, revman_audit_rows(ctx))
    return nodes


def _not_recomputed(r: Any) -> str | None:
    """Why a published row cannot be recomputed at all (None: it can be tried)."""
    if val(getattr(r, "outcome_code", None)) is None:
        return f"not recomputed: outcome {str(r.outcome)!r} is not coded"
    measure = val(getattr(r, "measure", None))
    if measure is None or number(getattr(r, "estimate", None)) is None:
        return "not recomputed: the source prints no estimate (P value only)"
    if measure == "HR":
        return _HR_NOTE
    if number(getattr(r, "timepoint_weeks", None)) is None:
        label = val(getattr(r, "timepoint_label", None))
        return _no_weeks(label) if label else _NO_TIME
    if val(r.outcome_code) == "survival" and measure != "OR":
        return _SURVIVAL_RR
    return None


def _needs(
    pkg: Package, info: StudyInfo, r: Any, outcome: str, named: list[str], have: set[str]
) -> str:
    """What the package lacks to recompute a published pool."""
    tp = number(r.timepoint_weeks)
    k_pub = val(getattr(r, "k_studies", None))
    kind = outcome_kind(pkg, outcome)
    need = "per-arm event counts" if kind == "dichotomous" else "per-arm means and SDs"
    what = f"{need} of {lc(_outcome_name(pkg, outcome, outcome))} at {tp:g} weeks"
    got = f"; the package has {info.names(sorted(have))}" if have else "; the package has none"
    if named:
        lacking = [sid for sid in named if sid not in have]
        return f"needs {what} for {info.names(lacking)}{got}"
    pool_of = f"the k = {k_pub} studies" if k_pub else "the studies"
    return f"needs {what} for {pool_of} of this pool (not named by the source){got}"


def _recompute(ctx: Context, r: Any) -> tuple[Inlines, str, str, float | None]:
    """(recomputed cell, difference, status, recomputed estimate) of one published row."""
    pkg, info, d = ctx.pkg, ctx.studies, ctx.plan.defaults
    why_not = _not_recomputed(r)
    if why_not:
        return "–", "–", why_not, None
    code, measure = str(val(r.outcome_code)), str(val(r.measure))
    est, tp = number(r.estimate), number(r.timepoint_weeks)
    assert est is not None  # checked by _not_recomputed
    outcome = "death" if code == "survival" else code
    invert = code == "survival"
    method, method_note = _audit_method(val(getattr(r, "model", None)), measure, d.method)
    named = _named_studies(val(getattr(r, "note", None)), pkg)
    s = Settings(measure=measure, method=method, hksj=False, designs=None, include_derived=True,
                 convert_medians=d.convert_medians, exclude_high_rob=False, level=95.0)  # fmt: skip
    target = subset_package(pkg, set(named)) if named else pkg
    res = pool(target, outcome, tp, s)
    have = usable_studies(target, outcome, tp, s)
    if not isinstance(res, PoolResult):
        return "–", "–", _needs(pkg, info, r, outcome, named, have), None
    if named:
        set_note = f"studies named by the source: {info.names(named)}"
    else:
        set_note = "study list not stated by the source: every study with data was pooled"
    e, lo, hi = res.estimate, res.ci_lower, res.ci_upper
    if invert:
        e, lo, hi = 1 / e, 1 / hi, 1 / lo
    cell: Inlines = [
        f"{num(e)} [{num(lo)}, {num(hi)}]",
        Muted(f" (k = {res.k}, I² = {pct(res.i2)})"),
    ]
    status = f"recomputed ({set_note}; {method_note}"
    status += "; inverted from the OR of death)" if invert else ")"
    k_pub = val(getattr(r, "k_studies", None))
    if k_pub and int(k_pub) != res.k:
        status += f"; k differs: {res.k} here, {k_pub} published"
    return cell, num(e - est), status, e


def _published(r: Any) -> list[Inline]:
    """The published estimate [CI] with its P value, I² and k as printed."""
    est = number(getattr(r, "estimate", None))
    extras = []
    p_value = val(getattr(r, "p_value", None))
    if p_value:
        extras.append(f"P {p_value}" if p_value.startswith(("<", ">")) else f"P = {p_value}")
    if number(getattr(r, "i2", None)) is not None:
        extras.append(f"I² = {float(r.i2):g}%")
    if val(getattr(r, "k_studies", None)):
        extras.append(f"k = {r.k_studies}")
    out: list[Inline] = [
        "–" if est is None else f"{num(est)} [{num(number(r.ci_lower))}, {num(number(r.ci_upper))}]"
    ]
    if extras:
        out.append(Muted(" (" + ", ".join(extras) + ")"))
    return out


def section(ctx: Context) -> list[Node]:
    """Each published pooled result next to the same pool recomputed from the package;
    for the plan's RevMan analyses, every number RevMan stored next to ours."""
    nodes: list[Node] = [Heading(2, "Reproduction audit", "audit")]
    pub = table_or_none(ctx.pkg, "published_results")
    revman_ids = {a.id for a in ctx.revman_analyses}
    if revman_ids and (
        pub is None or all(is_revman_row(r, revman_ids) for r in pub.itertuples())
    ):  # an imported review: only its own numbers
        ctx.write_table("reproduction_audit", CSV_HEADER, [])
        return nodes + _revman_nodes(ctx)
    if pub is None or pub.empty:
        nodes.append(
            Para("No published pooled results in the package: nothing to audit.", cls="note")
        )
        ctx.write_table("reproduction_audit", CSV_HEADER, [])
        return nodes
    nodes.append(
        Para(
            "Each pooled result printed by a review, next to the same pool recomputed from the "
            "package where the data allow (same outcome, time point and measure; the same "
            "studies when the source names them; all designs, derived rows included). "
            "Otherwise the row says exactly what is missing."
        )
    )
    rows: list[list[Inlines]] = []
    flat: list[list[Any]] = []
    for r in pub.itertuples():
        if is_revman_row(r, revman_ids):
            continue
        code = val(getattr(r, "outcome_code", None))
        measure = val(getattr(r, "measure", None))
        tp = number(getattr(r, "timepoint_weeks", None))
        tp_label = val(getattr(r, "timepoint_label", None))
        recomputed, diff, status, rec_est = _recompute(ctx, r)
        when = f"“{tp_label}” (as printed; weeks not stated)" if tp is None and tp_label else None
        what: Inlines = [
            f"{_outcome_name(ctx.pkg, code, str(r.outcome))} at {when or timepoint(tp)}",
            Muted(f" (printed: {r.outcome})"),
        ]
        rows.append(
            [
                Code(str(r.result_id)),
                [str(r.source_id), Muted(f" ({r.locator})")],
                what,
                measure or "–",
                _published(r),
                recomputed,
                diff,
                status,
            ]
        )
        flat.append(
            [r.result_id, r.source_id, r.locator, code, tp, tp_label, measure,
             number(getattr(r, "estimate", None)), number(r.ci_lower), number(r.ci_upper),
             rec_est, status]
        )  # fmt: skip
    header = ["Result", "Source (locator)", "Outcome", "Measure", "Published", "Recomputed"]
    header += ["Recomputed − published", "Status"]
    nodes.append(
        Table(
            header=header,
            rows=rows,
            caption="Published vs recomputed",
            numeric=frozenset({6}),
            full="tables/reproduction_audit.csv",
        )
    )
    ctx.write_table("reproduction_audit", CSV_HEADER, flat)
    if revman_ids:
        nodes.extend(_revman_nodes(ctx))
    return nodes
