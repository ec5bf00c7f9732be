"""What changed between two versions of a package, and the version bump it needs.

``trialpool diff OLD NEW`` compares two descriptors (usually the base branch and a pull
request) resource by resource:

* rows added, removed and changed, matched by primary key (for a changed row: which
  fields, old -> new), in every resource; the rows of an added or removed resource by
  their keys; studies added and removed;
* schema changes: resources added and removed; fields added, removed (naming the other
  resources where a field of that name is added, e.g. ``arms.cell_source`` ->
  ``msc_arms``), renamed (a heuristic: one field removed and one added with the same
  type at the same position, whose values were carried over, is reported as
  "renamed?"), moved, type and constraint changes (a closed list of values replaced by
  a pattern or a length is looser when every value allowed before is still allowed,
  stricter otherwise), primary and foreign key changes;
* descriptor changes (title, licences, the extensions declared, ...).

Each change carries the semantic-version bump it requires ("semver for data", after the
Frictionless *data package version* pattern):

========  ==============================================================================
major     a field removed, renamed, moved or retyped; a constraint made stricter or
          changed; a primary key changed; a foreign key removed or changed; rows or
          studies removed (keys that users cite disappear; a changed key value is a
          removal plus an addition); a resource removed, renamed or moved; a
          required field added; an extension no longer declared; the package name or
          licences changed
minor     a study or rows added; an optional field added; a constraint loosened
          (e.g. new allowed values, an enum replaced by a pattern every old value
          matches); a foreign key, resource or extension added
patch     a value corrected (same key, different value); documentation changed
          (titles, descriptions, keywords); a file rewritten without any value change
none      nothing but generated parts changed (version, created, bytes, hash, sources)
========  ==============================================================================

The run fails (exit 1) when NEW's version is lower than OLD's version plus the required
bump (semantic-version precedence), or when the ``CHANGELOG.md`` next to NEW has no
entry for NEW's version. The message says which bump is needed, e.g.
``version 0.1.0 -> 0.1.0 but the change adds a study: needs a minor bump (0.2.0)``.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import total_ordering
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from trialpool.errors import PackageError
from trialpool.package.loader import Package, Resource, load_package

LEVELS = ("none", "patch", "minor", "major")

# Why a bump is needed, as a phrase after "the change ...". Order = priority when
# several changes require the same bump (the first one is named in the message).
REASONS: dict[str, str] = {
    "field_removed": "removes a field",
    "field_renamed": "renames a field",
    "primary_key_changed": "changes a primary key",
    "field_type_changed": "changes a field's type",
    "field_moved": "reorders fields",
    "study_removed": "removes a study",
    "rows_removed": "removes rows",
    "resource_removed": "removes a resource",
    "extension_removed": "no longer declares an extension",
    "resource_path_changed": "moves a data file",
    "field_required_added": "adds a required field",
    "constraint_tightened": "makes a constraint stricter",
    "foreign_key_changed": "changes a foreign key",
    "field_changed": "changes a field definition",
    "resource_changed": "changes how a resource is read",
    "package_renamed": "renames the package",
    "licenses_changed": "changes the licences",
    "study_added": "adds a study",
    "rows_added": "adds rows",
    "resource_added": "adds a resource",
    "extension_added": "declares an extension",
    "field_added": "adds a field",
    "constraint_loosened": "loosens a constraint",
    "foreign_key_added": "adds a foreign key",
    "licenses_added": "adds a licence",
    "value_changed": "corrects a value",
    "file_rewritten": "rewrites a file without changing values",
    "documentation_changed": "changes documentation",
    "metadata_changed": "changes descriptor metadata",
}
_PRIORITY = {kind: i for i, kind in enumerate(REASONS)}

# descriptor properties that are generated or expected to change with every release
_GENERATED = {"version", "created", "sources", "resources"}
_RESOURCE_GENERATED = {"bytes", "hash", "schema", "name", "path"}
_DOC_KEYS = {"title", "description", "keywords", "homepage", "contributors", "image", "$comment"}


# --------------------------------------------------------------------------- semver

_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)


@total_ordering
@dataclass(frozen=True)
class Version:
    """A semantic version (https://semver.org) with its precedence rules."""

    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...] = ()
    build: str = ""

    @classmethod
    def parse(cls, text: Any) -> Version:
        """Parse ``MAJOR.MINOR.PATCH[-pre][+build]``; ValueError when malformed."""
        match = _SEMVER.match(str(text)) if isinstance(text, str) else None
        if match is None:
            raise ValueError(f"{text!r} is not a semantic version MAJOR.MINOR.PATCH")
        pre = tuple(match.group(4).split(".")) if match.group(4) else ()
        return cls(
            int(match.group(1)), int(match.group(2)), int(match.group(3)), pre, match.group(5) or ""
        )

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(self.prerelease)
        if self.build:
            text += "+" + self.build
        return text

    def _key(self) -> tuple[Any, ...]:
        # a release ranks above its pre-releases; numeric identifiers rank below others
        pre: tuple[Any, ...] = tuple(
            (0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.prerelease
        )
        return (self.major, self.minor, self.patch, 0 if self.prerelease else 1, pre)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() == other._key()  # build metadata does not count

    def __lt__(self, other: Version) -> bool:
        return self._key() < other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def bump(self, level: str) -> Version:
        """The smallest version that makes a ``level`` change (none/patch/minor/major).

        From a pre-release the release itself may be enough (1.0.0-rc.1 + patch = 1.0.0),
        as in npm's ``semver.inc``.
        """
        if level == "none":
            return self
        pre = bool(self.prerelease)
        if level == "patch":
            return Version(self.major, self.minor, self.patch if pre else self.patch + 1)
        if level == "minor":
            if pre and self.patch == 0:
                return Version(self.major, self.minor, 0)
            return Version(self.major, self.minor + 1, 0)
        if level == "major":
            if pre and self.minor == 0 and self.patch == 0:
                return Version(self.major, 0, 0)
            return Version(self.major + 1, 0, 0)
        raise ValueError(f"unknown bump level {level!r}")


def bump_between(old: Version, new: Version) -> str:
    """The largest change ``new`` allows after ``old``: the highest level L such that
    ``new >= old.bump(L)`` (``none`` when ``new`` is not higher than ``old``)."""
    for level in ("major", "minor", "patch"):
        if new >= old.bump(level):
            return level
    return "none"


# ------------------------------------------------------------------------ changelog


def changelog_has_version(text: str, version: str) -> bool:
    """True when a Keep a Changelog heading ``## [X.Y.Z]`` (or ``## X.Y.Z``) exists."""
    pattern = re.compile(rf"^##\s+\[?v?{re.escape(version)}\]?(?=\s|$)", re.MULTILINE)
    return pattern.search(text) is not None


def check_changelog(descriptor: Path, version: str) -> str | None:
    """A one-line problem when ``CHANGELOG.md`` next to ``descriptor`` lacks ``version``."""
    path = descriptor.parent / "CHANGELOG.md"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return f"{path}: not found (every release needs a CHANGELOG.md entry for {version})"
    except (OSError, UnicodeDecodeError) as exc:
        return f"{path}: cannot be read ({exc})"
    if not changelog_has_version(text, version):
        return (
            f"{path}: no entry for version {version} "
            f"(add a section '## [{version}] - YYYY-MM-DD' describing the change)"
        )
    return None


# -------------------------------------------------------------------------- changes


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


@dataclass
class PackageDiff:
    """The comparison of two package versions and the verdict on the version bump."""

    old_path: Path
    new_path: Path
    old_version: str | None
    new_version: str | None
    resources: list[ResourceDiff]
    descriptor_changes: list[Change]
    studies_added: list[str]
    studies_removed: list[str]
    required: str = "none"
    reason: str | None = None
    minimum_version: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def changes(self) -> list[Change]:
        out = list(self.descriptor_changes)
        for res in self.resources:
            out.extend(res.changes)
        return out

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "old": {"descriptor": str(self.old_path), "version": self.old_version},
            "new": {"descriptor": str(self.new_path), "version": self.new_version},
            "required_bump": self.required,
            "reason": self.reason,
            "minimum_version": self.minimum_version,
            "ok": self.ok,
            "problems": self.problems,
            "studies_added": self.studies_added,
            "studies_removed": self.studies_removed,
            "changes": [c.as_dict() for c in self.changes],
            "resources": {r.name: r.as_dict() for r in self.resources},
        }


def _max_level(levels: list[str]) -> str:
    return max(levels, key=LEVELS.index, default="none")


# -------------------------------------------------------------------- schema diffs

_LOWER_BOUNDS = {"minimum", "minLength", "minItems", "exclusiveMinimum"}
_UPPER_BOUNDS = {"maximum", "maxLength", "maxItems", "exclusiveMaximum"}
_FLAGS = {"required", "unique"}


#: constraints that say which strings a field allows
_VALUE_KEYS = ("enum", "pattern", "minLength", "maxLength")


def admits(constraints: dict[str, Any], value: str) -> bool | None:
    """Whether a value meets the value constraints (enum, pattern, lengths); None when a
    pattern cannot be compiled."""
    allowed = constraints.get("enum")
    if isinstance(allowed, list) and value not in [str(v) for v in allowed]:
        return False
    pattern = constraints.get("pattern")
    if isinstance(pattern, str):
        try:
            if re.fullmatch(pattern, value) is None:  # Table Schema patterns are anchored
                return False
        except re.error:
            return None
    low, high = constraints.get("minLength"), constraints.get("maxLength")
    if isinstance(low, int) and len(value) < low:
        return False
    return not (isinstance(high, int) and len(value) > high)


def _value_set(constraints: dict[str, Any]) -> str:
    """The value constraints, for messages (``enum [a, b]``, ``pattern "^x$"``)."""
    parts = []
    for key in _VALUE_KEYS:
        if key not in constraints:
            continue
        value = constraints[key]
        if key == "enum" and isinstance(value, list):
            parts.append("enum [" + ", ".join(str(v) for v in value) + "]")
        else:
            parts.append(f"{key} {_show(value)}")
    return " and ".join(parts) or "any value"


def _enum_replaced(
    resource: str, name: str, old: dict[str, Any], new: dict[str, Any]
) -> Change | None:
    """One change for a closed list of values replaced by other value constraints (e.g.
    an enum replaced by a pattern): looser when every value allowed before is still
    allowed, stricter (naming the values now refused) otherwise."""
    before = old.get("enum")
    if not isinstance(before, list):
        return None
    if all(old.get(k) == new.get(k) for k in _VALUE_KEYS):
        return None
    if isinstance(new.get("enum"), list) and all(old.get(k) == new.get(k) for k in _VALUE_KEYS[1:]):
        return None  # enum to enum: the per-key rules below say added/removed values
    verdicts = {str(v): admits(new, str(v)) for v in before}
    refused = [v for v, ok in verdicts.items() if ok is False]
    unknown = [v for v, ok in verdicts.items() if ok is None]
    what = f"{resource}.{name}: allowed values {_value_set(old)} -> {_value_set(new)}"
    if refused or unknown:
        detail = f"no longer allowed: {', '.join(refused)}" if refused else "cannot be compared"
        return Change("major", "constraint_tightened", f"{what} ({detail})", resource, name)
    return Change(
        "minor",
        "constraint_loosened",
        f"{what} (every value allowed before is still allowed)",
        resource,
        name,
    )


def _constraint_changes(
    resource: str, name: str, old: dict[str, Any], new: dict[str, Any]
) -> list[Change]:
    """Classify each constraint change as stricter (major), looser (minor) or changed."""
    out: list[Change] = []
    replaced = _enum_replaced(resource, name, old, new)
    if replaced is not None:
        out.append(replaced)
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key), new.get(key)
        if before == after or (replaced is not None and key in _VALUE_KEYS):
            continue
        direction = "changed"
        if key in _FLAGS:
            direction = "tightened" if after and not before else "loosened"
        elif key == "enum":
            b = set(map(str, before)) if isinstance(before, list) else None
            a = set(map(str, after)) if isinstance(after, list) else None
            if b is None:
                direction = "tightened"
            elif a is None or a > b:
                direction = "loosened"
            elif a < b:
                direction = "tightened"
        elif key in _LOWER_BOUNDS | _UPPER_BOUNDS:
            if before is None:
                direction = "tightened"
            elif after is None:
                direction = "loosened"
            elif isinstance(before, int | float) and isinstance(after, int | float):
                higher = after > before
                direction = "tightened" if higher == (key in _LOWER_BOUNDS) else "loosened"
        elif key == "pattern":
            direction = (
                "tightened" if before is None else ("loosened" if after is None else "changed")
            )
        if key == "enum" and isinstance(before, list) and isinstance(after, list):
            removed = ", ".join(str(v) for v in before if v not in after)
            added = ", ".join(str(v) for v in after if v not in before)
            parts = [f"removed: {removed}" if removed else "", f"added: {added}" if added else ""]
            what = "allowed values " + "; ".join(p for p in parts if p)
        else:
            what = f"{key} {_show(before)} -> {_show(after)}"
        if direction == "loosened":
            level, kind = "minor", "constraint_loosened"
        else:
            level, kind = "major", "constraint_tightened"
            if direction == "changed":
                what += " (changed)"
        out.append(Change(level, kind, f"{resource}.{name}: {what}", resource, name))
    return out


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    return json.dumps(value, ensure_ascii=False)


#: says whether the values of old column A went to new column B (a rename), or None
RenameCheck = Callable[[str, str], bool] | None


def _pair_renames(
    old_fields: list[dict[str, Any]],
    new_fields: list[dict[str, Any]],
    confirm: RenameCheck = None,
) -> dict[str, str]:
    """old name -> new name for fields that look renamed: same type, same position, and
    (when ``confirm`` is given) the values carried over."""
    old_names = [f["name"] for f in old_fields]
    new_names = [f["name"] for f in new_fields]
    removed = [i for i, n in enumerate(old_names) if n not in new_names]
    added = {i for i, n in enumerate(new_names) if n not in old_names}
    renames: dict[str, str] = {}
    for i in removed:
        if (
            i in added
            and old_fields[i].get("type", "string") == new_fields[i].get("type", "string")
            and (confirm is None or confirm(old_names[i], new_names[i]))
        ):
            renames[old_names[i]] = new_names[i]
            added.discard(i)
    return renames


def schema_changes(
    resource: str, old: dict[str, Any], new: dict[str, Any], confirm: RenameCheck = None
) -> tuple[list[Change], dict[str, str]]:
    """Changes between two Table Schemas and the field map old name -> new name.

    ``confirm(old_name, new_name)`` may veto a rename the schemas suggest (see
    ``_pair_renames``); a vetoed pair is a removed and an added field.
    """
    out: list[Change] = []
    old_fields = [f for f in old.get("fields", []) if isinstance(f, dict) and "name" in f]
    new_fields = [f for f in new.get("fields", []) if isinstance(f, dict) and "name" in f]
    renames = _pair_renames(old_fields, new_fields, confirm)
    old_by = {f["name"]: f for f in old_fields}
    new_by = {f["name"]: f for f in new_fields}
    for old_name, new_name in renames.items():
        out.append(
            Change(
                "major",
                "field_renamed",
                f"{resource}: field {old_name!r} renamed? to {new_name!r} "
                "(one removed and one added with the same type and position)",
                resource,
                new_name,
            )
        )
    for name in old_by:
        if name not in new_by and name not in renames:
            out.append(
                Change(
                    "major", "field_removed", f"{resource}: field {name!r} removed", resource, name
                )
            )
    renamed_to = set(renames.values())
    for name, spec in new_by.items():
        if name in old_by or name in renamed_to:
            continue
        required = bool((spec.get("constraints") or {}).get("required"))
        if required:
            out.append(
                Change(
                    "major",
                    "field_required_added",
                    f"{resource}: required field {name!r} added",
                    resource,
                    name,
                )
            )
        else:
            out.append(
                Change("minor", "field_added", f"{resource}: field {name!r} added", resource, name)
            )
    field_map = {n: renames.get(n, n) for n in old_by if n in new_by or n in renames}
    # order of the fields both versions have
    old_order = [field_map[n] for n in old_by if n in field_map]
    new_order = [n for n in new_by if n in set(field_map.values())]
    if old_order != new_order:
        out.append(
            Change(
                "major",
                "field_moved",
                f"{resource}: field order changed "
                f"({', '.join(old_order)} -> {', '.join(new_order)})",
                resource,
            )
        )
    for old_name, new_name in field_map.items():
        out.extend(_field_changes(resource, old_by[old_name], new_by[new_name]))
    # keys
    old_pk = _as_list(old.get("primaryKey"))
    new_pk = _as_list(new.get("primaryKey"))
    if [field_map.get(n, n) for n in old_pk] != new_pk:
        out.append(
            Change(
                "major",
                "primary_key_changed",
                f"{resource}: primary key ({', '.join(old_pk)}) -> ({', '.join(new_pk)})",
                resource,
            )
        )
    out.extend(_foreign_key_changes(resource, old, new, field_map))
    for key in sorted((set(old) | set(new)) - {"fields", "primaryKey", "foreignKeys"}):
        if old.get(key) == new.get(key):
            continue
        if key in _DOC_KEYS:
            out.append(
                Change(
                    "patch",
                    "documentation_changed",
                    f"{resource}: schema {key} changed",
                    resource,
                )
            )
        else:
            out.append(
                Change(
                    "major",
                    "resource_changed",
                    f"{resource}: schema {key} {_show(old.get(key))} -> {_show(new.get(key))}",
                    resource,
                )
            )
    return out, field_map


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def _field_changes(resource: str, old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    name = new["name"]
    out: list[Change] = []
    if old.get("type", "string") != new.get("type", "string"):
        out.append(
            Change(
                "major",
                "field_type_changed",
                f"{resource}.{name}: type "
                f"{old.get('type', 'string')} -> {new.get('type', 'string')}",
                resource,
                name,
            )
        )
    out.extend(
        _constraint_changes(
            resource, name, old.get("constraints") or {}, new.get("constraints") or {}
        )
    )
    for key in sorted((set(old) | set(new)) - {"name", "type", "constraints"}):
        if old.get(key) == new.get(key):
            continue
        if key in _DOC_KEYS or key in {"rdfType", "example"}:
            out.append(
                Change(
                    "patch",
                    "documentation_changed",
                    f"{resource}.{name}: {key} changed",
                    resource,
                    name,
                )
            )
        else:
            out.append(
                Change(
                    "major",
                    "field_changed",
                    f"{resource}.{name}: {key} {_show(old.get(key))} -> {_show(new.get(key))}",
                    resource,
                    name,
                )
            )
    return out


def _foreign_key_changes(
    resource: str, old: dict[str, Any], new: dict[str, Any], field_map: dict[str, str]
) -> list[Change]:
    def canon(fk: Any, mapping: dict[str, str]) -> str:
        if not isinstance(fk, dict):
            return json.dumps(fk, sort_keys=True)
        fields = [mapping.get(f, f) for f in _as_list(fk.get("fields"))]
        ref = fk.get("reference") or {}
        return json.dumps(
            {"fields": fields, "resource": ref.get("resource"), "ref": _as_list(ref.get("fields"))},
            sort_keys=True,
        )

    old_fks = {canon(fk, field_map) for fk in old.get("foreignKeys") or []}
    new_fks = {canon(fk, {}) for fk in new.get("foreignKeys") or []}
    out: list[Change] = []
    for fk in sorted(old_fks - new_fks):
        out.append(
            Change(
                "major", "foreign_key_changed", f"{resource}: foreign key removed {fk}", resource
            )
        )
    for fk in sorted(new_fks - old_fks):
        out.append(
            Change("minor", "foreign_key_added", f"{resource}: foreign key added {fk}", resource)
        )
    return out


# ----------------------------------------------------------------------- row diffs


@dataclass
class _Table:
    header: list[str]
    rows: list[dict[str, str]]


def _read_rows(resource: Resource) -> _Table:
    """Raw rows of a CSV (strings; the header names the columns)."""
    try:
        with resource.path.open(encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, [])
            rows = [dict(zip(header, row, strict=False)) for row in reader if row]
    except FileNotFoundError:
        raise PackageError(f"{resource.path}: resource {resource.name!r}: file not found") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise PackageError(
            f"{resource.path}: resource {resource.name!r}: cannot be read ({exc})"
        ) from None
    return _Table(header, rows)


def _canonical(raw: str | None, spec: dict[str, Any], missing: list[str]) -> Any:
    """A value to compare: missing -> None, numbers by value, booleans by meaning."""
    if raw is None or raw in missing:
        return None
    kind = spec.get("type", "string")
    if kind in {"number", "integer"}:
        try:
            number = Decimal(raw.strip())
        except InvalidOperation:
            return raw
        return number if number.is_finite() else raw
    if kind == "boolean":
        if raw in spec.get("trueValues", ["true", "True", "TRUE", "1"]):
            return True
        if raw in spec.get("falseValues", ["false", "False", "FALSE", "0"]):
            return False
    return raw


def _missing(schema: dict[str, Any]) -> list[str]:
    values = schema.get("missingValues", [""])
    return [v for v in values if isinstance(v, str)] if isinstance(values, list) else [""]


def row_changes(
    name: str,
    old: Resource,
    new: Resource,
    field_map: dict[str, str],
    tables: tuple[_Table, _Table] | None = None,
) -> ResourceDiff:
    """Rows added, removed and changed, matched by primary key (new field names).

    ``tables`` are the two files' rows when already read (else they are read here).
    """
    old_table, new_table = tables or (_read_rows(old), _read_rows(new))
    old_specs = {f["name"]: f for f in old.schema.get("fields", []) if "name" in f}
    new_specs = {f["name"]: f for f in new.schema.get("fields", []) if "name" in f}
    # compare the columns both versions have (a renamed column under its new name)
    common = [
        (o, n) for o, n in field_map.items() if o in old_table.header and n in new_table.header
    ]
    new_names = [n for _, n in common]
    same_type = {
        n: old_specs.get(o, {}).get("type", "string") == new_specs.get(n, {}).get("type", "string")
        for o, n in common
    }
    old_missing, new_missing = _missing(old.schema), _missing(new.schema)

    def canon_old(o: str, n: str, row: dict[str, str]) -> Any:
        raw = row.get(o)
        return _canonical(raw, old_specs.get(o, {}), old_missing) if same_type[n] else raw

    def canon_new(n: str, row: dict[str, str]) -> Any:
        raw = row.get(n)
        return _canonical(raw, new_specs.get(n, {}), new_missing) if same_type[n] else raw

    new_pk = _as_list(new.schema.get("primaryKey"))
    old_pk_mapped = [field_map.get(f, f) for f in _as_list(old.schema.get("primaryKey"))]
    if new_pk and set(new_pk) <= set(new_names):
        key_fields = new_pk
    elif old_pk_mapped and set(old_pk_mapped) <= set(new_names):
        key_fields = old_pk_mapped
    else:
        key_fields = []
    diff = ResourceDiff(name=name, status="unchanged", key_fields=key_fields)
    reverse = {n: o for o, n in common}

    def raw_key(row: dict[str, str], fields: list[str], old_side: bool) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for f in fields:
            value = row.get(reverse[f]) if old_side else row.get(f)
            missing = old_missing if old_side else new_missing
            out[f] = None if value is None or value in missing else value
        return out

    if key_fields:
        old_rows = _index(
            old_table.rows, lambda r: tuple(canon_old(reverse[k], k, r) for k in key_fields)
        )
        new_rows = _index(new_table.rows, lambda r: tuple(canon_new(k, r) for k in key_fields))
        for key, row in new_rows.items():
            if key not in old_rows:
                diff.rows_added.append(raw_key(row, key_fields, old_side=False))
        for key, row in old_rows.items():
            if key not in new_rows:
                diff.rows_removed.append(raw_key(row, key_fields, old_side=True))
                continue
            new_row = new_rows[key]
            fields: dict[str, tuple[str | None, str | None]] = {}
            for o, n in common:
                if n in key_fields:
                    continue
                if canon_old(o, n, row) != canon_new(n, new_row):
                    before = raw_key(row, [n], old_side=True)[n]
                    after = raw_key(new_row, [n], old_side=False)[n]
                    fields[n] = (before, after)
            if fields:
                diff.rows_changed.append(RowChange(raw_key(new_row, key_fields, False), fields))
    else:
        old_count = Counter(tuple(canon_old(o, n, r) for o, n in common) for r in old_table.rows)
        new_count = Counter(tuple(canon_new(n, r) for _, n in common) for r in new_table.rows)
        for row in new_table.rows:
            sig = tuple(canon_new(n, row) for _, n in common)
            if new_count[sig] > old_count.get(sig, 0):
                new_count[sig] -= 1
                diff.rows_added.append(raw_key(row, new_names, old_side=False))
        old_count = Counter(tuple(canon_old(o, n, r) for o, n in common) for r in old_table.rows)
        new_count = Counter(tuple(canon_new(n, r) for _, n in common) for r in new_table.rows)
        for row in old_table.rows:
            sig = tuple(canon_old(o, n, row) for o, n in common)
            if old_count[sig] > new_count.get(sig, 0):
                old_count[sig] -= 1
                diff.rows_removed.append(raw_key(row, new_names, old_side=True))
    if diff.rows_added or diff.rows_removed or diff.rows_changed:
        diff.status = "changed"
    return diff


def _index(rows: list[dict[str, str]], key: Any) -> dict[tuple[Any, ...], dict[str, str]]:
    """Rows by key; a repeated key (an invalid package) gets a running suffix."""
    out: dict[tuple[Any, ...], dict[str, str]] = {}
    for row in rows:
        k = key(row)
        candidate, i = k, 1
        while candidate in out:
            candidate = (*k, f"#duplicate{i}")
            i += 1
        out[candidate] = row
    return out


def _fmt_key(key: dict[str, str | None]) -> str:
    if len(key) == 1:
        return str(next(iter(key.values())))
    return ", ".join(f"{k}={v if v is not None else ''}" for k, v in key.items())


# ------------------------------------------------------------------ package diffs


def _extension_changes(before: Any, after: Any) -> list[Change]:
    """Extensions declared (minor: resources added) or no longer declared (major)."""
    old = [str(x) for x in before] if isinstance(before, list) else []
    new = [str(x) for x in after] if isinstance(after, list) else []
    out = [
        Change("minor", "extension_added", f"descriptor: extension {name!r} declared")
        for name in new
        if name not in old
    ]
    out += [
        Change("major", "extension_removed", f"descriptor: extension {name!r} no longer declared")
        for name in old
        if name not in new
    ]
    if not out:  # same names, another order
        out.append(Change("patch", "metadata_changed", "descriptor: extensions reordered"))
    return out


def _descriptor_changes(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    out: list[Change] = []
    for key in sorted((set(old) | set(new)) - _GENERATED):
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        if key == "extensions":
            out.extend(_extension_changes(before, after))
        elif key == "licenses":
            b = [json.dumps(x, sort_keys=True) for x in before or []]
            a = [json.dumps(x, sort_keys=True) for x in after or []]
            if set(b) <= set(a):
                out.append(Change("minor", "licenses_added", "descriptor: licence added"))
            else:
                out.append(Change("major", "licenses_changed", "descriptor: licences changed"))
        elif key in {"name", "id"}:
            out.append(
                Change(
                    "major",
                    "package_renamed",
                    f"descriptor: {key} {_show(before)} -> {_show(after)}",
                )
            )
        else:
            kind = "documentation_changed" if key in _DOC_KEYS else "metadata_changed"
            out.append(Change("patch", kind, f"descriptor: {key} changed"))
    return out


def _resource_meta_changes(name: str, old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    out: list[Change] = []
    if old.get("path") != new.get("path"):
        out.append(
            Change(
                "major",
                "resource_path_changed",
                f"{name}: path {_show(old.get('path'))} -> {_show(new.get('path'))}",
                name,
            )
        )
    for key in sorted((set(old) | set(new)) - _RESOURCE_GENERATED):
        if old.get(key) == new.get(key):
            continue
        if key in _DOC_KEYS:
            out.append(Change("patch", "documentation_changed", f"{name}: {key} changed", name))
        else:
            out.append(
                Change(
                    "major",
                    "resource_changed",
                    f"{name}: {key} {_show(old.get(key))} -> {_show(new.get(key))}",
                    name,
                )
            )
    return out


def _raw_resources(package: Package) -> dict[str, dict[str, Any]]:
    return {
        r["name"]: r
        for r in package.descriptor.get("resources", [])
        if isinstance(r, dict) and isinstance(r.get("name"), str)
    }


def _row_summary_changes(diff: ResourceDiff, studies_table: bool) -> list[Change]:
    out: list[Change] = []
    name = diff.name
    if diff.rows_added:
        if studies_table:
            for key in diff.rows_added:
                out.append(
                    Change("minor", "study_added", f"{name}: study {_fmt_key(key)} added", name)
                )
        else:
            out.append(
                Change("minor", "rows_added", f"{name}: {len(diff.rows_added)} row(s) added", name)
            )
    if diff.rows_removed:
        if studies_table:
            for key in diff.rows_removed:
                out.append(
                    Change("major", "study_removed", f"{name}: study {_fmt_key(key)} removed", name)
                )
        else:
            out.append(
                Change(
                    "major",
                    "rows_removed",
                    f"{name}: {len(diff.rows_removed)} row(s) removed",
                    name,
                )
            )
    for row in diff.rows_changed:
        what = "; ".join(f"{f} {_cell(o)} -> {_cell(n)}" for f, (o, n) in row.fields.items())
        out.append(Change("patch", "value_changed", f"{name} ({_fmt_key(row.key)}): {what}", name))
    return out


def _cell(value: str | None) -> str:
    return "(empty)" if value is None else json.dumps(value, ensure_ascii=False)


def _row_keys(table: _Table, schema: dict[str, Any]) -> list[dict[str, str | None]]:
    """Each row's primary key (every column when the schema has no usable key)."""
    missing = _missing(schema)
    key = _as_list(schema.get("primaryKey"))
    fields = key if key and set(key) <= set(table.header) else table.header
    return [
        {f: None if row.get(f) is None or row.get(f) in missing else row.get(f) for f in fields}
        for row in table.rows
    ]


def _carried_over(old: _Table, new: _Table) -> Callable[[str, str], bool]:
    """A rename check: the old column's values went to the new column (one side's
    non-empty values are all in the other's; both empty counts, one empty does not)."""

    def values(table: _Table, name: str) -> Counter[str]:
        return Counter(v for r in table.rows if (v := r.get(name)) not in (None, ""))

    def check(old_name: str, new_name: str) -> bool:
        before, after = values(old, old_name), values(new, new_name)
        if not before or not after:
            return not before and not after
        return before <= after or after <= before

    return check


def _field_names(schema: dict[str, Any]) -> list[str]:
    return [f["name"] for f in schema.get("fields", []) if isinstance(f, dict) and "name" in f]


def _where_fields_went(resources: list[ResourceDiff], added: dict[str, list[str]]) -> None:
    """Name, on a removed field, the other resources where a field of that name appears
    (e.g. arms.cell_source -> msc_arms)."""
    for res in resources:
        for i, change in enumerate(res.changes):
            if change.kind != "field_removed" or change.field is None:
                continue
            others = [name for name, fields in added.items() if name != res.name]
            others = [name for name in others if change.field in added[name]]
            if others:
                res.changes[i] = Change(
                    change.level,
                    change.kind,
                    f"{change.message} (a field {change.field!r} is added in {', '.join(others)})",
                    change.resource,
                    change.field,
                )


def compare(old_descriptor: Path | str, new_descriptor: Path | str) -> PackageDiff:
    """Compare two package versions (no verdict on the version; see ``judge``)."""
    old_pkg = load_package(old_descriptor)
    new_pkg = load_package(new_descriptor)
    old_raw, new_raw = _raw_resources(old_pkg), _raw_resources(new_pkg)
    resources: list[ResourceDiff] = []
    studies_added: list[str] = []
    studies_removed: list[str] = []
    fields_added: dict[str, list[str]] = {}
    names = list(new_raw) + [n for n in old_raw if n not in new_raw]
    for name in names:
        if name not in old_raw:
            res = new_pkg.resources[name]
            keys = _row_keys(_read_rows(res), res.schema)
            diff = ResourceDiff(
                name=name,
                status="added",
                key_fields=list(keys[0]) if keys else _as_list(res.schema.get("primaryKey")),
                rows_added=keys,
            )
            diff.changes.append(
                Change(
                    "minor", "resource_added", f"{name}: resource added ({len(keys)} rows)", name
                )
            )
            fields_added[name] = _field_names(res.schema)
            resources.append(diff)
            continue
        if name not in new_raw:
            res = old_pkg.resources[name]
            keys = _row_keys(_read_rows(res), res.schema)
            diff = ResourceDiff(
                name=name,
                status="removed",
                key_fields=list(keys[0]) if keys else _as_list(res.schema.get("primaryKey")),
                rows_removed=keys,
            )
            diff.changes.append(
                Change(
                    "major",
                    "resource_removed",
                    f"{name}: resource removed ({len(keys)} rows)",
                    name,
                )
            )
            resources.append(diff)
            continue
        old_res, new_res = old_pkg.resources[name], new_pkg.resources[name]
        tables = (_read_rows(old_res), _read_rows(new_res))
        schema, field_map = schema_changes(
            name, old_res.schema, new_res.schema, _carried_over(*tables)
        )
        diff = row_changes(name, old_res, new_res, field_map, tables)
        is_studies = name == "studies" and len(diff.key_fields) == 1
        diff.changes.extend(_resource_meta_changes(name, old_raw[name], new_raw[name]))
        diff.changes.extend(schema)
        diff.changes.extend(_row_summary_changes(diff, is_studies))
        fields_added[name] = [
            c.field
            for c in schema
            if c.kind in {"field_added", "field_required_added"} and c.field is not None
        ]
        if not diff.changes and old_res.path.read_bytes() != new_res.path.read_bytes():
            diff.changes.append(
                Change(
                    "patch",
                    "file_rewritten",
                    f"{name}: file bytes changed but no value changed",
                    name,
                )
            )
        if diff.changes:
            diff.status = "changed"
        if is_studies:
            key = diff.key_fields[0]
            studies_added = [str(k[key]) for k in diff.rows_added]
            studies_removed = [str(k[key]) for k in diff.rows_removed]
        resources.append(diff)
    _where_fields_went(resources, fields_added)
    return PackageDiff(
        old_path=Path(old_descriptor),
        new_path=Path(new_descriptor),
        old_version=old_pkg.version,
        new_version=new_pkg.version,
        resources=resources,
        descriptor_changes=_descriptor_changes(old_pkg.descriptor, new_pkg.descriptor),
        studies_added=studies_added,
        studies_removed=studies_removed,
    )


def judge(diff: PackageDiff, *, check_changelog_file: bool = True) -> PackageDiff:
    """Fill in the required bump and the problems (version too low, changelog entry)."""
    changes = diff.changes
    diff.required = _max_level([c.level for c in changes])
    top = sorted(
        (c for c in changes if c.level == diff.required),
        key=lambda c: _PRIORITY.get(c.kind, len(_PRIORITY)),
    )
    diff.reason = REASONS.get(top[0].kind, top[0].kind) if top else None
    problems: list[str] = []
    try:
        old_v = Version.parse(diff.old_version)
    except ValueError as exc:
        problems.append(f"{diff.old_path}: version: {exc}")
        old_v = None
    try:
        new_v = Version.parse(diff.new_version)
    except ValueError as exc:
        problems.append(f"{diff.new_path}: version: {exc}")
        new_v = None
    if old_v is not None and new_v is not None:
        minimum = old_v.bump(diff.required)
        diff.minimum_version = str(minimum)
        if new_v < minimum:
            if diff.required == "none":
                problems.append(
                    f"version {old_v} -> {new_v} goes backwards: the new version must not be "
                    f"lower than {old_v}"
                )
            else:
                problems.append(
                    f"version {old_v} -> {new_v} but the change {diff.reason}: "
                    f"needs a {diff.required} bump ({minimum})"
                )
    if check_changelog_file and new_v is not None:
        problem = check_changelog(diff.new_path, str(new_v))
        if problem:
            problems.append(problem)
    diff.problems = problems
    return diff


def diff_packages(old: Path | str, new: Path | str) -> PackageDiff:
    """Compare two versions and judge the version bump (the API behind ``trialpool diff``)."""
    return judge(compare(old, new))


# ------------------------------------------------------------------------- output

_STYLE = {"major": "bold red", "minor": "yellow", "patch": "cyan", "none": "dim"}
_DETAIL_LIMIT = 20


def _print(diff: PackageDiff, console: Console) -> None:
    console.print(
        f"[bold]trialpool diff[/bold] {escape(str(diff.old_path))} "
        f"({escape(str(diff.old_version))}) -> {escape(str(diff.new_path))} "
        f"({escape(str(diff.new_version))})"
    )
    if diff.studies_added:
        console.print(f"Studies added: {escape(', '.join(diff.studies_added))}")
    if diff.studies_removed:
        console.print(f"Studies removed: {escape(', '.join(diff.studies_removed))}")
    table = Table(title=None, show_lines=False)
    table.add_column("resource", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for column in ("rows added", "removed", "changed", "schema changes"):
        table.add_column(column, justify="right")
    for res in diff.resources:
        n_schema = sum(
            1
            for c in res.changes
            if c.kind
            not in {"rows_added", "rows_removed", "value_changed", "study_added", "study_removed"}
        )
        table.add_row(
            res.name,
            res.status,
            str(len(res.rows_added)),
            str(len(res.rows_removed)),
            str(len(res.rows_changed)),
            str(n_schema),
        )
    console.print(table)
    changes = diff.changes
    if changes:
        console.print("[bold]Changes[/bold]")
        shown: Counter[str | None] = Counter()
        hidden: Counter[str | None] = Counter()
        for change in changes:  # every schema change; at most _DETAIL_LIMIT changed rows
            if change.kind == "value_changed":
                if shown[change.resource] >= _DETAIL_LIMIT:
                    hidden[change.resource] += 1
                    continue
                shown[change.resource] += 1
            style = _STYLE[change.level]
            console.print(f"  [{style}]{change.level:<5}[/{style}] {escape(change.message)}")
        for resource, count in hidden.items():
            console.print(f"  ... {count} more changed row(s) in {resource} (see --json)")
    else:
        console.print("No change in data, schemas or metadata.")
    if diff.minimum_version is not None:
        console.print(
            f"Required bump: [bold]{diff.required}[/bold]"
            + (f" (the change {diff.reason})" if diff.reason else "")
            + f"; minimum version {diff.minimum_version}"
        )
    if diff.problems:
        for problem in diff.problems:
            console.print(f"[bold red]error:[/bold red] {escape(problem)}")
    else:
        console.print(
            f"[green]OK[/green]: version {escape(str(diff.new_version))} is enough and "
            "CHANGELOG.md has its entry"
        )


def run_diff(old: Path, new: Path, *, as_json: bool, console: Console) -> int:
    """``trialpool diff``: print the comparison; 0 when the version and changelog are right."""
    diff = diff_packages(old, new)
    if as_json:
        console.out(json.dumps(diff.as_dict(), indent=2, ensure_ascii=False), highlight=False)
    else:
        _print(diff, console)
    return 0 if diff.ok else 1
