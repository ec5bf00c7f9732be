"""The core schema and its topic extensions: which resources a package has, and their schemas.

``schemas/core.json`` (the manifest) names the core resources, in descriptor order, with
their Table Schemas, and the topic extensions (e.g. ``msc``), each adding resources keyed to
core tables, as Darwin Core extensions add files to a core file. A package declares the
extensions it uses in its descriptor (``"extensions": ["msc"]``). The schema files are the
single source of truth; this module only finds and reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from trialpool.errors import PackageError
from trialpool.package.loader import read_json

#: The repository's schemas (found when trialpool runs from a source checkout or an
#: editable install, as the README's commands do).
SCHEMAS_DIR = Path(__file__).resolve().parents[3] / "schemas"
MANIFEST_NAME = "core.json"


@dataclass(frozen=True)
class CoreResource:
    """One resource of the core or of an extension, as the manifest describes it."""

    name: str
    title: str
    schema_path: str  # relative to schemas/
    required: bool
    extension: str | None = None  # None for the core

    def schema(self) -> dict[str, Any]:
        """The resource's Table Schema (read from schemas/)."""
        return _schema(self.schema_path)


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
    data = read_json(SCHEMAS_DIR / MANIFEST_NAME)
    if not isinstance(data, dict):
        raise PackageError(f"{SCHEMAS_DIR / MANIFEST_NAME}: must be a JSON object")
    return data


@lru_cache(maxsize=64)
def _schema(relpath: str) -> dict[str, Any]:
    data = read_json(SCHEMAS_DIR / relpath)
    if not isinstance(data, dict):
        raise PackageError(f"{SCHEMAS_DIR / relpath}: must be a JSON object")
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
