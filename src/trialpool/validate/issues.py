"""The one error model of validation: issues, the report, and a capped collector.

Every step (loading, descriptor rules, Table Schema by either engine, cross-table rules)
reports a ``ValidationIssue`` (resource, file, row, field, rule, message, source); the run
gathers them into a ``ValidationReport``. Nothing here reads files.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from trialpool.errors import ValidationFailedError
from trialpool.package.loader import Package

FRICTIONLESS = "frictionless"
TRIALPOOL = "trialpool"

#: at most this many issues per (resource, rule) are listed; the rest are counted
MAX_ISSUES_PER_RULE = 1000

# ---------------------------------------------------------------------------------------
# report objects


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _visible(text: str) -> str:
    """Control characters (from the data) written as escapes, so that the line prints as
    it is (terminals and rich drop or act on them) and stays one line."""
    return _CONTROL.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), text)


@dataclass(frozen=True)
class ValidationIssue:
    """One problem, located as precisely as the engine allows."""

    resource: str | None  # resource name (None for descriptor-level)
    file: str | None  # path of the file, relative to the package folder
    row: int | None  # frictionless row number (header = 1, first data row = 2)
    field: str | None
    rule: str
    message: str
    source: str  # "frictionless" or "trialpool"

    def line(self) -> str:
        """One line: ``data/arms.csv: row 5: field n_analysed: <message> [<rule>]``."""
        parts: list[str] = []
        if self.file:
            parts.append(self.file)
        elif self.resource:
            parts.append(f"resource {self.resource}")
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.field:
            parts.append(f"field {self.field}")
        message = " ".join(self.message.split())  # never more than one line
        return _visible(": ".join([*parts, f"{message} [{self.rule}]"]))

    def to_json(self) -> dict[str, Any]:
        """The issue as a JSON-ready dict (the dataclass fields)."""
        return asdict(self)


@dataclass
class ValidationReport:
    """Everything ``trialpool validate`` found, plus a summary of the package."""

    descriptor: str
    issues: list[ValidationIssue]
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        """True when no issue was found."""
        return not self.issues

    def require_valid(self, descriptor: Path | str) -> None:
        """Raise ValidationFailedError (one line: the count and the first issue) unless
        the package is valid; for commands that go on only with a valid package."""
        if self.valid:
            return
        first = self.issues[0].line() if self.issues else ""
        raise ValidationFailedError(
            f"{descriptor}: package is invalid ({len(self.issues)} problem(s); first: "
            f"{first}); run 'trialpool validate' for the list"
        )

    def to_json(self) -> dict[str, Any]:
        """``{valid, descriptor, issues: [...], summary: {...}}``."""
        return {
            "valid": self.valid,
            "descriptor": self.descriptor,
            "issues": [issue.to_json() for issue in self.issues],
            "summary": self.summary,
        }


class Collector:
    """Collects trialpool issues with a cap per (resource, rule)."""

    def __init__(self, package: Package) -> None:
        self.package = package
        self.issues: list[ValidationIssue] = []
        self.counts: dict[tuple[str | None, str], int] = {}

    def add(self, resource: str | None, row: int | None, fld: str | None, rule: str, msg: str):
        """One issue (counted; listed while the rule has fewer than the cap listed)."""
        if self.reserve(resource, rule, 1):
            self.append(resource, row, fld, rule, msg)

    def reserve(self, resource: str | None, rule: str, n: int) -> int:
        """Count ``n`` issues of ``rule``; return how many of them may still be listed."""
        key = (resource, rule)
        have = self.counts.get(key, 0)
        self.counts[key] = have + n
        return max(0, min(n, MAX_ISSUES_PER_RULE - have))

    def append(self, resource: str | None, row: int | None, fld: str | None, rule: str, msg: str):
        """List one issue already counted by ``reserve``."""
        res = self.package.resources.get(resource) if resource else None
        self.issues.append(
            ValidationIssue(
                resource=resource,
                file=res.display_path if res is not None else None,
                row=row,
                field=fld,
                rule=rule,
                message=msg,
                source=TRIALPOOL,
            )
        )

    def add_rows(
        self,
        resource: str,
        rows: Any,
        fld: str | None,
        rule: str,
        message: Callable[[int], str],
    ) -> None:
        """One issue per row of ``rows`` (frictionless row numbers, in order), all counted;
        ``message(k)`` is built only for the k-th row that is listed."""
        listed = self.reserve(resource, rule, len(rows))
        for k in range(listed):
            self.append(resource, int(rows[k]), fld, rule, message(k))

    @property
    def truncated(self) -> dict[str, int]:
        return {
            f"{res}:{rule}": n - MAX_ISSUES_PER_RULE
            for (res, rule), n in self.counts.items()
            if n > MAX_ISSUES_PER_RULE
        }


def package_issue(descriptor: Path | str, message: str, rule: str) -> ValidationIssue:
    return ValidationIssue(
        resource=None,
        file=Path(descriptor).name or str(descriptor),
        row=None,
        field=None,
        rule=rule,
        message=message,
        source=TRIALPOOL,
    )


def issue_counts(issues: list[ValidationIssue]) -> dict[str, Any]:
    by_rule: dict[str, int] = {}
    for issue in issues:
        by_rule[issue.rule] = by_rule.get(issue.rule, 0) + 1
    return {
        "total": len(issues),
        FRICTIONLESS: sum(1 for i in issues if i.source == FRICTIONLESS),
        TRIALPOOL: sum(1 for i in issues if i.source == TRIALPOOL),
        "by_rule": by_rule,
    }
