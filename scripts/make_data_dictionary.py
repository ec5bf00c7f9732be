#!/usr/bin/env python3
"""Generate the README's data dictionary from the Table Schemas.

An overview of the resources (which belong to the trialpool core, required or optional,
and which to a topic extension, as ``schemas/core.json`` says), then one table per
resource (in the descriptor's order): field, type, required, constraints (unique,
allowed values, minimum/maximum, length, pattern) and description, after the primary and
foreign keys. The schemas in ``schemas/`` are the single source; the README copy is
generated between the markers::

    <!-- data-dictionary:start -->
    ...
    <!-- data-dictionary:end -->

When README.md has no markers, they are added at its end (under a "Data dictionary"
heading). Nothing else in README.md is touched.

Usage::

    python scripts/make_data_dictionary.py           # rewrite the block in README.md
    python scripts/make_data_dictionary.py --check   # exit 1 if README.md is stale
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
START = "<!-- data-dictionary:start -->"
END = "<!-- data-dictionary:end -->"
HEADING = "## Data dictionary"
MANIFEST = "schemas/core.json"

# constraint keys in the order they are shown
_BOUNDS = (
    ("minimum", "≥"),
    ("exclusiveMinimum", ">"),
    ("maximum", "≤"),
    ("exclusiveMaximum", "<"),
)


class DictionaryError(Exception):
    """A one-line problem with the inputs (bad JSON, missing schema, broken markers)."""


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DictionaryError(f"{path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DictionaryError(f"{path}: not valid JSON ({exc})") from None


def _code(value: Any) -> str:
    """An inline code span safe inside a Markdown table cell."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split()).replace("|", "\\|")
    if "`" in text:
        return f"`` {text} ``"
    return f"`{text}`"


def _cell(text: Any) -> str:
    """Plain text safe inside a Markdown table cell (one line, pipes escaped)."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def constraints_text(spec: dict[str, Any]) -> str:
    """The constraints of one field, as a short phrase list (``required`` excluded)."""
    constraints = spec.get("constraints") or {}
    parts: list[str] = []
    if constraints.get("unique"):
        parts.append("unique")
    if "enum" in constraints:
        parts.append("one of " + ", ".join(_code(v) for v in constraints["enum"]))
    for key, symbol in _BOUNDS:
        if key in constraints:
            parts.append(f"{symbol} {_number(constraints[key])}")
    if "minLength" in constraints:
        parts.append(f"length ≥ {constraints['minLength']}")
    if "maxLength" in constraints:
        parts.append(f"length ≤ {constraints['maxLength']}")
    if "pattern" in constraints:
        parts.append(f"pattern {_code(constraints['pattern'])}")
    known = {"required", "unique", "enum", "minLength", "maxLength", "pattern"}
    known |= {key for key, _ in _BOUNDS}
    for key in sorted(set(constraints) - known):
        parts.append(f"{key} {_code(constraints[key])}")
    return "; ".join(parts)


def _keys(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def parts(root: Path) -> tuple[str | None, dict[str, str]]:
    """The core version and, per resource name, which part of the schema it belongs to
    ("core, required", "core, optional", "`msc` extension"), from ``schemas/core.json``
    (empty when the package has no manifest)."""
    path = root / MANIFEST
    if not path.exists():
        return None, {}
    manifest = _read_json(path)
    if not isinstance(manifest, dict):
        raise DictionaryError(f"{path}: must be a JSON object")
    out: dict[str, str] = {}
    for spec in manifest.get("resources") or []:
        out[str(spec["name"])] = "core, " + ("required" if spec.get("required") else "optional")
    for ext, info in (manifest.get("extensions") or {}).items():
        for spec in info.get("resources") or []:
            out[str(spec["name"])] = f"`{ext}` extension"
    version = manifest.get("version")
    return (str(version) if version else None), out


def _extension_note(root: Path) -> list[str]:
    """One line per extension of the manifest: its name, title and how to declare it."""
    path = root / MANIFEST
    if not path.exists():
        return []
    manifest = _read_json(path)
    lines = []
    for ext, info in ((manifest or {}).get("extensions") or {}).items():
        names = ", ".join(f"`{r['name']}`" for r in info.get("resources") or [])
        lines.append(
            f"- `{ext}` ({_cell(info.get('title', ext))}): {names}; declared in the "
            f'descriptor as `"extensions": ["{ext}"]`.'
        )
    return lines


def overview(root: Path, descriptor: dict[str, Any]) -> list[str]:
    """The table of resources: title, part of the schema, primary key."""
    version, part_of = parts(root)
    lines: list[str] = []
    if version:
        lines += [
            f"Core schema {version} (`{MANIFEST}`): the core resources are the same in every "
            "package trialpool reads (the required ones always present); extension "
            "resources are present when the descriptor declares their extension.",
            "",
        ]
        notes = _extension_note(root)
        if notes:
            lines += ["Extensions:", "", *notes, ""]
    lines += ["| resource | title | part | primary key |", "|---|---|---|---|"]
    for resource in descriptor.get("resources", []):
        schema = _schema_of(root, resource)
        keys = ", ".join(f"`{k}`" for k in _keys(schema.get("primaryKey")))
        lines.append(
            f"| [`{resource['name']}`](#{_anchor(resource)}) | "
            f"{_cell(resource.get('title', ''))} | {part_of.get(resource['name'], '')} | {keys} |"
        )
    lines.append("")
    return lines


def _anchor(resource: dict[str, Any]) -> str:
    """The GitHub anchor of a resource's heading (lower case, punctuation dropped)."""
    heading = f"{resource['name']}" + (f": {resource['title']}" if resource.get("title") else "")
    text = "".join(c for c in heading.lower() if c.isalnum() or c in " -_")
    return text.replace(" ", "-")


def _schema_of(root: Path, resource: dict[str, Any]) -> dict[str, Any]:
    schema_ref = resource.get("schema")
    if isinstance(schema_ref, str):
        schema = _read_json(root / schema_ref)
        if not isinstance(schema, dict):
            raise DictionaryError(f"{root / schema_ref}: must be a JSON object")
        return schema
    if isinstance(schema_ref, dict):
        return schema_ref
    raise DictionaryError(f"resource {resource.get('name')!r}: no schema")


def resource_section(
    resource: dict[str, Any], schema: dict[str, Any], part: str | None = None
) -> list[str]:
    """Markdown lines for one resource (``part``: core or extension, when known)."""
    name = resource["name"]
    title = resource.get("title")
    lines = [f"### `{name}`" + (f": {title}" if title else ""), ""]
    if part:
        lines += [f"*Part of the schema: {part}.*", ""]
    if schema.get("description"):
        lines += [" ".join(str(schema["description"]).split()), ""]
    facts = [f"File `{resource['path']}`", f"schema `{resource['schema']}`"]
    primary = _keys(schema.get("primaryKey"))
    if primary:
        facts.append("primary key (" + ", ".join(f"`{k}`" for k in primary) + ")")
    lines += ["; ".join(facts) + ".", ""]
    foreign = schema.get("foreignKeys") or []
    if foreign:
        lines.append("Foreign keys:")
        for fk in foreign:
            ref = fk.get("reference") or {}
            target = ref.get("resource") or name
            fields = ", ".join(f"`{f}`" for f in _keys(fk.get("fields")))
            targets = ", ".join(f"`{target}.{f}`" for f in _keys(ref.get("fields")))
            lines.append(f"- ({fields}) → ({targets})")
        lines.append("")
    lines += [
        "| field | type | required | constraints | description |",
        "|---|---|---|---|---|",
    ]
    for spec in schema.get("fields", []):
        kind = spec.get("type", "string")
        if spec.get("format") and spec.get("format") != "default":
            kind += f" ({spec['format']})"
        required = "yes" if (spec.get("constraints") or {}).get("required") else ""
        lines.append(
            f"| `{spec['name']}` | {kind} | {required} | {constraints_text(spec)} | "
            f"{_cell(spec.get('description', ''))} |"
        )
    lines.append("")
    return lines


def generate(root: Path) -> str:
    """The text between the markers (without them), from the package at ``root``."""
    descriptor = _read_json(root / "datapackage.json")
    lines = [
        "<!-- Generated from schemas/ by scripts/make_data_dictionary.py; do not edit by hand. -->",
        "",
        "Generated from the Table Schemas in `schemas/` (the single source of truth) by "
        "`python scripts/make_data_dictionary.py`. Empty cells are missing values; "
        "*required* fields must never be empty.",
        "",
    ]
    lines += overview(root, descriptor)
    _, part_of = parts(root)
    for resource in descriptor.get("resources", []):
        schema = _schema_of(root, resource)
        lines += resource_section(resource, schema, part_of.get(resource["name"]))
    return "\n".join(lines)


def render(readme: str, block: str) -> str:
    """README text with ``block`` between the markers (markers added at the end if absent)."""
    starts, ends = readme.count(START), readme.count(END)
    if starts == 0 and ends == 0:
        body = readme.rstrip("\n")
        return f"{body}\n\n{HEADING}\n\n{START}\n{block}\n{END}\n"
    if starts != 1 or ends != 1 or readme.index(START) > readme.index(END):
        raise DictionaryError(
            f"README.md: expected one '{START}' before one '{END}' "
            f"(found {starts} start and {ends} end markers)"
        )
    before, rest = readme.split(START, 1)
    _, after = rest.split(END, 1)
    return f"{before}{START}\n{block}\n{END}{after}"


def _write(path: Path, text: str) -> None:
    """Replace ``path`` atomically (temporary file in the same folder, then rename)."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        if path.exists():
            os.chmod(name, path.stat().st_mode & 0o777)
        os.replace(name, path)
    finally:
        if os.path.exists(name):
            os.unlink(name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if README.md is stale")
    parser.add_argument("--root", type=Path, default=ROOT, help="package folder")
    parser.add_argument("--readme", type=Path, default=None, help="README (default ROOT/README.md)")
    args = parser.parse_args(argv)
    readme_path = args.readme or args.root / "README.md"
    try:
        current = readme_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        print(f"{readme_path}: file not found", file=sys.stderr)
        return 1
    try:
        new = render(current, generate(args.root))
    except DictionaryError as exc:
        print(f"make_data_dictionary: error: {exc}", file=sys.stderr)
        return 1
    if args.check:
        if new != current:
            print(
                f"{readme_path}: data dictionary is stale (schemas changed); "
                "run: python scripts/make_data_dictionary.py",
                file=sys.stderr,
            )
            return 1
        print(f"{readme_path}: data dictionary up to date")
        return 0
    if new != current:
        _write(readme_path, new)
        print(f"{readme_path}: data dictionary written")
    else:
        print(f"{readme_path}: data dictionary up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
