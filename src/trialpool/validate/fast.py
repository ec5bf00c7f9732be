"""Vectorised Table Schema validation with frictionless semantics (the fast path).

``validate_tables`` checks what ``frictionless validate`` checks on a CSV data package
(types, ``required``, ``enum``, ``minimum``/``maximum``, ``minLength``/``maxLength``,
``pattern``, ``unique``, primary and foreign keys, ``bytes`` and ``hash``, missing
cells and blank rows) column-wise with pandas, and reports the same errors at the same
(resource, row, field) locations, in the same order, with frictionless' limit of 1000
errors per resource. frictionless stays the reference; a test runs both on a corpus of
broken packages and compares verdicts and locations.

How it stays faithful:

* the descriptor and its resources' metadata are validated by frictionless itself (once,
  with the package); the encoding is detected and the CSV dialect sniffed with
  frictionless' own code on the same sample, so the file is split into the same records;
* each file is read in streaming passes: one for its size and the bytes of note (quote
  and escape characters, NUL, empty lines), with the declared hash computed beside it in
  a thread; one for the cells. The cells are read by pyarrow's streaming CSV reader
  (blocks of ``ARROW_BLOCK_BYTES``) when it splits the file as Python's ``csv`` module
  (frictionless' parser) does: UTF-8, and every record of the schema's width. A file
  with no quote character is split at line ends by both, and pyarrow refuses a record
  of another width; any other file is first split by the ``csv`` module, and each
  record's total cell length must then match pyarrow's cells. Everything else (short
  records, other encodings and dialects) is read by pandas' C parser in chunks of
  ``CHUNK_ROWS``, against the record shapes taken with numpy or the ``csv`` module. The
  parsers must agree on every record, or the resource is handed to frictionless;
* frictionless guesses the header row from the widths of the first 100 records; the
  same guess is made (with its own detector) and anything but row 1 is handed over;
* a cell is parsed once per distinct value of its column in the whole file (values new
  in a block are matched in pyarrow, and only those become Python strings): by
  frictionless' own cell reader (``Field.read_cell``: missing values, type, constraints)
  when there are few distinct values, or by vectorised code written to the same rules
  (``int()``, ``Decimal()``, ``re.match('^...$')``; numbers recognised and converted by
  pyarrow) otherwise, with frictionless' reader for any value outside the plain ASCII
  forms;
* unique, primary-key and foreign-key checks compare parsed values, as frictionless
  does (``4`` and ``4.0`` are the same number; an empty key cell is ``None``).

Anything unusual hands the resource to frictionless (``Resource.validate``, which
gives exactly the reference's errors): a header that is not the schema's field names,
rows with extra cells, NUL bytes, undecodable bytes, non-CSV formats, compression,
dialect options beyond delimiter/quote/escape, a foreign key to such a resource. The
result records which resources went that way (``TableResult.fallback``).

The engine is split by job: this module drives it (which resources take the fast path
and which reader, the read of each resource block by block, the errors in frictionless'
order and limit); :mod:`trialpool.validate.fast_read` reads a file (bytes and hashes,
encoding, dialect, record shapes, pyarrow blocks, pandas chunks) and parses cells;
:mod:`trialpool.validate.fast_keys` checks unique, primary and foreign keys.
``FallbackError``, ``detect_encoding`` and ``sniff_dialect`` are importable from here too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import pandas as pd

from trialpool.package.loader import Package, Resource
from trialpool.validate.fast_keys import _error, _is_none, _Key, _key_errors
from trialpool.validate.fast_read import (
    _BYTE_SAFE,
    ArrowReadError,
    FallbackError,
    Prefetch,
    _arrow_chunks,
    _Block,
    _chunks,
    _field_missing_values,
    _file_stats,
    _read_vectorised,
    _read_with_frictionless,
    _Results,
    _shapes,
    _shapes_unquoted,
    _vectorisable,
    arrow_readable,
    detect_encoding,
    sniff_dialect,
)
from trialpool.validate.fast_read import BUFFER_SIZE as BUFFER_SIZE
from trialpool.validate.fast_read import CHUNK_ROWS as CHUNK_ROWS
from trialpool.validate.fast_read import SAMPLE_LINES as SAMPLE_LINES
from trialpool.validate.rules import NONFINITE, OUT_OF_RANGE

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
    validated by frictionless instead, with the reason; ``readers`` which parser read the
    cells of each fast-path resource (``arrow``: pyarrow's CSV reader; ``pandas``: pandas'
    C parser, for records of other widths or encodings pyarrow does not read).
    """

    package_errors: list[dict[str, Any]] = field(default_factory=list)
    errors: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    parsable: set[str] | None = field(default_factory=set)
    fallback: dict[str, str] = field(default_factory=dict)
    readers: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------
# reading one resource


class _Column:
    """One field over all rows: its distinct raw values (across all blocks), each parsed
    once, and a code per row into them (-1 for a missing cell of a short record)."""

    def __init__(self, fl_field: Any, missing_values: set[str], with_lengths: bool) -> None:
        self.fl_field = fl_field
        self.missing_values = missing_values
        self.with_lengths = with_lengths
        self.values = np.empty(0, dtype=object)
        self.index: pd.Index | None = None
        self.res: _Results | None = None
        self.none = np.zeros(0, dtype=bool)
        self.lengths = np.zeros(0, dtype=np.int64)
        self.codes: list[np.ndarray] = []
        self.arrow: Any = None  # the distinct values as an Arrow array (pyarrow blocks)

    def add(self, codes: np.ndarray, uniques: Any) -> np.ndarray:
        """The codes of one block (into the block's ``uniques``) as codes into ``values``;
        values not seen before are parsed."""
        if isinstance(uniques, np.ndarray):
            if len(self.values):
                if self.index is None:  # built when a second block comes
                    self.index = pd.Index(self.values, dtype=object)
                where = self.index.get_indexer(uniques)
            else:
                where = np.full(len(uniques), -1, dtype=np.intp)
            fresh = where < 0
            new = uniques[fresh]
            added = None
        else:  # an Arrow string array: matched in Arrow, only new values made Python
            import pyarrow as pa
            import pyarrow.compute as pc

            if self.arrow is None:
                found = pa.nulls(len(uniques), type=pa.int32())
            else:
                found = pc.index_in(uniques, value_set=self.arrow)
            fresh = found.is_null().to_numpy(zero_copy_only=False)
            where = found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.intp)
            added = uniques.filter(pa.array(fresh))
            new = np.asarray(added.to_numpy(zero_copy_only=False), dtype=object)
            if len(new):
                parts = [added] if self.arrow is None else [self.arrow, added]
                self.arrow = pa.concat_arrays(parts)
        first = not len(self.values)
        if len(new):
            res = _results_for(self.fl_field, new, self.missing_values, added)
            where[fresh] = len(self.values) + np.arange(len(new))
            self.values = np.concatenate([self.values, new])
            self.index = None
            self.res = res if self.res is None else _concat_results(self.res, res)
            self.none = np.concatenate([self.none, _is_none(res.key)])
            if self.with_lengths:
                lens = [len(u) if isinstance(u, str) else 0 for u in new]
                self.lengths = np.concatenate([self.lengths, np.asarray(lens, dtype=np.int64)])
        if first:  # every value is new, in the block's order: the codes stay as they are
            return codes
        return where[codes]


def _concat_results(a: _Results, b: _Results) -> _Results:
    return _Results(
        np.concatenate([a.type_error, b.type_error]),
        {c: np.concatenate([a.fails[c], b.fails[c]]) for c in a.fails},
        np.concatenate([a.key, b.key]),
        np.concatenate([a.typed, b.typed]),
        np.concatenate([a.nonfinite, b.nonfinite]),
        np.concatenate([a.overflow, b.overflow]),
    )


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
    reader: str = "pandas"  # which parser read the cells: "arrow" or "pandas"


# kept here, beside DISTINCT_READER_LIMIT, which the tests lower on this module
def _results_for(
    fl_field: Any, uniques: np.ndarray, missing_values: set[str], arrow: Any = None
) -> _Results:
    """Results per distinct value: frictionless' reader, or vectorised when many
    (``arrow``: the same values as a pyarrow array, when the file was read by pyarrow)."""
    if _vectorisable(fl_field) and len(uniques) > DISTINCT_READER_LIMIT:
        return _read_vectorised(fl_field, uniques, missing_values, arrow)
    return _read_with_frictionless(fl_field, uniques, fl_field.type in {"number", "integer"})


def _hash_algorithms(fl_resource: Any) -> tuple[str, ...]:
    """The hash the descriptor declares, if it is one the fast path computes."""
    from frictionless import helpers

    declared = fl_resource.hash
    if not declared:
        return ()
    algorithm, _ = helpers.parse_resource_hash_v1(declared)
    return (algorithm,) if algorithm in {"md5", "sha256"} else ()


def _read_resource(
    resource: Resource, fl_resource: Any, needed_keys: set[str], prefetch: Prefetch | None = None
) -> _Parsed:
    """Read one CSV on the fast path (or raise FallbackError).

    pyarrow's CSV reader reads the cells whenever it splits the file as Python's csv
    module does: a file without quote characters is tried directly (pyarrow itself
    refuses a record of another width); otherwise the shapes of the records are taken
    first and pyarrow is used when every record has the schema's width (then the cell
    lengths of each record must match too). pandas' C parser reads anything else, and
    whatever pyarrow read otherwise than the csv module.
    """
    if fl_resource.format != "csv" or fl_resource.compression or fl_resource.innerpath:
        raise FallbackError("not a plain CSV file")
    for key in ("rows", "fields"):
        if key in resource.descriptor:
            raise FallbackError(f"descriptor declares {key!r}")
    path = resource.path
    if not path.is_file():
        raise FallbackError("file not found")
    fl_fields = list(fl_resource.schema.fields)
    # an empty line is a blank row either way when "" is missing in every field
    empty_missing = all("" in _field_missing_values(f) for f in fl_fields)
    stats = _file_stats(path, _hash_algorithms(fl_resource), blank_lines=not empty_missing)
    if stats["bytes"] == 0:
        raise FallbackError("empty file")
    encoding = detect_encoding(path, fl_resource)
    dialect = sniff_dialect(path, encoding, fl_resource)
    width = len(fl_fields)
    if width == 0:
        raise FallbackError("header or rows wider or narrower than the schema")
    arrow = arrow_readable(encoding, dialect, stats)
    quick = (
        dialect.quotechar == '"'
        and dialect.escapechar is None
        and ord('"') not in stats["special"]
        and encoding in _BYTE_SAFE
        and dialect.delimiter.isascii()
    )
    prefetched = prefetch.take(path, dialect.delimiter, width, stats["bytes"]) if prefetch else None
    if quick and arrow:  # records are lines; pyarrow refuses any of another width
        try:
            return _parse(
                resource,
                fl_resource,
                needed_keys,
                stats,
                None,
                None,
                "arrow",
                _arrow_chunks(
                    path, dialect, width, quoted=False, size=stats["bytes"], prefetched=prefetched
                ),
            )
        except ArrowReadError:
            pass
    if quick:  # no quoting: records are lines, counted with numpy
        counts, lengths = _shapes_unquoted(path, dialect.delimiter), None
    else:
        counts, lengths = _shapes(path, encoding, dialect)
    if len(counts) == 0 or counts[0] != width or (counts > width).any():
        raise FallbackError("header or rows wider or narrower than the schema")
    if arrow and (counts == width).all():
        try:
            return _parse(
                resource,
                fl_resource,
                needed_keys,
                stats,
                counts,
                lengths,
                "arrow",
                _arrow_chunks(path, dialect, width, quoted=not quick, size=stats["bytes"]),
            )
        except ArrowReadError:
            pass
    return _parse(
        resource,
        fl_resource,
        needed_keys,
        stats,
        counts,
        lengths,
        "pandas",
        _chunks(path, encoding, dialect, width),
    )


def _check_header_row(fl_resource: Any, counts: np.ndarray) -> None:
    """frictionless guesses the header row from the widths of the first records."""
    sample = [[""] * int(c) for c in counts[: fl_resource.detector.sample_size]]
    probe = fl_resource.detector.detect_dialect(sample, dialect=fl_resource.dialect.to_copy())
    if probe.header is not True or list(probe.header_rows) != [1]:
        raise FallbackError("frictionless would take another row as the header")


def _parse(
    resource: Resource,
    fl_resource: Any,
    needed_keys: set[str],
    stats: dict[str, Any],
    counts: np.ndarray | None,
    lengths: np.ndarray | None,
    reader: str,
    blocks: Iterator[_Block],
) -> _Parsed:
    """Parse the cells of every block; ``counts`` (cells per record) is None when every
    record has the schema's width; ``lengths`` (total cell length per record, by the csv
    module) is checked against the blocks' cells when given."""
    fl_fields = list(fl_resource.schema.fields)
    names = [f.name for f in fl_fields]
    width = len(fl_fields)
    if counts is not None:
        _check_header_row(fl_resource, counts)
    # where pyarrow and the csv module disagree, pandas' parser is tried next
    disagree: type[Exception] = ArrowReadError if reader == "arrow" else FallbackError
    parsed = _Parsed(resource, fl_resource, stats=stats, reader=reader)
    columns = [_Column(f, _field_missing_values(f), lengths is not None) for f in fl_fields]
    seen = 0
    blank_parts: list[np.ndarray] = []
    for block in blocks:
        start = seen
        seen += block.n
        if counts is not None and seen > len(counts):
            raise disagree("the cell reader and csv disagree on the number of records")
        first_row = 2 if start == 0 else start + 1
        skip = 1 if start == 0 else 0  # the header
        n = block.n - skip
        if start == 0 and block.first() != names:
            raise FallbackError("header differs from the schema's field names")
        if n <= 0:
            continue
        rows = np.arange(first_row, first_row + n, dtype=np.int64)
        chunk_counts = counts[rows - 1] if counts is not None else None
        total = np.zeros(n, dtype=np.int64)
        # rows that are blank so far (None: no blank row in this block)
        blank: np.ndarray | None = np.ones(n, dtype=bool)
        recs: list[tuple[np.ndarray, ...]] = []
        for j, fl_field in enumerate(fl_fields):
            col = columns[j]
            codes = col.add(*block.column(j, skip))
            res = cast(_Results, col.res)  # set by add: a block has rows, so values
            if lengths is not None:
                total += col.lengths[codes]
            # a missing cell (short row) is read as None, not as ""
            missing_cell = chunk_counts <= j if chunk_counts is not None else None
            short = missing_cell is not None and bool(missing_cell.any())
            # per-row flags only where some distinct value (or a short row) raises them
            type_error = res.type_error[codes] if short or res.type_error.any() else None
            fails = {c: arr[codes] if short or arr.any() else None for c, arr in res.fails.items()}
            may_be_none = short or bool(col.none.any())
            is_none = col.none[codes] if blank is not None and may_be_none else None
            if missing_cell is not None and short:
                if type_error is not None:
                    type_error[missing_cell] = False
                for flags in fails.values():
                    if flags is not None:
                        flags[missing_cell] = False
                required = fails.get("required")
                if fl_field.constraints.get("required") and required is not None:
                    required[missing_cell] = True
                if is_none is not None:
                    is_none[missing_cell] = True
                codes = codes.copy()
                codes[missing_cell] = -1
                idx = np.flatnonzero(missing_cell)
                recs.append(_rec(rows[idx], 10_000 + j, _MISSING_CELL, j, -1))
            col.codes.append(codes)
            if blank is not None:
                if is_none is None:
                    blank = None
                else:
                    blank &= is_none if type_error is None else is_none & ~type_error
                    if not blank.any():
                        blank = None
            if type_error is not None:
                idx = np.flatnonzero(type_error)
                if len(idx):
                    recs.append(_rec(rows[idx], j * 64, _TYPE, j, -1))
            for k, flags in enumerate(fails.values()):
                if flags is None:
                    continue
                idx = np.flatnonzero(flags)
                if len(idx):
                    recs.append(_rec(rows[idx], j * 64 + 1 + k, _CONSTRAINT, j, k))
        # the two parsers must agree on every record
        if lengths is not None and not np.array_equal(total, lengths[rows - 1]):
            raise disagree("the cell reader and csv split a record differently")
        blank = np.zeros(n, dtype=bool) if blank is None else blank
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
                        code = columns[j].codes[-1][row - first_row]
                        parsed.cells[(row, j)] = (
                            "None" if code < 0 else str(columns[j].values[code])
                        )
    if counts is None:
        _check_header_row(fl_resource, np.full(min(seen, 10_000), width, dtype=np.int64))
    elif seen != len(counts):
        raise disagree("the cell reader and csv disagree on the number of records")
    parsed.rows = max(0, seen - 1)
    parsed.blank = np.concatenate(blank_parts) if blank_parts else np.zeros(0, dtype=bool)
    frame: dict[str, Any] = {}
    for j, fl_field in enumerate(fl_fields):
        col = columns[j]
        codes = np.concatenate(col.codes) if col.codes else np.zeros(0, dtype=np.intp)
        col.codes = []
        if fl_field.name in needed_keys:
            values = np.append(col.res.key if col.res is not None else [], None)
            parsed.keys[fl_field.name] = _Key.from_parts(
                [(np.where(codes >= 0, codes, len(values) - 1), values)]
            )
        frame.update(_typed_columns(fl_field, col, codes))
    # copy=False: each column its own block (no consolidation, which copies them)
    parsed.typed = pd.DataFrame(frame, index=pd.RangeIndex(parsed.rows), copy=False)
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


def _typed_columns(fl_field: Any, col: _Column, codes: np.ndarray) -> dict[str, Any]:
    """The rules' view of a column: float64 numbers (with a ``NONFINITE`` flag column for
    numbers and an ``OUT_OF_RANGE`` one for integers), pandas boolean, categorical text.
    ``codes`` index the column's distinct values, one per row (-1: a missing cell)."""
    name = fl_field.name
    kind = fl_field.type
    res = col.res
    flag = {"number": NONFINITE, "integer": OUT_OF_RANGE}.get(kind)
    if kind in {"number", "integer"}:
        if res is None:
            typed, flags = np.zeros(0), np.zeros(0, dtype=bool)
        else:
            marks = res.nonfinite if kind == "number" else res.overflow
            values = res.typed.astype(np.float64)
            if (codes < 0).any():  # missing cells: NaN, not flagged
                codes = np.where(codes >= 0, codes, len(values))
                values, marks = np.append(values, np.nan), np.append(marks, False)
            typed, flags = values[codes], marks[codes]
        out: dict[str, Any] = {name: typed}
        if flag:
            out[f"{flag}{name}"] = flags
        return out
    if res is None:
        return {name: pd.Categorical([])}
    # text or boolean: a categorical of the distinct parsed values
    if kind == "string" and fl_field.format in (None, "default"):  # str or None already
        shown = res.typed
    else:  # booleans as they are, dates and others as text
        shown = np.array(
            [v if v is None or isinstance(v, str | bool) else str(v) for v in res.typed],
            dtype=object,
        )
    value_codes, categories = pd.factorize(shown)
    if (codes < 0).any():  # missing cells
        row_codes = np.append(value_codes, -1)[np.where(codes >= 0, codes, len(value_codes))]
    else:
        row_codes = value_codes[codes]
    # the codes index the categories by construction: not checked again row by row
    merged = pd.Categorical.from_codes(
        row_codes, categories=pd.Index(categories, dtype=object), validate=False
    )
    if len(categories) and (codes < 0).any():  # a value may be in missing cells only
        merged = merged.remove_unused_categories()
    if kind == "boolean":
        truth = pd.array([bool(v) for v in merged.categories] + [pd.NA], dtype="boolean")
        return {name: truth[np.where(merged.codes >= 0, merged.codes, len(truth) - 1)]}
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
        digests = parsed.stats["digests"]
        actual = digests.get(algorithm) if algorithm in {"md5", "sha256"} else None
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


def start_prefetch(package: Package) -> Prefetch:
    """Start reading the package's large CSV files with pyarrow in the background (see
    ``fast_read.Prefetch``); call before the descriptor is handed to frictionless."""
    prefetch = Prefetch()
    for resource in package.resources.values():
        fields = resource.schema.get("fields")
        if isinstance(fields, list) and str(resource.path).lower().endswith(".csv"):
            prefetch.start(resource.path, len(fields))
    return prefetch


#: resources are read by this many threads (pyarrow, numpy and hashlib release the GIL)
READ_THREADS = 2
#: ... when their files hold at least this many bytes together: below it, threads cost
#: more than they save (a small review validates in about 15% less CPU time without them,
#: which counts when a corpus audit runs one worker process per core)
THREADS_MIN_BYTES = 8 * 1024 * 1024


def _read_all(
    jobs: dict[str, tuple[Resource, Any]],
    needed: dict[str, set[str]],
    prefetch: Prefetch | None = None,
) -> dict[str, _Parsed | FallbackError]:
    """Read every resource on the fast path, the largest files first, ``READ_THREADS`` at
    a time (one at a time for small packages: ``THREADS_MIN_BYTES``); a resource the fast
    path cannot read gives its FallbackError."""
    from concurrent.futures import ThreadPoolExecutor

    def read(name: str) -> _Parsed | FallbackError:
        resource, fl_resource = jobs[name]
        try:
            return _read_resource(resource, fl_resource, needed.get(name, set()), prefetch)
        except FallbackError as exc:
            return exc

    def size(name: str) -> int:
        try:
            return jobs[name][0].path.stat().st_size
        except OSError:
            return 0

    sizes = {name: size(name) for name in jobs}
    order = sorted(jobs, key=sizes.__getitem__, reverse=True)
    if READ_THREADS < 2 or len(order) < 2 or sum(sizes.values()) < THREADS_MIN_BYTES:
        return {name: read(name) for name in jobs}
    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        done = dict(zip(order, pool.map(read, order), strict=True))
    return {name: done[name] for name in jobs}


def validate_tables(
    package: Package, fl_package: Any, prefetch: Prefetch | None = None
) -> TableResult:
    """Validate every resource's rows; frictionless for what the fast path cannot do.

    ``fl_package`` is the frictionless Package built from the vetted descriptor (see
    ``checks.frictionless_descriptor``), already checked for descriptor errors;
    ``prefetch`` holds reads of large files started beforehand (``start_prefetch``).
    """

    result = TableResult()
    needed = _needed_keys(fl_package)
    jobs: dict[str, tuple[Resource, Any]] = {}
    for fl_resource in fl_package.resources:
        name = fl_resource.name
        resource = package.resources.get(name)
        if resource is None:
            result.fallback[name] = "not in the vetted package"
            continue
        # each resource's metadata was validated with the package's (frictionless
        # validates a package's resources as part of it): not validated again here
        jobs[name] = (resource, fl_resource)
    parsed: dict[str, _Parsed] = {}
    for name, outcome in _read_all(jobs, needed, prefetch).items():
        if isinstance(outcome, FallbackError):
            result.fallback[name] = str(outcome)
        else:
            parsed[name] = outcome
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
            result.readers[name] = parsed[name].reader
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
