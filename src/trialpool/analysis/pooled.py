"""From a package and an outcome to a pooled result, with metafor's conventions.

Data flow: :func:`~trialpool.analysis.pairing.arm_pairs` picks, per study, the experimental
and the control arm of its comparison and their data for one outcome and time point
(``analysis.pairing``; its public names are importable from here too);
:func:`pool_outcome` computes the effect sizes (``effects.escalc_*``, as
metafor's ``escalc``) and pools them (:mod:`trialpool.stats.pooling`, as metafor's ``rma`` /
``rma.mh``); :func:`pool_subgroups`, :func:`leave_one_out` and :func:`sensitivity`
re-run the same pooling on parts of the data. An analysis with fewer than two studies
is never dropped silently: it is a :class:`~trialpool.stats.results.NotPooled` that says why
("no extractable data yet", "k = 1: not pooled") and what is missing.

Conventions (../shared/design.md): only studies whose design is in ``designs``
(default: RCTs) are analysed, and only primary comparisons whose control arm's
``comparator_type`` is in ``comparators`` (default :data:`DEFAULT_COMPARATORS`: untreated,
standard care, placebo or unclear; an active treatment or a shorter exposure to MSC is
left out with a note); rows marked ``verification = derived`` are used unless
``include_derived=False``; a study with a zero cell gets 1/2 added to all four cells
for the inverse-variance models (metafor's escalc default), while Mantel-Haenszel pools
the raw counts (metafor's rma.mh).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from trialpool.analysis.finite import not_finite
from trialpool.analysis.pairing import (
    COMPARATOR_TEXT,
    DEFAULT_COMPARATORS,
    OutcomeKind,
    arm_pairs,
    arm_records,
    cell_value,
    comparator_left_out,
    comparator_text,
    outcome_kind,
    outcomes_of,
    studies_by_id,
)
from trialpool.errors import AnalysisError
from trialpool.package.loader import Package
from trialpool.stats import effects, pooling
from trialpool.stats.results import (
    RATIO_MEASURES,
    LeaveOneOut,
    NotPooled,
    PoolResult,
    StudyEffect,
    SubgroupResult,
)

Result = PoolResult | NotPooled

CONTINUOUS_MEASURES = ("MD", "SMD")
DICHOTOMOUS_MEASURES = ("RR", "OR", "RD")
METHODS = ("FE", "MH", "DL", "REML", "PM", "ML")
NO_DATA = "no extractable data yet"
K1 = "k = 1: not pooled"

#: sensitivity rules and what they change
SENSITIVITY_RULES: dict[str, str] = {
    "rct_only": "randomised controlled trials only",
    "all_designs": "all designs (RCTs and non-randomised studies)",
    "no_derived": "without rows computed by the maintainers (verification = derived)",
    "no_high_rob": "without studies at high risk of bias (RoB 1/2: any domain high; "
    "ROBINS-I: serious or critical)",
}


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def _check_request(kind: OutcomeKind, outcome: str, measure: str, method: str, hksj: bool) -> None:
    if method not in METHODS:
        raise AnalysisError(f"unknown method {method!r} ({', '.join(METHODS)})")
    if kind == "continuous" and measure not in CONTINUOUS_MEASURES:
        raise AnalysisError(
            f"measure {measure} does not fit {outcome!r}, a continuous outcome (use MD or SMD)"
        )
    if kind == "dichotomous" and measure not in DICHOTOMOUS_MEASURES:
        raise AnalysisError(
            f"measure {measure} does not fit {outcome!r}, a dichotomous outcome (use RR, OR or RD)"
        )
    if method == "MH" and kind != "dichotomous":
        raise AnalysisError("method MH (Mantel-Haenszel) needs a dichotomous outcome (RR, OR, RD)")
    if method == "MH" and hksj:
        raise AnalysisError("--hksj does not apply to Mantel-Haenszel pooling")


# --------------------------------------------------------------------------------------
# pooling
# --------------------------------------------------------------------------------------


def _high_rob_studies(pkg: Package, outcome: str) -> set[str]:
    """Studies with any RoB 1/RoB 2 domain judged high, or ROBINS-I serious/critical,
    for all results or for this outcome."""
    if not pkg.has("bias_judgements"):
        return set()
    rob = pkg.table("bias_judgements")
    if rob.empty:
        return set()
    scope = rob["result_scope"].isin(["all", outcome]).fillna(False)
    high = (rob["tool"].isin(["rob1", "rob2"]) & (rob["judgement"] == "high")) | (
        (rob["tool"] == "robins_i") & rob["judgement"].isin(["serious", "critical"])
    )
    mask = (scope & high.fillna(False)).astype(bool)
    return {str(s) for s in rob.loc[mask, "study_id"].dropna()}


def _study_effects(pairs: pd.DataFrame, kind: OutcomeKind, measure: str) -> effects.Effects:
    if kind == "continuous":
        return effects.escalc_continuous(
            measure,  # type: ignore[arg-type]
            pairs["m1"].to_numpy(float),
            pairs["sd1"].to_numpy(float),
            pairs["n1"].to_numpy(float),
            pairs["m2"].to_numpy(float),
            pairs["sd2"].to_numpy(float),
            pairs["n2"].to_numpy(float),
        )
    return effects.escalc_binary(
        measure,  # type: ignore[arg-type]
        pairs["e1"].to_numpy(float),
        pairs["t1"].to_numpy(float),
        pairs["e2"].to_numpy(float),
        pairs["t2"].to_numpy(float),
    )


def _arm_data(row: pd.Series, kind: OutcomeKind) -> dict[str, float | int | None]:
    keys = (
        ("m1", "sd1", "n1", "m2", "sd2", "n2") if kind == "continuous" else ("e1", "t1", "e2", "t2")
    )
    return {k: cell_value(row[k]) for k in keys}


def _study_list(pairs: pd.DataFrame, es: effects.Effects, kind: OutcomeKind) -> list[StudyEffect]:
    out: list[StudyEffect] = []
    for i, (_, row) in enumerate(pairs.iterrows()):
        out.append(
            StudyEffect(
                study_id=str(row["study_id"]),
                label=str(row["label"]),
                yi=float(es.yi[i]),
                vi=float(es.vi[i]),
                weight=0.0,
                zero_cell_corrected=bool(es.zero_cell_corrected[i]),
                derived=bool(row["derived"]),
                arm_data=_arm_data(row, kind),
            )
        )
    return out


def _with_ci(study: StudyEffect, measure: str, level: float) -> StudyEffect:
    z = float(stats.norm.isf((100 - level) / 200))
    if not (math.isfinite(study.yi) and math.isfinite(study.vi)):
        return study
    lo, hi = study.yi - z * math.sqrt(study.vi), study.yi + z * math.sqrt(study.vi)
    if measure in RATIO_MEASURES:
        lo, hi = math.exp(lo), math.exp(hi)
    return study.model_copy(update={"ci_lower": lo, "ci_upper": hi})


def _pool_pairs(
    pairs: pd.DataFrame,
    kind: OutcomeKind,
    *,
    measure: str,
    method: str,
    hksj: bool,
    level: float,
    notes: list[str],
    missing: list[str],
) -> Result:
    """Pool the rows of :func:`arm_pairs` (k = 0 and k = 1 give NotPooled)."""
    k = len(pairs)
    if k == 0:
        return NotPooled(k=0, measure=measure, method=method, reason=NO_DATA, missing=missing)  # type: ignore[arg-type]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        es = _study_effects(pairs, kind, measure)
    studies = _study_list(pairs, es, kind)
    _check_finite(studies)
    if k == 1:
        only = _with_ci(studies[0], measure, level)
        return NotPooled(
            k=1,
            measure=measure,  # type: ignore[arg-type]
            method=method,  # type: ignore[arg-type]
            reason=f"{K1} (only {only.label or only.study_id})"
            + ("; no events in either arm" if es.double_zero[0] else ""),
            studies=[only],
            missing=missing,
        )
    notes = list(notes)
    corrected = [s.label or s.study_id for s in studies if s.zero_cell_corrected]
    if corrected and method != "MH":
        notes.append(
            "1/2 added to every cell of studies with a zero cell (metafor's escalc default): "
            + ", ".join(corrected)
        )
    double = [s.label or s.study_id for s, dz in zip(studies, es.double_zero, strict=True) if dz]
    if double:
        if method == "MH" and measure in ("RR", "OR"):
            how = "given no weight by Mantel-Haenszel and left out of Q"
        elif method == "MH":  # RD: a double-zero table has a defined difference (0) and weight
            how = "kept (Mantel-Haenszel RD weights them); left out of Q"
        else:
            how = "kept"
        notes.append(f"no events (or only events) in both arms, {how}: " + ", ".join(double))
    derived = [s.label or s.study_id for s in studies if s.derived]
    if derived:
        notes.append("derived values used (see derivation in the data): " + ", ".join(derived))
    try:
        if method == "MH":
            fit = pooling.rma_mh(
                pairs["e1"].to_numpy(float),
                pairs["t1"].to_numpy(float),
                pairs["e2"].to_numpy(float),
                pairs["t2"].to_numpy(float),
                measure=measure,  # type: ignore[arg-type]
                level=level,
            )
        else:
            if not (np.all(np.isfinite(es.yi)) and np.all(es.vi > 0)):
                bad = [s.label or s.study_id for s in studies if not (s.vi > 0)]
                raise AnalysisError(
                    f"effect sizes cannot be computed for: {', '.join(bad)} "
                    "(zero or missing variance, e.g. SD = 0)"
                )
            fit = pooling.rma(es.yi, es.vi, method=method, hksj=hksj, level=level, measure=measure)
    except ValueError as exc:
        raise AnalysisError(str(exc)) from None
    result = pooling.result_from_fit(fit, measure=measure, studies=studies, notes=notes)
    numbers = (result.estimate, result.ci_lower, result.ci_upper, result.se)
    if not all(math.isfinite(x) for x in numbers):
        raise AnalysisError(
            "the pooled estimate is not a finite number (the data hold values too large "
            "to pool); check the package's values"
        )
    return result


def _check_finite(studies: Sequence[StudyEffect]) -> None:
    """AnalysisError naming the first study whose data or effect is infinite (a number too
    large to compute with: the effect or its variance overflows)."""
    for s in studies:
        why = not_finite(s.arm_data, (s.yi, s.vi))
        if why is not None:
            raise AnalysisError(f"study {s.study_id}: {why}")


def pool_outcome(
    pkg: Package,
    outcome: str,
    timepoint: float | None = None,
    *,
    measure: str,
    method: str,
    hksj: bool = False,
    designs: Sequence[str] | None = ("rct",),
    include_derived: bool = True,
    convert_medians: bool = True,
    exclude_high_rob: bool = False,
    level: float = 95.0,
    comparators: Sequence[str] | None = DEFAULT_COMPARATORS,
    comparison: str | None = None,
) -> Result:
    """Pool one outcome (at one time point) of a package.

    k = 0 gives ``NotPooled(reason="no extractable data yet", missing=[...])``, k = 1
    ``NotPooled(reason="k = 1: not pooled (only <study>)")`` with that study's effect;
    otherwise a :class:`~trialpool.stats.results.PoolResult` (metafor's ``rma`` for FE, DL,
    REML, PM, ML, optionally with HKSJ; ``rma.mh`` for MH). Studies are chosen as in
    :func:`arm_pairs` (``designs``, ``comparators``: by default RCTs whose control is
    untreated, standard care, placebo or unclear; ``None`` for all). Raises
    AnalysisError (one line) for an unknown outcome, a measure that does not fit the
    outcome type, or MH on a continuous outcome.
    """
    kind = outcome_kind(pkg, outcome)
    _check_request(kind, outcome, measure, method, hksj)
    pairs = arm_pairs(
        pkg,
        outcome,
        timepoint,
        designs=designs,
        include_derived=include_derived,
        convert_medians=convert_medians,
        comparators=comparators,
        comparison=comparison,
    )
    notes = list(pairs.attrs.get("notes", []))
    missing = list(pairs.attrs.get("missing", []))
    if exclude_high_rob and not pairs.empty:
        high = _high_rob_studies(pkg, outcome)
        drop = pairs["study_id"].isin(high)
        if drop.any():
            notes.append(
                "left out at high risk of bias: " + ", ".join(pairs.loc[drop, "label"].astype(str))
            )
            pairs = pairs[~drop].reset_index(drop=True)
    times = [] if timepoint is not None or pairs.empty else pairs["timepoint_weeks"].dropna()
    times = sorted({float(t) for t in times})
    if times:
        if len(times) > 1:
            each = ", ".join(f"{r.label} {r.timepoint_weeks:g}" for r in pairs.itertuples())
            notes.append(f"no time point given: each study's latest follow-up used (weeks: {each})")
        else:
            unit = "week" if times[0] == 1 else "weeks"
            notes.append(f"no time point given: the latest follow-up, {times[0]:g} {unit}, used")
    if kind == "continuous" and measure == "MD" and not pairs.empty:
        units = sorted({str(u) for u in pairs["unit1"]})
        if len(units) > 1:
            raise AnalysisError(
                f"MD needs one unit across studies; {outcome} is reported in {', '.join(units)} "
                "(convert the values or use SMD)"
            )
    return _pool_pairs(
        pairs,
        kind,
        measure=measure,
        method=method,
        hksj=hksj,
        level=level,
        notes=notes,
        missing=missing,
    )


def _analysis_scale(result: Result) -> tuple[float, float] | None:
    """(estimate, variance) on the analysis scale, for the test of subgroup differences."""
    if isinstance(result, PoolResult):
        est = math.log(result.estimate) if result.measure in RATIO_MEASURES else result.estimate
        return est, result.se**2
    if result.k == 1 and result.studies:
        return result.studies[0].yi, result.studies[0].vi
    return None


def pool_subgroups(
    pkg: Package,
    outcome: str,
    *,
    by: str,
    timepoint: float | None = None,
    measure: str,
    method: str,
    hksj: bool = False,
    designs: Sequence[str] | None = None,
    include_derived: bool = True,
    convert_medians: bool = True,
    level: float = 95.0,
    comparators: Sequence[str] | None = DEFAULT_COMPARATORS,
    comparison: str | None = None,
) -> SubgroupResult:
    """Pool each subgroup and test for subgroup differences (``pooling.subgroup_test``).

    ``by="timepoint"`` pools every follow-up time point (> 0 weeks) separately; any other
    ``by`` names a column of ``arms`` (value of the intervention arm, e.g. cell_source,
    route, origin) or of ``studies`` (e.g. design, blinding, country). ``designs``
    defaults to RCTs only, or to all designs when ``by="design"``. The test (Q between
    on the analysis scale, single-study subgroups included with their own effect, as
    RevMan) is reported only when at least two subgroups have an estimate and no study
    appears in two subgroups (time subgroups of the same trials are not independent).
    """
    kind = outcome_kind(pkg, outcome)
    _check_request(kind, outcome, measure, method, hksj)
    if designs is None:
        designs = None if by == "design" else ("rct",)
    groups: dict[str, Result] = {}
    members: dict[str, set[str]] = {}
    if by == "timepoint":
        resource = "continuous_outcomes" if kind == "continuous" else "dichotomous_outcomes"
        data = pkg.table(resource) if pkg.has(resource) else pd.DataFrame()
        times: list[float] = []
        if not data.empty:
            rows = data[(data["outcome"] == outcome).fillna(False)]
            times = sorted({float(t) for t in rows["timepoint_weeks"].dropna() if float(t) > 0})
        for t in times:
            res = pool_outcome(
                pkg,
                outcome,
                t,
                measure=measure,
                method=method,
                hksj=hksj,
                designs=designs,
                include_derived=include_derived,
                convert_medians=convert_medians,
                level=level,
                comparators=comparators,
                comparison=comparison,
            )
            groups[f"{t:g} weeks"] = res
            members[f"{t:g} weeks"] = {s.study_id for s in res.studies}
    else:
        arms_cols = set(pkg.resources["arms"].field_names) if pkg.has("arms") else set()
        for name in pkg.extension_arm_tables():  # e.g. msc_arms: cell_source, origin, route
            arms_cols |= set(pkg.resources[name].field_names) - {"source_id", "notes"}
        study_cols = set(pkg.resources["studies"].field_names)
        if (by not in arms_cols and by not in study_cols) or by in ("study_id", "arm_id"):
            allowed = sorted((arms_cols | study_cols) - {"study_id", "arm_id"})
            raise AnalysisError(
                f"cannot form subgroups by {by!r}; use timepoint or one of: {', '.join(allowed)}"
            )
        pairs = arm_pairs(
            pkg,
            outcome,
            timepoint,
            designs=designs,
            include_derived=include_derived,
            convert_medians=convert_medians,
            comparators=comparators,
            comparison=comparison,
        )
        if not pairs.empty:
            if by in pairs.columns:
                values = pairs[by]
            elif by in arms_cols:
                lookup = {
                    (sid, aid): arm.get(by)
                    for sid, arms in arm_records(pkg).items()
                    for aid, arm in arms.items()
                }
                values = pd.Series(
                    [
                        lookup.get((s, a))
                        for s, a in zip(pairs["study_id"], pairs["arm1_id"], strict=True)
                    ]
                )
            else:
                studies = studies_by_id(pkg)
                values = pd.Series([studies[s].get(by) for s in pairs["study_id"]])
            values = values.map(lambda v: "not reported" if cell_value(v) is None else str(v))
            for value in sorted(set(values)):
                sub = pairs[(values == value).to_numpy()].reset_index(drop=True)
                groups[value] = _pool_pairs(
                    sub,
                    kind,
                    measure=measure,
                    method=method,
                    hksj=hksj,
                    level=level,
                    notes=list(pairs.attrs.get("notes", [])),
                    missing=[],
                )
                members[value] = set(sub["study_id"])
    q = df = p = None
    est = [(g, _analysis_scale(r)) for g, r in groups.items()]
    usable = [(g, e) for g, e in est if e is not None]
    overlap = False
    seen: set[str] = set()
    for g, _ in usable:
        if members.get(g, set()) & seen:
            overlap = True
        seen |= members.get(g, set())
    if len(usable) >= 2 and not overlap:
        q, df, p = pooling.subgroup_test([e[0] for _, e in usable], [e[1] for _, e in usable])
    return SubgroupResult(variable=by, groups=groups, q_between=q, q_between_df=df, q_between_p=p)


def leave_one_out(
    pkg: Package,
    outcome: str,
    timepoint: float | None = None,
    *,
    measure: str,
    method: str,
    hksj: bool = False,
    designs: Sequence[str] | None = ("rct",),
    include_derived: bool = True,
    convert_medians: bool = True,
    level: float = 95.0,
    comparators: Sequence[str] | None = DEFAULT_COMPARATORS,
    comparison: str | None = None,
) -> LeaveOneOut:
    """The pooled result with each study left out in turn (metafor's ``leave1out``)."""
    kind = outcome_kind(pkg, outcome)
    _check_request(kind, outcome, measure, method, hksj)
    pairs = arm_pairs(
        pkg,
        outcome,
        timepoint,
        designs=designs,
        include_derived=include_derived,
        convert_medians=convert_medians,
        comparators=comparators,
        comparison=comparison,
    )
    omitted: list[str] = []
    results: list[Result] = []
    for i in range(len(pairs)):
        rest = pairs.drop(index=pairs.index[i]).reset_index(drop=True)
        omitted.append(str(pairs.iloc[i]["study_id"]))
        results.append(
            _pool_pairs(
                rest,
                kind,
                measure=measure,
                method=method,
                hksj=hksj,
                level=level,
                notes=[f"without {pairs.iloc[i]['label']}"],
                missing=[],
            )
        )
    return LeaveOneOut(omitted=omitted, results=results)


def sensitivity(
    pkg: Package,
    outcome: str,
    timepoint: float | None = None,
    *,
    rule: str,
    measure: str,
    method: str,
    hksj: bool = False,
    convert_medians: bool = True,
    level: float = 95.0,
    comparators: Sequence[str] | None = DEFAULT_COMPARATORS,
    comparison: str | None = None,
) -> Result:
    """Re-pool under a rule-based exclusion (:data:`SENSITIVITY_RULES`): ``rct_only``,
    ``all_designs``, ``no_derived`` (drop derived and converted rows) or
    ``no_high_rob`` (drop studies at high risk of bias; RCTs only)."""
    if rule not in SENSITIVITY_RULES:
        raise AnalysisError(f"unknown rule {rule!r}; use one of: {', '.join(SENSITIVITY_RULES)}")
    kwargs: dict[str, Any] = {
        "measure": measure,
        "method": method,
        "hksj": hksj,
        "convert_medians": convert_medians,
        "level": level,
        "comparators": comparators,
        "comparison": comparison,
    }
    if rule == "all_designs":
        kwargs["designs"] = None
    elif rule == "no_derived":
        kwargs["include_derived"] = False
    elif rule == "no_high_rob":
        kwargs["exclude_high_rob"] = True
    result = pool_outcome(pkg, outcome, timepoint, **kwargs)
    note = f"sensitivity analysis: {SENSITIVITY_RULES[rule]}"
    if isinstance(result, PoolResult):
        return result.model_copy(update={"notes": [note, *result.notes]})
    return result


# --------------------------------------------------------------------------------------
# trialpool pool
# --------------------------------------------------------------------------------------


def json_safe(obj: Any) -> Any:
    """Replace non-finite floats by None (JSON has no NaN or Infinity)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [json_safe(v) for v in obj]
    return obj


def result_json(result: Result, *, outcome: str, timepoint: float | None) -> dict[str, Any]:
    """The object ``trialpool pool --json`` prints (contract keys of design.md first)."""
    if isinstance(result, PoolResult):
        out = {"pooled": True, **result.model_dump(mode="json")}
    else:
        out = {
            "k": result.k,
            "measure": result.measure,
            "method": result.method,
            "pooled": False,
            "reason": result.reason,
            "missing": list(result.missing),
            "studies": [s.model_dump(mode="json") for s in result.studies],
        }
    out["outcome"] = outcome
    out["timepoint_weeks"] = timepoint
    return json_safe(out)


__all__ = [
    "COMPARATOR_TEXT",
    "DEFAULT_COMPARATORS",
    "NO_DATA",
    "SENSITIVITY_RULES",
    "OutcomeKind",
    "Result",
    "arm_pairs",
    "comparator_left_out",
    "comparator_text",
    "json_safe",
    "leave_one_out",
    "outcome_kind",
    "outcomes_of",
    "pool_outcome",
    "pool_subgroups",
    "result_json",
    "sensitivity",
]
