"""Step 1 of validation: Table Schema, by frictionless (the reference) or the fast engine.

Types, ``required``, ``enum``, ``minimum``/``maximum``, ``pattern``, ``unique``, primary
and foreign keys, ``bytes`` and ``hash``, header and row shape, with frictionless'
semantics and messages. ``frictionless`` (5.x) is the reference engine;
``trialpool.validate.fast`` is a vectorised engine that gives the same errors at the same
locations (a test holds it to that on a corpus of broken packages and on the bundled
package). ``choose_engine`` decides which runs: the fast engine for packages of every size
by default (``auto``); ``TRIALPOOL_ENGINE=fast|frictionless|auto`` or the ``engine``
argument picks one explicitly. Either engine only ever sees what
``package.load_package`` has vetted. Data files over ``max_file_bytes()``
(``TRIALPOOL_MAX_FILE_BYTES``, default 512 MiB) are refused before anything is read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from trialpool.package.loader import Package, Resource
from trialpool.validate.fast import Prefetch, breaks_rows, validate_tables
from trialpool.validate.issues import FRICTIONLESS, TRIALPOOL, ValidationIssue, package_issue


def frictionless_descriptor(package: Package) -> dict[str, Any]:
    """The descriptor handed to frictionless: the vetted one, schemas/dialects inlined."""
    descriptor = dict(package.descriptor)
    descriptor["resources"] = [dict(res.descriptor) for res in package.resources.values()]
    return descriptor


def _fl_message(error: dict[str, Any]) -> str:
    title = str(error.get("title") or error.get("type") or "error")
    note = str(error.get("note") or "").strip()
    if "cell" in error and error.get("type") in {"type-error", "constraint-error", "unique-error"}:
        cell = error.get("cell")
        return f"{title}: value {cell!r}: {note}" if note else f"{title}: value {cell!r}"
    if error.get("type") in {"primary-key", "foreign-key", "blank-row", "hash-count", "byte-count"}:
        return f"{title}: {note}" if note else title
    return str(error.get("message") or title)


def _fl_issue(
    error: dict[str, Any], resource: Resource | None, descriptor_name: str
) -> ValidationIssue:
    """Map one frictionless error (its descriptor dict) to a ValidationIssue."""
    etype = str(error.get("type", "error"))
    tags = error.get("tags") or []
    row = error.get("rowNumber")
    if row is None and "#header" in tags:
        row = 1
    field_name = error.get("fieldName") or error.get("label")
    if etype == "foreign-key" and error.get("fieldNames"):
        field_name = ",".join(error["fieldNames"])
    elif etype == "primary-key" and resource is not None:
        key = resource.schema.get("primaryKey") or []
        field_name = ",".join([key] if isinstance(key, str) else key) or None
    return ValidationIssue(
        resource=resource.name if resource is not None else None,
        file=resource.display_path if resource is not None else descriptor_name,
        row=int(row) if isinstance(row, int) else None,
        field=str(field_name) if field_name else None,
        rule=etype,
        message=_fl_message(error),
        source=FRICTIONLESS,
    )


def frictionless_package(package: Package) -> tuple[Any, list[ValidationIssue]]:
    """The frictionless Package of the vetted descriptor, or (None, descriptor issues)."""
    from frictionless import FrictionlessException
    from frictionless import Package as FlPackage

    name = package.descriptor_path.name
    try:
        fl_package = FlPackage(frictionless_descriptor(package), basepath=str(package.root))
    except FrictionlessException as exc:
        errors = exc.reasons or [exc.error]
        return None, [_fl_issue(e.to_descriptor(), None, name) for e in errors]
    return fl_package, []


def _task_issues(
    package: Package, name: str, descriptors: list[dict[str, Any]]
) -> tuple[list[ValidationIssue], bool]:
    """Map one resource's errors; the flag says whether its rows could be parsed."""
    resource = package.resources.get(name)
    issues = [_fl_issue(d, resource, package.descriptor_path.name) for d in descriptors]
    return issues, not breaks_rows(descriptors) and resource is not None


def frictionless_issues(
    package: Package, fl_package: Any = None
) -> tuple[list[ValidationIssue], set[str] | None]:
    """Validate with frictionless. Returns (issues, names of parsable resources).

    The second item is ``None`` when the descriptor itself is invalid (nothing parsed).
    """
    if fl_package is None:
        fl_package, issues = frictionless_package(package)
        if fl_package is None:
            return issues, None
    report = fl_package.validate()
    issues = [
        _fl_issue(e.to_descriptor(), None, package.descriptor_path.name) for e in report.errors
    ]
    if issues:
        return issues, None
    parsable: set[str] = set()
    for task in report.tasks:
        task_issues, ok = _task_issues(package, task.name, [e.to_descriptor() for e in task.errors])
        issues += task_issues
        if ok:
            parsable.add(task.name)
    return issues, parsable


ENGINE_ENV = "TRIALPOOL_ENGINE"
#: environment variable with the largest data file accepted, in bytes
MAX_FILE_BYTES_ENV = "TRIALPOOL_MAX_FILE_BYTES"
DEFAULT_MAX_FILE_BYTES = 512 * 1024 * 1024


def max_file_bytes() -> int:
    """The size limit per data file (``TRIALPOOL_MAX_FILE_BYTES``, default 512 MiB)."""
    raw = os.environ.get(MAX_FILE_BYTES_ENV, "")
    try:
        value = int(raw)
    except ValueError:
        return DEFAULT_MAX_FILE_BYTES
    return value if value > 0 else DEFAULT_MAX_FILE_BYTES


def size_issues(package: Package, limit: int) -> tuple[list[ValidationIssue], int]:
    """One issue per data file over the limit; also the total size of the files."""
    issues: list[ValidationIssue] = []
    total = 0
    for resource in package.resources.values():
        try:
            size = resource.path.stat().st_size
        except OSError:
            continue  # missing: validation reports it
        total += size
        if size > limit:
            issues.append(
                ValidationIssue(
                    resource.name,
                    resource.display_path,
                    None,
                    None,
                    "file-too-large",
                    f"{size:,} bytes is over the limit of {limit:,} bytes; nothing was read "
                    f"(set {MAX_FILE_BYTES_ENV} to raise it)",
                    TRIALPOOL,
                )
            )
    return issues, total


def choose_engine(engine: str | None, data_bytes: int) -> str:
    """``fast`` or ``frictionless``, from the argument or ``TRIALPOOL_ENGINE``.

    ``auto`` (the default) is the vectorised fast engine (``trialpool.validate.fast``)
    whatever the size (``data_bytes`` no longer decides): it reports the same errors at
    the same locations as frictionless, which a test holds it to, and it is the quicker of
    the two for a small package too (an imported review, validated in-process thousands
    of times by a corpus audit). ``frictionless`` runs the reference engine itself.
    """
    choice = (engine or os.environ.get(ENGINE_ENV) or "auto").strip().lower()
    if choice not in {"auto", "fast", "frictionless"}:
        choice = "auto"
    return "fast" if choice == "auto" else choice


def _fast_issues(
    package: Package, fl_package: Any, prefetch: Prefetch | None = None
) -> tuple[list[ValidationIssue], set[str], Any]:
    issues: list[ValidationIssue] = []
    result = validate_tables(package, fl_package, prefetch)
    parsable: set[str] = set()
    for name in fl_package.resource_names:
        task_issues, ok = _task_issues(package, name, result.errors.get(name, []))
        issues += task_issues
        if ok and result.parsable is not None and name in result.parsable:
            parsable.add(name)
    return issues, parsable, result


@dataclass
class TableCheck:
    """What the Table Schema step found and read.

    ``parsable`` names the resources whose rows could be parsed (None when the descriptor
    itself is invalid, so nothing was); ``frames`` holds the typed rows the fast engine
    already read; ``fallback`` says which resources the fast engine handed to frictionless;
    ``readers`` which parser read each of the others (``arrow`` or ``pandas``).
    """

    issues: list[ValidationIssue]
    parsable: set[str] | None
    engine: str
    fl_package: Any = None
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    fallback: dict[str, str] = field(default_factory=dict)
    readers: dict[str, str] = field(default_factory=dict)


def _fast_check(
    package: Package, fl_package: Any, engine: str, prefetch: Prefetch | None = None
) -> TableCheck:
    issues, parsable, result = _fast_issues(package, fl_package, prefetch)
    return TableCheck(
        issues, parsable, engine, fl_package, result.frames, result.fallback, result.readers
    )


def check_tables(
    package: Package,
    *,
    engine: str | None,
    data_bytes: int,
    prefetch: Prefetch | None = None,
) -> TableCheck:
    """Run Table Schema validation with the chosen engine (see ``choose_engine``).

    ``prefetch``: reads of large files the fast engine may use (``fast.start_prefetch``).
    An engine crash (frictionless has a few on odd cells) is retried with the fast path,
    which reads such cells as type errors; if that fails too, one ``validation-failed``
    issue says so.
    """
    chosen = choose_engine(engine, data_bytes)
    fl_package, issues = frictionless_package(package)
    if fl_package is None:
        return TableCheck(issues, None, chosen)
    try:
        if chosen == "fast":
            return _fast_check(package, fl_package, chosen, prefetch)
        issues, parsable = frictionless_issues(package, fl_package)
        return TableCheck(issues, parsable, chosen, fl_package)
    except Exception as exc:
        crash = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    if chosen == "frictionless":
        try:
            fl_package, _ = frictionless_package(package)
            return _fast_check(package, fl_package, f"fast (frictionless failed: {crash})")
        except Exception as again:
            crash = f"{type(again).__name__}: {again}"
    failed = package_issue(
        package.descriptor_path, f"Table Schema validation failed: {crash}", "validation-failed"
    )
    return TableCheck([failed], None, chosen, fl_package)
