"""Detects a review source's format from its content (never its extension) and reads it:
``read_review`` is the one entry point of the importers.

* a folder, or a zip (zips nested in it included): a Cochrane data package, found by its
  ``*-overall-estimates-and-settings.csv`` / ``*-data-rows.csv`` /
  ``*-study-information.csv`` files (a zip holding just one ``.rm5`` file reads that);
* XML whose root is ``COCHRANE_REVIEW``: a RevMan 5 review (``.rm5``);
* CSV whose header has Comparison Number, Outcome Number and Subgroup Number: a RevMan 5
  analysis export.

Anything else, an empty file included, raises ImportSourceError; so does any unexpected
content a reader trips on, so that the caller sees one line and never a traceback.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Literal

from trialpool.errors import ImportSourceError
from trialpool.imports.cochrane_package import holds_package, package_file_kind, read_package
from trialpool.imports.log import ImportLog
from trialpool.imports.model import Review
from trialpool.imports.revman_csv import is_revman_csv_header, read_revman_csv
from trialpool.imports.rm5 import read_rm5, read_rm5_root
from trialpool.imports.safety import (
    DEFAULT_LIMITS,
    Limits,
    collect_folder,
    decode_text,
    fail,
    is_blank,
    is_zip,
    normalise_header,
    parse_xml,
    read_file_bytes,
    unpack_zip,
)

EXPECTED = (
    "expected a RevMan 5 review (.rm5: XML whose root is COCHRANE_REVIEW), a RevMan 5 CSV "
    "analysis export (header with Comparison Number, Outcome Number, Subgroup Number) or a "
    "Cochrane data package (folder or zip with *-overall-estimates-and-settings.csv and "
    "*-data-rows.csv)"
)

Detected = Literal["rm5", "revman5_csv", "cochrane_data_package"]


def read_review(path: Path, *, limits: Limits = DEFAULT_LIMITS) -> Review:
    """Read one review source (file, zip or folder) into a :class:`Review`.

    Raises ImportSourceError (one line naming the file, element or row, and the problem)
    for anything wrong with the input; never returns a partial result.
    """
    source = path.name or str(path)
    try:
        return _read(path, source, limits)
    except ImportSourceError:
        raise
    except (ValueError, LookupError, TypeError, ArithmeticError, csv.Error, RecursionError) as exc:
        raise fail(source, None, f"cannot be read ({type(exc).__name__}: {exc})") from None


def unknown_format(source: str, why: str) -> ImportSourceError:
    return fail(source, None, f"unknown format ({why}); {EXPECTED}")


def _wanted(path: str) -> bool:
    return package_file_kind(path) is not None or path.lower().endswith(".rm5")


def _read(path: Path, source: str, limits: Limits) -> Review:
    if path.is_symlink():
        raise fail(source, None, "is a symbolic link; pass the file or folder itself")
    if path.is_dir():
        files = collect_folder(path, source, _wanted, limits)
        if not holds_package(files):
            raise unknown_format(source, "a folder without data-package files")
        return read_package(files, source)
    if not path.exists():
        raise fail(source, None, "does not exist")
    return read_bytes(read_file_bytes(path, source, limits), source, limits)


def detect(data: bytes) -> Detected | Literal["zip"] | None:
    """The format suggested by the first bytes: "zip", "rm5" (XML), "revman5_csv" or None.

    A cheap look only; ``read_bytes`` checks properly.
    """
    if is_zip(data):
        return "zip"
    text = _head_text(data)
    if text.startswith("<"):
        return "rm5"
    header = _first_record(text)
    if header and is_revman_csv_header(header):
        return "revman5_csv"
    return None


def read_bytes(data: bytes, source: str, limits: Limits = DEFAULT_LIMITS) -> Review:
    """Read a review file's bytes, whatever its format."""
    if is_blank(data):
        raise fail(source, None, "empty file")
    if is_zip(data):
        files = unpack_zip(data, source, _wanted, limits)
        if holds_package(files):
            return read_package(files, source)
        rm5 = [name for name in files if name.lower().endswith(".rm5")]
        if len(rm5) == 1:
            return read_rm5(files[rm5[0]], f"{source}/{rm5[0]}")
        raise unknown_format(source, "a zip without data-package files")
    text = _head_text(data)
    if text.startswith("<"):
        log = ImportLog(source)
        root = parse_xml(data, source, log=log)
        if root.tag != "COCHRANE_REVIEW":
            raise unknown_format(source, f"XML whose root is <{root.tag}>")
        return read_rm5_root(root, source, log=log)
    header = _first_record(decode_text(data[:65536], source, fallback="cp1252"))
    if header and is_revman_csv_header(header):
        return read_revman_csv(data, source)
    keys = {normalise_header(name) for name in header or []}
    if {"analysis group", "analysis number"} <= keys or (
        "study" in keys and any(k.startswith(("char ", "id ", "domain ")) for k in keys)
    ):
        raise fail(
            source,
            None,
            "is one file of a Cochrane data package; pass the whole package (folder or zip)",
        )
    raise unknown_format(source, "neither XML, zip nor a known CSV header")


def _head_text(data: bytes) -> str:
    head = data[:4096]
    try:
        text = decode_text(head, "", fallback="latin-1")
    except ImportSourceError:  # a UTF-16 BOM with a cut character
        text = head.decode("utf-16", errors="replace")
    return text.lstrip("\ufeff \t\r\n")


def _first_record(text: str) -> list[str] | None:
    try:
        return next(csv.reader(io.StringIO(text, newline="")), None)
    except csv.Error:
        return None
