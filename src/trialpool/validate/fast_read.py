"""Reading one CSV file on the fast path: bytes and hashes, encoding, dialect, record
shapes, pandas chunks, and the parsing of cells (part of :mod:`trialpool.validate.fast`).

Each piece reproduces what frictionless (v5) does with the same file, so the fast path
splits it into the same records and reads the same values:

* the encoding is detected by frictionless' own detector on the same first
  ``BUFFER_SIZE`` bytes, and the CSV dialect sniffed as frictionless' CSV parser does
  (Python's ``csv.Sniffer`` on the first ``SAMPLE_LINES`` lines, then ``CsvControl``);
* the shape (cell count, total cell length) of every record is taken as Python's ``csv``
  module, frictionless' parser, sees it, or from byte positions with numpy for a file
  without quote characters (where records are exactly the lines);
* the cells are read by pandas' C parser in chunks of ``CHUNK_ROWS`` rows;
* each distinct cell value is parsed by frictionless' cell reader
  (``Field.create_cell_reader``: missing values, type, constraints), or by vectorised code
  written to the same rules (``int()``, ``Decimal()``, ``re.match('^...$')``) with
  frictionless' reader for any value outside the plain ASCII forms.

Anything the fast path cannot reproduce raises :class:`FallbackError`, and the resource
is validated by frictionless instead.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: rows per pandas chunk
CHUNK_ROWS = 200_000
#: frictionless reads this many bytes to detect the encoding, this many lines to sniff
BUFFER_SIZE = 100_000
SAMPLE_LINES = 100

_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INTEGER = re.compile(r"[+-]?[0-9]{1,18}")


class FallbackError(Exception):
    """This resource is validated by frictionless instead (the reason is the message)."""


# ---------------------------------------------------------------------------------------
# reading one file


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


def _field_missing_values(fl_field: Any) -> set[str]:
    values = fl_field.missing_values
    if not fl_field.has_defined("missing_values") and fl_field.schema:
        values = fl_field.schema.missing_values
    return {str(v) for v in values}
