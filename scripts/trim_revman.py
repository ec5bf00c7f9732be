"""Trim real Cochrane review files into test fixtures: keep the data, drop people and prose.

Usage: python scripts/trim_revman.py SOURCE_DIR [DEST_DIR]

SOURCE_DIR holds the files described in ``tests/fixtures/revman/README.md`` (RevMan 5
``.rm5`` files, a RevMan 5 CSV export and a Cochrane data package folder). For each
``.rm5`` file the contact details (``CONTACT``, ``CREATORS``, ``SOURCES_OF_SUPPORT``) and
the review prose (``MAIN_TEXT``, ``FEEDBACK``, ``APPENDICES``, ``WHATS_NEW``, ``HISTORY``)
are removed; every data element (studies, references, characteristics, quality items,
analyses and RevMan's stored results) is kept byte for byte in its attributes. CSV files
and data packages are copied as published (they hold data only), except that e-mail
addresses (trial contacts in the study information of awaiting and ongoing studies) are
replaced by "[e-mail removed]" in a data package's CSV, JSON and RIS files, with the line
ends as published. The source files are only read.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

from defusedxml import ElementTree

#: elements removed wherever they occur (people and prose, not data)
DROP = {
    "CONTACT",
    "CREATORS",
    "SOURCES_OF_SUPPORT",
    "MAIN_TEXT",
    "FEEDBACK",
    "APPENDICES",
    "WHATS_NEW",
    "HISTORY",
}


def _declared_encoding(raw: bytes) -> str:
    match = re.match(rb"<\?xml[^>]*encoding=[\"']([A-Za-z0-9_.-]+)[\"']", raw)
    return match.group(1).decode("ascii") if match else "UTF-8"


def trim_rm5(src: Path, dest: Path) -> None:
    """Write ``src`` without the people and prose elements, in its declared encoding."""
    raw = src.read_bytes()
    root = ElementTree.fromstring(raw, forbid_dtd=True)
    for parent in list(root.iter()):
        for child in list(parent):
            if child.tag in DROP:
                parent.remove(child)
    encoding = _declared_encoding(raw)
    body = ElementTree.tostring(root, encoding="unicode")
    text = f'<?xml version="1.0" encoding="{encoding}"?>\n{body}\n'
    dest.write_bytes(text.encode(encoding, errors="xmlcharrefreplace"))


EMAIL = re.compile(rb"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)+")
_TEXT_SUFFIXES = {".csv", ".json", ".ris"}


def copy_package(src: Path, dest: Path) -> None:
    """Copy a data package folder, e-mail addresses removed from its text files."""
    for path in sorted(src.rglob("*")):
        target = dest / path.relative_to(src)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif path.suffix.lower() in _TEXT_SUFFIXES:
            target.write_bytes(EMAIL.sub(b"[e-mail removed]", path.read_bytes()))
        else:
            shutil.copyfile(path, target)


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    source = Path(argv[1])
    dest = Path(argv[2]) if len(argv) == 3 else Path("tests/fixtures/revman")
    dest.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.iterdir()):
        if path.suffix == ".rm5":
            trim_rm5(path, dest / path.name)
        elif path.suffix == ".csv":
            shutil.copyfile(path, dest / path.name)
        elif path.is_dir() and path.name == "cochrane-data-package":
            copy_package(path, dest / path.name)
        else:
            continue
        print(f"{path.name} -> {dest / path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
