"""Section "Summary of findings": each result of the plan with its absolute effects and its
certainty of evidence (GRADE), and the same table as ``exports/summary_of_findings.csv``.

One row per result of the plan: an analysis, or one block of it (a time point of an
analysis by time point, a subgroup). Each row gives the outcome and time point, the
participants (studies), the relative effect (95% CI) and, for dichotomous outcomes, the
anticipated absolute effects per 1,000: the assumed risk with the control is the median
control-group risk of the studies in the result (with one study, its control-group risk),
and the corresponding risk with the intervention follows from the relative effect and its
confidence limits (Cochrane Handbook 5.1, sections 11.5.5 and 12.5.4: for a risk ratio
ACR × RR; for an odds ratio ACR·OR / (1 − ACR + ACR·OR); for a risk difference ACR + RD).
For continuous outcomes the absolute effect is the mean difference (or SMD).

The certainty comes from the package's ``certainty`` resource (one row per analysis and
time point, matched on ``analysis_id`` and ``timepoint``), shown in words and symbols
(⊕⊕⊕⊕ high, ⊕⊕⊕◯ moderate, ⊕⊕◯◯ low, ⊕◯◯◯ very low; GRADE Handbook, Schünemann et al.
2013, section 5) with numbered footnotes that give the reason of each domain and the
rater's notes. A result without a rating says "certainty not assessed"; a certainty row
that matches no result of the plan is listed, never dropped silently.

Numbers are never invented: a result that was not pooled says why; with one study, the
effect shown is that study's own (labelled so); without data, the row says so.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from trialpool.analysis.plan import Analysis, RevManAnalysis
from trialpool.analysis.runs import (
    Result,
    outcome_rows,
    run_blocks,
    settings_for,
    table_or_none,
    timepoint_codes,
)
from trialpool.report.context import Context
from trialpool.report.document import BR, Bullets, Heading, Inlines, Muted, Node, Para, Table
from trialpool.report.exports import write_csv
from trialpool.report.format import MINUS, num, val
from trialpool.stats.results import RATIO_MEASURES, PoolResult
from trialpool.validate.certainty import DOWN_DOMAINS, DOWN_STEPS, UP_DOMAINS, UP_STEPS, derive

CSV_NAME = "exports/summary_of_findings.csv"

#: certainty in words and symbols (GRADE Handbook 5.1)
WORDS: dict[str, str] = {
    "high": "High",
    "moderate": "Moderate",
    "low": "Low",
    "very_low": "Very low",
}
SYMBOLS: dict[str, str] = {
    "high": "⊕⊕⊕⊕",
    "moderate": "⊕⊕⊕◯",
    "low": "⊕⊕◯◯",
    "very_low": "⊕◯◯◯",
}
NOT_ASSESSED = "certainty not assessed"

#: the code of a result that pools each study's latest time point (certainty.timepoint)
LATEST = "latest"

#: how an assumed risk is chosen (the CSV's assumed_risk_basis)
ASSUMED_BASIS = "median control-group risk of the studies"

CSV_HEADER = [
    "analysis_id",
    "title",
    "outcome",
    "outcome_label",
    "timepoint",
    "timepoint_label",
    "data_type",
    "measure",
    "result",
    "k",
    "participants",
    "studies",
    "estimate",
    "ci_lower",
    "ci_upper",
    "relative_effect",
    "assumed_risk_per_1000",
    "assumed_risk_basis",
    "corresponding_risk_per_1000",
    "corresponding_ci_lower_per_1000",
    "corresponding_ci_upper_per_1000",
    "risk_difference_per_1000",
    "risk_difference_ci_lower_per_1000",
    "risk_difference_ci_upper_per_1000",
    "absolute_effect",
    "certainty",
    "certainty_text",
    "certainty_derivation",
    "certainty_reasons",
    "assessor",
    "certainty_source_id",
    "comments",
]

_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


# --- absolute effects ---------------------------------------------------------------------


def corresponding_risk(measure: str, assumed: float, effect: float) -> float:
    """The risk with the intervention for an assumed control risk (a proportion) and a
    relative effect on its display scale: RR -> ACR × RR; OR (also Peto's) ->
    ACR·OR / (1 − ACR + ACR·OR); RD -> ACR + RD (Cochrane Handbook 5.1, 11.5.5, 12.5.4)."""
    if measure == "RR":
        return assumed * effect
    if measure in ("OR", "PETO_OR"):
        return assumed * effect / (1.0 - assumed + assumed * effect)
    if measure == "RD":
        return assumed + effect
    raise ValueError(f"no absolute effect for measure {measure!r}")


def per_1000(value: float) -> int:
    """A risk as a whole number per 1,000 (halves rounded up)."""
    return math.floor(value * 1000.0 + 0.5)


def _thousands(n: int) -> str:
    return f"{n:,}".replace("-", MINUS)


def _difference(delta: int) -> str:
    """``107 fewer``, ``5 more``, ``0 fewer``."""
    return f"{abs(delta):,} {'fewer' if delta <= 0 else 'more'}"


# --- one row -----------------------------------------------------------------------------


@dataclass
class Effect:
    """A result's numbers on the display scale, whatever engine made it."""

    status: str  # pooled | single_study | not_pooled | no_data
    k: int
    estimate: float | None = None
    ci_lower: float | None = None
    ci_upper: float | None = None
    participants: int | None = None
    control_risks: list[float] = field(default_factory=list)
    studies: list[str] = field(default_factory=list)  # labels
    designs: list[str] = field(default_factory=list)  # studies.design of each (when known)
    derived: bool = False
    reason: str | None = None


@dataclass
class SofRow:
    """One row of the summary of findings."""

    analysis_id: str
    title: str
    outcome: str
    outcome_label: str
    timepoint: str  # the code certainty rows are matched on
    timepoint_label: str
    data_type: str  # dichotomous, continuous, generic
    measure: str
    unit: str | None
    favours: tuple[str, str]
    effect: Effect
    codes: frozenset[str]  # every time point code that names this result
    show_when: bool = True  # the time point is not in the title already
    certainty: dict[str, Any] | None = None
    comments: list[str] = field(default_factory=list)

    @property
    def absolute(self) -> tuple[float, float, float, float] | None:
        """(assumed, corresponding, its lower and upper limit) as proportions, for a
        dichotomous result with an effect and a control risk; else None."""
        e = self.effect
        if (
            self.data_type != "dichotomous"
            or self.measure not in ("RR", "OR", "PETO_OR", "RD")
            or e.estimate is None
            or e.ci_lower is None
            or e.ci_upper is None
            or not e.control_risks
        ):
            return None
        acr = float(statistics.median(e.control_risks))
        return (
            acr,
            corresponding_risk(self.measure, acr, e.estimate),
            corresponding_risk(self.measure, acr, e.ci_lower),
            corresponding_risk(self.measure, acr, e.ci_upper),
        )


def _measure_name(measure: str) -> str:
    return "Peto OR" if measure == "PETO_OR" else measure


def _ratio(measure: str) -> bool:
    return measure in RATIO_MEASURES or measure in ("PETO_OR", "HR")


def _participants(arm_data: Iterable[dict[str, Any]]) -> int | None:
    total = 0
    for data in arm_data:
        a = data.get("t1", data.get("n1"))
        b = data.get("t2", data.get("n2"))
        if a is None or b is None:
            return None
        total += int(a) + int(b)
    return total


def _control_risk(data: dict[str, Any]) -> float | None:
    events, total = data.get("e2"), data.get("t2", data.get("n2"))
    if events is None or total is None or float(total) <= 0:
        return None
    return float(events) / float(total)


def _metafor_effect(result: Result, labels: dict[str, str], designs: dict[str, str]) -> Effect:
    studies = result.studies
    names = [s.label or labels.get(s.study_id, s.study_id) for s in studies]
    risks = [r for r in (_control_risk(s.arm_data) for s in studies) if r is not None]
    common = {
        "k": result.k,
        "participants": _participants(s.arm_data for s in studies) if studies else None,
        "control_risks": risks,
        "studies": names,
        "designs": [design for s in studies if (design := designs.get(s.study_id))],
        "derived": any(s.derived for s in studies),
    }
    if isinstance(result, PoolResult):
        return Effect(
            "pooled",
            estimate=result.estimate,
            ci_lower=result.ci_lower,
            ci_upper=result.ci_upper,
            **common,  # type: ignore[arg-type]
        )
    if len(studies) == 1 and result.k == 1:
        s = studies[0]
        ratio = _ratio(result.measure)
        return Effect(
            "single_study",
            estimate=math.exp(s.yi) if ratio else s.yi,
            ci_lower=s.ci_lower,
            ci_upper=s.ci_upper,
            reason=result.reason,
            **common,  # type: ignore[arg-type]
        )
    status = "no_data" if not studies else "not_pooled"
    return Effect(status, reason=result.reason, **common)  # type: ignore[arg-type]


def _week_code(weeks: float) -> str:
    """ "week_24" (a fraction of a week with an underscore: "week_0_5")."""
    return f"week_{weeks:g}".replace(".", "_")


def _block_codes(
    ctx: Context, analysis: Analysis, weeks: float | None, codes: list[str]
) -> set[str]:
    """The time point codes of a block: ``week_N`` and the codes of the outcome's rows at
    N weeks; the rows' codes for a block of rows without weeks; ``latest`` otherwise."""
    if weeks is not None:
        found = {_week_code(weeks)}
        rows = outcome_rows(ctx.pkg, analysis.outcome)
        if not rows.empty and "timepoint" in rows.columns:
            at = rows[(rows["timepoint_weeks"] == weeks).fillna(False)]
            found |= {str(c) for c in at["timepoint"].dropna()}
        return found
    return set(codes) if codes else {LATEST}


def _metafor_rows(ctx: Context, analysis: Analysis) -> list[SofRow]:
    s = settings_for(ctx.plan, analysis)
    blocks, _ = run_blocks(ctx.pkg, ctx.studies, analysis, s)
    kind = "dichotomous" if analysis.measure in ("RR", "OR", "RD") else "continuous"
    base = {
        "analysis_id": analysis.id,
        "outcome": analysis.outcome,
        "outcome_label": analysis.outcome_label,
        "data_type": kind,
        "measure": analysis.measure,
        "unit": analysis.unit,
        "favours": analysis.favours,
    }
    rows: list[SofRow] = []
    by_time = analysis.subgroup_by == "timepoint"
    for b in blocks:
        weeks = b.timepoint if b.timepoint is not None else analysis.timepoint_weeks
        codes = (
            timepoint_codes(ctx.pkg, ctx.studies, analysis, s) if by_time and weeks is None else []
        )
        found = _block_codes(ctx, analysis, weeks, codes)
        primary = _week_code(weeks) if weeks is not None else sorted(found)[0]
        if weeks is not None:
            when = f"{weeks:g} weeks"
        elif codes:
            when = b.label or ", ".join(c.replace("_", " ") for c in codes)
        else:
            when = "each study's latest time point"
        title = analysis.title if (by_time or b.label is None) else f"{analysis.title}: {b.label}"
        rows.append(
            SofRow(
                title=title,
                timepoint=primary,
                timepoint_label=when,
                effect=_metafor_effect(b.result, ctx.studies.labels, ctx.studies.designs),
                codes=frozenset(found),
                show_when=by_time or analysis.timepoint_weeks is None,
                **base,  # type: ignore[arg-type]
            )
        )
    if not rows:  # an analysis by time point without any data
        weeks = analysis.timepoint_weeks
        rows.append(
            SofRow(
                title=analysis.title,
                show_when=weeks is None,
                timepoint=_week_code(weeks) if weeks is not None else LATEST,
                timepoint_label=f"{weeks:g} weeks" if weeks is not None else "any time point",
                effect=Effect("no_data", k=0, reason="no extractable data yet"),
                codes=frozenset({LATEST} if weeks is None else {_week_code(weeks)}),
                **base,  # type: ignore[arg-type]
            )
        )
    return rows


def _revman_row(ctx: Context, analysis: RevManAnalysis) -> SofRow:
    run = next((r for r in ctx.revman_runs if r.analysis.id == analysis.id), None)
    result = run.result if run is not None else None
    measure = analysis.measure
    if result is None:
        reason = run.error if run is not None and run.error else "not pooled"
        effect = Effect("not_pooled", k=0, reason=reason)
    else:
        used = [st for st in result.studies if st.estimable and not st.no_data]
        risks = [r for r in (_control_risk(st.arm_data) for st in used) if r is not None]
        common: dict[str, Any] = {
            "k": result.k,
            "participants": _participants(st.arm_data for st in used) if used else None,
            "control_risks": risks if analysis.data_type == "dichotomous" else [],
            "studies": [st.label for st in used],
            "designs": [d for st in used if (d := ctx.studies.designs.get(st.study_id))],
        }
        if result.estimable and result.estimate is not None:
            status = "pooled" if result.k > 1 else "single_study"
            effect = Effect(
                status,
                estimate=result.estimate,
                ci_lower=result.ci_lower,
                ci_upper=result.ci_upper,
                reason=None if result.k > 1 else "one study",
                **common,
            )
        else:
            status = "no_data" if not used else "not_pooled"
            effect = Effect(status, reason=result.reason or "not estimable", **common)
    code = analysis.timepoint
    return SofRow(
        analysis_id=analysis.id,
        title=analysis.title,
        outcome=analysis.outcome,
        outcome_label=analysis.outcome_label,
        timepoint=code,
        timepoint_label=code.replace("_", " "),
        data_type=analysis.data_type,
        measure=measure,
        unit=analysis.unit,
        favours=analysis.favours,
        effect=effect,
        codes=frozenset({code}),
        comments=["RevMan pools non-events here (swap_events)."] if analysis.swap_events else [],
    )


def sof_rows(ctx: Context) -> tuple[list[SofRow], list[dict[str, Any]]]:
    """Every result of the plan with its certainty row, and the certainty rows that match
    no result."""
    rows: list[SofRow] = []
    for analysis in ctx.plan.analyses:
        if isinstance(analysis, RevManAnalysis):
            rows.append(_revman_row(ctx, analysis))
        else:
            rows.extend(_metafor_rows(ctx, analysis))
    ratings = _ratings(ctx)
    used: set[int] = set()
    for row in rows:
        for i, rating in enumerate(ratings):
            if (
                i not in used
                and val(rating.get("analysis_id")) == row.analysis_id
                and val(rating.get("timepoint")) in row.codes
            ):
                row.certainty = rating
                used.add(i)
                break
        _comment(row)
    return rows, [r for i, r in enumerate(ratings) if i not in used]


def _ratings(ctx: Context) -> list[dict[str, Any]]:
    frame = table_or_none(ctx.pkg, "certainty")
    if frame is None or frame.empty:
        return []
    return [dict(r) for r in frame.to_dict("records")]


def _comment(row: SofRow) -> None:
    """The Comments column: what the data are, then the rater's comment."""
    e = row.effect
    mine: list[str] = []
    if e.status == "single_study":
        who = f"{e.studies[0]}'s" if e.studies else "the study's"
        mine.append(f"One study (k = 1), not pooled: the effect is {who} own.")
    elif e.status == "not_pooled":
        mine.append(f"Not pooled: {e.reason or 'no estimate'}.")
    elif e.status == "no_data":
        mine.append("No extractable data yet.")
    if e.derived:
        mine.append("Includes values derived by the package maintainers (†).")
    if row.certainty is not None:
        mine.extend(_rating_checks(row))
        if val(row.certainty.get("comment")):
            mine.append(str(val(row.certainty.get("comment"))))
    row.comments = [*mine, *row.comments]


def _rating_checks(row: SofRow) -> list[str]:
    """Where a rating and its result disagree: another outcome, or a start (study_design)
    that does not fit the designs of the studies in the result (randomised = rct; a design
    that is unclear, as in imported reviews, says nothing either way)."""
    rating = row.certainty or {}
    out: list[str] = []
    outcome = val(rating.get("outcome"))
    if outcome is not None and outcome != row.outcome:
        out.append(f"The certainty row names outcome {outcome}; this result is {row.outcome}.")
    start, designs = val(rating.get("study_design")), set(row.effect.designs)
    other = sorted(d.replace("_", " ") for d in designs - {"rct", "unclear"})
    if start == "randomised" and other:
        out.append(
            "The rating starts from randomised trials, but the result includes other "
            f"designs ({', '.join(other)})."
        )
    elif start == "non_randomised" and designs == {"rct"}:
        out.append(
            "The rating starts from non-randomised studies, but every study in the result "
            "is randomised."
        )
    return out


# --- texts -------------------------------------------------------------------------------


def relative_text(row: SofRow) -> str:
    """ "RR 0.60 (0.36 to 1.02)"; "–" for continuous outcomes and for no estimate."""
    e = row.effect
    if e.estimate is None:
        return "–"
    if row.data_type == "continuous":
        return "–"
    ci = (
        f" ({num(e.ci_lower)} to {num(e.ci_upper)})"
        if e.ci_lower is not None and e.ci_upper is not None
        else ""
    )
    return f"{_measure_name(row.measure)} {num(e.estimate)}{ci}"


def _signed(value: float, unit: str) -> str:
    return f"{num(abs(value))}{unit} {'lower' if value < 0 else 'higher'}"


def continuous_text(row: SofRow) -> str:
    """ "MD 2.10 points lower (3.00 lower to 1.20 lower)" (GRADE's wording)."""
    e = row.effect
    if e.estimate is None:
        return ""
    unit = (
        f" {row.unit}"
        if row.unit and row.measure == "MD"
        else (" SD" if row.measure == "SMD" else "")
    )
    text = f"{_measure_name(row.measure)} {_signed(e.estimate, unit)}"
    if e.ci_lower is not None and e.ci_upper is not None:
        text += f" ({_signed(e.ci_lower, '')} to {_signed(e.ci_upper, '')})"
    return text


def absolute_texts(row: SofRow) -> tuple[str, str, str]:
    """(risk with control, risk with intervention, difference) per 1,000, or empty."""
    values = row.absolute
    if values is None:
        return "", "", ""
    acr, cor, lo, hi = (per_1000(v) for v in values)
    low, high = sorted((lo, hi))
    control = f"{_thousands(acr)} per 1,000"
    intervention = f"{_thousands(cor)} per 1,000 ({_thousands(low)} to {_thousands(high)})"
    difference = (
        f"{_difference(cor - acr)} per 1,000 "
        f"({_difference(low - acr)} to {_difference(high - acr)})"
    )
    return control, intervention, difference


def certainty_text(rating: dict[str, Any] | None) -> str:
    """ "⊕⊕◯◯ Low", or "certainty not assessed"."""
    level = val(rating.get("certainty")) if rating is not None else None
    if level not in WORDS:
        return NOT_ASSESSED
    return f"{SYMBOLS[level]} {WORDS[level]}"


def _step_words(value: str, levels: int) -> str:
    if levels == 0:
        return "not rated down" if value in DOWN_STEPS else "not rated up"
    n = "one level" if abs(levels) == 1 else "two levels"
    return f"{value.replace('_', ' ')}, rated {'down' if levels < 0 else 'up'} {n}"


def reasons(rating: dict[str, Any]) -> list[str]:
    """One text per domain with a reason (or rated down or up): "Imprecision (very serious,
    rated down two levels): ..."."""
    out: list[str] = []
    for domain, label in (*DOWN_DOMAINS.items(), *UP_DOMAINS.items()):
        value = val(rating.get(domain))
        why = val(rating.get(f"{domain}_reason"))
        if value is None:
            continue
        if domain in DOWN_DOMAINS:
            levels = -DOWN_STEPS.get(value, 0)
        else:
            levels = UP_STEPS[domain].get(value, 0)
        if why is None and levels == 0:
            continue
        out.append(f"{label} ({_step_words(value, levels)}): {why or 'no reason given'}")
    return out


# --- the section ---------------------------------------------------------------------------


class _Notes:
    """Numbered footnotes, each text once."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def mark(self, text: str) -> str:
        if text not in self.texts:
            self.texts.append(text)
        return str(self.texts.index(text) + 1).translate(_SUPERSCRIPT)


def _arms(rows: Sequence[SofRow]) -> tuple[str, str]:
    favours = {r.favours for r in rows}
    return next(iter(favours)) if len(favours) == 1 else ("the intervention", "the control")


def _csv_row(row: SofRow) -> list[Any]:
    e = row.effect
    values = row.absolute
    per = [v * 1000.0 for v in values] if values is not None else None
    control, intervention, difference = absolute_texts(row)
    rating = row.certainty
    derivation = derive(rating) if rating is not None else None
    if row.data_type == "continuous":
        absolute = continuous_text(row)
    else:
        absolute = "; ".join(x for x in (control, intervention, difference) if x)
    return [
        row.analysis_id,
        row.title,
        row.outcome,
        row.outcome_label,
        row.timepoint,
        row.timepoint_label,
        row.data_type,
        row.measure,
        e.status,
        e.k,
        e.participants,
        "; ".join(e.studies),
        e.estimate,
        e.ci_lower,
        e.ci_upper,
        relative_text(row) if e.estimate is not None and row.data_type != "continuous" else None,
        per[0] if per else None,
        ASSUMED_BASIS if per else None,
        per[1] if per else None,
        min(per[2], per[3]) if per else None,
        max(per[2], per[3]) if per else None,
        per[1] - per[0] if per else None,
        min(per[2], per[3]) - per[0] if per else None,
        max(per[2], per[3]) - per[0] if per else None,
        absolute or None,
        val(rating.get("certainty")) if rating is not None else None,
        certainty_text(rating),
        derivation.text() if derivation is not None else None,
        " | ".join(reasons(rating)) if rating is not None else None,
        val(rating.get("assessor")) if rating is not None else None,
        val(rating.get("source_id")) if rating is not None else None,
        " ".join(row.comments) or None,
    ]


def _table_row(row: SofRow, notes: _Notes) -> list[Inlines]:
    e = row.effect
    outcome: list[Any] = [row.title]
    if row.show_when and row.timepoint_label:
        outcome += [BR, Muted(row.timepoint_label)]
    control, intervention, difference = absolute_texts(row)
    if row.data_type == "continuous":
        intervention = continuous_text(row)
    if e.estimate is None:
        intervention = "–"
    risk_with: list[Any] = [intervention]
    if difference:
        risk_with += [BR, Muted(difference)]
    studies = f"{e.k} {'study' if e.k == 1 else 'studies'}"
    if e.k == 0:
        people = "–"
    elif e.participants is not None:
        people = f"{e.participants:,} ({studies})"
    else:
        people = f"not stated ({studies})"
    rating = row.certainty
    cert: list[Any] = [certainty_text(rating)]
    if rating is not None:
        marks = [notes.mark(text) for text in reasons(rating)]
        if marks:
            cert.append(" " + " ".join(marks))
        who = val(rating.get("assessor")) or "assessor not stated"
        note = val(rating.get("notes"))
        cert += [BR, Muted(f"rated by {who}" + (f" {notes.mark(note)}" if note else ""))]
    return [
        outcome,
        control or "–",
        risk_with,
        relative_text(row),
        people,
        cert,
        " ".join(row.comments),
    ]


def section(ctx: Context) -> list[Node]:
    """The section's nodes; writes ``exports/summary_of_findings.csv`` and lists it."""
    rows, unmatched = sof_rows(ctx)
    write_csv(ctx.root / CSV_NAME, CSV_HEADER, [_csv_row(r) for r in rows])
    ctx.exported.append(CSV_NAME)
    intervention, control = _arms(rows)
    notes = _Notes()
    table = Table(
        header=[
            "Outcome",
            f"Risk with {control} (assumed)",
            f"Risk with {intervention} (95% CI)",
            "Relative effect (95% CI)",
            "Participants (studies)",
            "Certainty of the evidence (GRADE)",
            "Comments",
        ],
        rows=[_table_row(r, notes) for r in rows],
    )
    nodes: list[Node] = [
        Heading(2, "Summary of findings", "summary-of-findings"),
        Para(
            f"{intervention[:1].upper()}{intervention[1:]} compared with {control}: each result "
            "of the analysis plan with its certainty of evidence (GRADE). Risk with "
            f"{control}: the {ASSUMED_BASIS} in the result (with one study, its control-group "
            f"risk). Risk with {intervention}: that risk under the relative effect and its 95% CI "
            "(risk ratio: assumed risk × RR; odds ratio: ACR·OR / (1 − ACR + ACR·OR); risk "
            "difference: ACR + RD), with the difference per 1,000 below it. Continuous outcomes: "
            "the mean difference. Certainty: ⊕⊕⊕⊕ high, ⊕⊕⊕◯ moderate, ⊕⊕◯◯ low, ⊕◯◯◯ very low "
            "(GRADE Handbook, section 5); the footnotes give each domain's reason. "
            f"Exported: {CSV_NAME}."
        ),
        table,
    ]
    if notes.texts:
        nodes.append(
            Bullets(
                [str(i + 1).translate(_SUPERSCRIPT) + " " + t for i, t in enumerate(notes.texts)]
            )
        )
    if not any(r.certainty is not None for r in rows):
        nodes.append(
            Para(
                "No result of this plan has a certainty rating (the package's certainty "
                "resource is absent or has no row for them): every row says "
                f'"{NOT_ASSESSED}".',
                cls="note",
            )
        )
    if unmatched:
        names = ", ".join(
            f"{val(r.get('analysis_id'))} ({val(r.get('timepoint'))})" for r in unmatched
        )
        nodes.append(
            Para(
                f"Certainty rows that match no result of this plan (analysis and time point): "
                f"{names}.",
                cls="note",
            )
        )
    return nodes
