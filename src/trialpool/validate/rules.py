"""Step 2 of validation: the rules Table Schema cannot express (within rows and across tables).

Every rule is vectorised: a within-row rule is a boolean mask over a resource's typed
frame; a rule that joins tables compares columns as codes in one code space (set
membership, duplicates, groups), never a Python loop over rows. Only the messages of the
issues that are listed (``issues.MAX_ISSUES_PER_RULE`` per rule) are built. Vocabularies
are read from the package's own schemas, never copied here. ``RULES`` lists every rule.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

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
    "non-finite-number": "number fields: no NaN or infinity, and nothing beyond the range of a "
    "64-bit float (Table Schema accepts them)",
    "integer-out-of-range": "integer fields: within the signed 64-bit range (-2^63 to 2^63 - 1; "
    "Table Schema accepts integers of any size)",
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

#: prefix of the typed frames' boolean columns: a number cell that is NaN, infinite or
#: beyond float64 as written; an integer cell beyond int64
NONFINITE = "__nonfinite__"
OUT_OF_RANGE = "__outofrange__"
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

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
    """A rule on single rows of one resource: a boolean mask over its typed frame."""

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
                        ("statistic", col, f"{NONFINITE}{col}"),
                        lambda d, s=statistic, c=col: (
                            # empty: NaN written as such is non-finite-number's
                            (d["statistic"] == s).fillna(False)
                            & d[c].isna()
                            & ~d[f"{NONFINITE}{c}"].astype(bool)
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
                        (fname, f"{NONFINITE}{fname}"),
                        lambda d, c=fname: d[f"{NONFINITE}{c}"].astype(bool),
                        lambda r, c=fname: (
                            f"{c} is not a finite number (NaN, infinity, or beyond the range "
                            "of a 64-bit float)"
                        ),
                    )
                )
            elif spec.get("type") == "integer":
                rules.append(
                    RowRule(
                        resource.name,
                        "integer-out-of-range",
                        fname,
                        (fname, f"{OUT_OF_RANGE}{fname}"),
                        lambda d, c=fname: d[f"{OUT_OF_RANGE}{c}"].astype(bool),
                        lambda r, c=fname: (
                            f"{c} is beyond the 64-bit integer range (-{2**63:,} to {2**63 - 1:,})"
                        ),
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


def _not_in_tool(df: pd.DataFrame, col: str, vocab: dict[str, set[str]]) -> pd.Series:
    out = pd.Series(False, index=df.index)
    for tool, values in vocab.items():
        mask = (df["tool"] == tool).fillna(False).astype(bool)
        out |= mask & df[col].notna() & ~df[col].isin(values).fillna(False).astype(bool)
    return out.astype(bool)


def _run_row_rules(package: Package, frames: dict[str, pd.DataFrame], out: Collector) -> None:
    """Every within-row rule as a mask over its resource's frame; the issues of a resource
    are listed by row, then in the order of the rules."""
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
        found: list[tuple[np.ndarray, int]] = []
        for number, rule in enumerate(rules):
            failing = rule.failing(frame)
            mask = np.asarray(pd.Series(failing).fillna(False), dtype=bool)
            where = np.flatnonzero(mask)
            listed = out.reserve(name, rule.rule, len(where))
            if listed:
                found.append((where[:listed], number))
        if not found:
            continue
        positions = np.concatenate([where for where, _ in found])
        numbers = np.concatenate([np.full(len(where), n) for where, n in found])
        order = np.lexsort((numbers, positions))
        columns: dict[int, pd.DataFrame] = {}
        for position, number in zip(
            positions[order].tolist(), numbers[order].tolist(), strict=True
        ):
            rule = rules[number]
            if number not in columns:
                columns[number] = frame[list(rule.columns)]
            row = columns[number].iloc[position]
            out.append(name, Package.row_number(position), rule.field, rule.rule, rule.message(row))


def _category(s: pd.Series) -> pd.Series:
    return s if isinstance(s.dtype, pd.CategoricalDtype) else s.astype("category")


def _joint_codes(*columns: pd.Series) -> tuple[list[np.ndarray], int]:
    """Codes of several columns in one code space (equal values, equal codes; -1 where a
    cell is missing), and the size of that space."""
    cats = [_category(c) for c in columns]
    parts = [np.asarray(c.cat.categories, dtype=object) for c in cats]
    space = pd.Index(np.concatenate(parts) if parts else [], dtype=object).unique()
    out: list[np.ndarray] = []
    for c in cats:
        codes = c.cat.codes.to_numpy().astype(np.int64)
        mapping = space.get_indexer(c.cat.categories).astype(np.int64)
        if len(mapping) == 0:
            out.append(np.full(len(codes), -1, dtype=np.int64))
        else:
            out.append(np.where(codes >= 0, mapping[np.maximum(codes, 0)], -1))
    return out, len(space)


def _pair(a: np.ndarray, b: np.ndarray, size: int) -> np.ndarray:
    """One code per row for two codes (b in a space of ``size``); -1 if either is missing."""
    return np.where((a >= 0) & (b >= 0), a * max(size, 1) + b, -1)


def _text(values: np.ndarray, k: int) -> Any:
    value = values[k]
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else value


def _objects(s: pd.Series) -> np.ndarray:
    """A column as an object array (None where missing), for messages."""
    values = s.to_numpy(dtype=object, na_value=None)
    return values


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
            (sid, known_sid), _ = _joint_codes(frame["study_id"], arms["study_id"])
            (aid, known_aid), n_a = _joint_codes(frame["arm_id"], arms["arm_id"])
            mine = _pair(sid, aid, n_a)
            known = _pair(known_sid, known_aid, n_a)
            where = np.flatnonzero((mine >= 0) & ~np.isin(mine, known[known >= 0]))
            if len(where):
                s_text, a_text = _objects(frame["study_id"]), _objects(frame["arm_id"])
                arms_path = package.resources["arms"].display_path
                out.add_rows(
                    name,
                    where + 2,
                    "arm_id",
                    "arm-not-found",
                    lambda k, w=where, s=s_text, a=a_text, p=arms_path: (
                        f"arm ({s[w[k]]}, {a[w[k]]}) is not in {p}"
                    ),
                )
        # timepoints within the study's follow-up
        if (
            studies is not None
            and {"study_id", "follow_up_weeks"} <= set(studies.columns)
            and {"study_id", "timepoint_weeks"} <= set(frame.columns)
        ):
            (mine, theirs), size = _joint_codes(frame["study_id"], studies["study_id"])
            follow = studies["follow_up_weeks"].to_numpy(dtype=np.float64, na_value=np.nan)
            by_code = np.full(size + 1, np.nan)
            usable = (theirs >= 0) & ~np.isnan(follow)
            codes, first = np.unique(theirs[usable], return_index=True)
            by_code[codes] = follow[usable][first]  # the first row of each study
            limit = by_code[np.where(mine >= 0, mine, size)]
            weeks = frame["timepoint_weeks"].to_numpy(dtype=np.float64, na_value=np.nan)
            with np.errstate(invalid="ignore"):
                where = np.flatnonzero(weeks > limit)
            if not len(where):
                continue
            ids = _objects(frame["study_id"])
            out.add_rows(
                name,
                where + 2,
                "timepoint_weeks",
                "timepoint-beyond-follow-up",
                lambda k, w=where, ids=ids, weeks=weeks, limit=limit: (
                    f"timepoint_weeks ({_fmt(weeks[w[k]])}) is beyond the follow-up of study "
                    f"{ids[w[k]]} ({_fmt(limit[w[k]])} weeks)"
                ),
            )

    # claims name a known study (studies or screening)
    claims = frames.get("claims")
    if claims is not None and "study_id" in claims.columns and studies is not None:
        known_ids = [studies["study_id"]] if "study_id" in studies.columns else []
        screening = frames.get("screening")
        if screening is not None and "study_id" in screening.columns:
            known_ids.append(screening["study_id"])
        mine, *known = _joint_codes(claims["study_id"], *known_ids)[0]
        pool = np.concatenate([k[k >= 0] for k in known]) if known else np.zeros(0, np.int64)
        where = np.flatnonzero((mine >= 0) & ~np.isin(mine, pool))
        ids = _objects(claims["study_id"])
        out.add_rows(
            "claims",
            where + 2,
            "study_id",
            "unknown-study",
            lambda k: f"study_id {ids[where[k]]!r} is neither in studies nor in screening",
        )


def _truthy(s: pd.Series) -> np.ndarray:
    """Per row: the cell is given and true (``bool`` of the value, read per distinct value)."""
    cat = _category(s)
    truth = np.array([bool(c) for c in cat.cat.categories] + [False], dtype=bool)
    codes = cat.cat.codes.to_numpy()
    return truth[np.where(codes >= 0, codes, len(truth) - 1)]


def _first_of(codes: np.ndarray) -> np.ndarray:
    """For each row, the position of the first row with the same code."""
    _, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
    return first[inverse]


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
    sid_columns = [comparisons["study_id"], arms["study_id"]]
    if studies is not None and "study_id" in studies.columns:
        sid_columns.append(studies["study_id"])
    sid_codes, _ = _joint_codes(*sid_columns)
    c_sid, a_sid = sid_codes[0], sid_codes[1]
    (c_exp, c_ctl, a_aid), n_arms = _joint_codes(
        comparisons["experimental_arm_id"], comparisons["control_arm_id"], arms["arm_id"]
    )
    c_id = _category(comparisons["comparison_id"]).cat.codes.to_numpy()
    keep = (c_id >= 0) & (c_sid >= 0) & (c_exp >= 0) & (c_ctl >= 0)
    kept = np.flatnonzero(keep)
    cid, sid = _objects(comparisons["comparison_id"]), _objects(comparisons["study_id"])
    exp, ctl = _objects(comparisons["experimental_arm_id"]), _objects(comparisons["control_arm_id"])

    same = kept[c_exp[kept] == c_ctl[kept]]
    out.add_rows(
        "comparisons",
        same + 2,
        "control_arm_id",
        "comparison-same-arm",
        lambda k: (
            f"comparison {cid[same[k]]} compares arm {exp[same[k]]} of study {sid[same[k]]} "
            "with itself"
        ),
    )

    if "label" in comparisons.columns:
        label = _category(comparisons["label"]).cat.codes.to_numpy().astype(np.int64) + 1
        labels = _objects(comparisons["label"])
    else:
        label = np.zeros(len(comparisons), dtype=np.int64)
        labels = np.full(len(comparisons), None, dtype=object)
    key = np.zeros(len(kept), dtype=np.int64)
    for part in (c_sid[kept], c_exp[kept], c_ctl[kept], label[kept]):
        key, _ = pd.factorize(key * (int(part.max(initial=0)) + 1) + part)
        key = key.astype(np.int64)
    first = kept[_first_of(key)] if len(kept) else kept
    repeats = np.flatnonzero(first != kept)
    dup, orig = kept[repeats], first[repeats]
    out.add_rows(
        "comparisons",
        dup + 2,
        "comparison_id",
        "duplicate-comparison",
        lambda k: (
            f"comparison {cid[dup[k]]} repeats row {orig[k] + 2} (study {sid[dup[k]]}: "
            f"{exp[dup[k]]} versus {ctl[dup[k]]}"
            + (f", label {labels[dup[k]]!r}" if labels[dup[k]] is not None else "")
            + ")"
        ),
    )

    if "primary" in comparisons.columns:
        primary = _truthy(comparisons["primary"])
        prim = kept[primary[kept]]  # in row order
        codes, counts = np.unique(c_sid[prim], return_counts=True)
        many = prim[np.isin(c_sid[prim], codes[counts > 1])]
        if len(many):
            order = np.argsort(c_sid[many], kind="stable")
            groups = np.split(many[order], np.flatnonzero(np.diff(c_sid[many][order])) + 1)
            groups.sort(key=lambda g: int(g[0]))  # by the study's first primary row
            out.add_rows(
                "comparisons",
                [int(g[1]) + 2 for g in groups],
                "primary",
                "primary-comparison",
                lambda k: (
                    f"study {sid[groups[k][0]]} has {len(groups[k])} comparisons with primary "
                    f"true (rows {', '.join(str(int(i) + 2) for i in groups[k])} of "
                    f"{comp_path}); at most one is allowed"
                ),
            )

    if studies is not None and "study_id" in studies.columns:
        s_sid = sid_codes[2]
        with_arms = a_sid[a_sid >= 0]
        compared = c_sid[c_sid >= 0]
        lonely = np.flatnonzero(
            (s_sid >= 0) & np.isin(s_sid, with_arms) & ~np.isin(s_sid, compared)
        )
        study_ids = _objects(studies["study_id"])
        out.add_rows(
            "studies",
            lonely + 2,
            "study_id",
            "study-without-comparison",
            lambda k: (
                f"study {study_ids[lonely[k]]} has arms but no comparison in {comp_path} (say "
                "which arm is compared with which)"
            ),
        )
    if "comparator_type" not in arms.columns:
        return
    controls = _pair(c_sid, c_ctl, n_arms)
    controls = controls[controls >= 0]
    experimental = _pair(c_sid, c_exp, n_arms)
    only_experimental = np.setdiff1d(experimental[experimental >= 0], controls)
    arm_key = _pair(a_sid, a_aid, n_arms)
    kinds = [
        k for k in enum_of(package.resources["arms"], "comparator_type") if k != NOT_APPLICABLE
    ]
    choices = ", ".join(kinds) if kinds else "a comparator type"
    kind = _objects(arms["comparator_type"])
    kind_cat = _category(arms["comparator_type"])
    blank_kind = _blank(kind_cat).to_numpy(dtype=bool)
    stated = ~blank_kind
    not_applicable = (kind_cat == NOT_APPLICABLE).fillna(False).to_numpy(dtype=bool)
    present = arm_key >= 0
    missing = np.flatnonzero(present & np.isin(arm_key, controls) & (~stated | not_applicable))
    wrong = np.flatnonzero(present & np.isin(arm_key, only_experimental) & stated & ~not_applicable)
    a_sid_text, a_aid_text = _objects(arms["study_id"]), _objects(arms["arm_id"])
    out.add_rows(
        "arms",
        missing + 2,
        "comparator_type",
        "missing-comparator-type",
        lambda k: (
            f"arm {a_aid_text[missing[k]]} of study {a_sid_text[missing[k]]} is the control of "
            "a comparison and "
            + (
                f"has comparator_type {kind[missing[k]]}"
                if stated[missing[k]]
                else "has no comparator_type"
            )
            + f"; give one of: {choices} (unclear when the sources do not say)"
        ),
    )
    out.add_rows(
        "arms",
        wrong + 2,
        "comparator_type",
        "comparator-type-on-intervention",
        lambda k: (
            f"arm {a_aid_text[wrong[k]]} of study {a_sid_text[wrong[k]]} is only ever "
            f"experimental but has comparator_type {kind[wrong[k]]}; use not_applicable or "
            "leave it empty"
        ),
    )


def _outcome_type_rules(
    package: Package, frames: dict[str, pd.DataFrame], outcomes: pd.DataFrame, out: Collector
) -> None:
    """Per-arm rows name outcomes of their table's type; reviews' results name known ones."""
    both = outcomes["outcome_id"].notna() & outcomes["data_type"].notna()
    defined = pd.Series(
        _objects(outcomes["data_type"][both]), index=_objects(outcomes["outcome_id"][both])
    )
    types = defined[~defined.index.duplicated(keep="last")]  # the last row of an id decides
    path = package.resources["outcomes"].display_path
    for name, wanted in OUTCOME_TYPE.items():
        frame = frames.get(name)
        if frame is None or "outcome" not in frame.columns:
            continue
        column = _category(frame["outcome"])
        categories = np.asarray(column.cat.categories, dtype=object)
        have = np.append(types.reindex(categories).to_numpy(dtype=object, na_value=None), None)
        wrong_cat = pd.notna(have) & (have != wanted)
        codes = column.cat.codes.to_numpy().astype(np.int64)
        codes = np.where(codes >= 0, codes, len(categories))
        where = np.flatnonzero(wrong_cat[codes])
        out.add_rows(
            name,
            where + 2,
            "outcome",
            "outcome-wrong-type",
            lambda k, w=where, c=codes, cats=categories, h=have, name=name, wanted=wanted: (
                f"outcome {cats[c[w[k]]]} is {h[c[w[k]]]} in {path}; {name} holds {wanted} outcomes"
            ),
        )
    results = frames.get("published_results")
    if results is not None and "outcome_code" in results.columns:
        codes_col = results["outcome_code"]
        unknown = codes_col.notna() & ~codes_col.isin(types.index).fillna(False)
        where = np.flatnonzero(unknown.to_numpy(dtype=bool))
        values = _objects(codes_col)
        out.add_rows(
            "published_results",
            where + 2,
            "outcome_code",
            "unknown-outcome",
            lambda k: f"outcome_code {values[where[k]]!r} is not an outcome_id of {path}",
        )


def run_rules(package: Package, frames: dict[str, pd.DataFrame], out: Collector) -> None:
    """Run every row rule, then every table rule, on the typed frames; collect into ``out``."""
    _run_row_rules(package, frames, out)
    _run_table_rules(package, frames, out)
