#!/usr/bin/env python3
"""Prepare (and optionally tag) a release of the package.

Steps, in order; every problem is reported, and the tag is made only when there is none:

1. regenerate the generated files: the descriptor's ``bytes``/``hash``/``sources``
   (``trialpool.package.descriptor``, as ``scripts/build_descriptor.py``) and the README
   data dictionary (``scripts/make_data_dictionary.py``);
2. validate the package: ``frictionless validate datapackage.json``, then
   ``trialpool validate`` (``trialpool.validate.validate_package``, when installed);
3. check the version: ``datapackage.json``'s version is a semantic version, equal to
   ``CITATION.cff``'s and ``pyproject.toml``'s, and ``CHANGELOG.md`` has its entry
   (``## [X.Y.Z] - YYYY-MM-DD``); the tag ``vX.Y.Z`` does not exist yet;
4. print the ``git tag`` command (default, a dry run) or, with ``--tag``, run it, which
   also requires a clean working tree (regenerated files committed). The tag message is
   the descriptor's ``name`` and the version.

``--notes [OLD]`` writes the release notes instead (to ``--notes-out``, else stdout) and
changes nothing: the package's title and version, its ``CHANGELOG.md`` entry, and, given
the previous release's descriptor OLD, the section "What changed since version X" of
``trialpool report --since`` (every result re-pooled in both versions,
:mod:`trialpool.report.sections.changes`). When OLD does not validate with this version
of trialpool (e.g. made under an older major version of the core), the section says so
instead of comparing. The release workflow (``.github/workflows/release.yml``) runs it
on each tag with the previous tag's package and publishes the notes.

Usage::

    python scripts/release.py            # dry run: check everything, print the tag command
    python scripts/release.py --tag      # the same, then tag the release
    python scripts/release.py --notes ../v1.0.0/datapackage.json --notes-out notes.md
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from trialpool.contrib.diff import Version, changelog_has_version
from trialpool.errors import TrialpoolError, ValidationFailedError
from trialpool.package.descriptor import build

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = Path(__file__).resolve().parent


def _script(name: str) -> ModuleType:
    """Import a sibling script (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    if spec is None or spec.loader is None:  # pragma: no cover - file is in the repo
        raise ImportError(name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def regenerate(root: Path) -> list[str]:
    """Rewrite the generated files; return the ones that changed."""
    changed: list[str] = []
    descriptor = root / "datapackage.json"
    new = build(root)
    if descriptor.read_text(encoding="utf-8") != new:
        descriptor.write_text(new, encoding="utf-8")
        changed.append("datapackage.json")
    readme = root / "README.md"
    before = readme.read_text(encoding="utf-8") if readme.exists() else None
    code = _script("make_data_dictionary").main(["--root", str(root)])
    if code != 0:
        raise RuntimeError("README data dictionary could not be generated")
    if readme.read_text(encoding="utf-8") != before:
        changed.append("README.md")
    return changed


def validate(root: Path) -> list[str]:
    """Problems found by frictionless and by trialpool validate (empty when valid)."""
    problems: list[str] = []
    run = subprocess.run(
        [sys.executable, "-m", "frictionless", "validate", "datapackage.json"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if run.returncode != 0:
        problems.append("frictionless validate datapackage.json: invalid (run it for details)")
    try:
        from trialpool.validate import validate_package
    except ImportError:
        print("note: trialpool validate is not available; only frictionless was run")
        return problems
    report = validate_package(root / "datapackage.json")
    if not report.valid:
        problems.append(
            f"trialpool validate: {len(report.issues)} issue(s) (run 'trialpool validate')"
        )
    return problems


def _citation_version(root: Path) -> Any:
    path = root / "CITATION.cff"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML ({exc})") from None
    return data.get("version") if isinstance(data, dict) else None


def _pyproject_version(root: Path) -> Any:
    path = root / "pyproject.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return data.get("project", {}).get("version")


def version_problems(root: Path) -> tuple[str | None, list[str]]:
    """The package version and every inconsistency about it."""
    problems: list[str] = []
    descriptor = json.loads((root / "datapackage.json").read_text(encoding="utf-8"))
    version = descriptor.get("version")
    try:
        Version.parse(version)
    except ValueError as exc:
        return None, [f"datapackage.json: version: {exc}"]
    try:
        others = {
            "CITATION.cff": _citation_version(root),
            "pyproject.toml": _pyproject_version(root),
        }
    except ValueError as exc:
        return version, [str(exc)]
    for name, other in others.items():
        if other is None:
            problems.append(f"{name}: no version found (expected {version})")
        elif str(other) != version:
            problems.append(
                f"{name}: version {other} differs from datapackage.json's {version}; "
                "make them equal"
            )
    changelog = root / "CHANGELOG.md"
    if not changelog.exists():
        problems.append("CHANGELOG.md: not found")
    elif not changelog_has_version(changelog.read_text(encoding="utf-8"), version):
        problems.append(
            f"CHANGELOG.md: no entry for {version} (rename 'Unreleased' to "
            f"'## [{version}] - YYYY-MM-DD' and open a new Unreleased section)"
        )
    return version, problems


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)


def tag_problems(root: Path, tag: str, *, need_clean: bool) -> list[str]:
    """The tag must be new; tagging also needs a clean working tree."""
    problems: list[str] = []
    inside = _git(root, "rev-parse", "--is-inside-work-tree")
    if inside.returncode != 0:
        return [f"{root}: not a git repository"]
    if _git(root, "rev-parse", "-q", "--verify", f"refs/tags/{tag}").returncode == 0:
        problems.append(f"tag {tag} exists already: bump the version first")
    if need_clean:
        status = _git(root, "status", "--porcelain", "--untracked-files=no")
        if status.stdout.strip():
            problems.append(
                "working tree has uncommitted changes (commit the regenerated files first)"
            )
    return problems


def changelog_entry(text: str, version: str) -> str | None:
    """The body of the ``## [X.Y.Z]`` section of a changelog (None when it has none)."""
    heading = re.compile(rf"^##\s+\[?v?{re.escape(version)}\]?(?=\s|$).*$", re.MULTILINE)
    match = heading.search(text)
    if match is None:
        return None
    rest = text[match.end() :]
    following = re.search(r"^##\s", rest, flags=re.MULTILINE)
    return (rest[: following.start()] if following else rest).strip()


def changes_section(old: Path, descriptor: Path) -> str:
    """The section "What changed since version X" as Markdown; when OLD cannot be
    compared (it does not validate with this trialpool), a short section that says why."""
    from trialpool.contrib.diff_results import compare_results
    from trialpool.report.sections.changes import markdown

    try:
        return markdown(compare_results(old, descriptor, new_validated=True))
    except ValidationFailedError as exc:
        print(f"release: warning: results not compared: {exc}", file=sys.stderr)
        try:
            version = json.loads(old.read_text(encoding="utf-8")).get("version") or old
        except (OSError, ValueError):
            version = old
        return f"## What changed since version {version}\n\nThe results were not compared: {exc}.\n"


def release_notes(root: Path, old: Path | None) -> str:
    """The release notes: title and version, the CHANGELOG entry, what changed since OLD.

    Raises ValueError (one line) when the CHANGELOG has no entry for the version;
    TrialpoolError when the package cannot be read or does not validate."""
    descriptor_path = root / "datapackage.json"
    descriptor = json.loads(descriptor_path.read_text(encoding="utf-8"))
    version = str(descriptor.get("version"))
    changelog = root / "CHANGELOG.md"
    text = changelog.read_text(encoding="utf-8") if changelog.exists() else ""
    entry = changelog_entry(text, version)
    if entry is None:
        raise ValueError(f"{changelog}: no entry for {version} (the notes quote it)")
    title = descriptor.get("title") or descriptor.get("name") or root.name
    parts = [f"# {title} {version}\n", entry + "\n"]
    if old is not None:
        from trialpool.validate import validate_package

        report = validate_package(descriptor_path)
        if not report.valid:
            raise ValidationFailedError(
                f"{descriptor_path}: package is invalid ({len(report.issues)} problem(s)); "
                "run 'trialpool validate' for the list"
            )
        parts.append(changes_section(old, descriptor_path))
    return "\n".join(parts).rstrip() + "\n"


def write_notes(root: Path, old: Path | None, out: Path | None) -> int:
    """``--notes``: write the release notes (stdout without ``out``); exit code."""
    try:
        notes = release_notes(root, old)
    except (ValueError, OSError, TrialpoolError) as exc:
        print(f"release: error: {exc}", file=sys.stderr)
        return 1
    if out is None:
        sys.stdout.write(notes)
    else:
        out.write_text(notes, encoding="utf-8")
        print(f"release notes written to {out}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--dry-run", action="store_true", default=True, help="check only (default)")
    group.add_argument("--tag", action="store_true", help="tag the release when all is well")
    group.add_argument(
        "--notes",
        nargs="?",
        const="",
        metavar="OLD",
        help="write the release notes instead (with the previous release's datapackage.json "
        "OLD: what changed since it)",
    )
    parser.add_argument(
        "--notes-out", type=Path, help="file the release notes are written to (default stdout)"
    )
    parser.add_argument("--root", type=Path, default=ROOT, help="repository folder")
    args = parser.parse_args(argv)
    root: Path = args.root.resolve()
    if args.notes is not None:
        return write_notes(root, Path(args.notes) if args.notes else None, args.notes_out)
    if args.notes_out is not None:
        parser.error("--notes-out needs --notes")
    problems: list[str] = []

    changed = regenerate(root)
    for name in changed:
        print(f"regenerated {name} (commit it before tagging)")
    problems += validate(root)
    version, found = version_problems(root)
    problems += found
    tag = f"v{version}" if version else None
    if tag:
        problems += tag_problems(root, tag, need_clean=args.tag)
    for problem in problems:
        print(f"release: error: {problem}", file=sys.stderr)
    if problems or tag is None:
        print(f"release: {len(problems)} problem(s); no tag made", file=sys.stderr)
        return 1
    name = json.loads((root / "datapackage.json").read_text(encoding="utf-8")).get("name")
    message = f"{name or root.name} {version}"
    command = ["git", "tag", "-a", tag, "-m", message]
    shown = " ".join(command[:4]) + f' -m "{message}"'
    if not args.tag:
        print(f"release {version}: all checks passed. Dry run; to tag, run: {shown}")
        print("(or: python scripts/release.py --tag), then: git push origin " + tag)
        return 0
    run = _git(root, *command[1:])
    if run.returncode != 0:
        message = (run.stderr or run.stdout).strip().splitlines()
        print(f"release: error: git tag failed: {message[0] if message else ''}", file=sys.stderr)
        return 1
    print(f"tagged {tag}; publish it with: git push origin {tag}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
