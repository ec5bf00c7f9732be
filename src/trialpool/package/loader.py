"""Read a Frictionless data package safely into typed pandas frames.

``load_package`` refuses unsafe resource paths before anything is read (absolute paths,
URLs, paths that leave the package folder, directly or through a symlink), then reads
each CSV with the column types of its Table Schema. It does not validate values: that
is ``trialpool.validate.validate_package``. Row numbers follow frictionless: the header is row 1,
so the first data row is row 2 (``Package.row_number``).
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from trialpool.errors import PackageError
from trialpool.package.core import extended_resource, extensions

_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]+:")

# profile names frictionless knows without fetching anything
_PACKAGE_PROFILES = {"data-package", "tabular-data-package"}
_RESOURCE_PROFILES = {"data-resource", "tabular-data-resource"}

# pandas dtype per Table Schema type (nullable dtypes keep empty cells as <NA>)
_DTYPES: dict[str, str] = {
    "string": "string",
    "integer": "Int64",
    "number": "Float64",
    "boolean": "boolean",
}


def _check_relative(root: Path, raw: Any, what: str, descriptor: Path) -> Path:
    """Return the resolved path of ``raw`` inside ``root`` or raise PackageError."""
    if not isinstance(raw, str) or not raw.strip():
        raise PackageError(f"{descriptor}: {what}: path must be a non-empty string")
    if _URL.match(raw):
        raise PackageError(f"{descriptor}: {what}: remote path {raw!r} refused (URLs are not read)")
    candidate = Path(raw)
    if candidate.is_absolute() or raw.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", raw):
        raise PackageError(f"{descriptor}: {what}: absolute path {raw!r} refused")
    if ".." in candidate.parts:
        raise PackageError(f"{descriptor}: {what}: path {raw!r} leaves the package folder")
    try:
        resolved = (root / candidate).resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # symlink loop, NUL byte, too long
        raise PackageError(
            f"{descriptor}: {what}: path {raw!r} cannot be resolved: {exc}"
        ) from None
    if not resolved.is_relative_to(root.resolve()):
        raise PackageError(
            f"{descriptor}: {what}: path {raw!r} leaves the package folder (symlink)"
        )
    return resolved


#: descriptors and schemas larger than this are refused unread (they are a few kB)
MAX_JSON_BYTES = 10_000_000


def read_json(path: Path) -> Any:
    """Read a JSON file (at most ``MAX_JSON_BYTES``) or raise a one-line PackageError."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise PackageError(f"{path}: file not found") from None
    except OSError as exc:
        raise PackageError(f"{path}: cannot read ({exc.strerror})") from None
    if size > MAX_JSON_BYTES:
        raise PackageError(f"{path}: {size:,} bytes is over the limit of {MAX_JSON_BYTES:,}")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PackageError(f"{path}: file not found") from None
    except UnicodeDecodeError as exc:
        raise PackageError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise PackageError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise PackageError(
            f"{path}: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None


@dataclass
class Resource:
    """One tabular resource: its name, CSV path and Table Schema."""

    name: str
    path: Path
    schema: dict[str, Any]
    #: the path as written in the descriptor (relative to the package folder)
    relpath: str | None = None
    #: the resource's descriptor entry, with ``schema``/``dialect`` inlined as read
    descriptor: dict[str, Any] = field(default_factory=dict)

    @property
    def display_path(self) -> str:
        """The path to show users: relative to the package folder."""
        return self.relpath if self.relpath is not None else self.path.name

    @property
    def field_names(self) -> list[str]:
        return [f["name"] for f in self.schema.get("fields", [])]

    def field(self, name: str) -> dict[str, Any]:
        for f in self.schema.get("fields", []):
            if f["name"] == name:
                return f
        raise KeyError(name)


@dataclass
class Package:
    """A package read from disk. Frames are read lazily and cached."""

    root: Path
    descriptor_path: Path
    descriptor: dict[str, Any]
    resources: dict[str, Resource]
    _frames: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return str(self.descriptor.get("name", self.root.name))

    @property
    def version(self) -> str | None:
        v = self.descriptor.get("version")
        return str(v) if v is not None else None

    def has(self, name: str) -> bool:
        return name in self.resources

    @property
    def extensions(self) -> list[str]:
        """The topic extensions the descriptor declares (``"extensions": [...]``)."""
        raw = self.descriptor.get("extensions")
        return [str(x) for x in raw if isinstance(x, str)] if isinstance(raw, list) else []

    def extension_arm_tables(self) -> list[str]:
        """Resources of declared extensions that add fields to arms (keyed by study_id,
        arm_id), e.g. ``msc_arms``."""
        known = extensions()
        return [
            res.name
            for name in self.extensions
            if name in known
            for res in known[name].resources
            if res.name in self.resources
            and extended_resource(self.resources[res.name].schema) == "arms"
        ]

    def table(self, name: str) -> pd.DataFrame:
        """The resource as a typed frame (nullable dtypes; empty cells are <NA>).

        Raises PackageError when the resource is absent or its file cannot be parsed
        with the schema's types (run ``trialpool.validate.validate_package`` first for details).
        """
        if name not in self._frames:
            if name not in self.resources:
                raise PackageError(f"{self.descriptor_path}: no resource named {name!r}")
            self._frames[name] = read_table(self.resources[name])
        return self._frames[name]

    @staticmethod
    def row_number(index: int) -> int:
        """Frictionless row number of the frame row at positional ``index``."""
        return index + 2


def read_table(resource: Resource) -> pd.DataFrame:
    """Read one CSV with the dtypes of its schema."""
    fields = resource.schema.get("fields", [])
    dtypes = {f["name"]: _DTYPES.get(f.get("type", "string"), "string") for f in fields}
    # booleans are parsed after reading (pandas needs the Table Schema spellings)
    read_types = {k: ("string" if v == "boolean" else v) for k, v in dtypes.items()}
    try:
        frame = pd.read_csv(
            resource.path,
            dtype=read_types,
            keep_default_na=False,
            na_values=[""],
            encoding="utf-8",
        )
    except FileNotFoundError:
        raise PackageError(f"{resource.path}: resource {resource.name!r}: file not found") from None
    except (ValueError, TypeError, OverflowError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        beyond = _beyond_int64(resource, dtypes)
        if beyond is not None:
            raise PackageError(f"{resource.path}: {beyond}") from None
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise PackageError(
            f"{resource.path}: resource {resource.name!r}: cannot be read with its schema "
            f"types ({first}); run 'trialpool validate' for row-level errors"
        ) from None
    for name, dtype in dtypes.items():
        if dtype == "boolean" and name in frame.columns:
            frame[name] = _parse_boolean(frame[name], fields, name)
    return frame


def _beyond_int64(resource: Resource, dtypes: dict[str, str]) -> str | None:
    """ "row R, field F: integer V is beyond int64" for the first such cell, or None."""
    wanted = {name for name, dtype in dtypes.items() if dtype == "Int64"}
    try:
        with resource.path.open(encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, [])
            columns = [(i, name) for i, name in enumerate(header) if name in wanted]
            for row, record in enumerate(reader, start=2):
                for i, name in columns:
                    text = record[i].strip() if i < len(record) else ""
                    if re.fullmatch(r"[+-]?\d+", text) and (
                        len(text.lstrip("+-").lstrip("0")) > 19 or not -(2**63) <= int(text) < 2**63
                    ):
                        shown = text if len(text) <= 24 else f"{text[:20]}… ({len(text)} digits)"
                        return f"row {row}, field {name!r}: integer {shown} is beyond int64"
    except (OSError, UnicodeDecodeError, csv.Error, ValueError):
        return None
    return None


def _parse_boolean(column: pd.Series, fields: list[dict[str, Any]], name: str) -> pd.Series:
    spec = next(f for f in fields if f["name"] == name)
    true_values = set(spec.get("trueValues", ["true", "True", "TRUE", "1"]))
    false_values = set(spec.get("falseValues", ["false", "False", "FALSE", "0"]))
    out = pd.Series(pd.NA, index=column.index, dtype="boolean")
    out[column.isin(true_values).fillna(False).astype(bool)] = True
    out[column.isin(false_values).fillna(False).astype(bool)] = False
    return out


def _check_profile(value: Any, allowed: set[str], what: str, descriptor: Path) -> None:
    """Refuse a ``profile`` that frictionless would fetch (a URL) or read (a path)."""
    if value is None or (isinstance(value, str) and value in allowed):
        return
    raise PackageError(
        f"{descriptor}: {what}: profile {value!r} refused (only {', '.join(sorted(allowed))}; "
        "custom profiles are not fetched or read)"
    )


def _check_schema(schema: Any, name: str, descriptor: Path) -> dict[str, Any]:
    """Return the schema if it has a usable ``fields`` list, else raise PackageError."""
    if not isinstance(schema, dict) or not isinstance(schema.get("fields"), list):
        raise PackageError(f"{descriptor}: resource {name!r}: schema has no 'fields' list")
    for i, spec in enumerate(schema["fields"]):
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise PackageError(
                f"{descriptor}: resource {name!r}: schema field {i + 1} has no string 'name'"
            )
    return schema


def load_package(descriptor: Path | str) -> Package:
    """Read ``datapackage.json`` and its schemas; refuse unsafe paths before reading data.

    Every path the descriptor names (resource ``path``, ``schema`` and ``dialect`` when
    they are strings) is checked first: absolute paths, URLs, ``..`` and symlinks that
    leave the package folder are refused, as are custom ``profile`` values (frictionless
    would fetch or read them) and multipart or inline-data resources. Only then are the
    schema (and dialect) files read. A resource file that is missing is left for
    validation to report; one that exists but is not a regular file (a folder, a FIFO,
    a device) is refused, so nothing blocks on it.

    Raises PackageError (one line, naming the file) on any problem with the descriptor,
    a schema, or a resource path. CSV contents are read later, by ``Package.table``.
    """
    descriptor_path = Path(descriptor)
    if descriptor_path.is_dir():
        descriptor_path = descriptor_path / "datapackage.json"
    root = descriptor_path.parent.resolve()
    data = read_json(descriptor_path)
    if not isinstance(data, dict):
        raise PackageError(f"{descriptor_path}: descriptor must be a JSON object")
    _check_profile(data.get("profile"), _PACKAGE_PROFILES, "package", descriptor_path)
    raw_resources = data.get("resources")
    if not isinstance(raw_resources, list) or not raw_resources:
        raise PackageError(f"{descriptor_path}: 'resources' must be a non-empty list")
    # first pass: every path is checked before anything is read
    checked: list[tuple[str, Path, Any, Any, dict[str, Any]]] = []
    names: set[str] = set()
    for i, res in enumerate(raw_resources):
        if not isinstance(res, dict):
            raise PackageError(f"{descriptor_path}: resources[{i}] must be an object")
        name = res.get("name")
        if not isinstance(name, str) or not name:
            raise PackageError(f"{descriptor_path}: resources[{i}]: 'name' is missing")
        if name in names:
            raise PackageError(f"{descriptor_path}: resource name {name!r} is used twice")
        names.add(name)
        if "data" in res:
            raise PackageError(f"{descriptor_path}: resource {name!r}: inline 'data' not supported")
        what = f"resource {name!r}"
        _check_profile(res.get("profile"), _RESOURCE_PROFILES, what, descriptor_path)
        for key in ("extrapaths", "extraPaths"):
            if key in res:
                raise PackageError(f"{descriptor_path}: {what}: '{key}' (multipart) not supported")
        path = _check_relative(root, res.get("path"), f"{what} path", descriptor_path)
        if path.exists() and not path.is_file():
            raise PackageError(f"{descriptor_path}: {what} path: {res['path']!r} is not a file")
        schema = res.get("schema")
        if isinstance(schema, str):
            schema = _check_relative(root, schema, f"{what} schema", descriptor_path)
        elif not isinstance(schema, dict):
            raise PackageError(f"{descriptor_path}: {what}: 'schema' is missing")
        dialect = res.get("dialect")
        if isinstance(dialect, str):
            dialect = _check_relative(root, dialect, f"{what} dialect", descriptor_path)
        checked.append((name, path, schema, dialect, res))
    resources: dict[str, Resource] = {}
    for name, path, schema, dialect, res in checked:
        schema_dict = _check_schema(
            read_json(schema) if isinstance(schema, Path) else schema, name, descriptor_path
        )
        entry = dict(res)
        entry["schema"] = schema_dict
        if isinstance(dialect, Path):
            entry["dialect"] = read_json(dialect)
        resources[name] = Resource(
            name=name, path=path, schema=schema_dict, relpath=res["path"], descriptor=entry
        )
    return Package(root=root, descriptor_path=descriptor_path, descriptor=data, resources=resources)
