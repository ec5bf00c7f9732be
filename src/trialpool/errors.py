"""Exceptions that reach the user as one clear line (no traceback)."""

from __future__ import annotations


class TrialpoolError(Exception):
    """Base class: an error caused by the input, shown to the user as one line, exit 1."""

    exit_code: int = 1


class PackageError(TrialpoolError):
    """The package cannot be read: bad descriptor, unsafe path, unreadable file."""


class ValidationFailedError(TrialpoolError):
    """The package was read but does not conform (schema or cross-table rules)."""


class AnalysisError(TrialpoolError):
    """An analysis cannot be run as asked (unknown outcome, incompatible measure, ...)."""


class UsageError(TrialpoolError):
    """The command was called wrongly (unknown option value, missing file): exit 2."""

    exit_code = 2


class ImportSourceError(TrialpoolError):
    """A review file to import cannot be read or makes no sense (malformed XML, truncated
    or unsafe zip, unknown format, empty file, impossible counts). The message names the
    file and the element or row."""
