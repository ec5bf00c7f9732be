"""Row changes by primary key (part of :mod:`trialpool.contrib.diff`).

Reads each version of a resource's CSV as strings and matches rows by primary key (under
the new field names, a renamed column under its new name): rows added, removed, and kept
with other values (which fields, old -> new). Values are compared by meaning: a missing
value is None, numbers by value (``4`` = ``4.0``), booleans by their true/false spellings.
A resource without a usable key is compared as a multiset of rows. Also the bump each row
change requires (rows or studies added: minor; removed: major; a value corrected: patch)
and the rename check :func:`trialpool.contrib.diff_schema.schema_changes` asks for (did
the old column's values go to the new column?).
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from trialpool.contrib.diff_model import Change, ResourceDiff, RowChange, as_list
from trialpool.errors import PackageError
from trialpool.package.loader import Resource


@dataclass
class Table:
    header: list[str]
    rows: list[dict[str, str]]


def read_rows(resource: Resource) -> Table:
    """Raw rows of a CSV (strings; the header names the columns)."""
    try:
        with resource.path.open(encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, [])
            rows = [dict(zip(header, row, strict=False)) for row in reader if row]
    except FileNotFoundError:
        raise PackageError(f"{resource.path}: resource {resource.name!r}: file not found") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise PackageError(
            f"{resource.path}: resource {resource.name!r}: cannot be read ({exc})"
        ) from None
    return Table(header, rows)


def _canonical(raw: str | None, spec: dict[str, Any], missing: list[str]) -> Any:
    """A value to compare: missing -> None, numbers by value, booleans by meaning."""
    if raw is None or raw in missing:
        return None
    kind = spec.get("type", "string")
    if kind in {"number", "integer"}:
        try:
            number = Decimal(raw.strip())
        except InvalidOperation:
            return raw
        return number if number.is_finite() else raw
    if kind == "boolean":
        if raw in spec.get("trueValues", ["true", "True", "TRUE", "1"]):
            return True
        if raw in spec.get("falseValues", ["false", "False", "FALSE", "0"]):
            return False
    return raw


def _missing(schema: dict[str, Any]) -> list[str]:
    values = schema.get("missingValues", [""])
    return [v for v in values if isinstance(v, str)] if isinstance(values, list) else [""]


def row_changes(
    name: str,
    old: Resource,
    new: Resource,
    field_map: dict[str, str],
    tables: tuple[Table, Table] | None = None,
) -> ResourceDiff:
    """Rows added, removed and changed, matched by primary key (new field names).

    ``tables`` are the two files' rows when already read (else they are read here).
    """
    old_table, new_table = tables or (read_rows(old), read_rows(new))
    old_specs = {f["name"]: f for f in old.schema.get("fields", []) if "name" in f}
    new_specs = {f["name"]: f for f in new.schema.get("fields", []) if "name" in f}
    # compare the columns both versions have (a renamed column under its new name)
    common = [
        (o, n) for o, n in field_map.items() if o in old_table.header and n in new_table.header
    ]
    new_names = [n for _, n in common]
    same_type = {
        n: old_specs.get(o, {}).get("type", "string") == new_specs.get(n, {}).get("type", "string")
        for o, n in common
    }
    old_missing, new_missing = _missing(old.schema), _missing(new.schema)

    def canon_old(o: str, n: str, row: dict[str, str]) -> Any:
        raw = row.get(o)
        return _canonical(raw, old_specs.get(o, {}), old_missing) if same_type[n] else raw

    def canon_new(n: str, row: dict[str, str]) -> Any:
        raw = row.get(n)
        return _canonical(raw, new_specs.get(n, {}), new_missing) if same_type[n] else raw

    new_pk = as_list(new.schema.get("primaryKey"))
    old_pk_mapped = [field_map.get(f, f) for f in as_list(old.schema.get("primaryKey"))]
    if new_pk and set(new_pk) <= set(new_names):
        key_fields = new_pk
    elif old_pk_mapped and set(old_pk_mapped) <= set(new_names):
        key_fields = old_pk_mapped
    else:
        key_fields = []
    diff = ResourceDiff(name=name, status="unchanged", key_fields=key_fields)
    reverse = {n: o for o, n in common}

    def raw_key(row: dict[str, str], fields: list[str], old_side: bool) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for f in fields:
            value = row.get(reverse[f]) if old_side else row.get(f)
            missing = old_missing if old_side else new_missing
            out[f] = None if value is None or value in missing else value
        return out

    if key_fields:
        old_rows = _index(
            old_table.rows, lambda r: tuple(canon_old(reverse[k], k, r) for k in key_fields)
        )
        new_rows = _index(new_table.rows, lambda r: tuple(canon_new(k, r) for k in key_fields))
        for key, row in new_rows.items():
            if key not in old_rows:
                diff.rows_added.append(raw_key(row, key_fields, old_side=False))
        for key, row in old_rows.items():
            if key not in new_rows:
                diff.rows_removed.append(raw_key(row, key_fields, old_side=True))
                continue
            new_row = new_rows[key]
            fields: dict[str, tuple[str | None, str | None]] = {}
            for o, n in common:
                if n in key_fields:
                    continue
                if canon_old(o, n, row) != canon_new(n, new_row):
                    before = raw_key(row, [n], old_side=True)[n]
                    after = raw_key(new_row, [n], old_side=False)[n]
                    fields[n] = (before, after)
            if fields:
                diff.rows_changed.append(RowChange(raw_key(new_row, key_fields, False), fields))
    else:

        def old_sig(row: dict[str, str]) -> tuple[Any, ...]:
            return tuple(canon_old(o, n, row) for o, n in common)

        def new_sig(row: dict[str, str]) -> tuple[Any, ...]:
            return tuple(canon_new(n, row) for _, n in common)

        for row in _surplus(new_table.rows, new_sig, old_table.rows, old_sig):
            diff.rows_added.append(raw_key(row, new_names, old_side=False))
        for row in _surplus(old_table.rows, old_sig, new_table.rows, new_sig):
            diff.rows_removed.append(raw_key(row, new_names, old_side=True))
    if diff.rows_added or diff.rows_removed or diff.rows_changed:
        diff.status = "changed"
    return diff


def _surplus(
    rows: list[dict[str, str]],
    sig: Callable[[dict[str, str]], tuple[Any, ...]],
    other: list[dict[str, str]],
    other_sig: Callable[[dict[str, str]], tuple[Any, ...]],
) -> list[dict[str, str]]:
    """The rows of one side that the other lacks, compared as multisets of whole rows
    (a row written twice here and once there: its first copy)."""
    count = Counter(sig(r) for r in rows)
    other_count = Counter(other_sig(r) for r in other)
    out = []
    for row in rows:
        s = sig(row)
        if count[s] > other_count.get(s, 0):
            count[s] -= 1
            out.append(row)
    return out


def _index(rows: list[dict[str, str]], key: Any) -> dict[tuple[Any, ...], dict[str, str]]:
    """Rows by key; a repeated key (an invalid package) gets a running suffix."""
    out: dict[tuple[Any, ...], dict[str, str]] = {}
    for row in rows:
        k = key(row)
        candidate, i = k, 1
        while candidate in out:
            candidate = (*k, f"#duplicate{i}")
            i += 1
        out[candidate] = row
    return out


def _fmt_key(key: dict[str, str | None]) -> str:
    if len(key) == 1:
        return str(next(iter(key.values())))
    return ", ".join(f"{k}={v if v is not None else ''}" for k, v in key.items())


def row_summary_changes(diff: ResourceDiff, studies_table: bool) -> list[Change]:
    out: list[Change] = []
    name = diff.name
    if diff.rows_added:
        if studies_table:
            for key in diff.rows_added:
                out.append(
                    Change("minor", "study_added", f"{name}: study {_fmt_key(key)} added", name)
                )
        else:
            out.append(
                Change("minor", "rows_added", f"{name}: {len(diff.rows_added)} row(s) added", name)
            )
    if diff.rows_removed:
        if studies_table:
            for key in diff.rows_removed:
                out.append(
                    Change("major", "study_removed", f"{name}: study {_fmt_key(key)} removed", name)
                )
        else:
            out.append(
                Change(
                    "major",
                    "rows_removed",
                    f"{name}: {len(diff.rows_removed)} row(s) removed",
                    name,
                )
            )
    for row in diff.rows_changed:
        what = "; ".join(f"{f} {_cell(o)} -> {_cell(n)}" for f, (o, n) in row.fields.items())
        out.append(Change("patch", "value_changed", f"{name} ({_fmt_key(row.key)}): {what}", name))
    return out


def _cell(value: str | None) -> str:
    return "(empty)" if value is None else json.dumps(value, ensure_ascii=False)


def row_keys(table: Table, schema: dict[str, Any]) -> list[dict[str, str | None]]:
    """Each row's primary key (every column when the schema has no usable key)."""
    missing = _missing(schema)
    key = as_list(schema.get("primaryKey"))
    fields = key if key and set(key) <= set(table.header) else table.header
    return [
        {f: None if row.get(f) is None or row.get(f) in missing else row.get(f) for f in fields}
        for row in table.rows
    ]


def carried_over(old: Table, new: Table) -> Callable[[str, str], bool]:
    """A rename check: the old column's values went to the new column (one side's
    non-empty values are all in the other's; both empty counts, one empty does not)."""

    def values(table: Table, name: str) -> Counter[str]:
        return Counter(v for r in table.rows if (v := r.get(name)) not in (None, ""))

    def check(old_name: str, new_name: str) -> bool:
        before, after = values(old, old_name), values(new, new_name)
        if not before or not after:
            return not before and not after
        return before <= after or after <= before

    return check
