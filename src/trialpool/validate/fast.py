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
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from trialpool.package.loader import Package, Resource

#: frictionless' default limit of errors per resource
LIMIT_ERRORS = 1000
#: at most this many distinct values per column are read with frictionless' reader
DISTINCT_READER_LIMIT = 1_000
#: rows per pandas chunk
CHUNK_ROWS = 200_000
#: frictionless reads this many bytes to detect the encoding, this many lines to sniff
BUFFER_SIZE = 100_000
SAMPLE_LINES = 100

_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INTEGER = re.compile(r"[+-]?[0-9]{1,18}")

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


class FallbackError(Exception):
    """This resource is validated by frictionless instead (the reason is the message)."""


def _error(kind: str, **options: Any) -> dict[str, Any]:
    """A frictionless error descriptor, made by frictionless' own error class."""
    from frictionless import errors

    classes = {
        "type-error": errors.TypeError,
        "constraint-error": errors.ConstraintError,
        "missing-cell": errors.MissingCellError,
        "unique-error": errors.UniqueError,
        "blank-row": errors.BlankRowError,
        "primary-key": errors.PrimaryKeyError,
        "foreign-key": errors.ForeignKeyError,
        "hash-count": errors.HashCountError,
        "byte-count": errors.ByteCountError,
    }
    cls = classes[kind]
    if kind in {"hash-count", "byte-count"}:
        return dict(cls(note=options["note"]).to_descriptor())
    options.setdefault("cells", [])
    return dict(cls(**options).to_descriptor())


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
# reading one file


@dataclass
class _Column:
    """Per-cell results of one field over all rows."""

    typed: list[Any] = field(default_factory=list)
    nonfinite: list[np.ndarray] = field(default_factory=list)
    keys: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)


@dataclass
class _Key:
    """Parsed values of one field for the key checks: a code per row, the distinct values.

    Codes are equal exactly when frictionless' parsed values are equal (``None`` for an
    empty or invalid cell is one value; each NaN is its own).
    """

    codes: np.ndarray  # int64, one per row
    values: np.ndarray  # object, indexed by code

    @classmethod
    def from_parts(cls, parts: list[tuple[np.ndarray, np.ndarray]]) -> _Key:
        """Merge per-chunk (row codes, distinct values) into one code space."""
        if not parts:
            return cls(np.zeros(0, dtype=np.int64), np.empty(0, dtype=object))
        offsets = np.cumsum([0] + [len(v) for _, v in parts])
        merged = np.concatenate([v for _, v in parts])
        codes, values = pd.factorize(pd.Series(merged, dtype=object), use_na_sentinel=False)
        rows = np.concatenate([codes[off + c] for (c, _), off in zip(parts, offsets, strict=False)])
        # factorize turns None into NaN; a NaN number is a _Nan object, so NaN means None
        distinct = np.array(
            [None if isinstance(v, float) and v != v else v for v in values], dtype=object
        )
        return cls(rows.astype(np.int64), distinct)

    @property
    def none(self) -> np.ndarray:
        """Per row: the parsed value is None."""
        return _is_none(self.values)[self.codes] if len(self.values) else np.zeros(0, bool)

    def value(self, row: int) -> Any:
        return self.values[self.codes[row]]


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


def _file_stats(path: Path) -> dict[str, Any]:
    """Bytes, md5 and sha256 of a file, read in chunks; the bytes it contains of note."""
    md5 = hashlib.md5(usedforsecurity=False)
    sha = hashlib.sha256()
    size = 0
    seen: set[int] = set()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            if b"\x00" in chunk:
                raise FallbackError("NUL byte in the file")
            seen |= {b for b in b"\"'\\" if b in chunk}
            md5.update(chunk)
            sha.update(chunk)
            size += len(chunk)
    return {"bytes": size, "md5": md5.hexdigest(), "sha256": sha.hexdigest(), "special": seen}


def detect_encoding(path: Path, fl_resource: Any) -> str:
    with path.open("rb") as handle:
        buffer = handle.read(BUFFER_SIZE)
    encoding = fl_resource.detector.detect_encoding(
        buffer, encoding=fl_resource.get_defined("encoding")
    )
    return str(codecs.lookup(encoding).name if encoding != "utf-8-sig" else encoding)


def sniff_dialect(path: Path, encoding: str, fl_resource: Any) -> csv.Dialect:
    """The csv dialect frictionless uses for this file (same sample, same sniffing)."""
    from frictionless.formats.csv.control import CsvControl

    dialect = fl_resource.dialect
    if (
        dialect.header is not True
        or list(dialect.header_rows) != [1]
        or dialect.comment_char
        or dialect.comment_rows
        or dialect.skip_blank_rows
        or dialect.header_case is not True
    ):
        raise FallbackError("dialect options beyond the CSV basics")
    control = CsvControl.from_dialect(dialect)
    if control.null_sequence is not None:
        raise FallbackError("CSV nullSequence")
    sample: list[str] = []
    try:
        with open(path, encoding=encoding, newline="") as handle:
            for line in handle:
                sample.append(line)
                if len(sample) >= SAMPLE_LINES:
                    break
    except UnicodeDecodeError as exc:
        raise FallbackError("undecodable bytes") from exc
    delimiter = control.get_defined("delimiter", default=",\t;|")
    try:
        config = csv.Sniffer().sniff("".join(sample), delimiter)
    except csv.Error:
        config = csv.excel()  # type: ignore[assignment]
    if config.quotechar == "'":
        config.quotechar = '"'
    control.set_not_defined("delimiter", config.delimiter, distinct=True)
    control.set_not_defined("line_terminator", config.lineterminator, distinct=True)
    control.set_not_defined("escape_char", config.escapechar, distinct=True)
    control.set_not_defined("quote_char", config.quotechar, distinct=True)
    control.set_not_defined("skip_initial_space", config.skipinitialspace, distinct=True)
    py = control.to_python()
    if py.quoting != csv.QUOTE_MINIMAL or len(py.delimiter) != 1:
        raise FallbackError("CSV quoting other than minimal")
    return py


#: encodings in which delimiter and line-end bytes cannot occur inside a character
_BYTE_SAFE = {"utf-8", "utf-8-sig", "ascii", "latin-1", "iso8859-1", "cp1252", "iso8859-15"}


def _count_records(data: np.ndarray, delim: int) -> tuple[np.ndarray, int]:
    """Cell counts of the records in ``data`` that end with a line end; bytes consumed."""
    is_cr = data == 13
    is_lf = data == 10
    after_cr = np.zeros(len(data), dtype=bool)
    after_cr[1:] = is_cr[:-1]
    ends = np.flatnonzero(is_cr | (is_lf & ~after_cr))
    if len(ends) == 0:
        return np.zeros(0, dtype=np.int64), 0
    crlf = np.zeros(len(ends), dtype=bool)
    inside = ends + 1 < len(data)
    crlf[inside] = is_cr[ends[inside]] & is_lf[ends[inside] + 1]
    nxt = ends + np.where(crlf, 2, 1)
    starts = np.concatenate([[0], nxt[:-1]])
    where = np.flatnonzero(data == delim)
    n_delims = np.searchsorted(where, ends) - np.searchsorted(where, starts)
    counts = np.where(ends == starts, 0, n_delims + 1)
    return counts.astype(np.int64), int(nxt[-1])


def _shapes_unquoted(path: Path, delimiter: str, block: int = 1 << 24) -> np.ndarray:
    """Cell count of every record of a file without quote or escape characters.

    Without quoting, Python's csv module ends a record at ``\n``, ``\r\n`` or a lone
    ``\r`` and splits it at each delimiter (an empty line is a record of no cells), so
    the counts follow from byte positions, found with numpy block by block.
    """
    delim = ord(delimiter)
    parts: list[np.ndarray] = []
    leftover = b""
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(block), b""):
            buf = leftover + chunk
            # a final \r may be the first half of a \r\n: keep it for the next block
            usable = len(buf) - 1 if buf.endswith(b"\r") else len(buf)
            counts, used = _count_records(np.frombuffer(buf, dtype=np.uint8)[:usable], delim)
            parts.append(counts)
            leftover = buf[used:]
    if leftover:
        data = np.frombuffer(leftover, dtype=np.uint8)
        counts, used = _count_records(data, delim)
        parts.append(counts)
        rest = data[used:]
        if len(rest):  # the last record has no line end
            parts.append(np.array([int(np.sum(rest == delim)) + 1], dtype=np.int64))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _shapes(path: Path, encoding: str, dialect: csv.Dialect) -> tuple[np.ndarray, np.ndarray]:
    """Cell count and total cell length of every record, by Python's csv module."""
    join = "".join
    try:
        with open(path, encoding=encoding, newline="") as handle:
            shapes = [(len(r), len(join(r))) for r in csv.reader(handle, dialect=dialect)]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise FallbackError(f"csv module: {type(exc).__name__}") from exc
    array = np.asarray(shapes, dtype=np.int64).reshape(-1, 2)
    return array[:, 0].copy(), array[:, 1].copy()


def _chunks(path: Path, encoding: str, dialect: csv.Dialect, width: int) -> Iterator[pd.DataFrame]:
    try:
        reader = pd.read_csv(
            path,
            header=None,
            dtype=object,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            sep=dialect.delimiter,
            quotechar=dialect.quotechar,
            doublequote=dialect.doublequote,
            escapechar=dialect.escapechar,
            skipinitialspace=dialect.skipinitialspace,
            quoting=csv.QUOTE_MINIMAL,
            encoding=encoding,
            engine="c",
            chunksize=CHUNK_ROWS,
            names=list(range(width)),
        )
        with reader:
            yield from reader
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise FallbackError(f"pandas: {type(exc).__name__}") from exc


# ---------------------------------------------------------------------------------------
# cells


@dataclass
class _Results:
    """Per-distinct-value results of one field."""

    type_error: np.ndarray  # bool
    fails: dict[str, np.ndarray]  # constraint name -> bool
    key: np.ndarray  # object: parsed value for unique/keys (None when missing/invalid)
    typed: np.ndarray  # float64 or object (None when missing/invalid)
    nonfinite: np.ndarray  # bool


def _key_of(value: Any) -> Any:
    if isinstance(value, Decimal):
        if value.is_nan():
            return _Nan()
        return float(value)
    return value


class _Nan:
    """A NaN key: never equal to another (as Decimal('NaN') in frictionless' dicts)."""

    __slots__ = ()


def _read_with_frictionless(fl_field: Any, values: np.ndarray, numeric: bool) -> _Results:
    n = len(values)
    names = [c for c in fl_field.supported_constraints if c in fl_field.constraints]
    type_error = np.zeros(n, dtype=bool)
    fails = {c: np.zeros(n, dtype=bool) for c in names}
    key = np.empty(n, dtype=object)
    typed = np.full(n, np.nan) if numeric else np.empty(n, dtype=object)
    nonfinite = np.zeros(n, dtype=bool)
    read_cell = fl_field.create_cell_reader()
    for i, raw in enumerate(values):
        try:
            value, notes = read_cell(raw)
        except Exception:  # frictionless itself crashes here (e.g. "sNaN" with a minimum)
            value, notes = None, {"type": "unreadable"}
        if notes and "type" in notes:
            type_error[i] = True
            value = None
        elif notes:
            for c in notes:
                fails[c][i] = True
        key[i] = _key_of(value)
        if numeric:
            if value is not None:
                try:
                    number = float(value)
                except (OverflowError, ValueError, InvalidOperation):
                    number = np.nan
                typed[i] = number
                nonfinite[i] = not np.isfinite(number)
        else:
            typed[i] = value
    return _Results(type_error, fails, key, typed, nonfinite)


def _read_vectorised(fl_field: Any, values: np.ndarray, missing_values: set[str]) -> _Results:
    """Same results as ``_read_with_frictionless`` for number, integer and plain string."""
    kind = fl_field.type
    n = len(values)
    series = pd.Series(values, dtype=object)
    names = [c for c in fl_field.supported_constraints if c in fl_field.constraints]
    constraints = fl_field.constraints
    missing = series.isin(missing_values).to_numpy()
    fails = {c: np.zeros(n, dtype=bool) for c in names}
    if "required" in fails and constraints.get("required"):
        fails["required"] = missing.copy()
    present = ~missing
    if kind == "string":
        key = np.where(present, values, None)
        lengths = series.str.len().to_numpy()
        if "minLength" in fails:
            fails["minLength"] = present & (lengths < constraints["minLength"])
        if "maxLength" in fails:
            fails["maxLength"] = present & (lengths > constraints["maxLength"])
        if "pattern" in fails:
            matcher = re.compile("^" + str(constraints["pattern"]) + "$").match
            ok = np.fromiter((bool(matcher(v)) for v in values), dtype=bool, count=n)
            fails["pattern"] = present & ~ok
        if "enum" in fails:
            fails["enum"] = present & ~series.isin(list(constraints["enum"])).to_numpy()
        return _Results(np.zeros(n, dtype=bool), fails, key, key.copy(), np.zeros(n, dtype=bool))

    # number / integer: plain ASCII forms vectorised, anything else by frictionless
    stripped = series.str.strip()
    pattern = _INTEGER if kind == "integer" else _NUMBER
    plain = present & stripped.str.fullmatch(pattern).fillna(False).to_numpy(dtype=bool)
    numbers = np.full(n, np.nan)
    if plain.any():
        numbers[plain] = pd.to_numeric(stripped[plain]).to_numpy(dtype=np.float64)
    other = present & ~plain
    result = _Results(
        np.zeros(n, dtype=bool),
        fails,
        np.empty(n, dtype=object),
        numbers,
        np.zeros(n, dtype=bool),
    )
    if kind == "integer":
        ints = np.zeros(n, dtype=np.int64)
        if plain.any():
            ints[plain] = pd.to_numeric(stripped[plain]).to_numpy(dtype=np.int64)
        key = np.empty(n, dtype=object)
        key[plain] = ints[plain].tolist()
        result.key = key
        compare = ints
    else:
        key = np.empty(n, dtype=object)
        key[plain] = numbers[plain].tolist()
        result.key = key
        compare = numbers
    for name, op in (
        ("minimum", np.less),
        ("maximum", np.greater),
        ("exclusiveMinimum", np.less_equal),
        ("exclusiveMaximum", np.greater_equal),
    ):
        if name not in fails:
            continue
        bound = _bound(fl_field, constraints[name])
        if bound is None:
            raise FallbackError(f"constraint {name} not numeric")
        with np.errstate(invalid="ignore"):
            bad = plain & op(compare, float(bound) if kind == "number" else bound)
        if kind == "number":
            # float rounding can hide a Decimal difference at the bound: recheck ties
            tie = plain & (numbers == float(bound))
            for i in np.flatnonzero(tie):
                exact = Decimal(stripped.iat[i])
                bad[i] = bool(
                    {
                        "minimum": exact < bound,
                        "maximum": exact > bound,
                        "exclusiveMinimum": exact <= bound,
                        "exclusiveMaximum": exact >= bound,
                    }[name]
                )
        fails[name] = fails[name] | bad
    if "enum" in fails:
        raise FallbackError("enum on a number")  # handled by the frictionless reader
    if other.any():
        idx = np.flatnonzero(other)
        sub = _read_with_frictionless(fl_field, values[idx], numeric=True)
        result.type_error[idx] = sub.type_error
        for c in fails:
            fails[c][idx] = sub.fails[c]
        result.key[idx] = sub.key
        result.typed[idx] = sub.typed
        result.nonfinite[idx] = sub.nonfinite
    return result


def _bound(fl_field: Any, raw: Any) -> Any:
    """A numeric constraint as frictionless reads it (Decimal or int)."""
    reader = fl_field.create_value_reader()
    value = reader(raw)
    return value


def _vectorisable(fl_field: Any) -> bool:
    """Whether ``_read_vectorised`` reproduces frictionless' reader for this field."""
    if fl_field.type == "string":
        return fl_field.format in (None, "default")
    if fl_field.type in {"number", "integer"}:
        options = {"bare_number", "decimal_char", "group_char", "float_number"}
        return "enum" not in fl_field.constraints and not options & set(fl_field.list_defined())
    return False


def _results_for(fl_field: Any, uniques: np.ndarray, missing_values: set[str]) -> _Results:
    """Results per distinct value: frictionless' reader, or vectorised when many."""
    if _vectorisable(fl_field) and len(uniques) > DISTINCT_READER_LIMIT:
        return _read_vectorised(fl_field, uniques, missing_values)
    return _read_with_frictionless(fl_field, uniques, fl_field.type in {"number", "integer"})


def _field_missing_values(fl_field: Any) -> set[str]:
    values = fl_field.missing_values
    if not fl_field.has_defined("missing_values") and fl_field.schema:
        values = fl_field.schema.missing_values
    return {str(v) for v in values}


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


def _is_none(values: np.ndarray) -> np.ndarray:
    """Elementwise ``value is None`` (keys hold str, int, float, bool, _Nan or None)."""
    if len(values) == 0:
        return np.zeros(0, dtype=bool)
    return np.asarray(np.equal(values, None), dtype=bool)


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
# keys


def _combine(parts: list[np.ndarray]) -> np.ndarray:
    """One code per row for a tuple of codes (equal exactly when all parts are equal)."""
    key = parts[0]
    for part in parts[1:]:
        key, _ = pd.factorize(key * (int(part.max(initial=0)) + 1) + part)
        key = key.astype(np.int64)
    return key


def _joint(a: _Key, b: _Key) -> tuple[np.ndarray, np.ndarray]:
    """Codes of two keys in one code space (for foreign keys)."""
    merged = np.concatenate([a.values, b.values])
    codes, _ = pd.factorize(pd.Series(merged, dtype=object), use_na_sentinel=False)
    return codes[: len(a.values)][a.codes], codes[len(a.values) :][b.codes]


def _prev_same(codes: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """For each row, the index of the previous row with the same code (-1 if none)."""
    prev = np.full(len(codes), -1, dtype=np.int64)
    idx = np.flatnonzero(valid)
    if len(idx) == 0:
        return prev
    order = idx[np.argsort(codes[idx], kind="stable")]
    same = codes[order][1:] == codes[order][:-1]
    prev[order[1:][same]] = order[:-1][same]
    return prev


def _key_errors(parsed: _Parsed, lookups: dict[str, _Parsed]) -> list[tuple[int, int, Any]]:
    """unique, primary-key and foreign-key errors over all rows, as (row, rank, maker).

    ``maker()`` builds the error descriptor (only for the errors that are reported).
    """
    out: list[tuple[int, int, Any]] = []
    schema = parsed.fl_resource.schema
    n = parsed.rows
    if n == 0:
        return []
    names = [f.name for f in schema.fields]
    for j, fl_field in enumerate(schema.fields):
        if not fl_field.constraints.get("unique"):
            continue
        key = parsed.keys[fl_field.name]
        prev = _prev_same(key.codes, ~key.none)
        for i in np.flatnonzero(prev >= 0).tolist():
            out.append(
                (
                    i + 2,
                    20_000 + j,
                    partial(
                        _error,
                        "unique-error",
                        note=f"the same as in the row at position {int(prev[i]) + 2}",
                        row_number=i + 2,
                        cell=_text(key.value(i)),
                        field_name=fl_field.name,
                        field_number=j + 1,
                    ),
                )
            )
    pk = list(schema.primary_key)
    if pk and set(pk) <= set(names):
        keys = [parsed.keys[name] for name in pk]
        all_none = np.ones(n, dtype=bool)
        for key in keys:
            all_none &= key.none
        prev = _prev_same(_combine([key.codes for key in keys]), ~all_none)
        for i in np.flatnonzero(all_none | (prev >= 0)).tolist():
            note = (
                'cells composing the primary keys are all "None"'
                if all_none[i]
                else f"the same as in the row at position {int(prev[i]) + 2}"
            )
            out.append((i + 2, 30_000, partial(_error, "primary-key", note=note, row_number=i + 2)))
    for k, fk in enumerate(schema.foreign_keys):
        local = list(fk["fields"])
        ref_name = fk["reference"]["resource"] or parsed.resource.name
        ref_fields = list(fk["reference"]["fields"])
        if not set(local) <= set(names):
            continue
        ref = lookups[ref_name]
        target = [parsed.keys[f] for f in local]
        source = [ref.keys[f] for f in ref_fields]
        t_none = np.ones(n, dtype=bool)
        for key in target:
            t_none &= key.none
        s_none = np.ones(ref.rows, dtype=bool)
        for key in source:
            s_none &= key.none
        pairs = [_joint(a, b) for a, b in zip(target, source, strict=True)]
        joint = _combine([np.concatenate([t, r]) for t, r in pairs])
        found = np.isin(joint[:n], joint[n:][~s_none])
        for i in np.flatnonzero(~found & ~t_none).tolist():
            cells = [key.value(i) for key in target]
            note = 'for "{}": values "{}" not found in the lookup table "{}" as "{}"'.format(
                ", ".join(local),
                ", ".join(str(c) for c in cells),
                ref_name,
                ", ".join(ref_fields),
            )
            out.append(
                (
                    i + 2,
                    40_000 + k,
                    partial(
                        _error,
                        "foreign-key",
                        note=note,
                        row_number=i + 2,
                        field_names=local,
                        field_cells=[_text(c) for c in cells],
                        reference_name=ref_name,
                        reference_field_names=ref_fields,
                    ),
                )
            )
    out.sort(key=lambda t: (t[0], t[1]))
    return out


def _text(value: Any) -> str:
    return "" if value is None else str(value)


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
