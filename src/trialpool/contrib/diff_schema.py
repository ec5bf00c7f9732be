"""Schema and descriptor changes and the bump each requires (part of :mod:`trialpool.contrib.diff`).

Compares two Table Schemas field by field (added, removed, renamed?, moved, retyped;
constraints looser or stricter; primary and foreign keys; the schema's other properties),
a resource's descriptor entry (its path, how it is read, its documentation) and the
package descriptor (name, licences, extensions declared, documentation). Each difference
is a :class:`~trialpool.contrib.diff_model.Change` with the bump the table in
:mod:`trialpool.contrib.diff` gives it. Rows are compared in
:mod:`trialpool.contrib.diff_rows`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from trialpool.contrib.diff_model import Change, ResourceDiff, as_list, show

# descriptor properties that are generated or expected to change with every release
_GENERATED = {"version", "created", "sources", "resources"}
_RESOURCE_GENERATED = {"bytes", "hash", "schema", "name", "path"}
_DOC_KEYS = {"title", "description", "keywords", "homepage", "contributors", "image", "$comment"}
#: field properties that only document it
_FIELD_DOC_KEYS = _DOC_KEYS | {"rdfType", "example"}

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
            parts.append(f"{key} {show(value)}")
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
            what = f"{key} {show(before)} -> {show(after)}"
        if direction == "loosened":
            level, kind = "minor", "constraint_loosened"
        else:
            level, kind = "major", "constraint_tightened"
            if direction == "changed":
                what += " (changed)"
        out.append(Change(level, kind, f"{resource}.{name}: {what}", resource, name))
    return out


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
    old_pk = as_list(old.get("primaryKey"))
    new_pk = as_list(new.get("primaryKey"))
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
    out.extend(
        _property_changes(
            old,
            new,
            skip={"fields", "primaryKey", "foreignKeys"},
            where=f"{resource}: schema",
            kind="resource_changed",
            resource=resource,
        )
    )
    return out, field_map


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
    out.extend(
        _property_changes(
            old,
            new,
            skip={"name", "type", "constraints"},
            where=f"{resource}.{name}:",
            kind="field_changed",
            resource=resource,
            field=name,
            doc_keys=_FIELD_DOC_KEYS,
        )
    )
    return out


def _foreign_key_changes(
    resource: str, old: dict[str, Any], new: dict[str, Any], field_map: dict[str, str]
) -> list[Change]:
    def canon(fk: Any, mapping: dict[str, str]) -> str:
        if not isinstance(fk, dict):
            return json.dumps(fk, sort_keys=True)
        fields = [mapping.get(f, f) for f in as_list(fk.get("fields"))]
        ref = fk.get("reference") or {}
        return json.dumps(
            {"fields": fields, "resource": ref.get("resource"), "ref": as_list(ref.get("fields"))},
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


def descriptor_changes(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """Changes to the package descriptor (not its generated parts or resources)."""
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
                    f"descriptor: {key} {show(before)} -> {show(after)}",
                )
            )
        else:
            kind = "documentation_changed" if key in _DOC_KEYS else "metadata_changed"
            out.append(Change("patch", kind, f"descriptor: {key} changed"))
    return out


def _property_changes(
    old: dict[str, Any],
    new: dict[str, Any],
    *,
    skip: set[str],
    where: str,
    kind: str,
    resource: str,
    field: str | None = None,
    doc_keys: set[str] = _DOC_KEYS,
) -> list[Change]:
    """The other properties of a resource entry, a schema or a field (all keys of either
    side but ``skip``): documentation changed (patch) or a ``kind`` change naming both
    values (major). ``where`` starts each message (e.g. ``"arms: schema"``)."""
    out: list[Change] = []
    for key in sorted((set(old) | set(new)) - skip):
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        if key in doc_keys:
            out.append(
                Change("patch", "documentation_changed", f"{where} {key} changed", resource, field)
            )
        else:
            message = f"{where} {key} {show(before)} -> {show(after)}"
            out.append(Change("major", kind, message, resource, field))
    return out


def resource_meta_changes(name: str, old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """Changes to a resource's descriptor entry (path, dialect, format, documentation, ...;
    not the generated bytes and hash, nor the schema: see ``schema_changes``)."""
    out: list[Change] = []
    if old.get("path") != new.get("path"):
        out.append(
            Change(
                "major",
                "resource_path_changed",
                f"{name}: path {show(old.get('path'))} -> {show(new.get('path'))}",
                name,
            )
        )
    out.extend(
        _property_changes(
            old,
            new,
            skip=_RESOURCE_GENERATED,
            where=f"{name}:",
            kind="resource_changed",
            resource=name,
        )
    )
    return out


def where_fields_went(resources: list[ResourceDiff], added: dict[str, list[str]]) -> None:
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


def fields_added(changes: list[Change]) -> list[str]:
    """The fields that ``changes`` (of one resource) add."""
    return [
        c.field
        for c in changes
        if c.kind in {"field_added", "field_required_added"} and c.field is not None
    ]
