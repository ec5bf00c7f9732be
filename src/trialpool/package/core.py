"""The core schema and its topic extensions: which resources a package has, and their schemas.

``schemas/core.json`` (the manifest) names the core resources, in descriptor order, with
their Table Schemas, and the topic extensions (e.g. ``msc``), each adding resources keyed to
core tables, as Darwin Core extensions add files to a core file. A package declares the
extensions it uses in its descriptor (``"extensions": ["msc"]``). The schema files are the
single source of truth; this module only finds and reads them.

trialpool reads the schemas that ship inside it (``trialpool/_schemas/``, through
``importlib.resources``), so an installed wheel needs no source checkout. That folder is a
generated copy of the repository's ``schemas/`` (``scripts/sync_schemas.py``; its
``--check`` runs in CI); ``schemas/`` is the one copy edited by hand.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import as_file, files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from trialpool.errors import PackageError

#: The folder of trialpool's package that holds its copy of ``schemas/``.
BUNDLED_SCHEMAS = "_schemas"
MANIFEST_NAME = "core.json"


def bundled_schema(relpath: str) -> Traversable:
    """The bundled schema file at ``relpath`` (relative to ``schemas/``, ``/``-separated)."""
    parts = relpath.split("/")
    if not relpath or any(part in ("", ".", "..") for part in parts) or "\\" in relpath:
        raise PackageError(f"{relpath!r}: not a path inside trialpool's schemas")
    return files("trialpool").joinpath(BUNDLED_SCHEMAS, *parts)


def _missing(relpath: str, reason: str) -> PackageError:
    return PackageError(
        f"trialpool's schema {relpath} cannot be read ({reason}); the installation is "
        "incomplete: reinstall trialpool"
    )


def copy_schema(relpath: str, target: Path) -> None:
    """Copy the bundled schema file at ``relpath`` to ``target`` (byte for byte)."""
    source = bundled_schema(relpath)
    if not source.is_file():
        raise _missing(relpath, "file not found")
    with as_file(source) as path:
        shutil.copyfile(path, target)


@dataclass(frozen=True)
class CoreResource:
    """One resource of the core or of an extension, as the manifest describes it."""

    name: str
    title: str
    schema_path: str  # relative to schemas/
    required: bool
    extension: str | None = None  # None for the core

    def schema(self) -> dict[str, Any]:
        """The resource's Table Schema (trialpool's copy of schemas/)."""
        return schema_json(self.schema_path)


@dataclass(frozen=True)
class Extension:
    """A topic extension: its name, version and resources."""

    name: str
    title: str
    version: str
    description: str
    resources: tuple[CoreResource, ...]


@lru_cache(maxsize=1)
def manifest() -> dict[str, Any]:
    """``schemas/core.json`` as read (PackageError when it cannot be read)."""
    return schema_json(MANIFEST_NAME)


@lru_cache(maxsize=64)
def schema_json(relpath: str) -> dict[str, Any]:
    """A bundled schema file (relative to ``schemas/``) as a JSON object (cached: do not
    modify it)."""
    try:
        text = bundled_schema(relpath).read_bytes().decode("utf-8")
    except OSError as exc:
        raise _missing(relpath, exc.strerror or type(exc).__name__) from None
    except UnicodeDecodeError as exc:
        raise _missing(relpath, f"not UTF-8: {exc.reason}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PackageError(
            f"trialpool's schema {relpath}: malformed JSON at line {exc.lineno} column "
            f"{exc.colno}: {exc.msg}"
        ) from None
    if not isinstance(data, dict):
        raise PackageError(f"trialpool's schema {relpath}: must be a JSON object")
    return data


def _resource(spec: dict[str, Any], extension: str | None) -> CoreResource:
    return CoreResource(
        name=str(spec["name"]),
        title=str(spec.get("title", spec["name"])),
        schema_path=str(spec["schema"]),
        required=bool(spec.get("required", False)),
        extension=extension,
    )


def core_version() -> str:
    """Version of the core schema (the manifest's ``version``)."""
    return str(manifest().get("version", ""))


def core_resources() -> tuple[CoreResource, ...]:
    """The core resources, in descriptor order."""
    return tuple(_resource(spec, None) for spec in manifest().get("resources", []))


def extensions() -> dict[str, Extension]:
    """The known topic extensions by name."""
    out: dict[str, Extension] = {}
    for name, spec in (manifest().get("extensions") or {}).items():
        out[str(name)] = Extension(
            name=str(name),
            title=str(spec.get("title", name)),
            version=str(spec.get("version", "")),
            description=str(spec.get("description", "")),
            resources=tuple(_resource(r, str(name)) for r in spec.get("resources", [])),
        )
    return out


def known_resources() -> dict[str, CoreResource]:
    """Core resources plus the resources of every known extension, by name."""
    out = {r.name: r for r in core_resources()}
    for ext in extensions().values():
        for res in ext.resources:
            out[res.name] = res
    return out


def extension_of_field(resource: str, field: str) -> CoreResource | None:
    """The extension resource that holds ``field`` for rows of core ``resource``.

    An extension resource extends a core resource when its primary key is a foreign key to
    it (e.g. ``msc_arms`` (study_id, arm_id) -> ``arms``).
    """
    for ext in extensions().values():
        for res in ext.resources:
            schema = res.schema()
            if extended_resource(schema) != resource:
                continue
            if field in {f.get("name") for f in schema.get("fields", [])}:
                return res
    return None


def extended_resource(schema: dict[str, Any]) -> str | None:
    """The resource a schema's primary key points at by foreign key, if any."""
    key = schema.get("primaryKey")
    key = [key] if isinstance(key, str) else list(key or [])
    for fk in schema.get("foreignKeys") or []:
        if not isinstance(fk, dict):
            continue
        fields = fk.get("fields")
        fields = [fields] if isinstance(fields, str) else list(fields or [])
        if fields == key:
            return str((fk.get("reference") or {}).get("resource") or "") or None
    return None


def declared_extensions(descriptor: dict[str, Any]) -> list[str]:
    """The extension names a descriptor declares (``"extensions": [...]``)."""
    raw = descriptor.get("extensions")
    if not isinstance(raw, list):
        return []
    return [str(x) for x in raw if isinstance(x, str)]
