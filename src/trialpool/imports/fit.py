"""Rows of an imported review fitted to the core Table Schemas' constraints.

A review may hold values that its source format allows but the core schema does not:
a statistic that RevMan stored just outside its range by floating-point rounding (an I²
of 100.00000000000001, a tau² of -1e-17), a number beyond a range for other reasons, or
a code outside a pattern or vocabulary. Before the package is written, every value is
checked against its field's constraints (read from the schemas, the single source):

* only rounding puts a number outside its range (by at most ``ROUNDING`` relative to the
  bound): the bound is stored, the value as given goes into the row's notes;
* otherwise, for a field that may be empty: the cell is emptied and the value kept
  verbatim in the row's notes;
* a required field that cannot be fitted: the row is left out.

Each case is one line of the import log. Nothing here changes a value that fits.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from trialpool.imports.model import LogEntry
from trialpool.package.core import core_resources

#: a number this close to a bound (relative to max(1, |bound|)) overstepped it by rounding
ROUNDING = 1e-9
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)


@dataclass(frozen=True)
class _Field:
    name: str
    kind: str
    required: bool
    minimum: float | None
    maximum: float | None
    enum: frozenset[str] | None
    pattern: re.Pattern[str] | None
    max_length: int | None


def _fields(schema: dict[str, Any]) -> list[_Field]:
    out: list[_Field] = []
    for spec in schema.get("fields", []):
        c = spec.get("constraints") or {}
        kind = str(spec.get("type", "string"))
        checks = {"minimum", "maximum", "enum", "pattern", "maxLength"} & c.keys()
        if not checks and kind not in ("number", "integer"):
            continue
        out.append(
            _Field(
                name=spec["name"],
                kind=kind,
                required=bool(c.get("required")),
                minimum=c.get("minimum"),
                maximum=c.get("maximum"),
                enum=frozenset(str(v) for v in c["enum"]) if "enum" in c else None,
                pattern=re.compile(f"^(?:{c['pattern']})$") if "pattern" in c else None,
                max_length=c.get("maxLength"),
            )
        )
    return out


def _number_text(value: float, kind: str) -> str:
    return str(int(value)) if kind == "integer" else repr(float(value))


def _check(value: str, f: _Field) -> tuple[str | None, str | None]:
    """(fitted value or None to empty the cell, why) for a value that does not fit;
    (value, None) for one that fits."""
    if f.kind in ("number", "integer"):
        try:
            number = float(value)
        except ValueError:
            return None, "is not a number"
        if not math.isfinite(number):
            return None, "is not a finite number"
        if f.kind == "integer" and (
            not number.is_integer() or not INT64_MIN <= int(value.strip()) <= INT64_MAX
        ):
            return None, "is not a whole number within 64 bits"
        for bound, below in ((f.minimum, True), (f.maximum, False)):
            if bound is None:
                continue
            outside = number < bound if below else number > bound
            if not outside:
                continue
            if abs(number - bound) <= ROUNDING * max(1.0, abs(bound)):
                word = "minimum" if below else "maximum"
                return _number_text(bound, f.kind), (
                    f"oversteps its {word} {bound:g} only by rounding; the {word} is stored"
                )
            return None, f"is outside the range {f.minimum}..{f.maximum} of the schema"
        return value, None
    if f.enum is not None and value not in f.enum:
        return None, "is not in the schema's vocabulary"
    if f.pattern is not None and not f.pattern.match(value):
        return None, "does not match the schema's pattern"
    if f.max_length is not None and len(value) > f.max_length:
        return None, f"is longer than the schema's {f.max_length} characters"
    return value, None


def fit_rows(rows: dict[str, list[dict[str, Any]]], file: str) -> list[LogEntry]:
    """Fit every row in place (see the module docstring); return the log entries."""
    log: list[LogEntry] = []
    for spec in core_resources():
        table = rows.get(spec.name)
        if not table:
            continue
        schema = spec.schema()
        names = {f["name"] for f in schema.get("fields", [])}
        notes = "notes" if "notes" in names else ("note" if "note" in names else None)
        fields = _fields(schema)
        kept: list[dict[str, Any]] = []
        for index, row in enumerate(table, start=2):
            where = str(row.get("locator") or f"data/{spec.name}.csv row {index}")
            keep = True
            for f in fields:
                raw = row.get(f.name)
                if raw is None or raw == "":
                    continue
                value = str(raw)
                fitted, why = _check(value, f)
                if why is None:
                    continue
                text = f"{f.name} as the source gives it: {value} ({why})."
                if fitted is None and f.required:
                    keep = False
                    log.append(
                        LogEntry.of(file, where, f.name, value, f"{why}; the row is left out")
                    )
                    break
                row[f.name] = fitted or ""
                if notes is not None:
                    before = str(row.get(notes) or "")
                    row[notes] = f"{before} {text}" if before else text
                kept_in = notes or "the log"
                action = why if fitted is not None else f"{why}; kept verbatim in {kept_in}"
                log.append(LogEntry.of(file, where, f.name, value, action))
            if keep:
                kept.append(row)
        rows[spec.name] = kept
    return log


__all__ = ["ROUNDING", "fit_rows"]
