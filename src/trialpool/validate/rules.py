"""Step 2 of validation: the rules Table Schema cannot express (within rows and across tables).

Within-row rules are pandera checks; rules that join tables are plain pandas. Vocabularies
are read from the package's own schemas, never copied here. ``RULES`` lists every rule.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from trialpool.package.loader import Package, Resource
from trialpool.validate.issues import Collector

#: one line per trialpool rule: what it checks
RULES: dict[str, str] = {
    "n-analysed-exceeds-randomised": "arms: n_analysed <= n_randomised",
    "missing-dose-unit": "msc extension, msc_arms: dose_unit is given when a dose is given",
    "dose-range-without-lower": "msc extension, msc_arms: dose_per_infusion_max needs "
    "dose_per_infusion",
    "dose-range-reversed": "msc extension, msc_arms: dose_per_infusion_max >= dose_per_infusion",
    "missing-comparator-type": "arms: an arm that is the control of a comparison states "
    "comparator_type (unclear when the sources do not say; not not_applicable)",
    "comparator-type-on-intervention": "arms: an arm that is only ever experimental has "
    "comparator_type not_applicable or empty",
    "comparison-same-arm": "comparisons: the experimental and the control arm differ",
    "duplicate-comparison": "comparisons: a study compares the same two arms under one label once",
    "study-without-comparison": "every study with arms has at least one comparison",
    "primary-comparison": "at most one comparison per study has primary true",
    "outcome-wrong-type": "per-arm outcome rows name an outcome of their table's data_type "
    "(continuous_outcomes: continuous; dichotomous_outcomes: dichotomous)",
    "unknown-outcome": "published_results.outcome_code, when given, is an outcomes.outcome_id",
    "events-exceed-total": "dichotomous outcomes: events <= total",
    "sd-not-positive": "continuous outcomes: sd > 0",
    "se-not-positive": "continuous outcomes and effect estimates: se > 0",
    "missing-statistic-value": "continuous outcomes: the columns the statistic needs are "
    "given (mean_sd: mean, sd; mean_se: mean, se; median_iqr: median, q1, q3; "
    "median_range: median, min, max; change_mean_sd: mean, sd)",
    "quartiles-out-of-order": "continuous outcomes: q1 <= median <= q3",
    "range-out-of-order": "continuous outcomes: min <= median <= max",
    "non-finite-number": "number fields: no NaN or infinity (Table Schema accepts them)",
    "arm-not-found": "outcome rows name an existing arm (when the schema has no such foreign key)",
    "timepoint-beyond-follow-up": "outcome timepoint_weeks <= the study's follow_up_weeks "
    "(when known)",
    "derived-without-derivation": "verification 'derived' names its derivation",
    "missing-locator": "locator is given and not blank",
    "blank-value": "required text fields are not whitespace only",
    "unknown-study": "claims.study_id is a studies.study_id or a screening.study_id",
    "judgement-not-for-tool": "a bias judgement is a level of its tool",
    "domain-not-for-tool": "a bias domain belongs to its tool (when the schema lists the "
    "domains of each tool)",
    "missing-reason": "screening: reason given unless the decision is include",
}

#: the columns each continuous statistic needs (semantics of the statistic codes;
#: the codes themselves come from the schema's enum)
STATISTIC_COLUMNS: dict[str, tuple[str, ...]] = {
    "mean_sd": ("mean", "sd"),
    "mean_se": ("mean", "se"),
    "median_iqr": ("median", "q1", "q3"),
    "median_range": ("median", "min", "max"),
    "change_mean_sd": ("mean", "sd"),
}

OUTCOME_RESOURCES = ("continuous_outcomes", "dichotomous_outcomes")

#: resources whose rows cite a source value (verification, derivation, locator)
VALUE_RESOURCES = (*OUTCOME_RESOURCES, "effect_estimates")

#: per-arm outcome table -> the outcomes.data_type its rows must have
OUTCOME_TYPE = {"continuous_outcomes": "continuous", "dichotomous_outcomes": "dichotomous"}


def enum_of(resource: Resource | None, name: str) -> list[str]:
    """The ``enum`` constraint of a field (empty when the field or enum is absent)."""
    if resource is None:
        return []
    try:
        spec = resource.field(name)
    except KeyError:
        return []
    values = (spec.get("constraints") or {}).get("enum") or []
    return [str(v) for v in values]


_TOOL_LIST = re.compile(r"([a-z][a-z0-9_]*):\s*([a-z0-9_]+(?:\s*,\s*[a-z0-9_]+)*)")


def tool_vocabulary(resource: Resource | None, name: str) -> dict[str, set[str]] | None:
    """Per-tool values of a bias field, parsed from its schema description.

    The bias_judgements schema documents, for ``domain`` and ``judgement``, which enum
    values belong to which tool ("rob1: low, unclear, high; rob2: ..."). Returns
    ``{tool: values}`` when every tool of the ``tool`` enum is listed with values that
    are all in the field's enum; otherwise None (the rule is then not applied).
    """
    if resource is None:
        return None
    tools = set(enum_of(resource, "tool"))
    allowed = set(enum_of(resource, name))
    try:
        description = str(resource.field(name).get("description", ""))
    except KeyError:
        return None
    found: dict[str, set[str]] = {}
    for tool, values in _TOOL_LIST.findall(description):
        if tool in tools:
            found[tool] = {v.strip() for v in values.split(",")}
    if not tools or set(found) != tools or not all(v <= allowed for v in found.values()):
        return None
    return found


def _fmt(value: Any) -> str:
    if isinstance(value, float) and np.isfinite(value) and value == int(value):
        return str(int(value))
    return str(value)


@dataclass(frozen=True)
class RowRule:
    """A rule on single rows of one resource (run as a pandera check)."""

    resource: str
    rule: str
    field: str
    columns: tuple[str, ...]
    failing: Callable[[pd.DataFrame], pd.Series]  # True where the row breaks the rule
    message: Callable[[pd.Series], str]


def _gt(a: pd.Series, b: pd.Series) -> pd.Series:
    return (a > b).fillna(False).astype(bool)


def _blank(s: pd.Series) -> pd.Series:
    """True where a text cell is missing or whitespace only (one test per distinct value)."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        codes = s.cat.codes.to_numpy()
        uniques = s.cat.categories
    else:
        codes, uniques = pd.factorize(s.to_numpy(dtype=object))
    if len(uniques) == 0:
        return pd.Series(True, index=s.index)
    blank_u = np.fromiter((not str(u).strip() for u in uniques), dtype=bool, count=len(uniques))
    return pd.Series(np.where(codes < 0, True, blank_u[np.maximum(codes, 0)]), index=s.index)


def _positive_rule(resource: Resource, name: str, rule: str) -> RowRule:
    """``name`` > 0, leaving values below the schema's own minimum to frictionless."""
    minimum = (resource.field(name).get("constraints") or {}).get("minimum")
    floor = float(minimum) if isinstance(minimum, int | float) else -np.inf

    def failing(df: pd.DataFrame) -> pd.Series:
        v = df[name]
        return ((v <= 0) & (v >= floor)).fillna(False).astype(bool)

    return RowRule(
        resource.name,
        rule,
        name,
        (name,),
        failing,
        lambda r: f"{name} must be > 0 (is {_fmt(r[name])})",
    )


def _row_rules(package: Package) -> list[RowRule]:
    """The within-row rules that apply to this package (by its schemas)."""
    rules: list[RowRule] = []
    res = package.resources

    if "arms" in res:
        rules += [
            RowRule(
                "arms",
                "n-analysed-exceeds-randomised",
                "n_analysed",
                ("n_analysed", "n_randomised"),
                lambda d: _gt(d["n_analysed"], d["n_randomised"]),
                lambda r: (
                    f"n_analysed ({_fmt(r['n_analysed'])}) exceeds n_randomised "
                    f"({_fmt(r['n_randomised'])})"
                ),
            ),
        ]

    if "msc_arms" in res:  # the msc extension's rules
        rules += [
            RowRule(
                "msc_arms",
                "missing-dose-unit",
                "dose_unit",
                ("dose_per_infusion", "dose_per_infusion_max", "dose_unit"),
                lambda d: (
                    (d["dose_per_infusion"].notna() | d["dose_per_infusion_max"].notna())
                    & _blank(d["dose_unit"])
                ),
                lambda r: "a dose is given but dose_unit is empty",
            ),
            RowRule(
                "msc_arms",
                "dose-range-without-lower",
                "dose_per_infusion",
                ("dose_per_infusion", "dose_per_infusion_max"),
                lambda d: d["dose_per_infusion_max"].notna() & d["dose_per_infusion"].isna(),
                lambda r: (
                    f"dose_per_infusion_max ({_fmt(r['dose_per_infusion_max'])}) is "
                    "given without dose_per_infusion"
                ),
            ),
            RowRule(
                "msc_arms",
                "dose-range-reversed",
                "dose_per_infusion_max",
                ("dose_per_infusion", "dose_per_infusion_max"),
                lambda d: _gt(d["dose_per_infusion"], d["dose_per_infusion_max"]),
                lambda r: (
                    f"dose_per_infusion_max ({_fmt(r['dose_per_infusion_max'])}) is "
                    f"below dose_per_infusion ({_fmt(r['dose_per_infusion'])})"
                ),
            ),
        ]

    if "dichotomous_outcomes" in res:
        rules.append(
            RowRule(
                "dichotomous_outcomes",
                "events-exceed-total",
                "events",
                ("events", "total"),
                lambda d: _gt(d["events"], d["total"]),
                lambda r: f"events ({_fmt(r['events'])}) exceed total ({_fmt(r['total'])})",
            )
        )

    cont = res.get("continuous_outcomes")
    if cont is not None:
        names = set(cont.field_names)
        for col, rule in (("sd", "sd-not-positive"), ("se", "se-not-positive")):
            if col in names:
                rules.append(_positive_rule(cont, col, rule))
        for statistic in enum_of(cont, "statistic"):
            for col in STATISTIC_COLUMNS.get(statistic, ()):
                rules.append(
                    RowRule(
                        "continuous_outcomes",
                        "missing-statistic-value",
                        col,
                        ("statistic", col),
                        lambda d, s=statistic, c=col: (
                            (d["statistic"] == s).fillna(False) & d[c].isna()
                        ),
                        lambda r, s=statistic, c=col: f"statistic {s} needs {c}, which is empty",
                    )
                )
        rules += [
            RowRule(
                "continuous_outcomes",
                "quartiles-out-of-order",
                "median",
                ("q1", "median", "q3"),
                lambda d: (
                    _gt(d["q1"], d["median"]) | _gt(d["median"], d["q3"]) | _gt(d["q1"], d["q3"])
                ),
                lambda r: (
                    f"q1 <= median <= q3 does not hold (q1 {_fmt(r['q1'])}, median "
                    f"{_fmt(r['median'])}, q3 {_fmt(r['q3'])})"
                ),
            ),
            RowRule(
                "continuous_outcomes",
                "range-out-of-order",
                "median",
                ("min", "median", "max"),
                lambda d: (
                    _gt(d["min"], d["median"])
                    | _gt(d["median"], d["max"])
                    | _gt(d["min"], d["max"])
                ),
                lambda r: (
                    f"min <= median <= max does not hold (min {_fmt(r['min'])}, median "
                    f"{_fmt(r['median'])}, max {_fmt(r['max'])})"
                ),
            ),
        ]

    effect = res.get("effect_estimates")
    if effect is not None and "se" in effect.field_names:
        rules.append(_positive_rule(effect, "se", "se-not-positive"))

    for name in VALUE_RESOURCES:
        resource = res.get(name)
        if resource is None:
            continue
        if "derived" in enum_of(resource, "verification"):
            rules.append(
                RowRule(
                    name,
                    "derived-without-derivation",
                    "derivation",
                    ("verification", "derivation"),
                    lambda d: (
                        (d["verification"] == "derived").fillna(False) & _blank(d["derivation"])
                    ),
                    lambda r: (
                        "verification is 'derived' but derivation is empty "
                        "(say how the value was computed)"
                    ),
                ),
            )

    for resource in res.values():
        fields = {f["name"]: f for f in resource.schema.get("fields", [])}
        for fname, spec in fields.items():
            constraints = spec.get("constraints") or {}
            required = bool(constraints.get("required"))
            if fname == "locator" and (required or resource.name in VALUE_RESOURCES):
                # empty cells of a required field are frictionless' to report
                rules.append(
                    RowRule(
                        resource.name,
                        "missing-locator",
                        "locator",
                        ("locator",),
                        (lambda d: d["locator"].notna() & _blank(d["locator"]))
                        if required
                        else (lambda d: _blank(d["locator"])),
                        lambda r: (
                            "locator is blank: say where in the source the value is "
                            "(e.g. 'Table 2')"
                        ),
                    )
                )
            elif (
                required
                and spec.get("type", "string") == "string"
                and "enum" not in constraints
                and "pattern" not in constraints
            ):
                rules.append(
                    RowRule(
                        resource.name,
                        "blank-value",
                        fname,
                        (fname,),
                        lambda d, c=fname: d[c].notna() & _blank(d[c]),
                        lambda r, c=fname: f"{c} is required but holds only whitespace",
                    )
                )
            if spec.get("type") == "number":
                rules.append(
                    RowRule(
                        resource.name,
                        "non-finite-number",
                        fname,
                        (fname, f"__nonfinite__{fname}"),
                        lambda d, c=fname: d[f"__nonfinite__{c}"].astype(bool),
                        lambda r, c=fname: f"{c} is not a finite number (NaN or infinity)",
                    )
                )

    bias = res.get("bias_judgements")
    if bias is not None:
        for col, rule in (
            ("judgement", "judgement-not-for-tool"),
            ("domain", "domain-not-for-tool"),
        ):
            vocab = tool_vocabulary(bias, col)
            if vocab is None:
                continue
            rules.append(
                RowRule(
                    "bias_judgements",
                    rule,
                    col,
                    ("tool", col),
                    lambda d, c=col, v=vocab: _not_in_tool(d, c, v),
                    lambda r, c=col, v=vocab: (
                        f"{c} {r[c]!r} is not a {c} of tool {r['tool']} "
                        f"(allowed: {', '.join(sorted(v.get(str(r['tool']), set())))})"
                    ),
                )
            )

    screening = res.get("screening")
    if screening is not None and "include" in enum_of(screening, "decision"):
        rules.append(
            RowRule(
                "screening",
                "missing-reason",
                "reason",
                ("decision", "reason"),
                lambda d: (
                    d["decision"].notna()
                    & (d["decision"] != "include").fillna(False)
                    & _blank(d["reason"])
                ),
                lambda r: f"decision {r['decision']!r} needs a reason",
            )
        )
    return rules


NOT_APPLICABLE = "not_applicable"


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and np.isnan(value))


def _not_in_tool(df: pd.DataFrame, col: str, vocab: dict[str, set[str]]) -> pd.Series:
    out = pd.Series(False, index=df.index)
    for tool, values in vocab.items():
        mask = (df["tool"] == tool).fillna(False).astype(bool)
        out |= mask & df[col].notna() & ~df[col].isin(values).fillna(False).astype(bool)
    return out.astype(bool)


def _run_row_rules(package: Package, frames: dict[str, pd.DataFrame], out: Collector) -> None:
    by_resource: dict[str, list[RowRule]] = {}
    for rule in _row_rules(package):
        frame = frames.get(rule.resource)
        if frame is None or not all(c in frame.columns for c in rule.columns):
            continue
        by_resource.setdefault(rule.resource, []).append(rule)
    for name, rules in by_resource.items():
        frame = frames[name]
        if frame.empty:
            continue
        checks = [
            pa.Check(lambda d, r=rule: ~r.failing(d), name=f"{i}", error=rule.rule)
            for i, rule in enumerate(rules)
        ]
        try:
            pa.DataFrameSchema(checks=checks).validate(frame, lazy=True)
            continue
        except pa.errors.SchemaErrors as exc:
            failures = exc.failure_cases
        found = (
            failures[["check_number", "index"]]
            .dropna()
            .drop_duplicates()
            .astype({"check_number": int})
            .sort_values(["index", "check_number"])
        )
        for check_number, index in found.itertuples(index=False):
            rule = rules[int(check_number)]
            row = frame.loc[index]
            out.add(name, Package.row_number(int(index)), rule.field, rule.rule, rule.message(row))


def _key_set(frame: pd.DataFrame, cols: Iterable[str]) -> set[tuple[Any, ...]]:
    cols = list(cols)
    return set(frame[cols].dropna().itertuples(index=False, name=None))


def _has_fk(resource: Resource, fields: list[str], target: str) -> bool:
    for fk in resource.schema.get("foreignKeys") or []:
        if not isinstance(fk, dict):
            continue
        mine = fk.get("fields")
        mine = [mine] if isinstance(mine, str) else mine
        ref = fk.get("reference") or {}
        if mine == fields and ref.get("resource") == target:
            return True
    return False


def _run_table_rules(package: Package, frames: dict[str, pd.DataFrame], out: Collector) -> None:
    studies = frames.get("studies")
    arms = frames.get("arms")

    comparisons = frames.get("comparisons")
    if comparisons is not None and arms is not None:
        _comparison_rules(package, studies, arms, comparisons, out)
    outcomes = frames.get("outcomes")
    if outcomes is not None and {"outcome_id", "data_type"} <= set(outcomes.columns):
        _outcome_type_rules(package, frames, outcomes, out)

    for name in OUTCOME_RESOURCES:
        frame = frames.get(name)
        if frame is None or frame.empty:
            continue
        resource = package.resources[name]
        # every outcome row's arm exists (frictionless does it when the FK is declared)
        if (
            arms is not None
            and {"study_id", "arm_id"} <= set(frame.columns)
            and {"study_id", "arm_id"} <= set(arms.columns)
            and not _has_fk(resource, ["study_id", "arm_id"], "arms")
        ):
            known = _key_set(arms, ["study_id", "arm_id"])
            for index, sid, aid in frame[["study_id", "arm_id"]].itertuples(name=None):
                if pd.notna(sid) and pd.notna(aid) and (sid, aid) not in known:
                    out.add(
                        name,
                        Package.row_number(int(index)),
                        "arm_id",
                        "arm-not-found",
                        f"arm ({sid}, {aid}) is not in {package.resources['arms'].display_path}",
                    )
        # timepoints within the study's follow-up
        if (
            studies is not None
            and {"study_id", "follow_up_weeks"} <= set(studies.columns)
            and {"study_id", "timepoint_weeks"} <= set(frame.columns)
        ):
            follow = (
                studies.dropna(subset=["study_id", "follow_up_weeks"])
                .drop_duplicates("study_id")
                .set_index("study_id")["follow_up_weeks"]
            )
            limit = frame["study_id"].astype(object).map(follow).astype("float64")
            beyond = (frame["timepoint_weeks"] > limit).fillna(False).astype(bool)
            for index in frame.index[beyond.to_numpy()]:
                out.add(
                    name,
                    Package.row_number(int(index)),
                    "timepoint_weeks",
                    "timepoint-beyond-follow-up",
                    f"timepoint_weeks ({_fmt(frame.at[index, 'timepoint_weeks'])}) is beyond "
                    f"the follow-up of study {frame.at[index, 'study_id']} "
                    f"({_fmt(limit.at[index])} weeks)",
                )

    # claims name a known study (studies or screening)
    claims = frames.get("claims")
    if claims is not None and "study_id" in claims.columns and studies is not None:
        known_ids: set[Any] = set(studies["study_id"].dropna()) if "study_id" in studies else set()
        screening = frames.get("screening")
        if screening is not None and "study_id" in screening.columns:
            known_ids |= set(screening["study_id"].dropna())
        unknown = claims["study_id"].notna() & ~claims["study_id"].isin(known_ids).fillna(False)
        for index in claims.index[unknown.astype(bool).to_numpy()]:
            out.add(
                "claims",
                Package.row_number(int(index)),
                "study_id",
                "unknown-study",
                f"study_id {claims.at[index, 'study_id']!r} is neither in studies nor in screening",
            )


def _ids(
    frame: pd.DataFrame, cols: list[str], extra: list[str] | None = None
) -> list[tuple[int, tuple[Any, ...]]]:
    """(row index, values) of the rows where every column in ``cols`` has a value; the
    values of ``extra`` columns (missing as None) follow those of ``cols``."""
    keep = frame[cols].notna().all(axis=1).to_numpy(dtype=bool)
    sub = frame.loc[keep, [*cols, *(extra or [])]]
    return [
        (int(i), tuple(None if pd.isna(x) else x for x in v))
        for i, v in zip(sub.index, sub.itertuples(index=False, name=None), strict=True)
    ]


def _comparison_rules(
    package: Package,
    studies: pd.DataFrame | None,
    arms: pd.DataFrame,
    comparisons: pd.DataFrame,
    out: Collector,
) -> None:
    """Comparisons pair two different arms; no pair twice under one label; at most one
    primary per study; every study with arms has a comparison; a control arm states its
    comparator_type and an arm that is only ever experimental does not."""
    cols = ["comparison_id", "study_id", "experimental_arm_id", "control_arm_id"]
    if not set(cols) <= set(comparisons.columns) or not {"study_id", "arm_id"} <= set(arms.columns):
        return
    comp_path = package.resources["comparisons"].display_path
    seen: dict[tuple[Any, ...], int] = {}
    primaries: dict[Any, list[int]] = {}
    extra = [c for c in ("label", "primary") if c in comparisons.columns]
    for index, values in _ids(comparisons, cols, extra):
        cid, sid, exp, ctl = values[:4]
        more = dict(zip(extra, values[4:], strict=True))
        row = Package.row_number(index)
        if exp == ctl:
            out.add(
                "comparisons",
                row,
                "control_arm_id",
                "comparison-same-arm",
                f"comparison {cid} compares arm {exp} of study {sid} with itself",
            )
        label = more.get("label")
        key = (sid, exp, ctl, label)
        if key in seen:
            out.add(
                "comparisons",
                row,
                "comparison_id",
                "duplicate-comparison",
                f"comparison {cid} repeats row {seen[key]} (study {sid}: {exp} versus {ctl}"
                + (f", label {label!r}" if label is not None else "")
                + ")",
            )
        else:
            seen[key] = row
        if more.get("primary") is not None and bool(more["primary"]):
            primaries.setdefault(sid, []).append(row)
    for sid, rows in primaries.items():
        if len(rows) > 1:
            out.add(
                "comparisons",
                rows[1],
                "primary",
                "primary-comparison",
                f"study {sid} has {len(rows)} comparisons with primary true (rows "
                f"{', '.join(map(str, rows))} of {comp_path}); at most one is allowed",
            )
    compared = set(comparisons["study_id"].dropna())
    if studies is not None and "study_id" in studies.columns:
        with_arms = set(arms["study_id"].dropna())
        for index, (sid,) in _ids(studies, ["study_id"]):
            if sid in with_arms and sid not in compared:
                out.add(
                    "studies",
                    Package.row_number(index),
                    "study_id",
                    "study-without-comparison",
                    f"study {sid} has arms but no comparison in {comp_path} (say which arm "
                    "is compared with which)",
                )
    if "comparator_type" not in arms.columns:
        return
    controls = set(_key_set(comparisons, ["study_id", "control_arm_id"]))
    only_experimental = set(_key_set(comparisons, ["study_id", "experimental_arm_id"])) - controls
    kinds = [
        k for k in enum_of(package.resources["arms"], "comparator_type") if k != NOT_APPLICABLE
    ]
    choices = ", ".join(kinds) if kinds else "a comparator type"
    for index, (sid, aid, kind) in _ids(arms, ["study_id", "arm_id"], ["comparator_type"]):
        stated = kind is not None and str(kind).strip() != ""
        if (sid, aid) in controls and (not stated or kind == NOT_APPLICABLE):
            have = f"has comparator_type {kind}" if stated else "has no comparator_type"
            out.add(
                "arms",
                Package.row_number(index),
                "comparator_type",
                "missing-comparator-type",
                f"arm {aid} of study {sid} is the control of a comparison and {have}; give one "
                f"of: {choices} (unclear when the sources do not say)",
            )
        elif (sid, aid) in only_experimental and stated and kind != NOT_APPLICABLE:
            out.add(
                "arms",
                Package.row_number(index),
                "comparator_type",
                "comparator-type-on-intervention",
                f"arm {aid} of study {sid} is only ever experimental but has comparator_type "
                f"{kind}; use not_applicable or leave it empty",
            )


def _outcome_type_rules(
    package: Package, frames: dict[str, pd.DataFrame], outcomes: pd.DataFrame, out: Collector
) -> None:
    """Per-arm rows name outcomes of their table's type; reviews' results name known ones."""
    types = {oid: dt for _, (oid, dt) in _ids(outcomes, ["outcome_id", "data_type"])}
    path = package.resources["outcomes"].display_path
    for name, wanted in OUTCOME_TYPE.items():
        frame = frames.get(name)
        if frame is None or "outcome" not in frame.columns:
            continue
        for index, (code,) in _ids(frame, ["outcome"]):
            have = types.get(code)
            if have is not None and have != wanted:
                out.add(
                    name,
                    Package.row_number(index),
                    "outcome",
                    "outcome-wrong-type",
                    f"outcome {code} is {have} in {path}; {name} holds {wanted} outcomes",
                )
    results = frames.get("published_results")
    if results is not None and "outcome_code" in results.columns:
        for index, (code,) in _ids(results, ["outcome_code"]):
            if code not in types:
                out.add(
                    "published_results",
                    Package.row_number(index),
                    "outcome_code",
                    "unknown-outcome",
                    f"outcome_code {code!r} is not an outcome_id of {path}",
                )


def run_rules(package: Package, frames: dict[str, pd.DataFrame], out: Collector) -> None:
    """Run every row rule, then every table rule, on the typed frames; collect into ``out``."""
    _run_row_rules(package, frames, out)
    _run_table_rules(package, frames, out)
