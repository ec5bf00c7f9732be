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

The comparison has three parts beside this module (import their names from here):
:mod:`trialpool.contrib.diff_model` (``Change``, ``RowChange``, ``ResourceDiff``),
:mod:`trialpool.contrib.diff_schema` (schema, field, constraint, key, extension and
descriptor changes and their bumps) and :mod:`trialpool.contrib.diff_rows` (rows by
primary key). This module holds the semantic ``Version``, the changelog check, the
assembly of the report (``compare``, ``judge``), its printing and JSON, and ``run_diff``.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import total_ordering
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from trialpool.contrib.diff_model import LEVELS as LEVELS
from trialpool.contrib.diff_model import Change, ResourceDiff, as_list, max_level
from trialpool.contrib.diff_model import RowChange as RowChange
from trialpool.contrib.diff_rows import (
    carried_over,
    read_rows,
    row_changes,
    row_keys,
    row_summary_changes,
)
from trialpool.contrib.diff_schema import RenameCheck as RenameCheck
from trialpool.contrib.diff_schema import admits as admits
from trialpool.contrib.diff_schema import (
    descriptor_changes,
    fields_added,
    resource_meta_changes,
    schema_changes,
    where_fields_went,
)
from trialpool.package.loader import Package, Resource, load_package

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


# ---------------------------------------------------------------------- the report


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


def _raw_resources(package: Package) -> dict[str, dict[str, Any]]:
    """Each resource's descriptor entry as written (``Resource.descriptor`` inlines a
    dialect file, so a changed dialect path would not show)."""
    return {
        r["name"]: r
        for r in package.descriptor.get("resources", [])
        if isinstance(r, dict) and isinstance(r.get("name"), str)
    }


def _one_sided(res: Resource, status: str) -> ResourceDiff:
    """A resource only one version has (``status`` added or removed): its rows by key."""
    keys = row_keys(read_rows(res), res.schema)
    diff = ResourceDiff(
        name=res.name,
        status=status,
        key_fields=list(keys[0]) if keys else as_list(res.schema.get("primaryKey")),
    )
    if status == "added":
        diff.rows_added, level = keys, "minor"
    else:
        diff.rows_removed, level = keys, "major"
    diff.changes.append(
        Change(
            level,
            f"resource_{status}",
            f"{res.name}: resource {status} ({len(keys)} rows)",
            res.name,
        )
    )
    return diff


def compare(old_descriptor: Path | str, new_descriptor: Path | str) -> PackageDiff:
    """Compare two package versions (no verdict on the version; see ``judge``)."""
    old_pkg = load_package(old_descriptor)
    new_pkg = load_package(new_descriptor)
    old_raw, new_raw = _raw_resources(old_pkg), _raw_resources(new_pkg)
    resources: list[ResourceDiff] = []
    studies_added: list[str] = []
    studies_removed: list[str] = []
    added_fields: dict[str, list[str]] = {}
    names = list(new_raw) + [n for n in old_raw if n not in new_raw]
    for name in names:
        if name not in old_raw:
            resources.append(_one_sided(new_pkg.resources[name], "added"))
            added_fields[name] = new_pkg.resources[name].field_names
            continue
        if name not in new_raw:
            resources.append(_one_sided(old_pkg.resources[name], "removed"))
            continue
        old_res, new_res = old_pkg.resources[name], new_pkg.resources[name]
        tables = (read_rows(old_res), read_rows(new_res))
        schema, field_map = schema_changes(
            name, old_res.schema, new_res.schema, carried_over(*tables)
        )
        diff = row_changes(name, old_res, new_res, field_map, tables)
        is_studies = name == "studies" and len(diff.key_fields) == 1
        diff.changes.extend(resource_meta_changes(name, old_raw[name], new_raw[name]))
        diff.changes.extend(schema)
        diff.changes.extend(row_summary_changes(diff, is_studies))
        added_fields[name] = fields_added(schema)
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
    where_fields_went(resources, added_fields)
    return PackageDiff(
        old_path=Path(old_descriptor),
        new_path=Path(new_descriptor),
        old_version=old_pkg.version,
        new_version=new_pkg.version,
        resources=resources,
        descriptor_changes=descriptor_changes(old_pkg.descriptor, new_pkg.descriptor),
        studies_added=studies_added,
        studies_removed=studies_removed,
    )


def judge(diff: PackageDiff, *, check_changelog_file: bool = True) -> PackageDiff:
    """Fill in the required bump and the problems (version too low, changelog entry)."""
    changes = diff.changes
    diff.required = max_level([c.level for c in changes])
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


def run_diff(
    old: Path, new: Path, *, as_json: bool, console: Console, results: bool = False
) -> int:
    """``trialpool diff``: print the comparison; 0 when the version and changelog are right.

    With ``results``, both versions are validated and re-pooled first and the results that
    changed follow (:mod:`trialpool.contrib.diff_results`; JSON keys ``results`` and
    ``results_compared``)."""
    found = None
    if results:
        from trialpool.contrib.diff_results import compare_results

        found = compare_results(old, new)
    diff = diff_packages(old, new)
    if as_json:
        data = diff.as_dict() | ({} if found is None else found.as_dict())
        console.out(json.dumps(data, indent=2, ensure_ascii=False), highlight=False)
    else:
        _print(diff, console)
        if found is not None:
            from trialpool.contrib.diff_results import print_results

            print_results(found, console)
    return 0 if diff.ok else 1
