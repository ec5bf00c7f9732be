"""Reading one CSV file on the fast path: bytes and hashes, encoding, dialect, record
shapes, the cells by pyarrow or pandas, and the parsing of cells (part of
:mod:`trialpool.validate.fast`).

Each piece reproduces what frictionless (v5) does with the same file, so the fast path
splits it into the same records and reads the same values:

* the encoding is detected by frictionless' own detector on the same first
  ``BUFFER_SIZE`` bytes, and the CSV dialect sniffed as frictionless' CSV parser does
  (Python's ``csv.Sniffer`` on the first ``SAMPLE_LINES`` lines, then ``CsvControl``);
* the shape (cell count, total cell length) of every record is taken as Python's ``csv``
  module, frictionless' parser, sees it, or from byte positions with numpy for a file
  without quote characters (where records are exactly the lines);
* the cells are read by pyarrow's streaming CSV reader (``_arrow_chunks``) where
  ``arrow_readable`` says it splits the file as the ``csv`` module does, else by
  pandas' C parser in chunks of ``CHUNK_ROWS`` rows (``_chunks``); either yields
  ``_Block``s, column by column as codes and distinct values;
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
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trialpool.validate.rules import INT64_MAX, INT64_MIN

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


#: line-end bytes that hold the records frictionless guesses the header row from
_FIRST_LINE_ENDS = 2 * SAMPLE_LINES + 2


class _Digests:
    """Hashes of a file, computed in a background thread while the file is parsed
    (hashlib and file reads release the GIL); ``get`` waits for the result."""

    def __init__(self, path: Path, algorithms: tuple[str, ...]) -> None:
        self.found: dict[str, str] = {}
        self.thread = threading.Thread(target=self._run, args=(path, algorithms), daemon=True)
        self.thread.start()

    def _run(self, path: Path, algorithms: tuple[str, ...]) -> None:
        hashers = {name: hashlib.new(name, usedforsecurity=False) for name in algorithms}
        if not hashers:
            return
        try:
            with path.open("rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 22), b""):
                    for hasher in hashers.values():
                        hasher.update(chunk)
        except OSError:
            return
        self.found = {name: h.hexdigest() for name, h in hashers.items()}

    def get(self, algorithm: str) -> str | None:
        self.thread.join()
        return self.found.get(algorithm)


def _file_stats(
    path: Path, algorithms: tuple[str, ...] = ("md5", "sha256"), blank_lines: bool = True
) -> dict[str, Any]:
    """Bytes and hashes (only ``algorithms``, in a background thread) of a file; what it
    contains.

    ``special`` holds the quote and escape bytes found; ``blank_line`` says whether a
    line end follows another (an empty record, as Python's csv module reads it) or the
    file starts with one: looked for in the whole file when ``blank_lines``, else only
    among the first records (those frictionless guesses the header row from); ``bom``
    whether it starts with a UTF-8 byte-order mark.
    """
    digests = _Digests(path, algorithms)
    size = 0
    seen: set[int] = set()
    blank = False
    last = b""
    first = b""
    line_ends = 0
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            if b"\x00" in chunk:
                raise FallbackError("NUL byte in the file")
            if not first:
                first = chunk[:3]
                blank = chunk[:1] in (b"\n", b"\r")
            seen |= {b for b in b"\"'\\" if b in chunk}
            if not blank and (blank_lines or line_ends < _FIRST_LINE_ENDS):
                part = chunk
                if not blank_lines:  # only the first records
                    data = np.frombuffer(chunk, dtype=np.uint8)
                    ends = np.flatnonzero((data == 10) | (data == 13))
                    room = _FIRST_LINE_ENDS - line_ends
                    if len(ends) > room:
                        part = chunk[: int(ends[room]) + 1]
                    line_ends += min(len(ends), room)
                edge = last + part[:1]
                blank = (
                    b"\n\n" in part
                    or b"\n\r" in part
                    or b"\r\r" in part
                    or edge in (b"\n\n", b"\n\r", b"\r\r")
                )
            last = chunk[-1:]
            size += len(chunk)
    return {
        "bytes": size,
        "digests": digests,
        "special": seen,
        "blank_line": blank,
        "bom": first == codecs.BOM_UTF8,
    }


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


class _Block:
    """Records of one part of a file, column by column (the first block starts with the
    header). ``column(j, skip)`` gives the codes (one per record after the first ``skip``)
    and the distinct values of column ``j``: an object array, or for pyarrow's blocks an
    Arrow string array (converted to Python only for values not seen before)."""

    n: int

    def first(self) -> list[str]:
        raise NotImplementedError

    def column(self, j: int, skip: int) -> tuple[np.ndarray, Any]:
        raise NotImplementedError


class _PandasBlock(_Block):
    def __init__(self, chunk: pd.DataFrame) -> None:
        self.data = chunk.to_numpy(dtype=object)
        self.n = len(self.data)

    def first(self) -> list[str]:
        return [str(v) for v in self.data[0]]

    def column(self, j: int, skip: int) -> tuple[np.ndarray, Any]:
        codes, uniques = pd.factorize(self.data[skip:, j], use_na_sentinel=False)
        return codes, np.asarray(uniques, dtype=object)


def _arrow_codes(cells: Any) -> tuple[np.ndarray, Any]:
    """Codes and distinct values of an Arrow string array or chunked array (whose chunks
    then share one dictionary)."""
    import pyarrow as pa

    chunks = cells.chunks if isinstance(cells, pa.ChunkedArray) else [cells]
    if all(_all_empty(chunk) for chunk in chunks):
        return np.zeros(len(cells), dtype=np.intp), pa.array([""], type=pa.string())
    encoded = cells.dictionary_encode()
    if not isinstance(encoded, pa.ChunkedArray):
        return encoded.indices.to_numpy(zero_copy_only=False), encoded.dictionary
    parts = [c for c in encoded.chunks if len(c)]
    dictionary = parts[-1].dictionary
    if not all(c.dictionary.equals(dictionary) for c in parts):
        raise ArrowReadError("chunks with different dictionaries")
    codes = np.concatenate([c.indices.to_numpy(zero_copy_only=False) for c in parts])
    return codes, dictionary


def _all_empty(cells: Any) -> bool:
    """Every cell of an Arrow string array is empty (no character data)."""
    offsets = np.frombuffer(cells.buffers()[1], dtype=np.int32)
    return bool(offsets[cells.offset] == offsets[cells.offset + len(cells)])


class _ArrowBlock(_Block):
    """A record batch (streaming) or a whole table of pyarrow's reader; the columns of a
    large table are dictionary-encoded two at a time (pyarrow releases the GIL)."""

    def __init__(self, data: Any, parallel: bool = False) -> None:
        self.data = data
        self.n = data.num_rows
        self.encoded: dict[tuple[int, int], Any] = {}
        self.parallel = parallel

    def first(self) -> list[str]:
        return [str(self.data.column(j)[0].as_py()) for j in range(self.data.num_columns)]

    def _encode(self, skip: int) -> None:
        from concurrent.futures import ThreadPoolExecutor

        columns = range(self.data.num_columns)
        with ThreadPoolExecutor(max_workers=2) as pool:
            done = pool.map(lambda j: _arrow_codes(self.data.column(j).slice(skip)), columns)
            self.encoded = {(j, skip): result for j, result in zip(columns, done, strict=True)}

    def column(self, j: int, skip: int) -> tuple[np.ndarray, Any]:
        if self.parallel and not self.encoded:
            self._encode(skip)
        found = self.encoded.pop((j, skip), None)
        return found if found is not None else _arrow_codes(self.data.column(j).slice(skip))


def _chunks(path: Path, encoding: str, dialect: csv.Dialect, width: int) -> Iterator[_Block]:
    """The records of a file by pandas' C parser, in chunks of ``CHUNK_ROWS`` rows (any
    shape of record: short records are padded)."""
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
            for chunk in reader:
                yield _PandasBlock(chunk)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise FallbackError(f"pandas: {type(exc).__name__}") from exc


#: bytes per block of pyarrow's CSV reader (a record may not be longer)
ARROW_BLOCK_BYTES = 16 << 20
#: files up to this size are read whole by pyarrow (its blocks parsed in parallel; about
#: twice the file's size in memory); larger ones are streamed block by block
ARROW_TABLE_BYTES = 256 << 20
#: columns of files from this size on are dictionary-encoded in two threads
ARROW_PARALLEL_BYTES = 8 << 20


class ArrowReadError(Exception):
    """pyarrow could not read the file as the csv module does: read it with pandas."""


def arrow_readable(encoding: str, dialect: csv.Dialect, stats: dict[str, Any]) -> bool:
    """Whether pyarrow's CSV reader splits this file as Python's csv module does, given
    that every record has the schema's width (checked by the caller or by pyarrow).

    UTF-8 only (pyarrow drops a byte-order mark, as ``utf-8-sig`` does), no escape
    character, doubled quotes, no space skipping, and no empty line unless empty cells
    are missing values in every field (pyarrow reads an empty line as a record of empty
    cells, the csv module as a record of none; both are then a blank row, and nothing
    else).
    """
    return (
        encoding in {"utf-8", "utf-8-sig"}
        and not (stats["bom"] and encoding != "utf-8-sig")
        and dialect.escapechar is None
        and dialect.doublequote
        and not dialect.skipinitialspace
        and len(dialect.delimiter) == 1
        and dialect.quotechar == '"'
        and not stats["blank_line"]
    )


def _arrow_options(delimiter: str, width: int, quoted: bool, size: int) -> dict[str, Any]:
    """pyarrow's CSV options: ``width`` columns of text, cells as written (no nulls), the
    dialect's delimiter, quoting only when the file has quote characters."""
    import pyarrow as pa
    from pyarrow import csv as pa_csv

    names = [f"c{j}" for j in range(width)]
    return {
        "read_options": pa_csv.ReadOptions(
            column_names=names, block_size=min(ARROW_BLOCK_BYTES, max(1 << 20, size // 8))
        ),
        "parse_options": pa_csv.ParseOptions(
            delimiter=delimiter,
            quote_char='"' if quoted else False,
            double_quote=True,
            escape_char=False,
            newlines_in_values=quoted,
            ignore_empty_lines=False,
        ),
        "convert_options": pa_csv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()),
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
            null_values=[],
        ),
    }


class Prefetch:
    """pyarrow's reads of a package's large files, started in background threads before
    frictionless is imported and the descriptor validated (pyarrow releases the GIL, so
    on two cores the parse runs beside that work).

    Each read assumes what most large files are: comma-separated, no quote character,
    the schema's width. ``take`` hands a read over only when the file proves to be so
    (the caller has sniffed the dialect and scanned the bytes); otherwise the read is
    dropped and the file read as usual.
    """

    def __init__(self) -> None:
        self.reads: dict[Path, tuple[int, int, threading.Thread, list[Any]]] = {}

    def start(self, path: Path, width: int) -> None:
        """Read ``path`` in the background if it is large enough to gain from it."""
        try:
            size = path.stat().st_size
        except OSError:
            return
        if not ARROW_PARALLEL_BYTES <= size <= ARROW_TABLE_BYTES or width < 1:
            return
        found: list[Any] = []

        def read() -> None:
            from pyarrow import csv as pa_csv

            try:
                found.append(pa_csv.read_csv(path, **_arrow_options(",", width, False, size)))
            except Exception as exc:  # reported when the read is taken, as pyarrow's
                found.append(exc)

        thread = threading.Thread(target=read, daemon=True)
        thread.start()
        self.reads[path] = (width, size, thread, found)

    def take(self, path: Path, delimiter: str, width: int, size: int) -> Any:
        """The read of ``path`` (a table, or pyarrow's exception) if it was made with
        these options, else None; the read is handed over once."""
        entry = self.reads.pop(path, None)
        if entry is None or delimiter != "," or (entry[0], entry[1]) != (width, size):
            return None
        entry[2].join()
        return entry[3][0] if entry[3] else None


def _arrow_chunks(
    path: Path,
    dialect: csv.Dialect,
    width: int,
    quoted: bool,
    size: int,
    prefetched: Any = None,
) -> Iterator[_Block]:
    """The records of a file by pyarrow's CSV reader, every cell as text: the whole file
    as one block up to ``ARROW_TABLE_BYTES`` (``size``), else streamed in blocks of
    ``ARROW_BLOCK_BYTES``; ``prefetched``: the same read, already made (``Prefetch``).

    Each record must have ``width`` cells (else ``ArrowReadError``); ``quoted`` says
    whether the file has quote characters (then a quoted cell may span lines).
    """
    import pyarrow as pa
    from pyarrow import csv as pa_csv

    options = _arrow_options(dialect.delimiter, width, quoted, size)
    try:
        if isinstance(prefetched, Exception):
            raise prefetched
        if prefetched is not None or size <= ARROW_TABLE_BYTES:
            table = prefetched if prefetched is not None else pa_csv.read_csv(path, **options)
            if table.num_rows:
                yield _ArrowBlock(table, parallel=size >= ARROW_PARALLEL_BYTES)
            return
        options["read_options"].block_size = ARROW_BLOCK_BYTES
        with pa_csv.open_csv(path, **options) as reader:
            for batch in reader:
                if batch.num_rows:
                    yield _ArrowBlock(batch)
    except (pa.ArrowException, UnicodeDecodeError, ValueError) as exc:
        raise ArrowReadError(str(exc)) from exc


# ---------------------------------------------------------------------------------------
# cells


@dataclass
class _Results:
    """Per-distinct-value results of one field."""

    type_error: np.ndarray  # bool
    fails: dict[str, np.ndarray]  # constraint name -> bool
    key: np.ndarray  # object: parsed value for unique/keys (None when missing/invalid)
    typed: np.ndarray  # float64 or object (None when missing/invalid)
    nonfinite: np.ndarray  # bool: a number that is NaN, infinite or beyond float64
    overflow: np.ndarray  # bool: an integer beyond int64


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
    overflow = np.zeros(n, dtype=bool)
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
                if isinstance(value, int) and not isinstance(value, bool):
                    overflow[i] = not INT64_MIN <= value <= INT64_MAX
        else:
            typed[i] = value
    return _Results(type_error, fails, key, typed, nonfinite, overflow)


#: the whitespace both ``str.strip()`` and pyarrow's ``utf8_trim`` below remove
_ASCII_SPACE = " \t\n\r\x0b\x0c"


def _plain_numbers(
    arrow: Any, pattern: re.Pattern[str], present: np.ndarray, kind: str
) -> tuple[np.ndarray, np.ndarray]:
    """With pyarrow: which values are plain ASCII numbers (``pattern``, after stripping
    ASCII whitespace), and their values (float64; int64 for integers)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    stripped = pc.utf8_trim(arrow, characters=_ASCII_SPACE)
    matches = pc.match_substring_regex(stripped, "^(?:" + pattern.pattern + ")$")
    plain = present & matches.to_numpy(zero_copy_only=False)
    target = pa.int64() if kind == "integer" else pa.float64()
    parsed = pc.cast(stripped.filter(pa.array(plain)), target).to_numpy(zero_copy_only=False)
    return plain, parsed


#: patterns that RE2 (pyarrow) and Python's re read alike on text without a line feed:
#: ASCII literals, escaped punctuation, classes, groups, alternation, repetition
_RE2_SAFE = re.compile(
    r"""(?:
        [A-Za-z0-9 _,:;/=<>'"@#%&~!-]
      | \\[.\-/_()\[\]{}|?*+^$\\]
      | [\[\]()|?*+^$.]
      | \{[0-9]+(?:,[0-9]*)?\}
    )*""",
    re.VERBOSE,
)


def _re2_safe(pattern: str) -> bool:
    """Whether ``pattern`` means the same to RE2 as to Python's ``re`` (see _RE2_SAFE;
    no look-around, flags or negated classes)."""
    return (
        pattern.isascii()
        and _RE2_SAFE.fullmatch(pattern) is not None
        and pattern.count("(?") == pattern.count("(?:")
        and "[^" not in pattern
    )


def _pattern_matches(pattern: str, values: np.ndarray, arrow: Any) -> np.ndarray:
    """Per value: ``re.match('^' + pattern + '$')`` succeeds, as frictionless checks it.

    With pyarrow's array of the same values and a pattern both engines read alike, RE2
    decides every value without a line feed (Python's ``$`` also matches before a final
    one); Python's ``re`` decides the rest.
    """
    matcher = re.compile("^" + pattern + "$").match
    if arrow is None or not _re2_safe(pattern):
        return np.fromiter((bool(matcher(v)) for v in values), dtype=bool, count=len(values))
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        # re.match anchors only the start: "^a|b$" accepts "a..." as Python reads it
        ok = pc.match_substring_regex(arrow, "^(?:^" + pattern + "$)")
    except pa.ArrowException:
        return np.fromiter((bool(matcher(v)) for v in values), dtype=bool, count=len(values))
    result = ok.to_numpy(zero_copy_only=False).astype(bool)
    lines = pc.match_substring(arrow, "\n").to_numpy(zero_copy_only=False).astype(bool)
    for i in np.flatnonzero(lines):
        result[i] = bool(matcher(values[i]))
    return result


def _read_vectorised(
    fl_field: Any, values: np.ndarray, missing_values: set[str], arrow: Any = None
) -> _Results:
    """Same results as ``_read_with_frictionless`` for number, integer and plain string.

    ``arrow``, when given, holds the same values as a pyarrow string array: numbers are
    then recognised and converted by pyarrow (RE2 on an ASCII pattern, correctly rounded
    conversion), the rest as without it.
    """
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
            fails["pattern"] = present & ~_pattern_matches(
                str(constraints["pattern"]), values, arrow
            )
        if "enum" in fails:
            fails["enum"] = present & ~series.isin(list(constraints["enum"])).to_numpy()
        none = np.zeros(n, dtype=bool)
        return _Results(none, fails, key, key.copy(), none.copy(), none.copy())

    # number / integer: plain ASCII forms vectorised, anything else by frictionless
    pattern = _INTEGER if kind == "integer" else _NUMBER
    numbers = np.full(n, np.nan)
    ints = np.zeros(n, dtype=np.int64)
    if arrow is not None:
        plain, parsed = _plain_numbers(arrow, pattern, present, kind)
        numbers[plain] = parsed
        if kind == "integer":
            ints[plain] = parsed
    else:
        stripped = series.str.strip()
        plain = present & stripped.str.fullmatch(pattern).fillna(False).to_numpy(dtype=bool)
        if plain.any():
            numbers[plain] = pd.to_numeric(stripped[plain]).to_numpy(dtype=np.float64)
            if kind == "integer":
                ints[plain] = pd.to_numeric(stripped[plain]).to_numpy(dtype=np.int64)
    other = present & ~plain
    result = _Results(
        np.zeros(n, dtype=bool),
        fails,
        np.empty(n, dtype=object),
        numbers,
        np.zeros(n, dtype=bool),
        np.zeros(n, dtype=bool),
    )
    if kind == "integer":
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
                exact = Decimal(str(values[i]).strip())
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
        result.overflow[idx] = sub.overflow
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
