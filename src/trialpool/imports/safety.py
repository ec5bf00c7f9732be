"""Safe handling of untrusted review files: bounded reads, hardened XML, checked zips, and
the parsing of raw cell and attribute values (numbers, flags, HTML-laden text).

Every problem raises :class:`trialpool.errors.ImportSourceError` with one line that names
the file, the element or row, and what is wrong. Nothing here writes outside a directory
the caller gives, follows a symlink, expands an XML entity or reads a DTD.
"""

from __future__ import annotations

import codecs
import csv
import html
import io
import math
import os
import re
import stat
import unicodedata
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from typing import Protocol
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml import ElementTree as SafeElementTree

from trialpool.errors import ImportSourceError

MIB = 1024 * 1024

#: largest single input file (or folder member) read
MAX_FILE_BYTES = 200 * MIB
#: most bytes unpacked from one zip, nested zips included
MAX_TOTAL_UNCOMPRESSED = 500 * MIB
#: most members (files and folders) in one zip, nested zips included, or in one folder
MAX_MEMBERS = 10_000
#: largest uncompressed/compressed ratio of one zip member ...
MAX_COMPRESSION_RATIO = 200.0
#: ... checked for members that unpack to more than this
RATIO_CHECK_FROM_BYTES = 1 * MIB
#: zips inside zips, at most this deep (the outer zip is depth 0)
MAX_ZIP_DEPTH = 3
#: folder levels searched below a data-package folder
MAX_FOLDER_DEPTH = 8


@dataclass(frozen=True, slots=True)
class Limits:
    """Input bounds; callers (tests) may pass smaller ones."""

    max_file_bytes: int = MAX_FILE_BYTES
    max_total_uncompressed: int = MAX_TOTAL_UNCOMPRESSED
    max_members: int = MAX_MEMBERS
    max_ratio: float = MAX_COMPRESSION_RATIO
    ratio_check_from_bytes: int = RATIO_CHECK_FROM_BYTES
    max_zip_depth: int = MAX_ZIP_DEPTH
    max_folder_depth: int = MAX_FOLDER_DEPTH


DEFAULT_LIMITS = Limits()

ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")


def fail(source: str, where: str | None, problem: str) -> ImportSourceError:
    """The one-line error: ``source: where: problem`` (``where`` may be None)."""
    text = f"{source}: {where}: {problem}" if where else f"{source}: {problem}"
    return ImportSourceError(" ".join(text.split()))


# --------------------------------------------------------------------------- files


def read_file_bytes(path: Path, source: str, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """Read a regular file, refusing symlinks, special files and files over the limit."""
    try:
        info = path.lstat()
    except OSError as exc:
        raise fail(source, None, f"cannot be read ({exc.strerror or exc})") from None
    if stat.S_ISLNK(info.st_mode):
        raise fail(source, None, "is a symbolic link; pass the file itself")
    if not stat.S_ISREG(info.st_mode):
        raise fail(source, None, "is not a regular file")
    if info.st_size > limits.max_file_bytes:
        raise fail(
            source, None, f"is {info.st_size} bytes, over the limit of {limits.max_file_bytes}"
        )
    try:
        with path.open("rb") as handle:
            data = handle.read(limits.max_file_bytes + 1)
    except OSError as exc:
        raise fail(source, None, f"cannot be read ({exc.strerror or exc})") from None
    if len(data) > limits.max_file_bytes:
        raise fail(source, None, f"is over the limit of {limits.max_file_bytes} bytes")
    return data


def is_zip(data: bytes) -> bool:
    return data[:4] in ZIP_MAGICS


_BLANK = re.compile(rb"(?:\xef\xbb\xbf|\xff\xfe|\xfe\xff)?[ \t\r\n\x00]*")


def is_blank(data: bytes) -> bool:
    """Empty, or only a byte-order mark and white space (checked without copying the
    data: a review file may be 200 MB)."""
    return _BLANK.fullmatch(data) is not None


# --------------------------------------------------------------------------- XML


_DECLARATION = re.compile(
    rb"""^(?:\xef\xbb\xbf)?\s*<\?xml[^>]*?\bencoding\s*=\s*["']([A-Za-z0-9._-]+)["']"""
)
_LATIN1_NAMES = frozenset({"iso-8859-1", "iso8859-1", "latin-1", "latin1", "l1"})
#: bytes that cp1252 maps to printable characters where ISO-8859-1 has C1 controls
_C1 = re.compile(rb"[\x80-\x9f]")


class EncodingNote:
    """What ``xml_bytes`` did to a document's encoding, for the import log."""

    def __init__(self, declared: str | None, action: str, first: int) -> None:
        self.declared = declared
        self.action = action
        self.first = first


def xml_bytes(data: bytes) -> tuple[bytes, EncodingNote | None]:
    """The document as the XML parser should see it.

    RevMan 5 wrote some files with Windows-1252 (cp1252) bytes: declared as UTF-8 (or not
    declared) but not valid UTF-8, or declared ISO-8859-1 but holding cp1252's printable
    characters in 0x80-0x9F (curly quotes, dashes, the euro sign), which ISO-8859-1 reads
    as invisible control characters. Such bytes are decoded as cp1252 (the five bytes
    cp1252 leaves undefined as ISO-8859-1) and the document re-encoded as UTF-8 with its
    declaration saying so. Anything else is returned unchanged, for the parser to judge.
    """
    match = _DECLARATION.match(data[:1024])
    declared = match.group(1).decode("ascii").lower() if match else None
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data, None
    if declared in (None, "utf-8", "utf8"):
        try:
            data.decode("utf-8")
            return data, None
        except UnicodeDecodeError as exc:
            first = exc.start
        action = (
            f"not valid UTF-8 (first at byte {first}); the file was read as Windows-1252 (cp1252)"
        )
    elif declared in _LATIN1_NAMES:
        c1 = _C1.search(data)
        if c1 is None:
            return data, None
        first = c1.start()
        action = (
            f"declared {declared.upper()} but holds bytes 0x80-0x9F (first at byte {first}); "
            "they were read as Windows-1252 (cp1252) characters"
        )
    else:
        return data, None
    text = data.decode("cp1252", errors="_trialpool_latin1")
    text = _DECLARATION_TEXT.sub(r"\g<1>UTF-8\g<2>", text, count=1)
    return text.encode("utf-8"), EncodingNote(declared, action, first)


_DECLARATION_TEXT = re.compile(
    r"""^(\ufeff?\s*<\?xml[^>]*?\bencoding\s*=\s*["'])[A-Za-z0-9._-]+(["'])"""
)


def _latin1_fallback(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):  # pragma: no cover - decoding only
        raise error
    bad = error.object[error.start : error.end]
    return bad.decode("latin-1"), error.end


codecs.register_error("_trialpool_latin1", _latin1_fallback)


class Logger(Protocol):
    """Where a reader writes its import-log entries (``imports.log.ImportLog``)."""

    def add(self, row: str, field: str, value: object, action: str) -> None: ...


def parse_xml(data: bytes, source: str, *, log: Logger | None = None) -> Element:
    """Parse XML with DTDs, entities and external references forbidden.

    The encoding is the one the XML declaration names (UTF-8 when none), as XML says;
    Windows-1252 bytes that RevMan 5 wrote into files declared otherwise are read as such
    (see :func:`xml_bytes`) and, when ``log`` (an ``ImportLog``) is given, logged.
    """
    data, note = xml_bytes(data)
    if note is not None and log is not None:
        log.add("XML declaration", "encoding", note.declared or "(none)", note.action)
    try:
        return SafeElementTree.fromstring(
            data, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except DTDForbidden:
        raise fail(
            source,
            None,
            "XML with a document type declaration (DOCTYPE) is refused: review files have "
            "none, and DTDs and entities can be used to attack the reader",
        ) from None
    except EntitiesForbidden:
        raise fail(source, None, "XML with entity declarations is refused") from None
    except ExternalReferenceForbidden:
        raise fail(source, None, "XML with external references is refused") from None
    except ParseError as exc:
        line, column = getattr(exc, "position", (0, 0))
        reason = str(exc).split(":", 1)[0]
        raise fail(
            source, None, f"malformed XML at line {line}, column {column + 1}: {reason}"
        ) from None
    except (ValueError, LookupError) as exc:  # e.g. an unknown declared encoding
        raise fail(source, None, f"malformed XML: {exc}") from None


def element_text(element: Element | None) -> str:
    """Plain text of an element and its descendants; <P>, <BR>, <LI>... become line breaks.

    Iterative, so that a maliciously deep document cannot exhaust the stack.
    """
    if element is None:
        return ""
    parts: list[str] = []
    stack: list[tuple[Element, bool]] = [(element, False)]
    while stack:
        node, closing = stack.pop()
        tag = node.tag.upper() if isinstance(node.tag, str) else ""
        if closing:
            if tag in _BLOCK_TAGS:
                parts.append("\n")
            if node is not element and node.tail:
                parts.append(node.tail)
            continue
        if tag in _BLOCK_TAGS or tag == "BR":
            parts.append("\n")
        if node.text:
            parts.append(node.text)
        stack.append((node, True))
        stack.extend((child, False) for child in reversed(list(node)))
    return tidy_text("".join(parts))


_BLOCK_TAGS = frozenset(
    {"P", "DIV", "LI", "UL", "OL", "TR", "TABLE", "H1", "H2", "H3", "H4", "H5", "H6",
     "BLOCKQUOTE", "PRE", "TD", "TH"}
)  # fmt: skip


# --------------------------------------------------------------------------- text


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag.upper() in _BLOCK_TAGS or tag.upper() == "BR":
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag.upper() in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def tidy_text(text: str) -> str:
    """Collapse runs of white space inside lines, drop empty lines, strip."""
    text = text.replace("\xa0", " ").replace("\r\n", "\n").replace("\r", "\n")
    lines = (" ".join(line.split()) for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def html_to_text(value: str) -> str:
    """Plain text of a cell that may hold HTML: tags stripped, entities unescaped,
    paragraph and line breaks kept as newlines."""
    if "<" not in value and "&" not in value:
        return tidy_text(value)
    parser = _TextExtractor()
    try:
        parser.feed(value)
        parser.close()
    except (AssertionError, ValueError):  # pragma: no cover - HTMLParser is lenient
        return tidy_text(html.unescape(value))
    return tidy_text("".join(parser.parts))


def optional_text(value: str | None) -> str | None:
    """``html_to_text`` of a value, None when it is missing or empty."""
    if value is None:
        return None
    text = html_to_text(value)
    return text or None


# --------------------------------------------------------------------------- values

MISSING = frozenset({"", "#N/A", "N/A", "#NA"})
_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
_GROUPED = re.compile(r"^[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?$")
_NON_FINITE = frozenset({"nan", "+nan", "-nan", "infinity", "+infinity", "-infinity", "inf",
                         "+inf", "-inf"})  # fmt: skip


def is_missing(value: str | None) -> bool:
    return value is None or value.strip().upper() in MISSING


def parse_number(
    value: str | None, source: str, where: str, name: str, *, grouped: bool = False
) -> float | None:
    """A finite float, or None when missing ("", "#N/A") or not finite ("NaN").

    ``grouped`` accepts thousands separators ("14,186"), as RevMan 5 CSV exports may print.
    A value that is not a number raises.
    """
    if is_missing(value):
        return None
    assert value is not None
    text = value.strip()
    if text.lower() in _NON_FINITE:
        return None
    if grouped and _GROUPED.match(text):
        text = text.replace(",", "")
    if not _NUMBER.match(text):
        raise fail(source, where, f"{name}={value.strip()!r} is not a number")
    number = float(text)
    return number if math.isfinite(number) else None


def parse_input(
    value: str | None, source: str, where: str, name: str, *, grouped: bool = False
) -> float | None:
    """A study's input number: missing gives None, but NaN, infinity and numbers too large
    for a double (``1e400``) raise."""
    if is_missing(value) or value is None:
        return None
    text = value.strip()
    if text.lower() in _NON_FINITE:
        raise fail(source, where, f"{name}={text!r} is not a finite number")
    number = parse_number(value, source, where, name, grouped=grouped)
    if number is None:  # a well-formed number that overflows a double
        raise fail(source, where, f"{name}={_shown(text)} is not a finite number")
    return number


#: the largest count kept (a signed 64-bit integer, as Table Schema's integer is read)
MAX_COUNT = 2**63 - 1


def parse_count(
    value: str | None, source: str, where: str, name: str, *, grouped: bool = False
) -> int | None:
    """A non-negative whole number (events, participants) up to ``MAX_COUNT``, or None
    when missing."""
    number = parse_input(value, source, where, name, grouped=grouped)
    if number is None or value is None:
        return None
    text = _shown(value.strip())
    if not number.is_integer():
        raise fail(source, where, f"{name}={text} is not a whole number")
    if number < 0:
        raise fail(source, where, f"{name}={text} is negative")
    if number > MAX_COUNT:
        raise fail(source, where, f"{name}={text} is larger than the largest count ({MAX_COUNT})")
    count = int(number)
    digits = value.strip().replace(",", "") if grouped else value.strip()
    if re.fullmatch(r"\+?\d+", digits):  # exact for whole numbers beyond a double's precision
        count = int(digits)
        if count > MAX_COUNT:
            raise fail(
                source, where, f"{name}={text} is larger than the largest count ({MAX_COUNT})"
            )
    return count


def _shown(text: str, limit: int = 40) -> str:
    """A value for a one-line message: quoted, cut to ``limit`` characters."""
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def parse_stored_count(value: str | None, source: str, where: str, name: str) -> int | None:
    """A count RevMan stored with its results (lenient about a trailing ".0")."""
    number = parse_number(value, source, where, name, grouped=True)
    if number is None or number != int(number):
        return None
    return int(number)


def parse_flag(value: str | None, source: str, where: str, name: str) -> bool | None:
    """YES/NO, true/false, 1/0 (any case); None when missing."""
    if is_missing(value):
        return None
    assert value is not None
    text = value.strip().lower()
    if text in {"yes", "true", "1", "y"}:
        return True
    if text in {"no", "false", "0", "n"}:
        return False
    raise fail(source, where, f"{name}={value.strip()!r} is not yes/no or true/false")


def parse_level(value: str | None, source: str, where: str, name: str) -> float | None:
    """A confidence level: "95%", "95" or "0.95" -> 0.95; None when missing."""
    if is_missing(value):
        return None
    assert value is not None
    text = value.strip().rstrip("%").strip()
    number = parse_number(text, source, where, name)
    if number is None:
        return None
    level = number / 100 if number > 1 else number
    if not 0 < level < 1:
        raise fail(source, where, f"{name}={value.strip()!r} is not a confidence level")
    return level


_YEAR = re.compile(r"(?<!\d)(1[5-9]\d\d|20\d\d)(?!\d)")


def parse_year(value: str | None) -> int | None:
    """The year in "1951", "2006.", "2024/2/2", "2019///", "1995a"; None when none."""
    if is_missing(value):
        return None
    assert value is not None
    match = _YEAR.search(value)
    return int(match.group(1)) if match else None


def normalise_header(name: str) -> str:
    """Header key: NFKC (so "²" is "2"), lower case, runs of non-alphanumerics as one space."""
    text = unicodedata.normalize("NFKC", name).lower()
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text).split())


def snake(name: str) -> str:
    return normalise_header(name).replace(" ", "_")


# --------------------------------------------------------------------------- CSV


def decode_text(data: bytes, source: str, *, fallback: str | None = None) -> str:
    """Decode UTF-8 (BOM dropped) or UTF-16 with a BOM; optionally fall back to a single-byte
    encoding (RevMan 5 CSV exports written on Windows)."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise fail(source, None, f"invalid UTF-16 at byte {exc.start}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if fallback is None:
            raise fail(source, None, f"not valid UTF-8 (byte {exc.start})") from None
        # cp1252 leaves five bytes undefined: those are read as ISO-8859-1
        return data.decode(fallback, errors="_trialpool_latin1")


def read_csv(text: str, source: str) -> list[list[str]]:
    """All records of a CSV text (quoted fields may hold commas and line breaks)."""
    records: list[list[str]] = []
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        for record in reader:
            records.append(record)
    except csv.Error as exc:
        raise fail(source, f"row {len(records) + 1}", f"malformed CSV: {exc}") from None
    return records


class HeaderTable:
    """The header of a CSV table, its columns found by normalised name with aliases, and
    its records numbered (the header is row 1) and padded to the header's width."""

    source: str
    header: list[str]
    keys: list[str]
    index: dict[str, int]

    def _set_header(self, source: str, first: list[str]) -> None:
        self.source = source
        self.header = [cell.strip() for cell in first]
        self.keys = [normalise_header(cell) for cell in self.header]
        self.index = {}
        for position, key in enumerate(self.keys):
            if key and key not in self.index:
                self.index[key] = position

    def column(self, *aliases: str) -> int | None:
        for alias in aliases:
            position = self.index.get(normalise_header(alias))
            if position is not None:
                return position
        return None

    def _padded(self, numbered: Iterable[tuple[int, list[str]]]) -> Iterator[tuple[int, list[str]]]:
        """(row number, cells padded to the header width); blank records are skipped and a
        record with cells beyond the header is refused."""
        width = len(self.header)
        for number, record in numbered:
            if not any(cell.strip() for cell in record):
                continue
            if len(record) > width and any(cell.strip() for cell in record[width:]):
                raise fail(
                    self.source,
                    f"row {number}",
                    f"has {len(record)} fields but the header has {width}",
                )
            yield number, record + [""] * (width - len(record))


class CsvTable(HeaderTable):
    """A CSV file whose columns are found by normalised name with aliases."""

    def __init__(self, text: str, source: str) -> None:
        records = read_csv(text, source)
        while records and not any(cell.strip() for cell in records[-1]):
            records.pop()
        if not records:
            raise fail(source, None, "empty CSV file (no header row)")
        self._set_header(source, records[0])
        self.records = records[1:]

    def require(self, label: str, *aliases: str) -> int:
        position = self.column(label, *aliases)
        if position is None:
            raise fail(self.source, None, f"missing column {label!r}")
        return position

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """(row number with the header as row 1, cells padded to the header width)."""
        return self._padded(enumerate(self.records, start=2))


def cell(record: list[str], position: int | None) -> str | None:
    if position is None:
        return None
    value = record[position]
    return None if is_missing(value) else value.strip()


# --------------------------------------------------------------------------- zips


class _Budget:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.bytes_left = limits.max_total_uncompressed
        self.members_left = limits.max_members

    def take_member(self, source: str) -> None:
        self.members_left -= 1
        if self.members_left < 0:
            raise fail(source, None, f"more than {self.limits.max_members} members")

    def take_bytes(self, source: str, count: int) -> None:
        self.bytes_left -= count
        if self.bytes_left < 0:
            raise fail(
                source,
                None,
                f"unpacks to more than {self.limits.max_total_uncompressed} bytes",
            )


_DRIVE = re.compile(r"^[A-Za-z]:")


def safe_member_name(name: str, source: str) -> str:
    """A member path, checked: relative, no "..", no drive letter, no NUL; "/" separators."""
    if "\x00" in name:
        raise fail(source, f"member {name!r}", "unsafe name (NUL byte)")
    unified = name.replace("\\", "/")
    if unified.startswith("/") or _DRIVE.match(unified):
        raise fail(source, f"member {name!r}", "unsafe absolute path")
    parts = [part for part in unified.split("/") if part not in ("", ".")]
    if any(part == ".." for part in parts):
        raise fail(source, f"member {name!r}", "unsafe path with '..'")
    if not parts:
        raise fail(source, f"member {name!r}", "empty member name")
    return "/".join(parts)


Wanted = Callable[[str], bool]


def unpack_zip(
    data: bytes,
    source: str,
    wanted: Wanted,
    limits: Limits = DEFAULT_LIMITS,
    *,
    _budget: _Budget | None = None,
    _depth: int = 0,
    _prefix: str = "",
) -> dict[str, bytes]:
    """Read the wanted members of a zip into memory, zips nested in it too.

    Every member's name and type is checked (not only the wanted ones); symlinks,
    encrypted members, duplicate names, members over the size or ratio limits and
    nesting deeper than ``limits.max_zip_depth`` are refused. Returns path -> bytes, a
    nested zip's members under ``"outer/inner.zip/..."``.
    """
    budget = _budget or _Budget(limits)
    label = f"{source}/{_prefix}".rstrip("/") if _prefix else source
    if _depth > limits.max_zip_depth:
        raise fail(label, None, f"zips nested more than {limits.max_zip_depth} deep")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise fail(label, None, f"truncated or corrupt zip ({exc})") from None
    out: dict[str, bytes] = {}
    seen: set[str] = set()
    with archive:
        infos = archive.infolist()
        for info in infos:
            budget.take_member(label)
            safe_member_name(info.orig_filename, label)
            name = safe_member_name(info.filename, label)
            mode = (info.external_attr >> 16) & 0o177777
            kind = stat.S_IFMT(mode)
            if kind == stat.S_IFLNK:
                raise fail(label, f"member {info.filename!r}", "symbolic links are refused")
            if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                raise fail(label, f"member {info.filename!r}", "not a regular file")
            key = name.lower()
            if key in seen:
                raise fail(label, f"member {info.filename!r}", "appears twice")
            seen.add(key)
            if info.is_dir():
                continue
            nested = name.lower().endswith(".zip")
            if not (nested or wanted(name)):
                continue
            if info.flag_bits & 0x1:
                raise fail(label, f"member {info.filename!r}", "encrypted members are refused")
            if info.file_size > limits.max_file_bytes:
                raise fail(
                    label,
                    f"member {info.filename!r}",
                    f"unpacks to {info.file_size} bytes, over the limit of {limits.max_file_bytes}",
                )
            if (
                info.file_size > limits.ratio_check_from_bytes
                and info.file_size > limits.max_ratio * max(info.compress_size, 1)
            ):
                raise fail(
                    label,
                    f"member {info.filename!r}",
                    f"compression ratio over {limits.max_ratio:g} (a zip bomb?)",
                )
            content = _read_member(archive, info, label, budget, limits)
            if nested:
                if not is_zip(content):
                    if wanted(name):
                        out[_prefix + name] = content
                    continue
                out.update(
                    unpack_zip(
                        content,
                        source,
                        wanted,
                        limits,
                        _budget=budget,
                        _depth=_depth + 1,
                        _prefix=f"{_prefix}{name}/",
                    )
                )
            else:
                out[_prefix + name] = content
    return out


def _read_member(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    label: str,
    budget: _Budget,
    limits: Limits,
) -> bytes:
    chunks: list[bytes] = []
    total = 0
    cap = min(info.file_size, limits.max_file_bytes)
    try:
        with archive.open(info) as handle:
            while True:
                chunk = handle.read(64 * 1024)
                if not chunk:
                    break
                total += len(chunk)
                if total > cap:
                    raise fail(
                        label,
                        f"member {info.filename!r}",
                        "unpacks to more bytes than its header says",
                    )
                budget.take_bytes(label, len(chunk))
                chunks.append(chunk)
    except ImportSourceError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
        raise fail(
            label, f"member {info.filename!r}", f"truncated or corrupt zip ({exc})"
        ) from None
    except NotImplementedError as exc:
        raise fail(label, f"member {info.filename!r}", f"unsupported zip ({exc})") from None
    return b"".join(chunks)


def collect_folder(
    root: Path, source: str, wanted: Wanted, limits: Limits = DEFAULT_LIMITS
) -> dict[str, bytes]:
    """Read the wanted files below a folder (zips in it unpacked as by ``unpack_zip``).

    Symbolic links are refused rather than followed; depth, file count and sizes are bounded.
    """
    budget = _Budget(limits)
    out: dict[str, bytes] = {}
    pending: list[tuple[Path, str, int]] = [(root, "", 0)]
    while pending:
        folder, prefix, depth = pending.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        except OSError as exc:
            raise fail(source, prefix or None, f"cannot be listed ({exc.strerror})") from None
        for entry in entries:
            budget.take_member(source)
            relative = f"{prefix}{entry.name}"
            if entry.is_symlink():
                raise fail(source, relative, "symbolic links are refused, not followed")
            if entry.is_dir(follow_symlinks=False):
                if depth + 1 > limits.max_folder_depth:
                    raise fail(source, relative, "folders nested too deep")
                pending.append((Path(entry.path), f"{relative}/", depth + 1))
                continue
            if not entry.is_file(follow_symlinks=False):
                continue
            nested = entry.name.lower().endswith(".zip")
            if not (nested or wanted(relative)):
                continue
            content = read_file_bytes(Path(entry.path), f"{source}/{relative}", limits)
            budget.take_bytes(source, len(content))
            if nested and is_zip(content):
                out.update(
                    unpack_zip(
                        content,
                        source,
                        wanted,
                        limits,
                        _budget=budget,
                        _depth=1,
                        _prefix=f"{relative}/",
                    )
                )
            elif wanted(relative):
                out[relative] = content
    return out


def extract_to(files: Mapping[str, bytes], destination: Path) -> list[Path]:
    """Write in-memory members below ``destination`` (which must exist), never outside it."""
    base = destination.resolve(strict=True)
    written: list[Path] = []
    for name, content in files.items():
        relative = PurePosixPath(safe_member_name(name, str(destination)))
        target = (base / relative).resolve()
        if base != target and base not in target.parents:
            raise fail(str(destination), f"member {name!r}", "would be written outside")
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "xb") as handle:  # never overwrite, never follow a planted link
            handle.write(content)
        written.append(target)
    return written
