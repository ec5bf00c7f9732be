"""The reviews in ``trialpool audit``'s sources: which files and folders are one review each.

* A file named on the command line is one review, whatever it holds (a RevMan 5 file, a
  RevMan 5 CSV export, a zip of a Cochrane data package or of one ``.rm5`` file).
* A folder is one Cochrane data package when data-package files (``*-data-rows.csv``,
  ``*-study-information.csv``, ...) sit in it or in its direct subfolders, as in the
  packages Cochrane publishes (``CD…-analysis-data/``, ``CD…-study-data/``).
* Any other folder holds many reviews: each file in it that is a review by its name
  (``.rm5``, ``.zip``) or by its first bytes (XML, zip, a RevMan 5 CSV header), and each of
  its subfolders, looked at by the same rules. Other files (a README, notes) are skipped
  and listed; hidden files and folders, and the audit's own output folder, are never
  looked at. Symbolic links are kept as reviews, so that the importer refuses them with
  its one-line reason.

Names of the reviews are their file or folder names (a file's without its extension),
made safe as folder names and unique in the corpus.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from trialpool.imports.cochrane_package import package_file_kind
from trialpool.imports.detect import detect

#: names of the audit's own files in DIR, never used for a review's folder
RESERVED = frozenset({"reviews.csv", "audit.csv", "summary.md", "summary.html"})
_REVIEW_SUFFIXES = (".rm5", ".zip")
_HEAD_BYTES = 4096


@dataclass(frozen=True)
class ReviewSource:
    """One review to audit: its unique name in the corpus and where it is."""

    name: str
    path: Path


@dataclass
class Corpus:
    """The reviews found in the sources, and the files skipped as not reviews."""

    reviews: list[ReviewSource] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)


def is_package_folder(folder: Path) -> bool:
    """Whether ``folder`` is one Cochrane data package (its files in it or one level down)."""
    for entry in _entries(folder):
        if entry.is_file() and package_file_kind(entry.name) is not None:
            return True
        if entry.is_dir() and not entry.is_symlink():
            for inner in _entries(entry):
                if inner.is_file() and package_file_kind(inner.name) is not None:
                    return True
    return False


def _entries(folder: Path) -> list[Path]:
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    return [folder / n for n in names if not n.startswith(".")]


def _looks_like_review(path: Path) -> bool:
    if path.suffix.lower() in _REVIEW_SUFFIXES or path.is_symlink():
        return True
    try:
        with path.open("rb") as handle:
            head = handle.read(_HEAD_BYTES)
    except OSError:
        return True  # unreadable: the importer says why
    return detect(head) is not None


def _safe_name(path: Path) -> str:
    raw = path.name if path.is_dir() else path.stem
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", raw).strip("._-")
    return name or "review"


def find_reviews(sources: list[Path], *, exclude: Path | None = None) -> Corpus:
    """Every review in ``sources``, in the order given (a folder's entries sorted by name).

    ``exclude`` (the output folder) is never looked into; a path given twice is audited once.
    """
    corpus = Corpus()
    seen: set[Path] = set()
    used: set[str] = {n.casefold() for n in RESERVED}
    skip = None if exclude is None else exclude.absolute().resolve()

    def add(path: Path) -> None:
        key = path.absolute() if path.is_symlink() else path.resolve()
        if key in seen:
            return
        seen.add(key)
        base = name = _safe_name(path)
        n = 1
        while name.casefold() in used:
            n += 1
            name = f"{base}-{n}"
        used.add(name.casefold())
        corpus.reviews.append(ReviewSource(name, path))

    def walk(folder: Path) -> None:
        for entry in _entries(folder):
            if skip is not None and entry.resolve() == skip:
                continue
            if entry.is_dir() and not entry.is_symlink():
                if is_package_folder(entry):
                    add(entry)
                else:
                    walk(entry)
            elif _looks_like_review(entry):
                add(entry)
            else:
                corpus.skipped.append(entry)

    for source in sources:
        if source.is_dir() and not source.is_symlink() and not is_package_folder(source):
            walk(source)
        else:
            add(source)
    return corpus
