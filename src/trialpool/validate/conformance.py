"""Conformance to the core schema and to the extensions a package declares.

A package conforms when it has every required core resource, each core resource uses the
core Table Schema unchanged (same fields in the same order, with the same types and
constraints, the same keys) or the schema of an earlier minor version of the core (whose
vocabularies the core has since grown: a field's ``enum`` may be a subset of the core's,
everything else must be the same), and every extension resource belongs to an extension the
descriptor declares (``"extensions": ["msc"]``) and uses that extension's schema. Topic
fields go into extension resources, never into core tables: a core table carrying a field
of an extension is reported as ``extension-field-without-extension`` when the extension is
not declared, and as ``schema-mismatch`` otherwise.
"""

from __future__ import annotations

import json
from typing import Any

from trialpool.package.core import (
    CoreResource,
    core_resources,
    extension_of_field,
    extensions,
    known_resources,
)
from trialpool.package.loader import Package
from trialpool.validate.issues import TRIALPOOL, ValidationIssue

#: field properties that must equal the core's (descriptions and titles may differ)
_COMPARED = ("type", "format", "constraints")


def _issue(package: Package, resource: str | None, field: str | None, rule: str, msg: str):
    res = package.resources.get(resource) if resource else None
    where = res.display_path if res is not None else package.descriptor_path.name
    return ValidationIssue(resource, where, None, field, rule, msg, TRIALPOOL)


def _keys(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else [str(v) for v in value or []]


def _fk_set(schema: dict[str, Any]) -> set[str]:
    return {
        json.dumps(
            [
                _keys(fk.get("fields")),
                (fk.get("reference") or {}).get("resource"),
                _keys((fk.get("reference") or {}).get("fields")),
            ]
        )
        for fk in schema.get("foreignKeys") or []
        if isinstance(fk, dict)
    }


def _same_or_earlier(prop: str, mine: Any, ref: Any) -> bool:
    """True when a field's ``prop`` is the core's, or an earlier minor version's: the same
    constraints with an ``enum`` that is a subset of the core's (a vocabulary grown since)."""
    if mine == ref:
        return True
    if prop != "constraints" or not isinstance(mine, dict) or not isinstance(ref, dict):
        return False
    mine_enum, ref_enum = mine.get("enum"), ref.get("enum")
    if not isinstance(mine_enum, list) or not isinstance(ref_enum, list):
        return False
    rest = {k: v for k, v in mine.items() if k != "enum"}
    ref_rest = {k: v for k, v in ref.items() if k != "enum"}
    return rest == ref_rest and set(map(str, mine_enum)) <= set(map(str, ref_enum))


def _schema_issues(
    package: Package, spec: CoreResource, declared: set[str]
) -> list[ValidationIssue]:
    """How the package's schema for ``spec.name`` differs from the reference schema."""
    mine = package.resources[spec.name].schema
    ref = spec.schema()
    what = "core schema" if spec.extension is None else f"{spec.extension} extension's schema"
    out: list[ValidationIssue] = []
    ref_fields = {f["name"]: f for f in ref.get("fields", [])}
    my_fields = {f.get("name"): f for f in mine.get("fields", []) if isinstance(f, dict)}
    for name in my_fields:
        if name in ref_fields:
            continue
        owner = extension_of_field(spec.name, str(name)) if spec.extension is None else None
        if owner is not None and owner.extension not in declared:
            out.append(
                _issue(
                    package,
                    spec.name,
                    str(name),
                    "extension-field-without-extension",
                    f"field {name} belongs to the {owner.extension} extension (resource "
                    f'{owner.name}); declare "extensions": ["{owner.extension}"] in the '
                    f"descriptor and put the field in {owner.name}",
                )
            )
        else:
            where = f"resource {owner.name}" if owner is not None else "an extension resource"
            out.append(
                _issue(
                    package,
                    spec.name,
                    str(name),
                    "schema-mismatch",
                    f"field {name} is not in the {what} of {spec.name} (topic fields belong "
                    f"in {where})",
                )
            )
    for name, ref_field in ref_fields.items():
        field = my_fields.get(name)
        if field is None:
            out.append(
                _issue(
                    package,
                    spec.name,
                    name,
                    "schema-mismatch",
                    f"field {name} of the {what} of {spec.name} is missing",
                )
            )
            continue
        for prop in _COMPARED:
            if not _same_or_earlier(prop, field.get(prop), ref_field.get(prop)):
                out.append(
                    _issue(
                        package,
                        spec.name,
                        name,
                        "schema-mismatch",
                        f"field {name}: {prop} {json.dumps(field.get(prop))} differs from the "
                        f"{what} ({json.dumps(ref_field.get(prop))})",
                    )
                )
    if not out and list(my_fields) != list(ref_fields):
        out.append(
            _issue(
                package,
                spec.name,
                None,
                "schema-mismatch",
                f"fields are not in the order of the {what}: {', '.join(ref_fields)}",
            )
        )
    if _keys(mine.get("primaryKey")) != _keys(ref.get("primaryKey")):
        out.append(
            _issue(
                package,
                spec.name,
                None,
                "schema-mismatch",
                f"primaryKey {json.dumps(mine.get('primaryKey'))} differs from the {what} "
                f"({json.dumps(ref.get('primaryKey'))})",
            )
        )
    if _fk_set(mine) != _fk_set(ref):
        out.append(
            _issue(
                package,
                spec.name,
                None,
                "schema-mismatch",
                f"foreignKeys differ from the {what}",
            )
        )
    return out


def conformance_issues(package: Package) -> list[ValidationIssue]:
    """Every way the package departs from the core and its declared extensions."""
    out: list[ValidationIssue] = []
    known_ext = extensions()
    declared = package.extensions
    for name in declared:
        if name not in known_ext:
            out.append(
                _issue(
                    package,
                    None,
                    "$.extensions",
                    "unknown-extension",
                    f"extension {name!r} is not known (known: {', '.join(known_ext) or 'none'})",
                )
            )
    declared_known = {n for n in declared if n in known_ext}
    for spec in core_resources():
        if spec.name not in package.resources:
            if spec.required:
                out.append(
                    _issue(
                        package,
                        None,
                        "$.resources",
                        "core-resource-missing",
                        f"core resource {spec.name!r} is missing ('trialpool init' creates "
                        "every core resource)",
                    )
                )
            continue
        out += _schema_issues(package, spec, declared_known)
    for name, spec in known_resources().items():
        if spec.extension is None or name not in package.resources:
            continue
        if spec.extension not in declared_known:
            out.append(
                _issue(
                    package,
                    name,
                    None,
                    "extension-not-declared",
                    f"resource {name} belongs to the {spec.extension} extension, which the "
                    f'descriptor does not declare (add "extensions": ["{spec.extension}"])',
                )
            )
            continue
        out += _schema_issues(package, spec, declared_known)
    for ext_name in sorted(declared_known):
        for spec in known_ext[ext_name].resources:
            if spec.required and spec.name not in package.resources:
                out.append(
                    _issue(
                        package,
                        None,
                        "$.resources",
                        "extension-resource-missing",
                        f"extension {ext_name} needs resource {spec.name!r}",
                    )
                )
    return out
