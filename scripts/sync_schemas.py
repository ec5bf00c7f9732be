#!/usr/bin/env python3
"""Copy the repository's ``schemas/`` into the package (``src/trialpool/_schemas/``).

``schemas/`` is the single source of truth, edited by hand: the bundled
``datapackage.json`` references its files and users run ``frictionless validate`` on it.
trialpool reads its own copy (``importlib.resources``), so that an installed wheel works
without a source checkout. The copy is generated, never edited: every JSON file of
``schemas/`` at the same relative path, and a README saying so.

Usage::

    python scripts/sync_schemas.py           # rewrite src/trialpool/_schemas/
    python scripts/sync_schemas.py --check   # exit 1 if the copy differs from schemas/
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "schemas"
MIRROR = ROOT / "src" / "trialpool" / "_schemas"
README = "README.md"
README_TEXT = """\
# Generated: do not edit

A copy of the repository's `schemas/` (the single source of truth) that ships inside
trialpool, which reads it with `importlib.resources`. Edit `schemas/`, then run
`python scripts/sync_schemas.py`; CI runs it with `--check`.
"""


def expected(source: Path = SOURCE) -> dict[str, bytes]:
    """The mirror's files by ``/``-separated relative path, with their contents."""
    out = {
        path.relative_to(source).as_posix(): path.read_bytes()
        for path in sorted(source.rglob("*.json"))
        if path.is_file()
    }
    out[README] = README_TEXT.encode("utf-8")
    return out


def actual(mirror: Path = MIRROR) -> dict[str, bytes]:
    """The files now in the mirror (every file, so that strays are found)."""
    if not mirror.is_dir():
        return {}
    return {
        path.relative_to(mirror).as_posix(): path.read_bytes()
        for path in sorted(mirror.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


def differences(want: dict[str, bytes], have: dict[str, bytes]) -> list[str]:
    """One line per file that is missing, stale or stray in the mirror."""
    lines = [f"missing: {name}" for name in sorted(want.keys() - have.keys())]
    lines += [f"stale: {name}" for name in sorted(want.keys() & have.keys())
              if want[name] != have[name]]  # fmt: skip
    lines += [f"not in schemas/: {name}" for name in sorted(have.keys() - want.keys())]
    return lines


def write(want: dict[str, bytes], mirror: Path = MIRROR) -> None:
    """Make the mirror hold exactly ``want``."""
    for name in actual(mirror).keys() - want.keys():
        (mirror / name).unlink()
    for name, content in want.items():
        target = mirror / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.is_file() or target.read_bytes() != content:
            target.write_bytes(content)
    for folder in sorted((p for p in mirror.rglob("*") if p.is_dir()), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the copy is stale")
    args = parser.parse_args(argv)
    want = expected()
    problems = differences(want, actual())
    shown = MIRROR.relative_to(ROOT)
    if args.check:
        if problems:
            print(
                f"{shown}: differs from schemas/ ({'; '.join(problems)}); "
                "run: python scripts/sync_schemas.py",
                file=sys.stderr,
            )
            return 1
        print(f"{shown}: up to date ({len(want) - 1} schema files)")
        return 0
    write(want)
    print(f"{shown}: {len(problems)} file(s) updated" if problems else f"{shown}: up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
