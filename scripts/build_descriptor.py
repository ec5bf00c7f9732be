#!/usr/bin/env python3
"""Regenerate the generated parts of datapackage.json.

Generated parts (never edit them by hand):

* each resource's ``bytes`` and ``hash`` (``sha256:<hex>``) from its CSV file;
* the descriptor's ``sources`` list, from ``data/sources.csv`` (one entry per row:
  title = citation, path = canonical URL when there is one).

Everything else in the descriptor (name, version, title, licences, contributors,
resource names, paths and schema references) is maintained by hand. The logic lives in
``trialpool.package.descriptor``; this script is its command line.

Usage::

    python scripts/build_descriptor.py           # rewrite datapackage.json in place
    python scripts/build_descriptor.py --check   # exit 1 if the committed file is stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

try:
    from trialpool.package.descriptor import build, descriptor_sources, file_facts
except ModuleNotFoundError:  # run from a checkout where trialpool is not installed
    sys.path.insert(0, str(ROOT / "src"))
    from trialpool.package.descriptor import build, descriptor_sources, file_facts

__all__ = ["build", "descriptor_sources", "file_facts", "main"]


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
