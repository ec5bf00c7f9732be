"""The project's own rules for ``datapackage.json``, beyond the Frictionless profile.

The descriptor declares the standard profile (``"profile": "tabular-data-package"``),
which frictionless checks. The project adds its own rules, written as a JSON Schema in
``schemas/datapackage.profile.json`` (the single source of those rules):

* ``name``, ``version`` (semantic version), ``licenses`` (non-empty, each with ``name``
  and ``path``), ``sources``, ``contributors`` (non-empty, each with ``title``) and
  ``created`` (RFC 3339 date-time) are required;
* every resource has a ``name``, a ``path`` under ``data/``, a ``schema`` under
  ``schemas/``, and the generated ``bytes`` and ``hash`` (``sha256:<64 hex>``).

Two rules JSON Schema cannot express are checked here in Python: resource names and
resource paths are unique.

``check_descriptor`` returns every problem as ``(json_path, message)``, for example
``("$.resources[2].hash", "must be 'sha256:' followed by 64 lower-case hex digits ...")``.
Each message is one line; it comes from the ``description`` of the broken subschema, so
the wording lives next to the rule.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError

from trialpool.errors import PackageError
from trialpool.package.core import schema_json
from trialpool.package.loader import Package, read_json
from trialpool.validate.issues import TRIALPOOL, ValidationIssue

PROFILE_NAME = "datapackage.profile.json"


Problem = tuple[str, str]


def _short(value: Any, limit: int = 60) -> str:
    """A one-line, length-limited rendering of a JSON value for messages."""
    text = json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


@lru_cache(maxsize=8)
def _validator_for(path: Path) -> Draft202012Validator:
    profile = read_json(path)
    return _make_validator(profile, str(path))


@lru_cache(maxsize=1)
def _default_validator() -> Draft202012Validator:
    """The validator of the project's profile, as bundled in trialpool."""
    return _make_validator(schema_json(PROFILE_NAME), f"trialpool's schema {PROFILE_NAME}")


def _make_validator(profile: Any, where: str) -> Draft202012Validator:
    if not isinstance(profile, dict):
        raise PackageError(f"{where}: descriptor profile must be a JSON object")
    try:
        Draft202012Validator.check_schema(profile)
    except SchemaError as exc:
        raise PackageError(f"{where}: not a valid JSON Schema ({exc.message})") from None
    return Draft202012Validator(profile)


def load_validator(profile: Path | Mapping[str, Any] | None = None) -> Draft202012Validator:
    """A validator for the descriptor profile (default: the project's
    ``schemas/datapackage.profile.json``, as bundled in trialpool).

    Raises PackageError (one line) when the profile cannot be found or is not a valid
    JSON Schema.
    """
    if profile is None:
        return _default_validator()
    if isinstance(profile, Path):
        return _validator_for(profile.resolve())
    return _make_validator(dict(profile), "descriptor profile")


def _json_path(parts: list[Any]) -> str:
    """``$.resources[2].hash`` from the list of keys and indices."""
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _message(error: ValidationError) -> tuple[str, str]:
    """Turn one jsonschema error into ``(json_path, one-line message)``."""
    path = list(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    rule = schema.get("description")
    if error.validator == "required":
        # error.message is "'x' is a required property"; point at the missing element
        missing = next(
            (
                name
                for name in error.validator_value
                if isinstance(error.instance, dict) and name not in error.instance
            ),
            None,
        )
        if missing is not None:
            sub = schema.get("properties", {}).get(missing, {})
            detail = sub.get("description") if isinstance(sub, dict) else None
            message = f"required property {missing!r} is missing"
            if detail:
                message += f" ({detail})"
            return _json_path([*path, missing]), message
    if rule:
        return _json_path(path), f"{rule}; got {_short(error.instance)}"
    first = error.message.splitlines()[0] if error.message else error.validator
    return _json_path(path), str(first)


def _unique(descriptor: Mapping[str, Any], key: str) -> list[Problem]:
    """Resources must not share a name or a path."""
    resources = descriptor.get("resources")
    if not isinstance(resources, list):
        return []
    seen: dict[str, int] = {}
    problems: list[Problem] = []
    for i, resource in enumerate(resources):
        if not isinstance(resource, dict):
            continue
        value = resource.get(key)
        if not isinstance(value, str):
            continue
        if value in seen:
            problems.append(
                (
                    f"$.resources[{i}].{key}",
                    f"{key} {value!r} is already used by resources[{seen[value]}]",
                )
            )
        else:
            seen[value] = i
    return problems


def check_descriptor(
    descriptor: Any, *, profile: Path | Mapping[str, Any] | None = None
) -> list[Problem]:
    """Check a descriptor against the project's rules.

    Args:
        descriptor: the parsed ``datapackage.json``.
        profile: the JSON Schema of the rules (a path or a parsed dict); default
            ``schemas/datapackage.profile.json``, as bundled in trialpool.

    Returns:
        Every problem as ``(json_path, message)``, sorted by path; empty when the
        descriptor follows the rules.
    """
    if not isinstance(descriptor, Mapping):
        return [("$", f"descriptor must be a JSON object; got {_short(descriptor)}")]
    validator = load_validator(profile)
    problems = [_message(error) for error in validator.iter_errors(dict(descriptor))]
    problems += _unique(descriptor, "name") + _unique(descriptor, "path")
    # one message per element and rule, in document order
    return sorted(set(problems), key=_sort_key)


def _sort_key(problem: Problem) -> tuple[list[tuple[int, Any]], str]:
    """Sort ``$.resources[10]`` after ``$.resources[9]``."""
    path, message = problem
    parts: list[tuple[int, Any]] = []
    for token in path.replace("[", ".[").split(".")[1:]:
        if token.startswith("[") and token.endswith("]") and token[1:-1].isdigit():
            parts.append((0, int(token[1:-1])))
        else:
            parts.append((1, token))
    return parts, message


def check_descriptor_file(
    path: Path | str, *, profile: Path | Mapping[str, Any] | None = None
) -> list[Problem]:
    """Read a ``datapackage.json`` (PackageError when unreadable) and check it."""
    return check_descriptor(read_json(Path(path)), profile=profile)


def descriptor_rule_issues(package: Package) -> list[ValidationIssue]:
    """The descriptor rules above, as validation issues.

    Those rules (semantic version, licences, generated bytes and hash, paths under
    ``data/`` and ``schemas/``) are checked on the descriptor as written; each problem
    is named by its JSON path in ``field`` (e.g. ``$.resources[2].hash``).
    """
    try:
        problems = check_descriptor(package.descriptor)
    except PackageError as exc:
        problems = [("$", str(exc))]
    name = package.descriptor_path.name
    return [
        ValidationIssue(None, name, None, where, "descriptor-rule", message, TRIALPOOL)
        for where, message in problems
    ]
