"""From a package and an outcome to a pooled result (the ``trialpool pool`` command).

Data flow: :func:`arm_pairs` picks, per study, the primary intervention arm (group 1 =
MSC) and the primary control arm (group 2) and their data for one outcome and time
point (converting medians to means and SDs with :mod:`trialpool.stats.effects`, flagged as
derived); :func:`pool_outcome` computes the effect sizes (``effects.escalc_*``, as
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
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

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
OutcomeKind = Literal["continuous", "dichotomous"]

CONTINUOUS_MEASURES = ("MD", "SMD")
DICHOTOMOUS_MEASURES = ("RR", "OR", "RD")
METHODS = ("FE", "MH", "DL", "REML", "PM", "ML")
NO_DATA = "no extractable data yet"
K1 = "k = 1: not pooled"

#: statistics of final values, in order of preference, and of change from baseline
FINAL_STATISTICS = ("mean_sd", "mean_se", "median_iqr", "median_range")
CHANGE_STATISTICS = ("change_mean_sd",)
MEDIAN_STATISTICS = ("median_iqr", "median_range")

#: control arms pooled by default (arms.comparator_type): controls that received no MSC
#: and no other active treatment, or whose content the sources do not give
DEFAULT_COMPARATORS: tuple[str, ...] = ("untreated", "standard_care", "placebo", "unclear")

#: how a left-out control is named in the result's notes
COMPARATOR_TEXT: dict[str, str] = {
    "untreated": "untreated",
    "standard_care": "standard care",
    "placebo": "placebo",
    "active": "an active treatment",
    "shorter_exposure": "shorter exposure to MSC",
    "unclear": "unclear",
    "not_applicable": "marked not_applicable",
}

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


def _enum(pkg: Package, resource: str, field: str) -> list[str]:
    if not pkg.has(resource):
        return []
    try:
        spec = pkg.resources[resource].field(field)
    except KeyError:
        return []
    return [str(x) for x in spec.get("constraints", {}).get("enum", [])]


def outcome_kind(pkg: Package, outcome: str) -> OutcomeKind:
    """``continuous`` or ``dichotomous``: the outcome's ``data_type`` in ``outcomes``.

    Raises AnalysisError (listing the package's codes) for an outcome the package does not
    define, and for a generic outcome (study-level estimates), which these per-arm
    analyses cannot pool.
    """
    kinds = outcomes_of(pkg)
    kind = kinds.get(outcome)
    if kind is None:
        cont = [c for c, k in kinds.items() if k == "continuous"]
        dich = [c for c, k in kinds.items() if k == "dichotomous"]
        raise AnalysisError(
            f"unknown outcome {outcome!r}; valid codes: continuous {', '.join(cont) or '(none)'}; "
            f"dichotomous {', '.join(dich) or '(none)'}"
        )
    return kind


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


def _val(x: Any) -> Any:
    """A cell as a plain Python value (None for <NA>/NaN)."""
    if x is None or x is pd.NA:
        return None
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, np.generic):
        return x.item()
    return x


def _studies(pkg: Package) -> dict[str, dict[str, Any]]:
    """Studies by study_id, as plain dicts (in the order of the studies table)."""
    recs = pkg.table("studies").to_dict("records")
    return {str(r["study_id"]): {k: _val(v) for k, v in r.items()} for r in recs}


def _label(studies: dict[str, dict[str, Any]], sid: str) -> str:
    lab = studies.get(sid, {}).get("label")
    return str(lab) if lab else sid


def _eligible(studies: dict[str, dict[str, Any]], designs: Sequence[str] | None) -> list[str]:
    if designs is None:
        return list(studies)
    wanted = set(designs)
    return [sid for sid, rec in studies.items() if rec.get("design") in wanted]


Row = dict[str, Any]


def _records(frame: pd.DataFrame) -> list[Row]:
    """A frame as plain dicts (None for empty cells): fast to filter row by row."""
    return [{k: _val(v) for k, v in rec.items()} for rec in frame.to_dict("records")]


def _by_study(records: list[Row]) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = {}
    for rec in records:
        out.setdefault(str(rec.get("study_id")), []).append(rec)
    return out


def _arms_by_study(pkg: Package) -> dict[str, dict[str, Row]]:
    """Arms by study and arm id, each with the fields of extension tables keyed by
    (study_id, arm_id) merged in (e.g. ``msc_arms``: cell_source, origin, route)."""
    out: dict[str, dict[str, Row]] = {}
    for rec in _records(pkg.table("arms")):
        out.setdefault(str(rec["study_id"]), {})[str(rec["arm_id"])] = rec
    for name in pkg.extension_arm_tables():
        for rec in _records(pkg.table(name)):
            arm = out.get(str(rec.get("study_id")), {}).get(str(rec.get("arm_id")))
            if arm is not None:
                for key, value in rec.items():
                    arm.setdefault(key, value)
    return out


def _comparisons_by_study(pkg: Package) -> dict[str, list[Row]]:
    if not pkg.has("comparisons"):
        return {}
    return _by_study(_records(pkg.table("comparisons")))


def _select_comparison(
    comparisons: list[Row], arms: dict[str, Row], label: str | None
) -> tuple[Row | None, Row | None, str]:
    """(experimental arm, control arm, problem) of the study's comparison for an analysis.

    With ``label``, the study's one comparison with that label; without, its primary
    comparison (or its only comparison when none is flagged primary).
    """
    if label is not None:
        chosen = [c for c in comparisons if c.get("label") == label]
        what = f"comparison {label!r}"
    else:
        chosen = [c for c in comparisons if c.get("primary") is True]
        if not chosen and len(comparisons) == 1:
            chosen = comparisons
        what = "primary comparison"
    if len(chosen) != 1:
        have = "none" if not chosen else f"{len(chosen)}"
        return None, None, f"needs exactly one {what} (has {have})"
    comp = chosen[0]
    exp = arms.get(str(comp.get("experimental_arm_id")))
    ctl = arms.get(str(comp.get("control_arm_id")))
    if exp is None or ctl is None:
        return None, None, f"{what} names an arm that is not in arms"
    return exp, ctl, ""


def _is_derived(row: Row) -> bool:
    return row.get("verification") == "derived"


def _comparator_of(control: Row, comparators: Sequence[str] | None) -> str | None:
    """The control's comparator_type when ``comparators`` leaves it out, else None.

    A package without the field, or a control arm without a value (which validation
    refuses), is kept: only a stated type outside ``comparators`` leaves a study out.
    """
    if comparators is None:
        return None
    allowed = {comparators} if isinstance(comparators, str) else set(comparators)
    kind = control.get("comparator_type")
    if kind is None or not str(kind).strip() or kind in allowed:
        return None
    return str(kind)


def comparator_left_out(
    pkg: Package,
    comparators: Sequence[str] | None = DEFAULT_COMPARATORS,
    comparison: str | None = None,
) -> dict[str, str]:
    """Studies whose control arm (of the primary comparison, or of the comparison labelled
    ``comparison``) has a comparator_type not in ``comparators``:
    ``{study_id: comparator_type}`` (empty for ``comparators=None``)."""
    if comparators is None or not pkg.has("arms"):
        return {}
    out: dict[str, str] = {}
    arms_by_study = _arms_by_study(pkg)
    for sid, comps in _comparisons_by_study(pkg).items():
        _, control, _ = _select_comparison(comps, arms_by_study.get(sid, {}), comparison)
        kind = None if control is None else _comparator_of(control, comparators)
        if kind is not None:
            out[sid] = kind
    return out


def comparator_text(kind: str) -> str:
    """A comparator_type in words ("shorter exposure to MSC")."""
    return COMPARATOR_TEXT.get(kind, kind.replace("_", " "))


# --------------------------------------------------------------------------------------
# arm pairs
# --------------------------------------------------------------------------------------


def _weeks(row: Row) -> float | None:
    value = row.get("timepoint_weeks")
    return None if value is None else float(value)


def _pick_timepoint(rows: list[Row], timepoint: float | None) -> tuple[list[Row], float | None]:
    """Rows at ``timepoint`` weeks; without one, the study's latest follow-up (> 0 weeks),
    or, when no row states its weeks, the rows of the study's one time point code."""
    if timepoint is not None:
        at = [r for r in rows if _weeks(r) is not None and math.isclose(_weeks(r), timepoint)]
        return at, timepoint
    follow = sorted({w for r in rows if (w := _weeks(r)) is not None and w > 0})
    if not follow:
        codes = {r.get("timepoint") for r in rows if _weeks(r) is None}
        if len(codes) == 1:
            return [r for r in rows if _weeks(r) is None], None
        return [], None
    latest = follow[-1]
    return [r for r in rows if (w := _weeks(r)) is not None and math.isclose(w, latest)], latest


def _continuous_arm(
    rows: list[Row], statistics: Sequence[str], include_derived: bool
) -> Row | None:
    for stat in statistics:
        sel = [r for r in rows if r.get("statistic") == stat]
        if not include_derived:
            sel = [r for r in sel if not _is_derived(r)]
        if sel:
            return sel[0]
    return None


def _to_mean_sd(row: Row) -> effects.MeanSD:
    def g(name: str) -> float | None:
        v = row.get(name)
        return None if v is None else float(v)

    return effects.to_mean_sd(
        str(row["statistic"]),
        float(row["n"]),
        mean=g("mean"),
        sd=g("sd"),
        se=g("se"),
        median=g("median"),
        q1=g("q1"),
        q3=g("q3"),
        minimum=g("min"),
        maximum=g("max"),
    )


def arm_pairs(
    pkg: Package,
    outcome: str,
    timepoint: float | None = None,
    *,
    designs: Sequence[str] | None = ("rct",),
    include_derived: bool = True,
    convert_medians: bool = True,
    comparators: Sequence[str] | None = DEFAULT_COMPARATORS,
    comparison: str | None = None,
) -> pd.DataFrame:
    """One row per study with usable data: group 1 = the experimental arm, group 2 = the
    control arm of the study's comparison (its primary comparison, or the one labelled
    ``comparison``; see ``comparisons``), for ``outcome`` at ``timepoint`` (weeks).

    Only studies whose primary control arm's ``comparator_type`` is in ``comparators``
    are used (default :data:`DEFAULT_COMPARATORS`; ``None`` keeps every control); a study
    with data for the outcome that is left out for its control gets a note ("left out:
    control is shorter exposure to MSC (Jia 2020)") and is not counted as missing.

    Without ``timepoint`` each study contributes its latest follow-up (> 0 weeks).
    Continuous rows prefer ``mean_sd``, then ``mean_se``, ``median_iqr``,
    ``median_range`` (converted with :func:`trialpool.stats.effects.to_mean_sd` — Luo 2018 /
    Wan 2014 — and flagged ``converted`` and ``derived``); change-from-baseline rows are
    used only when both arms have them and no final values. ``designs=None`` keeps every
    design. Columns: study_id, label, design, blinding, cell_source, origin, route,
    timepoint_weeks, arm1_id, arm2_id, then n1/m1/sd1/n2/m2/sd2 (continuous; plus
    statistic1/2, unit1/2) or e1/t1/e2/t2 (dichotomous), derived, converted,
    derivation. ``DataFrame.attrs`` holds ``notes`` (why studies were left out) and
    ``missing`` (studies of the chosen designs without usable data).
    """
    kind = outcome_kind(pkg, outcome)
    studies = _studies(pkg)
    eligible = _eligible(studies, designs)
    resource = "continuous_outcomes" if kind == "continuous" else "dichotomous_outcomes"
    frame = pkg.table(resource) if pkg.has(resource) else pd.DataFrame()
    data = [r for r in _records(frame) if r.get("outcome") == outcome]
    data_by_study = _by_study(data)
    arms_by_study = _arms_by_study(pkg)
    comparisons_by_study = _comparisons_by_study(pkg)
    notes: list[str] = []
    missing: list[str] = []
    records: list[dict[str, Any]] = []
    left_out: dict[str, list[str]] = {}
    excluded_design = sorted(set(data_by_study) - set(eligible))
    if excluded_design and designs is not None:
        names = ", ".join(
            f"{_label(studies, s)} ({studies.get(s, {}).get('design', '?')})"
            for s in excluded_design
        )
        notes.append(f"left out by design (analysis restricted to {', '.join(designs)}): {names}")
    for sid in eligible:
        label = _label(studies, sid)
        arm1, arm2, problem = _select_comparison(
            comparisons_by_study.get(sid, []), arms_by_study.get(sid, {}), comparison
        )
        if arm1 is None or arm2 is None:
            if comparison is None or sid in data_by_study:
                notes.append(f"{label}: {problem}")
                missing.append(f"{label}: a comparison of an experimental and a control arm")
            continue
        comparator = _comparator_of(arm2, comparators)
        if comparator is not None:
            if sid in data_by_study:
                left_out.setdefault(comparator, []).append(label)
            continue
        rows, tp = _pick_timepoint(data_by_study.get(sid, []), timepoint)
        when = f" at {timepoint:g} weeks" if timepoint is not None else ""
        a1 = [r for r in rows if r.get("arm_id") == arm1["arm_id"]]
        a2 = [r for r in rows if r.get("arm_id") == arm2["arm_id"]]
        need = (
            "per-arm mean and SD (or median with IQR or range)"
            if kind == "continuous"
            else "per-arm events and totals"
        )
        if not a1 or not a2:
            missing.append(f"{label}: {need} for {outcome}{when} in both primary arms")
            continue
        base: dict[str, Any] = {
            "study_id": sid,
            "label": label,
            "design": studies[sid].get("design"),
            "blinding": studies[sid].get("blinding"),
            "cell_source": arm1.get("cell_source"),
            "origin": arm1.get("origin"),
            "route": arm1.get("route"),
            "timepoint_weeks": tp,
            "arm1_id": str(arm1["arm_id"]),
            "arm2_id": str(arm2["arm_id"]),
        }
        if kind == "dichotomous":
            r1, r2 = a1[0], a2[0]
            if not include_derived and (_is_derived(r1) or _is_derived(r2)):
                notes.append(f"{label}: left out (derived counts; include_derived is off)")
                missing.append(f"{label}: {need} read in a source (not derived)")
                continue
            derivs = [str(r.get("derivation") or "") for r in (r1, r2) if _is_derived(r)]
            records.append(
                {
                    **base,
                    "e1": int(r1["events"]),
                    "t1": int(r1["total"]),
                    "e2": int(r2["events"]),
                    "t2": int(r2["total"]),
                    "derived": bool(derivs),
                    "converted": False,
                    "derivation": "; ".join(d for d in derivs if d),
                }
            )
            continue
        finals = [s for s in FINAL_STATISTICS if convert_medians or s not in MEDIAN_STATISTICS]
        if not include_derived:
            finals = [s for s in finals if s in ("mean_sd",)]
        row1 = _continuous_arm(a1, finals, include_derived)
        row2 = _continuous_arm(a2, finals, include_derived)
        if row1 is None or row2 is None:
            row1 = _continuous_arm(a1, CHANGE_STATISTICS, include_derived)
            row2 = _continuous_arm(a2, CHANGE_STATISTICS, include_derived)
            if row1 is not None and row2 is not None:
                notes.append(f"{label}: change from baseline used (no final values in both arms)")
        if row1 is None or row2 is None:
            why = "" if include_derived and convert_medians else " (after the exclusions asked for)"
            missing.append(f"{label}: {need} for {outcome}{when} in both primary arms{why}")
            continue
        u1, u2 = row1.get("unit"), row2.get("unit")
        if u1 != u2:
            notes.append(f"{label}: left out (units differ between arms: {u1} vs {u2})")
            missing.append(f"{label}: values in one unit for both arms")
            continue
        c1, c2 = _to_mean_sd(row1), _to_mean_sd(row2)
        derivs = []
        for row, conv in ((row1, c1), (row2, c2)):
            if conv.derived:
                derivs.append(f"{row['arm_id']}: {conv.derivation}")
            if _is_derived(row) and row.get("derivation"):
                derivs.append(f"{row['arm_id']}: {row.get('derivation')}")
        records.append(
            {
                **base,
                "n1": int(row1["n"]),
                "m1": c1.mean,
                "sd1": c1.sd,
                "n2": int(row2["n"]),
                "m2": c2.mean,
                "sd2": c2.sd,
                "statistic1": str(row1["statistic"]),
                "statistic2": str(row2["statistic"]),
                "unit1": u1,
                "unit2": u2,
                "derived": bool(derivs) or _is_derived(row1) or _is_derived(row2),
                "converted": c1.derived or c2.derived,
                "derivation": "; ".join(derivs),
            }
        )
    order = _enum(pkg, "arms", "comparator_type")
    for kind in sorted(left_out, key=lambda k: (order.index(k) if k in order else len(order), k)):
        notes.append(f"left out: control is {comparator_text(kind)} ({', '.join(left_out[kind])})")
    frame = pd.DataFrame.from_records(records)
    frame.attrs["notes"] = notes
    frame.attrs["missing"] = missing
    frame.attrs["kind"] = kind
    return frame


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
    return {k: _val(row[k]) for k in keys}


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
    es = _study_effects(pairs, kind, measure)
    studies = _study_list(pairs, es, kind)
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
    return pooling.result_from_fit(fit, measure=measure, studies=studies, notes=notes)


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
                    for sid, arms in _arms_by_study(pkg).items()
                    for aid, arm in arms.items()
                }
                values = pd.Series(
                    [
                        lookup.get((s, a))
                        for s, a in zip(pairs["study_id"], pairs["arm1_id"], strict=True)
                    ]
                )
            else:
                studies = _studies(pkg)
                values = pd.Series([studies[s].get(by) for s in pairs["study_id"]])
            values = values.map(lambda v: "not reported" if _val(v) is None else str(v))
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


def outcomes_of(pkg: Package) -> dict[str, OutcomeKind]:
    """Every per-arm outcome the package defines (``outcomes``), with its kind, in order.

    Generic outcomes (study-level effect estimates only) are not listed: they have no
    per-arm data to pair.
    """
    if not pkg.has("outcomes"):
        return {}
    out: dict[str, OutcomeKind] = {}
    for rec in _records(pkg.table("outcomes")):
        if rec.get("data_type") == "continuous":
            out[str(rec["outcome_id"])] = "continuous"
        elif rec.get("data_type") == "dichotomous":
            out[str(rec["outcome_id"])] = "dichotomous"
    return out
