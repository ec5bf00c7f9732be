"""The change records of ``trialpool diff`` (part of :mod:`trialpool.contrib.diff`).

One ``Change`` and the semantic-version bump it requires; a ``RowChange`` (a row kept
under the same key with other values); a ``ResourceDiff`` (everything that changed in one
resource). The schema comparison (:mod:`trialpool.contrib.diff_schema`) and the row
comparison (:mod:`trialpool.contrib.diff_rows`) produce them; :mod:`trialpool.contrib.diff`
assembles them into the report. Also the two small helpers all three share: how a value is
shown in a message, and a key (a name or a list of names) as a list.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

#: the bump levels, lowest first
LEVELS = ("none", "patch", "minor", "major")


def max_level(levels: list[str]) -> str:
    """The highest of ``levels`` (``none`` when there are none)."""
    return max(levels, key=LEVELS.index, default="none")


@dataclass(frozen=True)
class Change:
    """One change and the bump it requires."""

    level: str
    kind: str
    message: str
    resource: str | None = None
    field: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "kind": self.kind,
            "resource": self.resource,
            "field": self.field,
            "message": self.message,
        }


@dataclass
class RowChange:
    """A row present in both versions (same key) with different values."""

    key: dict[str, str | None]
    fields: dict[str, tuple[str | None, str | None]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "fields": {k: {"old": o, "new": n} for k, (o, n) in self.fields.items()},
        }


@dataclass
class ResourceDiff:
    """Everything that changed in one resource."""

    name: str
    status: str  # added, removed, changed, unchanged
    key_fields: list[str] = field(default_factory=list)
    rows_added: list[dict[str, str | None]] = field(default_factory=list)
    rows_removed: list[dict[str, str | None]] = field(default_factory=list)
    rows_changed: list[RowChange] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "key_fields": self.key_fields,
            "rows_added": self.rows_added,
            "rows_removed": self.rows_removed,
            "rows_changed": [r.as_dict() for r in self.rows_changed],
            "changes": [c.as_dict() for c in self.changes],
        }


def show(value: Any) -> str:
    """A descriptor or schema value in a message (JSON; ``(none)`` when absent)."""
    if value is None:
        return "(none)"
    return json.dumps(value, ensure_ascii=False)


def as_list(value: Any) -> list[str]:
    """A key (``primaryKey``, a foreign key's ``fields``) as a list of names."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]
