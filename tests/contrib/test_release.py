"""Release consistency: versions, CITATION.cff, CHANGELOG, licences, scripts/release.py."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from trialpool.contrib.diff import Version, changelog_has_version

REPO = Path(__file__).resolve().parents[2]


def load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


release = load_script("release")


def descriptor_version() -> str:
    return str(json.loads((REPO / "datapackage.json").read_text(encoding="utf-8"))["version"])


def citation() -> dict[str, Any]:
    data = yaml.safe_load((REPO / "CITATION.cff").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


# --------------------------------------------------------------- repository files


def test_citation_version_matches_datapackage() -> None:
    assert str(citation()["version"]) == descriptor_version(), (
        "CITATION.cff and datapackage.json must carry the same version"
    )


def test_pyproject_version_matches_datapackage() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["version"] == descriptor_version()


def test_citation_cff_fields() -> None:
    cff = citation()
    assert cff["cff-version"] == "1.2.0"
    for key in ("message", "title", "authors", "version", "license"):
        assert cff.get(key), key
    assert cff["authors"] == [{"name": "msc-aclf-trials maintainers"}]
    assert set(cff["license"]) == {"CC-BY-4.0", "MIT"}
    Version.parse(str(cff["version"]))
    dois = [ref.get("doi") for ref in cff["references"]]
    assert "10.1186/s13287-025-04303-8" in dois
    for ref in cff["references"]:
        assert ref["type"] and ref["title"] and ref["authors"]


def test_changelog_has_current_version_and_unreleased() -> None:
    text = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    assert changelog_has_version(text, descriptor_version())
    assert "## [Unreleased]" in text
    assert text.index("## [Unreleased]") < text.index(f"## [{descriptor_version()}]")


def test_licences() -> None:
    assert (REPO / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")
    data_licence = (REPO / "LICENSE-DATA").read_text(encoding="utf-8")
    assert "CC-BY-4.0" in data_licence
    descriptor = json.loads((REPO / "datapackage.json").read_text(encoding="utf-8"))
    assert [lic["name"] for lic in descriptor["licenses"]] == ["CC-BY-4.0"]


# ----------------------------------------------------------------- release.py


def make_repo(dest: Path) -> Path:
    """A throw-away git repository holding a copy of the package and release files."""
    dest.mkdir()
    for name in ("datapackage.json", "CHANGELOG.md", "CITATION.cff", "pyproject.toml"):
        shutil.copyfile(REPO / name, dest / name)
    shutil.copyfile(REPO / "README.md", dest / "README.md")
    for folder in ("schemas", "data"):
        shutil.copytree(REPO / folder, dest / folder)
    (dest / "datapackage.json").write_text(
        load_script("build_descriptor").build(dest), encoding="utf-8"
    )
    assert load_script("make_data_dictionary").main(["--root", str(dest)]) == 0
    git(dest, "init", "-q")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "test")
    return dest


def git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "test",
        "GIT_AUTHOR_EMAIL": "test@example.org",
        "GIT_COMMITTER_NAME": "test",
        "GIT_COMMITTER_EMAIL": "test@example.org",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    return subprocess.run(
        ["git", *args], cwd=root, env=env, capture_output=True, text=True, check=True
    )


def test_version_problems_name_the_file(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    root.mkdir()
    for name in ("datapackage.json", "CHANGELOG.md", "CITATION.cff", "pyproject.toml"):
        shutil.copyfile(REPO / name, root / name)
    version, problems = release.version_problems(root)
    assert version == descriptor_version() and problems == []
    cff = root / "CITATION.cff"
    cff.write_text(cff.read_text(encoding="utf-8").replace(f"version: {version}", "version: 9.9.9"))
    _, problems = release.version_problems(root)
    assert problems == [
        f"CITATION.cff: version 9.9.9 differs from datapackage.json's {version}; make them equal"
    ]
    (root / "CHANGELOG.md").write_text("# Changelog\n\n## [Unreleased]\n", encoding="utf-8")
    _, problems = release.version_problems(root)
    assert any(p.startswith(f"CHANGELOG.md: no entry for {version}") for p in problems)
    descriptor = json.loads((root / "datapackage.json").read_text(encoding="utf-8"))
    descriptor["version"] = "1.0"
    (root / "datapackage.json").write_text(json.dumps(descriptor), encoding="utf-8")
    assert release.version_problems(root) == (
        None,
        ["datapackage.json: version: '1.0' is not a semantic version MAJOR.MINOR.PATCH"],
    )


@pytest.mark.frictionless
@pytest.mark.slow
def test_release_dry_run_then_tag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    if shutil.which("git") is None:  # pragma: no cover
        pytest.skip("git not available")
    root = make_repo(tmp_path / "repo")
    version = descriptor_version()
    for who in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{who}_NAME", "test")
        monkeypatch.setenv(f"GIT_{who}_EMAIL", "test@example.org")
    assert release.main(["--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert f"git tag -a v{version}" in out and "Dry run" in out
    assert git(root, "tag").stdout.strip() == ""  # nothing tagged in a dry run
    monkeypatch.setattr(release, "validate", lambda root: [])  # validated once is enough
    changelog = root / "CHANGELOG.md"
    original = changelog.read_bytes()
    changelog.write_text("dirty\n", encoding="utf-8")
    assert release.main(["--root", str(root), "--tag"]) == 1
    err = capsys.readouterr().err
    assert "uncommitted changes" in err and f"no entry for {version}" in err
    changelog.write_bytes(original)
    assert release.main(["--root", str(root), "--tag"]) == 0
    assert git(root, "tag").stdout.split() == [f"v{version}"]
    assert release.main(["--root", str(root), "--tag"]) == 1
    assert f"tag v{version} exists already" in capsys.readouterr().err


def test_release_regenerates_stale_descriptor(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    root.mkdir()
    shutil.copyfile(REPO / "datapackage.json", root / "datapackage.json")
    shutil.copyfile(REPO / "README.md", root / "README.md")
    for folder in ("schemas", "data"):
        shutil.copytree(REPO / folder, root / folder)
    descriptor = json.loads((root / "datapackage.json").read_text(encoding="utf-8"))
    descriptor["resources"][0]["hash"] = "sha256:" + "0" * 64
    (root / "datapackage.json").write_text(json.dumps(descriptor), encoding="utf-8")
    changed = release.regenerate(root)
    assert "datapackage.json" in changed
    assert release.regenerate(root) == []
