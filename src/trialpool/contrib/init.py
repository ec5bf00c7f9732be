"""Start a new package: ``trialpool init DIR [--title T] [--extension NAME] [--force]``.

``init`` writes an empty package that conforms to the core schema (and to the extensions
named), ready to be filled:

* ``schemas/``: copies of the core Table Schemas and of the named extensions' schemas,
  at the same relative paths as in trialpool's ``schemas/`` (the manifest,
  ``schemas/core.json``, names them);
* ``data/``: one header-only CSV per resource, in the manifest's order (core resources
  first, then each extension's);
* ``datapackage.json``: name (a slug of the title, else of the folder name), version
  0.1.0, title, a description stub, the CC-BY-4.0 licence for the data, a contributor
  placeholder, ``created`` (now, RFC 3339), ``extensions``, the resources with their
  ``bytes`` and ``hash`` (``trialpool.package.descriptor``), and the generated ``sources``
  list (empty);
* ``README.md``: what to fill in, and how to check it.

As created the package passes ``frictionless validate`` and ``trialpool validate``.

Everything is written into a temporary folder next to DIR, then renamed to DIR, so an
interrupted or failed run leaves nothing behind (``package.atomic``). DIR may be missing
or empty; a package that trialpool made (its ``.trialpool-package`` marker) is replaced
as a whole with ``--force`` (the old folder is moved aside, the new one renamed in, the
old one deleted; on failure the old folder is put back); any other folder is refused,
with or without ``--force`` (exit 1), and left untouched. An unknown extension is a usage
error (exit 2), as the command line's other wrong option values are.
"""

from __future__ import annotations

import csv
import io
import os
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from trialpool.errors import PackageError, UsageError
from trialpool.package import core
from trialpool.package.atomic import PACKAGE_KIND, atomic_folder, check_replaceable
from trialpool.package.core import CoreResource, copy_schema, core_resources, core_version
from trialpool.package.descriptor import DESCRIPTOR_NAME, dumps, refresh

INITIAL_VERSION = "0.1.0"
DATA_LICENCE = {
    "name": "CC-BY-4.0",
    "title": "Creative Commons Attribution 4.0",
    "path": "https://creativecommons.org/licenses/by/4.0/",
}
CONTRIBUTOR_PLACEHOLDER = "TODO: your name or group"
DESCRIPTION_STUB = (
    "TODO: what the package holds (the review question; the studies' population, "
    "interventions, comparisons and outcomes) and where the data come from. Every value "
    "cites a source and a locator; derived values say how they were computed."
)
#: a package name, as the descriptor profile (schemas/datapackage.profile.json) allows it
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def slug(text: str) -> str:
    """A package name from free text: ASCII lower case, runs of other characters -> '-'.

    >>> slug("MSC in ACLF: trials (2027)")
    'msc-in-aclf-trials-2027'
    """
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def package_name(folder: Path, title: str | None) -> str:
    """The descriptor ``name``: a slug of the title when given, else of the folder name."""
    for candidate in (title, folder.name):
        if candidate:
            name = slug(candidate)
            if _NAME.match(name):
                return name
    raise UsageError(
        f"cannot make a package name from {title or folder.name!r}: give a --title with "
        "letters or digits"
    )


def check_extensions(names: Sequence[str]) -> list[str]:
    """The named extensions, in order and without repeats; UsageError for an unknown one."""
    known = core.extensions()
    out: list[str] = []
    for name in names:
        if name not in known:
            raise UsageError(
                f"unknown extension {name!r} (known: {', '.join(sorted(known)) or 'none'})"
            )
        if name not in out:
            out.append(name)
    return out


def package_resources(extension_names: Sequence[str]) -> list[CoreResource]:
    """The core resources, then each extension's, in the manifest's order."""
    known = core.extensions()
    out = list(core_resources())
    for name in extension_names:
        out.extend(known[name].resources)
    return out


def header_line(schema: dict[str, Any]) -> bytes:
    """A CSV header row naming the schema's fields, in order (UTF-8, LF)."""
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\n").writerow(f["name"] for f in schema["fields"])
    return buffer.getvalue().encode("utf-8")


def descriptor_for(
    name: str, title: str, extension_names: Sequence[str], resources: Sequence[CoreResource]
) -> dict[str, Any]:
    """The descriptor of the empty package, without the generated facts."""
    return {
        "profile": "tabular-data-package",
        "name": name,
        "version": INITIAL_VERSION,
        "extensions": list(extension_names),
        "title": title,
        "description": DESCRIPTION_STUB,
        "licenses": [dict(DATA_LICENCE)],
        "contributors": [{"title": CONTRIBUTOR_PLACEHOLDER, "role": "author"}],
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "sources": [],
        "resources": [
            {
                "name": res.name,
                "title": res.title,
                "path": f"data/{res.name}.csv",
                "schema": f"schemas/{res.schema_path}",
                "profile": "tabular-data-resource",
                "format": "csv",
                "mediatype": "text/csv",
                "encoding": "utf-8",
            }
            for res in resources
        ],
    }


def readme_text(
    title: str, extension_names: Sequence[str], resources: Sequence[CoreResource]
) -> str:
    """The README stub: what the package is for and what to fill in."""
    known = core.extensions()
    lines = [
        f"# {title}",
        "",
        "TODO: one paragraph on the review question and what the package holds.",
        "",
        f"A Frictionless data package created by `trialpool init`. It conforms to the trialpool "
        f"core schema {core_version()}"
        + (
            " with the extension(s) "
            + ", ".join(f"`{n}` ({known[n].title})" for n in extension_names)
            if extension_names
            else ""
        )
        + ": the Table Schemas in `schemas/` are copies of trialpool's; do not edit them "
        "(`trialpool validate` reports any difference).",
        "",
        "## What to fill in",
        "",
        "1. `datapackage.json`: `title`, `description`, `contributors` (replace "
        f'"{CONTRIBUTOR_PLACEHOLDER}"), and `homepage` and `keywords` if you like. The '
        "data licence is CC-BY-4.0; change `licenses` if yours differs. Bump `version` "
        "(semantic versioning) with every release.",
        "2. The data files in `data/`, one row per line under the header (keep the header "
        "and the column order). Required tables:",
        "",
    ]
    for res in resources:
        if res.required:
            where = "" if res.extension is None else f" ({res.extension} extension)"
            lines.append(f"   - `data/{res.name}.csv`: {res.title}{where}")
    optional = [res for res in resources if not res.required]
    if optional:
        lines += ["", "   Optional tables (leave them header-only if you have nothing):", ""]
        lines += [f"   - `data/{res.name}.csv`: {res.title}" for res in optional]
    lines += [
        "",
        "   Every row cites a `source_id` of `data/sources.csv`; outcome rows also give a "
        "`locator` and a `verification` (primary, secondary, or derived with its "
        "`derivation`). Leave a cell empty when no source states the value.",
        "3. Outcomes: define each outcome once in `data/outcomes.csv` (its `data_type` says "
        "which table its rows go in); per-arm rows name it in `outcome`, with a `timepoint` "
        "code (e.g. `week_24`) and `timepoint_weeks` when known.",
        "4. Arms and comparisons: one `data/arms.csv` row per group; one "
        "`data/comparisons.csv` row per pair of arms compared (experimental versus control, "
        "`primary` = true for the pair pooled by default).",
        "",
        "## Check it",
        "",
        "After every edit of `data/`, regenerate the file sizes, checksums and the sources "
        "list, then validate:",
        "",
        "```bash",
        f"trialpool refresh {DESCRIPTOR_NAME}",
        f"frictionless validate {DESCRIPTOR_NAME}",
        f"trialpool validate {DESCRIPTOR_NAME}",
        "```",
        "",
        "`trialpool new-study STUDY_ID` appends the rows a new study needs (sources, studies, "
        "arms, comparisons, screening, risk of bias) for you to fill in.",
        "",
    ]
    return "\n".join(lines)


def _write_package(
    dest: Path,
    descriptor: dict[str, Any],
    extension_names: Sequence[str],
    resources: Sequence[CoreResource],
) -> None:
    """Write the package's files into the (new, empty) folder ``dest``."""
    for res in resources:
        schema_target = dest / "schemas" / res.schema_path
        schema_target.parent.mkdir(parents=True, exist_ok=True)
        copy_schema(res.schema_path, schema_target)
        data_target = dest / "data" / f"{res.name}.csv"
        data_target.parent.mkdir(parents=True, exist_ok=True)
        data_target.write_bytes(header_line(res.schema()))
    refresh(descriptor, dest)
    (dest / DESCRIPTOR_NAME).write_text(dumps(descriptor), encoding="utf-8")
    readme = readme_text(str(descriptor["title"]), extension_names, resources)
    (dest / "README.md").write_text(readme, encoding="utf-8")


@dataclass
class InitResult:
    """What ``create_package`` wrote."""

    folder: Path
    descriptor: dict[str, Any]
    replaced: bool


def create_package(
    folder: Path, *, title: str | None = None, extensions: Sequence[str] = (), force: bool = False
) -> InitResult:
    """Create the empty package in ``folder``, atomically (all or nothing).

    Raises UsageError for an unknown extension or a title without letters or digits;
    OutputFolderError for a folder that may not be replaced (not made by trialpool, or
    without ``force``); PackageError when the files cannot be written (nothing is left
    behind).
    """
    folder = Path(os.path.abspath(folder))
    extension_names = check_extensions(extensions)
    name = package_name(folder, title)
    exists = check_replaceable(folder, kind=PACKAGE_KIND, force=force)
    resources = package_resources(extension_names)
    descriptor = descriptor_for(name, title or folder.name, extension_names, resources)
    try:
        with atomic_folder(folder, PACKAGE_KIND, {"command": "init"}) as temp:
            _write_package(temp, descriptor, extension_names, resources)
    except OSError as exc:
        what = exc.filename or folder
        raise PackageError(f"cannot create {folder}: {what}: {exc.strerror or exc}") from None
    return InitResult(folder, descriptor, replaced=exists)


def run_init(
    folder: Path,
    *,
    title: str | None,
    extensions: Sequence[str],
    force: bool,
    console: Console,
) -> int:
    """``trialpool init``: create the empty package; 0 on success (errors raise)."""
    result = create_package(folder, title=title, extensions=extensions, force=force)
    descriptor = result.descriptor
    shown = escape(str(folder))
    ext = descriptor["extensions"]
    console.print(
        f"{'Replaced' if result.replaced else 'Created'} package [bold]{escape(descriptor['name'])}"
        f"[/bold] {descriptor['version']} in {shown} (core schema {core_version()}"
        + (f", extensions: {escape(', '.join(ext))}" if ext else "")
        + f"): {len(descriptor['resources'])} header-only tables in data/, their schemas in "
        "schemas/, datapackage.json and README.md."
    )
    console.print(
        "Next steps (README.md says more):\n"
        f"  1. fill in {shown}/datapackage.json: title, description, contributors\n"
        "  2. add rows to the CSV files in data/ (or: trialpool new-study STUDY_ID "
        f"--descriptor {shown}/datapackage.json)\n"
        f"  3. trialpool refresh {shown}/datapackage.json\n"
        f"  4. frictionless validate {shown}/datapackage.json && trialpool validate "
        f"{shown}/datapackage.json"
    )
    return 0
