"""`trialpool validate`: Table Schema first, then the rules Table Schema cannot express.

Validation runs in two steps and collects every problem as a ``ValidationIssue``
(resource, file, row, field, rule, message, source) into a ``ValidationReport``; it
never raises on bad data.

1. **Table Schema** (``source="frictionless"``): types, ``required``, ``enum``,
   ``minimum``/``maximum``, ``pattern``, ``unique``, primary and foreign keys, ``bytes``
   and ``hash``, header and row shape, with frictionless' semantics and messages.
   ``frictionless`` (5.x) is the reference engine; ``trialpool.validate.fast`` is a
   vectorised engine that gives the same errors at the same locations (a test holds it
   to that on a corpus of broken packages and on the bundled package). Which runs is
   ``choose_engine``'s decision: by default frictionless for small packages (under
   ``SMALL_PACKAGE_BYTES`` of data) and the fast path for larger ones;
   ``TRIALPOOL_ENGINE=fast|frictionless|auto`` overrides it. Either engine only ever
   sees what ``package.load_package`` has vetted (paths checked, schemas and dialects
   inlined, no custom profiles), so it reads nothing else. Data files over
   ``max_file_bytes()`` (``TRIALPOOL_MAX_FILE_BYTES``, default 512 MiB) are refused
   before anything is read.
2. **Cross-table rules** (``source="trialpool"``), run only on resources that step 1
   could parse (no header, encoding or source error) and only when the descriptor
   itself is valid. Within-row rules are pandera checks; rules that join tables are
   plain pandas. Vocabularies are read from the package's own schemas, never copied
   here. See ``RULES`` for the list.

Row numbers follow frictionless: the header is row 1, the first data row is row 2.
Files are named relative to the package folder.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
from rich.console import Console
from rich.table import Table

from trialpool.errors import PackageError
from trialpool.package.loader import Package, Resource, load_package
from trialpool.validate.fast import breaks_rows

FRICTIONLESS = "frictionless"
TRIALPOOL = "trialpool"

#: at most this many issues per (resource, rule) are listed; the rest are counted
MAX_ISSUES_PER_RULE = 1000

#: one line per trialpool rule: what it checks
RULES: dict[str, str] = {
    "n-analysed-exceeds-randomised": "arms: n_analysed <= n_randomised",
    "missing-dose-unit": "arms: dose_unit is given when a dose is given",
    "dose-range-without-lower": "arms: dose_per_infusion_max needs dose_per_infusion",
    "dose-range-reversed": "arms: dose_per_infusion_max >= dose_per_infusion",
    "missing-comparator-type": "arms: a control arm states comparator_type (unclear when the "
    "sources do not say; not not_applicable)",
    "comparator-type-on-intervention": "arms: an intervention arm's comparator_type is "
    "not_applicable or empty",
    "missing-control-arm": "every study has at least one control arm",
    "missing-intervention-arm": "every study has at least one intervention arm",
    "primary-comparison": "exactly one intervention and one control arm per study have "
    "primary_comparison true",
    "events-exceed-total": "dichotomous outcomes: events <= total",
    "sd-not-positive": "continuous outcomes: sd > 0",
    "se-not-positive": "continuous outcomes: se > 0",
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
    "domain-not-for-tool": "a bias domain belongs to its tool",
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

# ---------------------------------------------------------------------------------------
# report objects


@dataclass(frozen=True)
class ValidationIssue:
    """One problem, located as precisely as the engine allows."""

    resource: str | None  # resource name (None for descriptor-level)
    file: str | None  # path of the file, relative to the package folder
    row: int | None  # frictionless row number (header = 1, first data row = 2)
    field: str | None
    rule: str
    message: str
    source: str  # "frictionless" or "trialpool"

    def line(self) -> str:
        """One line: ``data/arms.csv: row 5: field n_analysed: <message> [<rule>]``."""
        parts: list[str] = []
        if self.file:
            parts.append(self.file)
        elif self.resource:
            parts.append(f"resource {self.resource}")
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.field:
            parts.append(f"field {self.field}")
        message = " ".join(self.message.split())  # never more than one line
        return ": ".join([*parts, f"{message} [{self.rule}]"])

    def to_json(self) -> dict[str, Any]:
        """The issue as a JSON-ready dict (the dataclass fields)."""
        return asdict(self)


@dataclass
class ValidationReport:
    """Everything ``trialpool validate`` found, plus a summary of the package."""

    descriptor: str
    issues: list[ValidationIssue]
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        """True when no issue was found."""
        return not self.issues

    def to_json(self) -> dict[str, Any]:
        """``{valid, descriptor, issues: [...], summary: {...}}``."""
        return {
            "valid": self.valid,
            "descriptor": self.descriptor,
            "issues": [issue.to_json() for issue in self.issues],
            "summary": self.summary,
        }


# ---------------------------------------------------------------------------------------
# step 1: Table Schema with frictionless


def frictionless_descriptor(package: Package) -> dict[str, Any]:
    """The descriptor handed to frictionless: the vetted one, schemas/dialects inlined."""
    descriptor = dict(package.descriptor)
    descriptor["resources"] = [dict(res.descriptor) for res in package.resources.values()]
    return descriptor


def _fl_message(error: dict[str, Any]) -> str:
    title = str(error.get("title") or error.get("type") or "error")
    note = str(error.get("note") or "").strip()
    if "cell" in error and error.get("type") in {"type-error", "constraint-error", "unique-error"}:
        cell = error.get("cell")
        return f"{title}: value {cell!r}: {note}" if note else f"{title}: value {cell!r}"
    if error.get("type") in {"primary-key", "foreign-key", "blank-row", "hash-count", "byte-count"}:
        return f"{title}: {note}" if note else title
    return str(error.get("message") or title)


def _fl_issue(
    error: dict[str, Any], resource: Resource | None, descriptor_name: str
) -> ValidationIssue:
    """Map one frictionless error (its descriptor dict) to a ValidationIssue."""
    etype = str(error.get("type", "error"))
    tags = error.get("tags") or []
    row = error.get("rowNumber")
    if row is None and "#header" in tags:
        row = 1
    field_name = error.get("fieldName") or error.get("label")
    if etype == "foreign-key" and error.get("fieldNames"):
        field_name = ",".join(error["fieldNames"])
    elif etype == "primary-key" and resource is not None:
        key = resource.schema.get("primaryKey") or []
        field_name = ",".join([key] if isinstance(key, str) else key) or None
    return ValidationIssue(
        resource=resource.name if resource is not None else None,
        file=resource.display_path if resource is not None else descriptor_name,
        row=int(row) if isinstance(row, int) else None,
        field=str(field_name) if field_name else None,
        rule=etype,
        message=_fl_message(error),
        source=FRICTIONLESS,
    )


def frictionless_package(package: Package) -> tuple[Any, list[ValidationIssue]]:
    """The frictionless Package of the vetted descriptor, or (None, descriptor issues)."""
    from frictionless import FrictionlessException
    from frictionless import Package as FlPackage

    name = package.descriptor_path.name
    try:
        fl_package = FlPackage(frictionless_descriptor(package), basepath=str(package.root))
        fl_package.to_descriptor(validate=True)
    except FrictionlessException as exc:
        errors = exc.reasons or [exc.error]
        return None, [_fl_issue(e.to_descriptor(), None, name) for e in errors]
    return fl_package, []


def _task_issues(
    package: Package, name: str, descriptors: list[dict[str, Any]]
) -> tuple[list[ValidationIssue], bool]:
    """Map one resource's errors; the flag says whether its rows could be parsed."""
    resource = package.resources.get(name)
    issues = [_fl_issue(d, resource, package.descriptor_path.name) for d in descriptors]
    return issues, not breaks_rows(descriptors) and resource is not None


def frictionless_issues(
    package: Package, fl_package: Any = None
) -> tuple[list[ValidationIssue], set[str] | None]:
    """Validate with frictionless. Returns (issues, names of parsable resources).

    The second item is ``None`` when the descriptor itself is invalid (nothing parsed).
    """
    if fl_package is None:
        fl_package, issues = frictionless_package(package)
        if fl_package is None:
            return issues, None
    report = fl_package.validate()
    issues = [
        _fl_issue(e.to_descriptor(), None, package.descriptor_path.name) for e in report.errors
    ]
    if issues:
        return issues, None
    parsable: set[str] = set()
    for task in report.tasks:
        task_issues, ok = _task_issues(package, task.name, [e.to_descriptor() for e in task.errors])
        issues += task_issues
        if ok:
            parsable.add(task.name)
    return issues, parsable


def descriptor_rule_issues(package: Package) -> list[ValidationIssue]:
    """The project's descriptor rules (``trialpool.validate.descriptor``), as issues.

    Those rules (semantic version, licences, generated bytes and hash, paths under
    ``data/`` and ``schemas/``) are checked on the descriptor as written; each problem
    is named by its JSON path in ``field`` (e.g. ``$.resources[2].hash``).
    """
    try:
        from trialpool.validate.descriptor import check_descriptor
    except ImportError:  # pragma: no cover - module optional in stripped installs
        return []
    try:
        problems = check_descriptor(package.descriptor)
    except PackageError as exc:
        problems = [("$", str(exc))]
    name = package.descriptor_path.name
    return [
        ValidationIssue(None, name, None, where, "descriptor-rule", message, TRIALPOOL)
        for where, message in problems
    ]


# ---------------------------------------------------------------------------------------
# reading the rows for the rules (lenient: every cell as text, then typed)


def read_text_frame(resource: Resource, fl_resource: Any = None) -> pd.DataFrame | None:
    """Every cell of a CSV as text (missing cells as ""), or None when unreadable.

    Records are split by Python's csv module, as frictionless splits them: with the
    encoding frictionless detects and the dialect it sniffs when ``fl_resource`` (the
    frictionless resource) is given, else UTF-8 (BOM allowed) and the declared or
    default dialect. Short rows are padded, long ones cut to the header's width; blank
    lines are kept, so the frame's position ``i`` is frictionless row ``i + 2``.
    """
    from trialpool.validate import fast as fastvalidate

    dialect: Any = None
    encoding = "utf-8-sig"
    if fl_resource is not None:
        try:
            encoding = fastvalidate.detect_encoding(resource.path, fl_resource)
            dialect = fastvalidate.sniff_dialect(resource.path, encoding, fl_resource)
        except (fastvalidate.FallbackError, OSError, LookupError):
            dialect = None
    if dialect is None:
        declared = resource.descriptor.get("dialect")
        declared = declared if isinstance(declared, dict) else {}
        dialect = csv.excel()
        dialect.delimiter = str(declared.get("delimiter", ","))[:1] or ","
        dialect.quotechar = str(declared.get("quoteChar", '"'))[:1] or '"'
    try:
        with open(resource.path, encoding=encoding, newline="") as handle:
            records = csv.reader(handle, dialect=dialect)
            header = next(records, None)
            if not header:
                return None
            width = len(header)
            body = [(r + [""] * width)[:width] for r in records]
    except (OSError, UnicodeDecodeError, LookupError, csv.Error, ValueError):
        return None
    return pd.DataFrame(body, columns=header, dtype=object)


def _missing_values(resource: Resource, spec: dict[str, Any]) -> set[str]:
    values = spec.get("missingValues", resource.schema.get("missingValues", [""]))
    return {v for v in values if isinstance(v, str)} if isinstance(values, list) else {""}


def typed_frame(resource: Resource, text: pd.DataFrame) -> pd.DataFrame:
    """Type a text frame by the schema, leniently: cells that do not parse become missing.

    Strings are categorical columns (missing = NaN; fast to compare, count and test for
    missing values at a million rows); numbers and integers are float64
    (missing or unparsable = NaN; ``inf`` stays) with, for numbers, a boolean column
    ``__nonfinite__<name>`` marking NaN and infinity as written in the file; booleans
    are pandas ``boolean``.
    Frictionless reports the cells that do not parse; the rules then skip them.
    """
    out: dict[str, pd.Series] = {}
    for spec in resource.schema.get("fields", []):
        name = spec["name"]
        if name not in text.columns or isinstance(text[name], pd.DataFrame):
            continue
        raw = text[name].astype(str)
        missing = raw.isin(_missing_values(resource, spec))
        kind = spec.get("type", "string")
        if kind in {"number", "integer"}:
            values = pd.to_numeric(raw.str.strip().where(~missing), errors="coerce")
            values = values.astype("float64")
            if kind == "integer":
                values = values.where(np.isfinite(values) & (values == np.round(values)))
            else:
                lowered = raw.str.strip().str.lower()
                out[f"__nonfinite__{name}"] = (
                    ~missing & (lowered.str.fullmatch(_NONFINITE) | np.isinf(values))
                ).astype(bool)
            out[name] = values
        elif kind == "boolean":
            true_values = set(spec.get("trueValues", ["true", "True", "TRUE", "1"]))
            false_values = set(spec.get("falseValues", ["false", "False", "FALSE", "0"]))
            col = pd.Series(pd.NA, index=raw.index, dtype="boolean")
            col[raw.isin(true_values) & ~missing] = True
            col[raw.isin(false_values) & ~missing] = False
            out[name] = col
        else:
            values = raw.to_numpy(dtype=object).copy()
            values[missing.to_numpy(dtype=bool)] = None
            out[name] = pd.Series(pd.Categorical(values), index=raw.index)
    return pd.DataFrame(out, index=text.index)


# ---------------------------------------------------------------------------------------
# vocabularies read from the schemas


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


_NONFINITE = re.compile(r"[+-]?(s?nan[0-9]*|inf|infinity)")

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


# ---------------------------------------------------------------------------------------
# step 2: the rules


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
            RowRule(
                "arms",
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
                "arms",
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
                "arms",
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

    if "arms" in res:
        rules += _comparator_rules(res["arms"])

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

    for name in OUTCOME_RESOURCES:
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
            if fname == "locator" and (required or resource.name in OUTCOME_RESOURCES):
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


def _comparator_rules(arms: Resource) -> list[RowRule]:
    """A control arm states its comparator_type; an intervention arm has none.

    Applied only when the arms schema has a ``comparator_type`` field (an optional field:
    packages without it are not held to these rules). The allowed codes come from the
    schema's enum.
    """
    if "comparator_type" not in arms.field_names:
        return []
    roles = set(enum_of(arms, "role"))
    kinds = [k for k in enum_of(arms, "comparator_type") if k != NOT_APPLICABLE]
    choices = ", ".join(kinds) if kinds else "a comparator type"
    rules: list[RowRule] = []
    if "control" in roles:
        rules.append(
            RowRule(
                "arms",
                "missing-comparator-type",
                "comparator_type",
                ("role", "comparator_type"),
                lambda d: (
                    (d["role"] == "control").fillna(False)
                    & (_blank(d["comparator_type"]) | (d["comparator_type"] == NOT_APPLICABLE))
                ).astype(bool),
                lambda r: (
                    f"control arm {r.get('arm_id')} of study {r.get('study_id')} "
                    + (
                        f"has comparator_type {r['comparator_type']}"
                        if _present(r["comparator_type"])
                        else "has no comparator_type"
                    )
                    + f"; give one of: {choices} (unclear when the sources do not say)"
                ),
            )
        )
    if "intervention" in roles:
        rules.append(
            RowRule(
                "arms",
                "comparator-type-on-intervention",
                "comparator_type",
                ("role", "comparator_type"),
                lambda d: (
                    (d["role"] == "intervention").fillna(False)
                    & ~_blank(d["comparator_type"])
                    & (d["comparator_type"] != NOT_APPLICABLE).fillna(False)
                ).astype(bool),
                lambda r: (
                    f"intervention arm {r.get('arm_id')} of study {r.get('study_id')} has "
                    f"comparator_type {r['comparator_type']}; use not_applicable or leave it empty"
                ),
            )
        )
    return rules


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and np.isnan(value))


def _not_in_tool(df: pd.DataFrame, col: str, vocab: dict[str, set[str]]) -> pd.Series:
    out = pd.Series(False, index=df.index)
    for tool, values in vocab.items():
        mask = (df["tool"] == tool).fillna(False).astype(bool)
        out |= mask & df[col].notna() & ~df[col].isin(values).fillna(False).astype(bool)
    return out.astype(bool)


class _Collector:
    """Collects trialpool issues with a cap per (resource, rule)."""

    def __init__(self, package: Package) -> None:
        self.package = package
        self.issues: list[ValidationIssue] = []
        self.counts: dict[tuple[str | None, str], int] = {}

    def add(self, resource: str | None, row: int | None, fld: str | None, rule: str, msg: str):
        key = (resource, rule)
        self.counts[key] = self.counts.get(key, 0) + 1
        if self.counts[key] > MAX_ISSUES_PER_RULE:
            return
        res = self.package.resources.get(resource) if resource else None
        self.issues.append(
            ValidationIssue(
                resource=resource,
                file=res.display_path if res is not None else None,
                row=row,
                field=fld,
                rule=rule,
                message=msg,
                source=TRIALPOOL,
            )
        )

    @property
    def truncated(self) -> dict[str, int]:
        return {
            f"{res}:{rule}": n - MAX_ISSUES_PER_RULE
            for (res, rule), n in self.counts.items()
            if n > MAX_ISSUES_PER_RULE
        }


def _run_row_rules(package: Package, frames: dict[str, pd.DataFrame], out: _Collector) -> None:
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


def _run_table_rules(package: Package, frames: dict[str, pd.DataFrame], out: _Collector) -> None:
    studies = frames.get("studies")
    arms = frames.get("arms")

    # every study: >= 1 intervention and >= 1 control arm; exactly one of each primary
    if (
        studies is not None
        and arms is not None
        and {"study_id"} <= set(studies.columns)
        and {"study_id", "role"} <= set(arms.columns)
    ):
        roles = enum_of(package.resources["arms"], "role")
        arms_path = package.resources["arms"].display_path
        has_primary = "primary_comparison" in arms.columns
        known = studies["study_id"].notna().to_numpy(dtype=bool)
        for role, rule in (
            ("intervention", "missing-intervention-arm"),
            ("control", "missing-control-arm"),
        ):
            if role not in roles:
                continue
            of_role = arms[(arms["role"] == role).fillna(False).to_numpy(dtype=bool)]
            present = studies["study_id"].isin(set(of_role["study_id"].dropna()))
            absent = known & ~present.fillna(False).to_numpy(dtype=bool)
            for index in studies.index[absent]:
                out.add(
                    "studies",
                    Package.row_number(int(index)),
                    "study_id",
                    rule,
                    f"study {studies.at[index, 'study_id']} has no {role} arm in {arms_path}",
                )
            if not has_primary:
                continue
            flagged = of_role[of_role["primary_comparison"].fillna(False).to_numpy(dtype=bool)]
            flagged_rows: dict[Any, list[int]] = {}
            for index, study_id in flagged["study_id"].dropna().items():
                flagged_rows.setdefault(study_id, []).append(Package.row_number(int(index)))
            wrong = known & present.fillna(False).to_numpy(dtype=bool)
            n_flagged = {sid: len(rows) for sid, rows in flagged_rows.items()}
            counts = studies["study_id"].astype(object).map(n_flagged).fillna(0)
            wrong &= (counts != 1).to_numpy(dtype=bool)
            for index in studies.index[wrong]:
                study_id = studies.at[index, "study_id"]
                rows = ", ".join(str(r) for r in flagged_rows.get(study_id, []))
                where = f" (rows {rows} of {arms_path})" if rows else ""
                out.add(
                    "studies",
                    Package.row_number(int(index)),
                    "study_id",
                    "primary-comparison",
                    f"study {study_id} has {len(flagged_rows.get(study_id, []))} {role} arms "
                    f"with primary_comparison true{where}"
                    "; exactly one is needed",
                )

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


# ---------------------------------------------------------------------------------------
# summary


def study_ids_with_design(studies: pd.DataFrame, designs: Iterable[str] = ("rct",)) -> set[str]:
    """Study ids whose ``design`` is one of ``designs`` (for RCT-only analyses).

    Design-based exclusion is the analysis code's job; this helper gives it one rule.
    """
    wanted = set(designs)
    mask = studies["design"].isin(wanted).fillna(False).astype(bool)
    return {str(s) for s in studies.loc[mask, "study_id"].dropna()}


def _counts(frame: pd.DataFrame | None, col: str, vocab: list[str]) -> dict[str, int]:
    out = dict.fromkeys(vocab, 0)
    if frame is not None and col in frame.columns:
        for key, n in frame[col].dropna().value_counts().items():
            out[str(key)] = int(n)
    return out


def summarise(package: Package, frames: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """What the package holds (from the rows that could be read)."""
    res = package.resources

    def rows(name: str) -> int | None:
        frame = frames.get(name)
        return len(frame) if frame is not None else None

    summary: dict[str, Any] = {
        "package": package.name,
        "version": package.version,
        "rows": {name: rows(name) for name in res},
    }
    if "studies" in res:
        summary["studies"] = {
            "total": rows("studies"),
            "by_design": _counts(
                frames.get("studies"), "design", enum_of(res["studies"], "design")
            ),
        }
    if "arms" in res:
        summary["arms"] = rows("arms")
    for name in OUTCOME_RESOURCES:
        if name in res:
            summary[name] = {
                "total": rows(name),
                "by_verification": _counts(
                    frames.get(name), "verification", enum_of(res[name], "verification")
                ),
            }
    if "bias_judgements" in res:
        summary["bias_judgements"] = rows("bias_judgements")
    if "claims" in res:
        claims = frames.get("claims")
        conflicting = 0
        open_conflicts = 0
        if claims is not None and "status" in claims.columns:
            is_conflict = (claims["status"] == "conflicting").fillna(False).astype(bool)
            conflicting = int(is_conflict.sum())
            if "resolution" in claims.columns:
                open_conflicts = int((is_conflict & _blank(claims["resolution"])).sum())
            else:
                open_conflicts = conflicting
        summary["claims"] = {
            "total": rows("claims"),
            "conflicting": conflicting,
            "conflicting_without_resolution": open_conflicts,
        }
        summary["open_conflicts"] = open_conflicts
    if "published_results" in res:
        summary["published_results"] = rows("published_results")
    if "screening" in res:
        summary["screening"] = {
            "total": rows("screening"),
            "by_decision": _counts(
                frames.get("screening"), "decision", enum_of(res["screening"], "decision")
            ),
        }
    return summary


# ---------------------------------------------------------------------------------------
# entry points


def _package_issue(descriptor: Path | str, message: str, rule: str) -> ValidationIssue:
    return ValidationIssue(
        resource=None,
        file=Path(descriptor).name or str(descriptor),
        row=None,
        field=None,
        rule=rule,
        message=message,
        source=TRIALPOOL,
    )


#: environment variable choosing the Table Schema engine: auto, fast or frictionless
ENGINE_ENV = "TRIALPOOL_ENGINE"
#: ``auto`` uses frictionless itself when the data files total less than this
SMALL_PACKAGE_BYTES = 2_000_000
#: environment variable with the largest data file accepted, in bytes
MAX_FILE_BYTES_ENV = "TRIALPOOL_MAX_FILE_BYTES"
DEFAULT_MAX_FILE_BYTES = 512 * 1024 * 1024


def max_file_bytes() -> int:
    """The size limit per data file (``TRIALPOOL_MAX_FILE_BYTES``, default 512 MiB)."""
    raw = os.environ.get(MAX_FILE_BYTES_ENV, "")
    try:
        value = int(raw)
    except ValueError:
        return DEFAULT_MAX_FILE_BYTES
    return value if value > 0 else DEFAULT_MAX_FILE_BYTES


def _size_issues(package: Package, limit: int) -> tuple[list[ValidationIssue], int]:
    """One issue per data file over the limit; also the total size of the files."""
    issues: list[ValidationIssue] = []
    total = 0
    for resource in package.resources.values():
        try:
            size = resource.path.stat().st_size
        except OSError:
            continue  # missing: validation reports it
        total += size
        if size > limit:
            issues.append(
                ValidationIssue(
                    resource.name,
                    resource.display_path,
                    None,
                    None,
                    "file-too-large",
                    f"{size:,} bytes is over the limit of {limit:,} bytes; nothing was read "
                    f"(set {MAX_FILE_BYTES_ENV} to raise it)",
                    TRIALPOOL,
                )
            )
    return issues, total


def choose_engine(engine: str | None, data_bytes: int) -> str:
    """``fast`` or ``frictionless``, from the argument, ``TRIALPOOL_ENGINE`` or the size.

    ``auto`` (the default) lets frictionless itself validate small packages (under
    ``SMALL_PACKAGE_BYTES`` of data, where it takes about a second and is the reference)
    and uses the vectorised fast path (``trialpool.validate.fast``) for larger ones. Both
    report the same errors at the same locations; a test holds them to it.
    """
    choice = (engine or os.environ.get(ENGINE_ENV) or "auto").strip().lower()
    if choice not in {"auto", "fast", "frictionless"}:
        choice = "auto"
    if choice == "auto":
        return "frictionless" if data_bytes < SMALL_PACKAGE_BYTES else "fast"
    return choice


def _fast_issues(
    package: Package, fl_package: Any
) -> tuple[list[ValidationIssue], set[str], dict[str, pd.DataFrame], dict[str, str]]:
    from trialpool.validate.fast import validate_tables

    issues: list[ValidationIssue] = []
    result = validate_tables(package, fl_package)
    parsable: set[str] = set()
    for name in fl_package.resource_names:
        task_issues, ok = _task_issues(package, name, result.errors.get(name, []))
        issues += task_issues
        if ok and result.parsable is not None and name in result.parsable:
            parsable.add(name)
    return issues, parsable, result.frames, result.fallback


def validate_package(descriptor: Path | str, *, engine: str | None = None) -> ValidationReport:
    """Validate a package: Table Schema first, then the cross-table rules.

    ``engine`` picks the Table Schema engine (see ``choose_engine``): ``"frictionless"``
    (the reference), ``"fast"`` (``trialpool.validate.fast``) or ``"auto"``/None.

    Never raises on bad input: a package that cannot be loaded (bad JSON, unsafe path)
    gives one ``package`` issue; a data file over ``max_file_bytes()`` gives a
    ``file-too-large`` issue and nothing is read; frictionless failures become issues.
    The input is only ever read.
    """
    try:
        package = load_package(descriptor)
    except PackageError as exc:
        return ValidationReport(str(descriptor), [_package_issue(descriptor, str(exc), "package")])
    too_large, data_bytes = _size_issues(package, max_file_bytes())
    if too_large:
        report = ValidationReport(str(descriptor), too_large)
        report.summary = {"issues": _issue_counts(too_large)}
        return report
    issues = descriptor_rule_issues(package)
    chosen = choose_engine(engine, data_bytes)
    frames: dict[str, pd.DataFrame] = {}
    fallback: dict[str, str] = {}
    parsable: set[str] | None = None
    fl_package, fl_issues = frictionless_package(package)
    if fl_package is not None:
        try:
            if chosen == "fast":
                fl_issues, parsable, frames, fallback = _fast_issues(package, fl_package)
            else:
                fl_issues, parsable = frictionless_issues(package, fl_package)
        except Exception as exc:  # an engine crash (frictionless has a few on odd cells)
            crash = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            fl_issues, parsable = [], None
            if chosen == "frictionless":
                try:  # the fast path reads such cells as type errors
                    fl_package, _ = frictionless_package(package)
                    fl_issues, parsable, frames, fallback = _fast_issues(package, fl_package)
                    chosen = f"fast (frictionless failed: {crash})"
                except Exception as again:
                    crash = f"{type(again).__name__}: {again}"
            if parsable is None:
                fl_issues = [
                    _package_issue(
                        descriptor, f"Table Schema validation failed: {crash}", "validation-failed"
                    )
                ]
    issues.extend(fl_issues)
    for name, resource in package.resources.items():
        if parsable is None or name not in parsable or name in frames:
            continue
        text = read_text_frame(resource, fl_package.get_resource(name) if fl_package else None)
        if text is not None:
            frames[name] = typed_frame(resource, text)
    if parsable is None:
        frames = {}
    collector = _Collector(package)
    if parsable is not None:
        _run_row_rules(package, frames, collector)
        _run_table_rules(package, frames, collector)
    issues.extend(collector.issues)
    summary = summarise(package, frames)
    summary["engine"] = chosen
    if fallback:
        summary["frictionless_fallback"] = fallback
    summary["issues"] = _issue_counts(issues)
    if collector.truncated:
        summary["issues"]["not_listed"] = collector.truncated
    return ValidationReport(str(descriptor), issues, summary)


def _issue_counts(issues: list[ValidationIssue]) -> dict[str, Any]:
    by_rule: dict[str, int] = {}
    for issue in issues:
        by_rule[issue.rule] = by_rule.get(issue.rule, 0) + 1
    return {
        "total": len(issues),
        FRICTIONLESS: sum(1 for i in issues if i.source == FRICTIONLESS),
        TRIALPOOL: sum(1 for i in issues if i.source == TRIALPOOL),
        "by_rule": by_rule,
    }


def _summary_lines(summary: dict[str, Any]) -> list[tuple[str, str]]:
    lines: list[tuple[str, str]] = []

    def breakdown(counts: dict[str, int]) -> str:
        parts = [f"{k} {v}" for k, v in counts.items() if v]
        return f" ({', '.join(parts)})" if parts else ""

    if "studies" in summary:
        s = summary["studies"]
        lines.append(("studies", f"{s['total']}{breakdown(s['by_design'])}"))
    if "arms" in summary:
        lines.append(("arms", str(summary["arms"])))
    for name in OUTCOME_RESOURCES:
        if name in summary:
            s = summary[name]
            label = name.replace("_", " ") + " rows"
            lines.append((label, f"{s['total']}{breakdown(s['by_verification'])}"))
    if "bias_judgements" in summary:
        lines.append(("bias judgements", str(summary["bias_judgements"])))
    if "claims" in summary:
        c = summary["claims"]
        lines.append(
            (
                "claims",
                f"{c['total']} ({c['conflicting']} conflicting, "
                f"{c['conflicting_without_resolution']} without resolution)",
            )
        )
    if "published_results" in summary:
        lines.append(("published results", str(summary["published_results"])))
    if "screening" in summary:
        s = summary["screening"]
        lines.append(("screening records", f"{s['total']}{breakdown(s['by_decision'])}"))
    return lines


def print_report(report: ValidationReport, console: Console, *, as_json: bool) -> None:
    """Print the report: JSON (one object), or a table for people and a summary line.

    On a terminal the issues are a rich table (resource, row, field, rule, message);
    otherwise (pipes, CI logs) one line per issue (``ValidationIssue.line``), so each
    problem stays on one greppable line.
    """
    if as_json:
        console.out(json.dumps(report.to_json(), ensure_ascii=False), highlight=False)
        return
    if report.issues:
        if console.is_terminal:
            table = Table(title=f"Problems in {report.descriptor}", show_lines=False)
            for col in ("file", "row", "field", "rule", "message"):
                table.add_column(col, overflow="fold")
            for issue in report.issues:
                table.add_row(
                    issue.file or issue.resource or "",
                    "" if issue.row is None else str(issue.row),
                    issue.field or "",
                    issue.rule,
                    issue.message,
                )
            console.print(table)
        else:
            for issue in report.issues:
                console.out(issue.line(), highlight=False)
        counts = report.summary.get("issues", _issue_counts(report.issues))
        hidden = sum((counts.get("not_listed") or {}).values())
        more = f"; {hidden} more not listed" if hidden else ""
        console.out(
            f"INVALID: {report.descriptor}: {counts['total']} problem(s) "
            f"({counts[FRICTIONLESS]} Table Schema, {counts[TRIALPOOL]} trialpool rules){more}",
            highlight=False,
        )
        return
    lines = _summary_lines(report.summary)
    if console.is_terminal and lines:
        table = Table(title=f"{report.summary.get('package', '')} {report.summary.get('version')}")
        table.add_column("holds")
        table.add_column("count")
        for label, value in lines:
            table.add_row(label, value)
        console.print(table)
    else:
        for label, value in lines:
            console.out(f"{label}: {value}", highlight=False)
    console.out(f"VALID: {report.descriptor}", highlight=False)


def run_validate(descriptor: Path | str, *, as_json: bool, console: Console) -> int:
    """``trialpool validate``: print the report; return 0 when valid, 1 when invalid."""
    report = validate_package(descriptor)
    print_report(report, console, as_json=as_json)
    return 0 if report.valid else 1


__all__ = [
    "RULES",
    "STATISTIC_COLUMNS",
    "RowRule",
    "ValidationIssue",
    "ValidationReport",
    "enum_of",
    "print_report",
    "read_text_frame",
    "run_validate",
    "study_ids_with_design",
    "summarise",
    "tool_vocabulary",
    "typed_frame",
    "validate_package",
]
