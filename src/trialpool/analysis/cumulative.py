"""Cumulative meta-analysis of one pooled analysis: its studies added in order of year.

The studies of a pooled result (metafor's conventions, :mod:`trialpool.analysis.pooled`;
or an imported review's analysis, RevMan's conventions, :mod:`trialpool.analysis.revman`)
are put in order of ``studies.year`` (the year of publication of the main report), ties
by label (case-insensitive, then as written, then the analysis's own order); studies
without a year are added last, in order of label, and a note names them. Each step
refits the analysis with its own settings (:mod:`trialpool.stats.cumulative`: metafor's
``cumul()`` for metafor-style analyses, RevMan's engine for imported ones): same measure,
model and tau² estimator, HKSJ and level.

Each step reports the study added, its year, k, the pooled estimate with its CI (ratio
scale for ratio measures, as ``trialpool pool --json`` prints them; SE and tests on the
analysis scale), tau² and I² (percent). A step that cannot be fitted keeps its place with
``fitted = false`` and the reason (metafor's ``cumul()`` gives NA there).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from trialpool.analysis.plan import RevManAnalysis
from trialpool.analysis.revman import ReviewPoolResult, model_text, settings_of
from trialpool.package.loader import Package
from trialpool.stats.cumulative import K1_HKSJ_NOTE, Step, cumul, cumul_mh, revman_cumul
from trialpool.stats.results import RATIO_MEASURES, NotPooled, PoolResult, StudyEffect

__all__ = [
    "ORDER_TEXT",
    "CumulativeResult",
    "CumulativeStep",
    "cumulative_json",
    "cumulative_of_result",
    "cumulative_of_review",
    "study_years",
    "year_order",
]

#: how the studies are ordered, in words
ORDER_TEXT = "studies added in order of year of publication (studies.year), ties by label"

_REVMAN_INPUTS = {
    "dichotomous": ("e1", "n1", "e2", "n2"),
    "continuous": ("m1", "sd1", "n1", "m2", "sd2", "n2"),
    "generic": ("estimate", "se"),
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CumulativeStep(_Model):
    """The pooled result once ``study_id`` (the k-th study in order of year) is added."""

    step: int = Field(description="Position of the study added (1, 2, ...).")
    study_id: str
    label: str
    year: int | None = Field(description="studies.year of the study added (None: no year).")
    k: int = Field(
        description=(
            "Studies pooled at this step, counted as the pooled result counts them "
            "(an imported analysis: its estimable rows, as RevMan)."
        )
    )
    fitted: bool = Field(description="False when this step cannot be fitted (see reason).")
    reason: str | None = None
    estimate: float | None = Field(None, description="Pooled estimate (ratio scale for RR, OR).")
    ci_lower: float | None = None
    ci_upper: float | None = None
    se: float | None = Field(None, description="SE of the estimate (log scale for ratios).")
    zval: float | None = Field(None, description="Test statistic (t with HKSJ).")
    p_value: float | None = None
    tau2: float | None = None
    i2: float | None = Field(None, description="I² in percent.")
    q: float | None = None
    q_p: float | None = None
    #: an imported analysis: the study row added (comparison_id), and whether it carries
    #: weight (false: RevMan does not estimate it, e.g. no events in either group)
    comparison_id: str | None = None
    row_estimable: bool = True


class CumulativeResult(_Model):
    """Every step of a cumulative meta-analysis of one pooled analysis."""

    engine: Literal["metafor", "revman"]
    measure: str
    method: str
    model: str = Field(description="The model in words, e.g. 'REML + HKSJ'.")
    hksj: bool = False
    level: float
    ratio: bool = Field(description="Estimates and CIs on the ratio scale.")
    order: str = ORDER_TEXT
    steps: list[CumulativeStep] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


# --------------------------------------------------------------------------------------
# order
# --------------------------------------------------------------------------------------


def _year(value: Any) -> int | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if math.isfinite(number) else None


def study_years(pkg: Package) -> dict[str, int | None]:
    """Each study's ``year`` (None where the studies table has none)."""
    if not pkg.has("studies"):
        return {}
    frame = pkg.table("studies")
    if "year" not in frame.columns:
        return {str(s): None for s in frame["study_id"]}
    return {
        str(s): _year(y)
        for s, y in zip(frame["study_id"].tolist(), frame["year"].tolist(), strict=True)
    }


def year_order(rows: Sequence[tuple[str, int | None]]) -> list[int]:
    """Indices of ``rows`` (label, year) in cumulative order: by year, ties by label
    (case-insensitive, then as written, then the given order); rows without a year last,
    by label."""
    return sorted(
        range(len(rows)),
        key=lambda i: (
            rows[i][1] is None,
            rows[i][1] or 0,
            rows[i][0].casefold(),
            rows[i][0],
            i,
        ),
    )


def _order_notes(labels: Sequence[str], years: Sequence[int | None]) -> list[str]:
    notes = [ORDER_TEXT + "."]
    missing = [lab for lab, y in zip(labels, years, strict=True) if y is None]
    if missing:
        notes.append(
            "no year in studies.year, added last (in order of label): " + ", ".join(missing)
        )
    return notes


# --------------------------------------------------------------------------------------
# metafor's conventions
# --------------------------------------------------------------------------------------


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _show(x: float | None, ratio: bool) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    if not ratio:
        return float(x)
    return math.exp(x) if x < 709.0 else math.inf


def _metafor_step(step: Step, study: StudyEffect, year: int | None, ratio: bool) -> CumulativeStep:
    common = {
        "step": step.k,
        "study_id": study.study_id,
        "label": study.label or study.study_id,
        "year": year,
        "k": step.k if step.fit is None else step.fit.k,
    }
    fit = step.fit
    if fit is None:
        return CumulativeStep(**common, fitted=False, reason=step.error)
    return CumulativeStep(
        **common,
        fitted=True,
        estimate=_show(fit.beta, ratio),
        ci_lower=_show(fit.ci_lb, ratio),
        ci_upper=_show(fit.ci_ub, ratio),
        se=_finite(fit.se),
        zval=_finite(fit.zval),
        p_value=_finite(fit.pval),
        tau2=_finite(fit.tau2),
        i2=_finite(fit.i2),
        q=_finite(fit.q),
        q_p=_finite(fit.q_p),
    )


def cumulative_of_result(
    result: PoolResult | NotPooled,
    years: Mapping[str, int | None],
    *,
    method: str,
    hksj: bool,
    level: float,
) -> CumulativeResult:
    """The cumulative meta-analysis of a metafor-style pooled result (its studies, with
    their effect sizes as pooled), refitted with ``method``, ``hksj`` and ``level`` (the
    settings the result was pooled with; a :class:`NotPooled` of one study has one step,
    of no study none). Mantel-Haenszel refits the studies' 2×2 counts."""
    measure = result.measure
    ratio = measure in RATIO_MEASURES
    studies = list(result.studies)
    labels = [s.label or s.study_id for s in studies]
    study_years = [years.get(s.study_id) for s in studies]
    order = year_order(list(zip(labels, study_years, strict=True)))
    studies = [studies[i] for i in order]
    ordered_years = [study_years[i] for i in order]
    model = "Mantel-Haenszel" if method == "MH" else method + (" + HKSJ" if hksj else "")
    notes: list[str] = []
    if not studies:
        notes.append("no study has data: nothing to accumulate")
        return CumulativeResult(
            engine="metafor", measure=measure, method=method, model=model, hksj=hksj,
            level=level, ratio=ratio, notes=notes,
        )  # fmt: skip
    notes.extend(_order_notes([labels[i] for i in order], ordered_years))
    if method == "MH":
        counts = [[s.arm_data.get(key) for s in studies] for key in ("e1", "t1", "e2", "t2")]
        steps = cumul_mh(*counts, measure=measure, level=level)  # type: ignore[arg-type]
    else:
        steps = cumul(
            [s.yi for s in studies],
            [s.vi for s in studies],
            method=method,
            hksj=hksj,
            level=level,
            measure=measure,
        )
    if hksj and method != "MH":
        notes.append(f"HKSJ: {K1_HKSJ_NOTE}")
    out = [
        _metafor_step(step, study, year, ratio)
        for step, study, year in zip(steps, studies, ordered_years, strict=True)
    ]
    return CumulativeResult(
        engine="metafor", measure=measure, method=method, model=model, hksj=hksj,
        level=level, ratio=ratio, steps=out, notes=notes,
    )  # fmt: skip


# --------------------------------------------------------------------------------------
# RevMan's conventions
# --------------------------------------------------------------------------------------


def cumulative_of_review(
    a: RevManAnalysis, result: ReviewPoolResult, years: Mapping[str, int | None]
) -> CumulativeResult:
    """The cumulative meta-analysis of an imported review's analysis with RevMan's
    engine and the review's settings. Study rows without data in the package are left
    out (they are in no total); subgroups play no part (every step pools its rows
    together, as the overall total does). Raises AnalysisError when the review's Totals
    option is not 'overall' (RevMan computes no overall total then)."""
    settings = settings_of(a)
    rows = [s for s in result.studies if not s.no_data]
    labels = [s.label for s in rows]
    row_years = [years.get(s.study_id) for s in rows]
    order = year_order(list(zip(labels, row_years, strict=True)))
    rows = [rows[i] for i in order]
    ordered_years = [row_years[i] for i in order]
    notes: list[str] = []
    skipped = [s.label for s in result.studies if s.no_data]
    hksj = a.random and a.ci_method == "HKSJ"
    base = {
        "engine": "revman",
        "measure": a.measure,
        "method": a.method,
        "model": model_text(a),
        "hksj": hksj,
        "level": a.level,
        "ratio": result.ratio,
    }
    if not rows:
        notes.append("no study row has data in the package: nothing to accumulate")
        return CumulativeResult(**base, notes=notes)  # type: ignore[arg-type]
    names = _REVMAN_INPUTS[a.data_type]
    data = {n: [float(s.arm_data[n]) for s in rows] for n in names}  # type: ignore[arg-type]
    fits = revman_cumul(data, settings)
    notes.extend(_order_notes([s.label for s in rows], ordered_years))
    if skipped:
        notes.append("study rows without data in the package, left out: " + ", ".join(skipped))
    if a.subgroups:
        notes.append(
            "subgroups play no part: each step pools all rows added so far, as the "
            "overall total does"
        )
    steps: list[CumulativeStep] = []
    for i, (row, year, fit) in enumerate(zip(rows, ordered_years, fits, strict=True)):
        common = {
            "step": i + 1,
            "study_id": row.study_id,
            "label": row.label,
            "year": year,
            "k": fit.k,
            "comparison_id": row.comparison_id,
            "row_estimable": row.estimable,
        }
        if not fit.estimable:
            steps.append(CumulativeStep(**common, fitted=False, reason=fit.reason))
            continue
        steps.append(
            CumulativeStep(
                **common,
                fitted=True,
                estimate=_finite(fit.estimate),
                ci_lower=_finite(fit.ci_lower),
                ci_upper=_finite(fit.ci_upper),
                se=_finite(fit.se),
                zval=_finite(fit.z),
                p_value=_finite(fit.p),
                tau2=_finite(fit.tau2),
                i2=_finite(fit.i2),
                q=_finite(fit.chi2),
                q_p=_finite(fit.p_chi2),
            )
        )
    not_estimable = [s.label for s in rows if not s.estimable]
    if not_estimable:
        notes.append(
            "not estimable (no weight in RevMan's totals), added without changing the "
            "estimate: " + ", ".join(not_estimable)
        )
    return CumulativeResult(**base, steps=steps, notes=notes)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------

#: the keys of each step in ``trialpool pool --cumulative --json``, in this order
STEP_KEYS = (
    "step", "study_id", "label", "year", "k", "fitted", "reason", "estimate", "ci_lower",
    "ci_upper", "se", "zval", "p_value", "tau2", "i2", "q", "q_p",
)  # fmt: skip


def cumulative_json(c: CumulativeResult) -> dict[str, Any]:
    """The keys ``trialpool pool --cumulative --json`` adds: ``cumulative`` (one object
    per step: :data:`STEP_KEYS`, plus ``comparison_id`` and ``row_estimable`` for an
    imported analysis) and
    ``cumulative_notes``."""
    steps = []
    for s in c.steps:
        d = s.model_dump(mode="json")
        step = {key: d[key] for key in STEP_KEYS}
        if c.engine == "revman":
            step["comparison_id"] = s.comparison_id
            step["row_estimable"] = s.row_estimable
        steps.append(step)
    return {"cumulative": steps, "cumulative_notes": list(c.notes)}
