"""The generated parts of ``datapackage.json``: file facts and the sources list.

Generated parts (never edited by hand):

* each resource's ``bytes`` and ``hash`` (``sha256:<hex>``) from its data file;
* the descriptor's ``sources`` list, from the ``sources`` resource (one entry per row:
  ``title`` = citation, ``path`` = URL when there is one).

Everything else in the descriptor (name, version, title, licences, contributors,
resource names, paths and schema references) is maintained by hand.
``scripts/build_descriptor.py`` (with ``--check``) and ``trialpool init`` use this module.
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path
from typing import Any

DESCRIPTOR_NAME = "datapackage.json"


def file_facts(path: Path) -> tuple[int, str]:
    """Return (bytes, ``'sha256:<hex>'``) of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
    return size, f"sha256:{digest.hexdigest()}"


def descriptor_sources(sources_csv: Path) -> list[dict[str, str]]:
    """One descriptor source per row of the sources resource (title, and path = url)."""
    out: list[dict[str, str]] = []
    with sources_csv.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            entry = {"title": row["citation"]}
            if row.get("url"):
                entry["path"] = row["url"]
            out.append(entry)
    return out


def refresh(descriptor: dict[str, Any], root: Path) -> dict[str, Any]:
    """Fill in ``bytes``, ``hash`` and ``sources`` of ``descriptor`` (in place) from the
    files under ``root``; return it."""
    for resource in descriptor["resources"]:
        size, digest = file_facts(root / resource["path"])
        resource["bytes"] = size
        resource["hash"] = digest
    sources_resource = next((r for r in descriptor["resources"] if r["name"] == "sources"), None)
    if sources_resource is not None:
        descriptor["sources"] = descriptor_sources(root / sources_resource["path"])
    return descriptor


def dumps(descriptor: dict[str, Any]) -> str:
    """The descriptor as written to disk: two-space indent, UTF-8, final newline."""
    return json.dumps(descriptor, indent=2, ensure_ascii=False) + "\n"


def build(root: Path) -> str:
    """Return the regenerated descriptor text for the package at ``root``."""
    descriptor = json.loads((root / DESCRIPTOR_NAME).read_text(encoding="utf-8"))
    return dumps(refresh(descriptor, root))
