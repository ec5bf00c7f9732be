"""Arm pairing: from a package, an outcome and a time point to one row per study.

For each study of the chosen designs, the comparison an analysis uses (the study's primary
comparison, or the one with a given ``comparisons.label``) gives the experimental arm
(group 1) and the control arm (group 2); their rows for the outcome at the time point
become one row of :func:`arm_pairs` (medians with IQR or range converted to means and SDs
with :mod:`trialpool.stats.effects`, flagged as derived). Extension arm tables (e.g.
``msc_arms``) add their fields to each arm. Outcome kinds, labels and directions come from
the package's ``outcomes``. Studies left out (design, comparator type, missing data) are
named in the frame's ``attrs``; nothing is dropped silently.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from trialpool.errors import AnalysisError
from trialpool.package.loader import Package
from trialpool.stats import effects

OutcomeKind = Literal["continuous", "dichotomous"]
Row = dict[str, Any]

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


def cell_value(x: Any) -> Any:
    """A cell as a plain Python value (None for <NA>/NaN)."""
    if x is None or x is pd.NA:
        return None
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, np.generic):
        return x.item()
    return x


def studies_by_id(pkg: Package) -> dict[str, dict[str, Any]]:
    """Studies by study_id, as plain dicts (in the order of the studies table)."""
    recs = pkg.table("studies").to_dict("records")
    return {str(r["study_id"]): {k: cell_value(v) for k, v in r.items()} for r in recs}


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
    return [{k: cell_value(v) for k, v in rec.items()} for rec in frame.to_dict("records")]


def _by_study(records: list[Row]) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = {}
    for rec in records:
        out.setdefault(str(rec.get("study_id")), []).append(rec)
    return out


def arm_records(pkg: Package) -> dict[str, dict[str, Row]]:
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
    arms_by_study = arm_records(pkg)
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
    studies = studies_by_id(pkg)
    eligible = _eligible(studies, designs)
    resource = "continuous_outcomes" if kind == "continuous" else "dichotomous_outcomes"
    frame = pkg.table(resource) if pkg.has(resource) else pd.DataFrame()
    data = [r for r in _records(frame) if r.get("outcome") == outcome]
    data_by_study = _by_study(data)
    arms_by_study = arm_records(pkg)
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
