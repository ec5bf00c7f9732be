"""The import log: every value that is legal in its source format but outside trialpool's
vocabulary or ranges, and what the import did with it (one :class:`LogEntry` per case).

Policy (issue 15): unsafe or impossible input is refused (``ImportSourceError``); input
that RevMan allows but trialpool cannot take as it stands is imported anyway, mapped to
the schema where a faithful mapping exists or kept verbatim (in notes or claims), and
logged here. One odd cell never costs a whole review.

``ImportLog`` collects the entries while a reader runs and offers the lenient parsers the
readers use for values RevMan *computed or configured* (stored results, flags, levels):
a value that does not parse is logged and treated as missing. Values the reviewers
*entered* (counts, means, SDs, estimates) keep the strict parsers of
:mod:`trialpool.imports.safety`: a count that is not a number is impossible input.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from trialpool.errors import ImportSourceError
from trialpool.imports.model import LogEntry
from trialpool.imports.safety import is_missing, parse_flag, parse_level, parse_number

#: columns of ``import-log.csv``
LOG_FIELDS: tuple[str, ...] = ("file", "row", "field", "value", "action")
LOG_FILE = "import-log.csv"


class ImportLog:
    """Entries of one review's import, in the order found."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.entries: list[LogEntry] = []

    def add(
        self, row: str, field: str, value: object, action: str, *, file: str | None = None
    ) -> None:
        self.entries.append(LogEntry.of(file or self.file, row, field, value, action))

    def extend(self, entries: Iterable[LogEntry]) -> None:
        self.entries.extend(entries)

    # -- lenient parsers for what RevMan computed or configured -----------------------

    def stored_number(
        self, value: str | None, where: str, name: str, *, file: str | None = None
    ) -> float | None:
        """A number RevMan stored with its results; one that does not parse (e.g.
        "<0.00001") is logged and read as missing."""
        try:
            return parse_number(value, file or self.file, where, name, grouped=True)
        except ImportSourceError:
            self.add(where, name, value, "not a number; read as missing", file=file)
            return None

    def flag(
        self, value: str | None, where: str, name: str, default: bool, *, file: str | None = None
    ) -> bool:
        """A YES/NO setting; anything else is logged and the default is used."""
        try:
            parsed = parse_flag(value, file or self.file, where, name)
        except ImportSourceError:
            self.add(
                where,
                name,
                value,
                f"not yes/no; RevMan's default ({'yes' if default else 'no'}) is used",
                file=file,
            )
            return default
        return default if parsed is None else parsed

    def level(
        self, value: str | None, where: str, name: str, *, file: str | None = None
    ) -> float | None:
        """A confidence level ("95", "95%", "0.95"); anything else is logged, None."""
        if is_missing(value):
            return None
        try:
            return parse_level(value, file or self.file, where, name)
        except ImportSourceError:
            self.add(where, name, value, "not a confidence level; 95% is used", file=file)
            return None


def log_csv_text(entries: Iterable[LogEntry]) -> str:
    """``import-log.csv``: a header and one row per entry (UTF-8, comma, LF)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(LOG_FIELDS)
    for entry in entries:
        writer.writerow([entry.file, entry.row, entry.field, entry.value, entry.action])
    return out.getvalue()


__all__ = ["LOG_FIELDS", "LOG_FILE", "ImportLog", "log_csv_text"]
