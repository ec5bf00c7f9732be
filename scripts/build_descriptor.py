#!/usr/bin/env python3
"""Regenerate the generated parts of datapackage.json.

Generated parts (never edit them by hand):

* each resource's ``bytes`` and ``hash`` (``sha256:<hex>``) from its CSV file;
* the descriptor's ``sources`` list, from ``data/sources.csv`` (one entry per row:
  title = citation, path = canonical URL when there is one).

Everything else in the descriptor (name, version, title, licences, contributors,
resource names, paths and schema references) is maintained by hand.

Usage::

    python scripts/build_descriptor.py           # rewrite datapackage.json in place
    python scripts/build_descriptor.py --check   # exit 1 if the committed file is stale
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def file_facts(path: Path) -> tuple[int, str]:
    """Return (bytes, 'sha256:<hex>') of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
    return size, f"sha256:{digest.hexdigest()}"


def descriptor_sources(sources_csv: Path) -> list[dict[str, str]]:
    """One descriptor source per row of the sources resource."""
    out: list[dict[str, str]] = []
    with sources_csv.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            entry = {"title": row["citation"]}
            if row.get("url"):
                entry["path"] = row["url"]
            out.append(entry)
    return out


def build(root: Path) -> str:
    """Return the regenerated descriptor text for the package at ``root``."""
    descriptor = json.loads((root / "datapackage.json").read_text(encoding="utf-8"))
    for resource in descriptor["resources"]:
        size, digest = file_facts(root / resource["path"])
        resource["bytes"] = size
        resource["hash"] = digest
    sources_resource = next((r for r in descriptor["resources"] if r["name"] == "sources"), None)
    if sources_resource is not None:
        descriptor["sources"] = descriptor_sources(root / sources_resource["path"])
    return json.dumps(descriptor, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if datapackage.json is stale")
    parser.add_argument("--root", type=Path, default=ROOT, help="package folder")
    args = parser.parse_args(argv)
    path = args.root / "datapackage.json"
    new = build(args.root)
    if args.check:
        if path.read_text(encoding="utf-8") != new:
            print(
                f"{path}: stale (bytes, hash or sources differ from the data); "
                "run: python scripts/build_descriptor.py",
                file=sys.stderr,
            )
            return 1
        print(f"{path}: up to date")
        return 0
    path.write_text(new, encoding="utf-8")
    print(f"{path}: written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
