"""Vectorised Table Schema validation with frictionless semantics (the fast path).

``validate_tables`` checks what ``frictionless validate`` checks on a CSV data package
(types, ``required``, ``enum``, ``minimum``/``maximum``, ``minLength``/``maxLength``,
``pattern``, ``unique``, primary and foreign keys, ``bytes`` and ``hash``, missing
cells and blank rows) column-wise with pandas, and reports the same errors at the same
(resource, row, field) locations, in the same order, with frictionless' limit of 1000
errors per resource. frictionless stays the reference; a test runs both on a corpus of
broken packages and compares verdicts and locations.

How it stays faithful:

* the descriptor and each resource's metadata are validated by frictionless itself
  (cheap); the encoding is detected and the CSV dialect sniffed with frictionless' own
  code on the same sample, so the file is split into the same records;
* each file is read in a few streaming passes: one for bytes, md5 and sha256; one for
  the shape of every record (cell count) as Python's ``csv`` module (frictionless'
  parser) sees it, and one by pandas' C parser, in chunks of ``CHUNK_ROWS``, for the
  cells. A file with no quote character is split into records exactly at line ends,
  so its shapes come from byte positions with numpy; any other file goes through the
  ``csv`` module, and each record's total length must then match pandas' cells. The
  parsers must agree on every record, or the resource is handed to frictionless;
* frictionless guesses the header row from the widths of the first 100 records; the
  same guess is made (with its own detector) and anything but row 1 is handed over;
* a cell is parsed once per distinct value: by frictionless' own cell reader
  (``Field.read_cell``: missing values, type, constraints) when a column has few
  distinct values, or by vectorised code written to the same rules (``int()``,
  ``Decimal()``, ``re.match('^...$')``) otherwise, with frictionless' reader for any
  value outside the plain ASCII forms;
* unique, primary-key and foreign-key checks compare parsed values, as frictionless
  does (``4`` and ``4.0`` are the same number; an empty key cell is ``None``).

Anything unusual hands the resource to frictionless (``Resource.validate``, which
gives exactly the reference's errors): a header that is not the schema's field names,
rows with extra cells, NUL bytes, undecodable bytes, non-CSV formats, compression,
dialect options beyond delimiter/quote/escape, a foreign key to such a resource. The
result records which resources went that way (``TableResult.fallback``).

The engine is split by job: this module drives it (which resources take the fast path,
the read of each resource in chunks, the errors in frictionless' order and limit);
:mod:`trialpool.validate.fast_read` reads a file (bytes and hashes, encoding, dialect,
record shapes, pandas chunks) and parses cells; :mod:`trialpool.validate.fast_keys`
checks unique, primary and foreign keys. ``FallbackError``, ``detect_encoding`` and
``sniff_dialect`` are importable from here too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from trialpool.package.loader import Package, Resource
from trialpool.validate.fast_keys import _error, _is_none, _Key, _key_errors
from trialpool.validate.fast_read import (
    _BYTE_SAFE,
    FallbackError,
    _chunks,
    _field_missing_values,
    _file_stats,
    _read_vectorised,
    _read_with_frictionless,
    _Results,
    _shapes,
    _shapes_unquoted,
    _vectorisable,
    detect_encoding,
    sniff_dialect,
)
from trialpool.validate.fast_read import BUFFER_SIZE as BUFFER_SIZE
from trialpool.validate.fast_read import CHUNK_ROWS as CHUNK_ROWS
from trialpool.validate.fast_read import SAMPLE_LINES as SAMPLE_LINES

#: frictionless' default limit of errors per resource
LIMIT_ERRORS = 1000
#: at most this many distinct values per column are read with frictionless' reader
DISTINCT_READER_LIMIT = 1_000

# error kinds, in the order frictionless reports them within a row
_TYPE, _CONSTRAINT, _MISSING_CELL, _BLANK_ROW, _UNIQUE, _PRIMARY, _FOREIGN = range(7)
_KIND_NAMES = {
    _TYPE: "type-error",
    _CONSTRAINT: "constraint-error",
    _MISSING_CELL: "missing-cell",
    _BLANK_ROW: "blank-row",
    _UNIQUE: "unique-error",
    _PRIMARY: "primary-key",
    _FOREIGN: "foreign-key",
}


@dataclass
class TableResult:
    """What ``validate_tables`` found.

    ``errors`` maps each resource name to its errors (frictionless-shaped descriptors,
    in frictionless' order); ``package_errors`` are descriptor-level errors (then no
    resource was read and ``parsable`` is None). ``frames`` holds the typed frame of
    every resource read on the fast path; ``fallback`` names each resource that was
    validated by frictionless instead, with the reason.
    """

    package_errors: list[dict[str, Any]] = field(default_factory=list)
    errors: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    parsable: set[str] | None = field(default_factory=set)
    fallback: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------
# reading one resource


@dataclass
class _Column:
    """Per-cell results of one field over all rows."""

    typed: list[Any] = field(default_factory=list)
    nonfinite: list[np.ndarray] = field(default_factory=list)
    keys: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)


@dataclass
class _Parsed:
    """A resource read on the fast path."""

    resource: Resource
    fl_resource: Any
    rows: int = 0
    keys: dict[str, _Key] = field(default_factory=dict)
    typed: pd.DataFrame | None = None
    # cell-level error records: arrays of row, order, kind, field index, constraint
    records: list[tuple[np.ndarray, ...]] = field(default_factory=list)
    cells: dict[tuple[int, int], str] = field(default_factory=dict)
    blank: np.ndarray | None = None
    n_cell_errors: int = 0
    stats: dict[str, Any] = field(default_factory=dict)


# kept here, beside DISTINCT_READER_LIMIT, which the tests lower on this module
def _results_for(fl_field: Any, uniques: np.ndarray, missing_values: set[str]) -> _Results:
    """Results per distinct value: frictionless' reader, or vectorised when many."""
    if _vectorisable(fl_field) and len(uniques) > DISTINCT_READER_LIMIT:
        return _read_vectorised(fl_field, uniques, missing_values)
    return _read_with_frictionless(fl_field, uniques, fl_field.type in {"number", "integer"})


def _read_resource(resource: Resource, fl_resource: Any, needed_keys: set[str]) -> _Parsed:
    """Read one CSV on the fast path (or raise FallbackError)."""
    if fl_resource.format != "csv" or fl_resource.compression or fl_resource.innerpath:
        raise FallbackError("not a plain CSV file")
    for key in ("rows", "fields"):
        if key in resource.descriptor:
            raise FallbackError(f"descriptor declares {key!r}")
    path = resource.path
    if not path.is_file():
        raise FallbackError("file not found")
    stats = _file_stats(path)
    if stats["bytes"] == 0:
        raise FallbackError("empty file")
    encoding = detect_encoding(path, fl_resource)
    dialect = sniff_dialect(path, encoding, fl_resource)
    quick = (
        dialect.quotechar == '"'
        and dialect.escapechar is None
        and ord('"') not in stats["special"]
        and encoding in _BYTE_SAFE
        and dialect.delimiter.isascii()
    )
    if quick:  # no quoting: records are lines, counted with numpy
        counts, lengths = _shapes_unquoted(path, dialect.delimiter), None
    else:
        counts, lengths = _shapes(path, encoding, dialect)
    fl_fields = list(fl_resource.schema.fields)
    names = [f.name for f in fl_fields]
    width = len(fl_fields)
    if width == 0 or len(counts) == 0 or counts[0] != width or (counts > width).any():
        raise FallbackError("header or rows wider or narrower than the schema")
    # frictionless guesses the header row from the widths of the first records
    sample = [[""] * int(c) for c in counts[: fl_resource.detector.sample_size]]
    probe = fl_resource.detector.detect_dialect(sample, dialect=fl_resource.dialect.to_copy())
    if probe.header is not True or list(probe.header_rows) != [1]:
        raise FallbackError("frictionless would take another row as the header")
    parsed = _Parsed(resource, fl_resource, stats=stats)
    columns = [_Column() for _ in fl_fields]
    missing_sets = [_field_missing_values(f) for f in fl_fields]
    seen = 0
    blank_parts: list[np.ndarray] = []
    for chunk in _chunks(path, encoding, dialect, width):
        start = seen
        seen += len(chunk)
        if seen > len(counts):
            raise FallbackError("pandas and csv disagree on the number of records")
        first_row = 2 if start == 0 else start + 1
        skip = 1 if start == 0 else 0  # the header
        n = len(chunk) - skip
        data = chunk.to_numpy(dtype=object)
        if start == 0 and [str(v) for v in data[0]] != names:
            raise FallbackError("header differs from the schema's field names")
        if n <= 0:
            continue
        rows = np.arange(first_row, first_row + n, dtype=np.int64)
        chunk_counts = counts[rows - 1]
        total = np.zeros(n, dtype=np.int64)
        blank = np.ones(n, dtype=bool)
        recs: list[tuple[np.ndarray, ...]] = []
        raw_of: list[tuple[np.ndarray, np.ndarray]] = []
        for j, fl_field in enumerate(fl_fields):
            codes, uniques = pd.factorize(data[skip:, j], use_na_sentinel=False)
            uniques = np.asarray(uniques, dtype=object)
            raw_of.append((codes, uniques))
            if lengths is not None:
                lens = np.fromiter((len(u) for u in uniques), dtype=np.int64, count=len(uniques))
                total += lens[codes]
            res = _results_for(fl_field, uniques, missing_sets[j])
            type_error = res.type_error[codes]
            fails = {c: arr[codes] for c, arr in res.fails.items()}
            nonfinite = res.nonfinite[codes]
            is_none = _is_none(res.key)[codes]
            # a missing cell (short row) is read as None, not as ""
            missing_cell = chunk_counts <= j
            has_missing = bool(missing_cell.any())
            if has_missing:
                type_error[missing_cell] = False
                for c in fails:
                    fails[c][missing_cell] = False
                if fl_field.constraints.get("required") and "required" in fails:
                    fails["required"][missing_cell] = True
                nonfinite[missing_cell] = False
                is_none[missing_cell] = True
            blank &= is_none & ~type_error
            if res.typed.dtype.kind == "f":
                typed = res.typed[codes]
                if has_missing:
                    typed[missing_cell] = np.nan
                columns[j].typed.append(typed)
            else:  # text or boolean: a categorical built from the distinct values
                shown = np.array(
                    [v if v is None or isinstance(v, str | bool) else str(v) for v in res.typed],
                    dtype=object,
                )
                cat_codes, categories = pd.factorize(shown)
                row_codes = cat_codes[codes]
                row_codes[missing_cell] = -1
                columns[j].typed.append(
                    pd.Categorical.from_codes(
                        row_codes, categories=pd.Index(categories, dtype=object)
                    )
                )
            columns[j].nonfinite.append(nonfinite)
            if fl_field.name in needed_keys:
                row_codes = codes.copy()
                row_codes[missing_cell] = len(res.key)
                columns[j].keys.append((row_codes, np.append(res.key, None)))
            idx = np.flatnonzero(type_error)
            if len(idx):
                recs.append(_rec(rows[idx], j * 64, _TYPE, j, -1))
            for k, c in enumerate(fails):
                idx = np.flatnonzero(fails[c])
                if len(idx):
                    recs.append(_rec(rows[idx], j * 64 + 1 + k, _CONSTRAINT, j, k))
            idx = np.flatnonzero(missing_cell)
            if len(idx):
                recs.append(_rec(rows[idx], 10_000 + j, _MISSING_CELL, j, -1))
        # the two parsers must agree on every record
        if lengths is not None and not np.array_equal(total, lengths[rows - 1]):
            raise FallbackError("pandas and csv split a record differently")
        blank_parts.append(blank)
        if blank.any():
            recs = [tuple(a[~np.isin(r[0], rows[blank])] for a in r) for r in recs]
            recs.append(_rec(rows[blank], 0, _BLANK_ROW, -1, -1))
        if recs:
            merged = tuple(np.concatenate([r[i] for r in recs]) for i in range(5))
            before = parsed.n_cell_errors
            parsed.n_cell_errors += len(merged[0])
            if before < LIMIT_ERRORS:
                order = np.lexsort((merged[1], merged[0]))[:LIMIT_ERRORS]
                kept = tuple(a[order] for a in merged)
                parsed.records.append(kept)
                for row, j in zip(kept[0].tolist(), kept[3].tolist(), strict=True):
                    if j >= 0:
                        at = row - first_row
                        if chunk_counts[at] <= j:
                            parsed.cells[(row, j)] = "None"
                        else:
                            codes, uniques = raw_of[j]
                            parsed.cells[(row, j)] = str(uniques[codes[at]])
    if seen != len(counts):
        raise FallbackError("pandas and csv disagree on the number of records")
    parsed.rows = max(0, seen - 1)
    parsed.blank = np.concatenate(blank_parts) if blank_parts else np.zeros(0, dtype=bool)
    frame: dict[str, Any] = {}
    for j, fl_field in enumerate(fl_fields):
        col = columns[j]
        if fl_field.name in needed_keys:
            parsed.keys[fl_field.name] = _Key.from_parts(col.keys)
        frame.update(_typed_columns(fl_field, col))
    parsed.typed = pd.DataFrame(frame, index=pd.RangeIndex(parsed.rows))
    return parsed


def _rec(rows: np.ndarray, order: int, kind: int, fld: int, constraint: int) -> tuple:
    n = len(rows)
    return (
        rows.astype(np.int64),
        np.full(n, order, dtype=np.int64),
        np.full(n, kind, dtype=np.int64),
        np.full(n, fld, dtype=np.int64),
        np.full(n, constraint, dtype=np.int64),
    )


def _typed_columns(fl_field: Any, col: _Column) -> dict[str, Any]:
    """The rules' view of a column: float64 numbers, pandas boolean, categorical text."""
    name = fl_field.name
    kind = fl_field.type
    numeric = kind in {"number", "integer"}
    if not col.typed:
        empty: dict[str, Any] = {name: np.zeros(0) if numeric else pd.Categorical([])}
        if kind == "number":
            empty[f"__nonfinite__{name}"] = np.zeros(0, dtype=bool)
        return empty
    if numeric:
        out: dict[str, Any] = {name: np.concatenate(col.typed).astype(np.float64)}
        if kind == "number":
            out[f"__nonfinite__{name}"] = np.concatenate(col.nonfinite)
        return out
    merged = col.typed[0] if len(col.typed) == 1 else union_categoricals(col.typed)
    merged = merged.remove_unused_categories()
    if kind == "boolean":
        values = np.asarray(merged.astype(object), dtype=object)
        return {name: pd.array([None if pd.isna(v) else bool(v) for v in values], "boolean")}
    return {name: merged}


# ---------------------------------------------------------------------------------------
# errors


def _cell_errors(parsed: _Parsed) -> list[tuple[int, int, Any]]:
    """Cell-level errors (first LIMIT_ERRORS), as (row, rank, maker)."""
    if not parsed.records:
        return []
    merged = tuple(np.concatenate([r[i] for r in parsed.records]) for i in range(5))
    order = np.lexsort((merged[1], merged[0]))[:LIMIT_ERRORS]
    fields = list(parsed.fl_resource.schema.fields)
    out: list[tuple[int, int, Any]] = []
    for i in order.tolist():
        row, rank, kind, j, k = (int(a[i]) for a in merged)
        if kind == _BLANK_ROW:
            out.append((row, rank, lambda row=row: _error("blank-row", note="", row_number=row)))
            continue
        fl_field = fields[j]
        common = {
            "row_number": row,
            "cell": parsed.cells.get((row, j), "None"),
            "field_name": fl_field.name,
            "field_number": j + 1,
        }
        if kind == _TYPE:
            note = f'type is "{fl_field.type}/{fl_field.format}"'
            out.append(
                (row, rank, lambda c=common, note=note: _error("type-error", note=note, **c))
            )
        elif kind == _CONSTRAINT:
            names = [c for c in fl_field.supported_constraints if c in fl_field.constraints]
            name = names[k]
            note = f'constraint "{name}" is "{fl_field.constraints[name]}"'
            out.append(
                (row, rank, lambda c=common, note=note: _error("constraint-error", note=note, **c))
            )
        else:
            common["cell"] = ""
            out.append((row, rank, lambda c=common: _error("missing-cell", note="", **c)))
    return out


def _resource_errors(parsed: _Parsed, lookups: dict[str, _Parsed]) -> list[dict[str, Any]]:
    """All errors of one fast-path resource, as frictionless would list them."""
    cell = _cell_errors(parsed)
    keys = _key_errors(parsed, lookups)
    # within a row: cell errors, then unique, primary key, foreign keys (frictionless order)
    combined = sorted(
        [(r, 0, rank, make) for r, rank, make in cell]
        + [(r, 1, rank, make) for r, rank, make in keys],
        key=lambda t: (t[0], t[1], t[2]),
    )
    errors = [make() for *_, make in combined[:LIMIT_ERRORS]]
    if parsed.n_cell_errors + len(keys) < LIMIT_ERRORS:
        errors += _end_errors(parsed)
    return errors


def _end_errors(parsed: _Parsed) -> list[dict[str, Any]]:
    """hash-count and byte-count, checked after the last row as frictionless does."""
    from frictionless import helpers

    out: list[dict[str, Any]] = []
    declared_hash = parsed.fl_resource.hash
    if declared_hash:
        algorithm, expected = helpers.parse_resource_hash_v1(declared_hash)
        actual = parsed.stats.get(algorithm) if algorithm in {"md5", "sha256"} else None
        if actual and actual != expected:
            note = f'expected is "{expected}" and actual is "{actual}"'
            out.append(_error("hash-count", note=note))
    declared_bytes = parsed.fl_resource.bytes
    if declared_bytes and declared_bytes != parsed.stats["bytes"]:
        note = f'expected is "{declared_bytes}" and actual is "{parsed.stats["bytes"]}"'
        out.append(_error("byte-count", note=note))
    return out


# ---------------------------------------------------------------------------------------
# entry point


def _needed_keys(fl_package: Any) -> dict[str, set[str]]:
    """Fields whose parsed values the key checks need, per resource."""
    needed: dict[str, set[str]] = {r.name: set() for r in fl_package.resources}
    for res in fl_package.resources:
        schema = res.schema
        mine = needed[res.name]
        mine |= {f.name for f in schema.fields if f.constraints.get("unique")}
        mine |= set(schema.primary_key)
        for fk in schema.foreign_keys:
            mine |= set(fk["fields"])
            ref = fk["reference"]["resource"] or res.name
            if ref in needed:
                needed[ref] |= set(fk["reference"]["fields"])
    return needed


def validate_tables(package: Package, fl_package: Any) -> TableResult:
    """Validate every resource's rows; frictionless for what the fast path cannot do.

    ``fl_package`` is the frictionless Package built from the vetted descriptor (see
    ``checks.frictionless_descriptor``), already checked for descriptor errors.
    """
    from frictionless import FrictionlessException

    result = TableResult()
    needed = _needed_keys(fl_package)
    parsed: dict[str, _Parsed] = {}
    for fl_resource in fl_package.resources:
        name = fl_resource.name
        resource = package.resources.get(name)
        if resource is None:
            result.fallback[name] = "not in the vetted package"
            continue
        try:
            fl_resource.to_descriptor(validate=True)
        except FrictionlessException:
            result.fallback[name] = "resource metadata error"
            continue
        try:
            parsed[name] = _read_resource(resource, fl_resource, needed.get(name, set()))
        except FallbackError as exc:
            result.fallback[name] = str(exc)
    # a foreign key to a resource off the fast path: frictionless does both
    changed = True
    while changed:
        changed = False
        for name in list(parsed):
            schema = parsed[name].fl_resource.schema
            for fk in schema.foreign_keys:
                ref = fk["reference"]["resource"] or name
                if ref not in parsed:
                    result.fallback[name] = f"foreign key to {ref!r}, validated by frictionless"
                    del parsed[name]
                    changed = True
                    break
    for fl_resource in fl_package.resources:
        name = fl_resource.name
        if name in parsed:
            result.errors[name] = _resource_errors(parsed[name], parsed)
            result.frames[name] = parsed[name].typed  # type: ignore[assignment]
            assert result.parsable is not None
            result.parsable.add(name)
        else:
            report = fl_resource.validate()
            descriptors = [e.to_descriptor() for e in report.errors]
            for task in report.tasks:
                descriptors += [e.to_descriptor() for e in task.errors]
            result.errors[name] = descriptors
            if not breaks_rows(descriptors) and name in package.resources:
                assert result.parsable is not None
                result.parsable.add(name)
    return result


#: frictionless error types after which a resource's rows cannot be trusted (for the
#: cross-table rules): the file could not be read as a table, or cells left their columns
STRUCTURAL_ERRORS = frozenset(
    {
        "source-error",
        "scheme-error",
        "format-error",
        "encoding-error",
        "compression-error",
        "resource-error",
        "schema-error",
        "field-error",
        "dialect-error",
        "extra-cell",
    }
)


def breaks_rows(descriptors: list[dict[str, Any]]) -> bool:
    """True when these frictionless error descriptors make the resource's rows unusable."""
    return any(
        d.get("type") in STRUCTURAL_ERRORS or "#header" in (d.get("tags") or [])
        for d in descriptors
    )
