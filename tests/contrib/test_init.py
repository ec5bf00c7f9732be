"""``trialpool init``: an empty package that conforms (trialpool.contrib.init)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from trialpool.cli import main
from trialpool.contrib import init as init_mod
from trialpool.contrib.init import create_package, package_name, run_init, slug
from trialpool.errors import PackageError, UsageError
from trialpool.package.atomic import OutputFolderError
from trialpool.package.core import core_resources, extensions

REPO = Path(__file__).resolve().parents[2]
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def quiet() -> Console:
    return Console(file=io.StringIO(), width=200, highlight=False)


def descriptor_of(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "datapackage.json").read_text(encoding="utf-8"))


def frictionless(descriptor: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "frictionless", "validate", str(descriptor)],
        capture_output=True,
        text=True,
        check=False,
    )


def tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# ------------------------------------------------------------------ conforming output


@pytest.mark.frictionless
@pytest.mark.parametrize("ext", [[], ["msc"]], ids=["core", "msc"])
def test_created_package_passes_frictionless_and_trialpool(
    tmp_path: Path, ext: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "review"
    args = ["init", str(folder)] + [a for name in ext for a in ("--extension", name)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "Created package review 0.1.0" in out and "trialpool validate" in out
    descriptor = folder / "datapackage.json"
    run = frictionless(descriptor)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-1000:]
    assert main(["validate", str(descriptor)]) == 0, capsys.readouterr().out
    assert "VALID" in capsys.readouterr().out
    from trialpool.validate import validate_package

    report = validate_package(descriptor, engine="frictionless")
    assert report.valid, [issue.line() for issue in report.issues]


def test_descriptor_files_and_schemas(tmp_path: Path) -> None:
    folder = tmp_path / "my_review"
    before = datetime.now(UTC).replace(microsecond=0)
    result = create_package(folder, extensions=["msc"])
    after = datetime.now(UTC)
    data = descriptor_of(folder)
    assert data == result.descriptor
    assert data["profile"] == "tabular-data-package"
    assert data["name"] == "my-review" and data["title"] == "my_review"
    assert data["version"] == "0.1.0"
    assert data["extensions"] == ["msc"]
    assert data["sources"] == []
    assert [lic["name"] for lic in data["licenses"]] == ["CC-BY-4.0"]
    assert data["licenses"][0]["path"].startswith("https://creativecommons.org/licenses/by/4.0")
    assert data["contributors"] and all(c["title"] for c in data["contributors"])
    assert data["description"].startswith("TODO")
    assert RFC3339.match(data["created"])
    created = datetime.strptime(data["created"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert before - timedelta(seconds=1) <= created <= after
    # resources: the manifest's order, core first, then the extension's
    expected = [r.name for r in core_resources()] + [r.name for r in extensions()["msc"].resources]
    assert [r["name"] for r in data["resources"]] == expected
    for res in data["resources"]:
        path = folder / res["path"]
        blob = path.read_bytes()
        assert res["bytes"] == len(blob)
        assert res["hash"] == "sha256:" + hashlib.sha256(blob).hexdigest()
        schema_rel = res["schema"].removeprefix("schemas/")
        assert (folder / res["schema"]).read_bytes() == (REPO / "schemas" / schema_rel).read_bytes()
        schema = json.loads((folder / res["schema"]).read_text(encoding="utf-8"))
        rows = list(csv.reader(io.StringIO(blob.decode("utf-8"))))
        assert rows == [[f["name"] for f in schema["fields"]]]  # header only
        assert blob.endswith(b"\n") and b"\r" not in blob
    assert (folder / "schemas/extensions/msc/msc_arms.schema.json").is_file()
    readme = (folder / "README.md").read_text(encoding="utf-8")
    assert readme.startswith("# my_review\n") and "What to fill in" in readme
    assert "data/comparisons.csv" in readme and "msc extension" in readme
    # the build script agrees with the facts init computed
    from trialpool.package.descriptor import build

    assert build(folder) == (folder / "datapackage.json").read_text(encoding="utf-8")


def test_without_extension_no_extension_files(tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    create_package(folder)
    data = descriptor_of(folder)
    assert data["extensions"] == []
    assert "msc_arms" not in {r["name"] for r in data["resources"]}
    assert not (folder / "schemas/extensions").exists()
    assert not (folder / "data/msc_arms.csv").exists()


def test_repeated_extension_is_declared_once(tmp_path: Path) -> None:
    create_package(tmp_path / "p", extensions=["msc", "msc"])
    data = descriptor_of(tmp_path / "p")
    assert data["extensions"] == ["msc"]
    assert [r["name"] for r in data["resources"]].count("msc_arms") == 1


# ------------------------------------------------------------------------ names


@pytest.mark.parametrize(
    ("title", "name"),
    [
        ("Antibiotics for sepsis: trials (2027)", "antibiotics-for-sepsis-trials-2027"),
        ("Ça va, Müller & Søn", "ca-va-muller-sn"),
        ("  MSC in ACLF  ", "msc-in-aclf"),
        ("2027 update", "2027-update"),
    ],
)
def test_title_slug(tmp_path: Path, title: str, name: str) -> None:
    assert slug(title) == name
    folder = tmp_path / "folder"
    assert main(["init", str(folder), "--title", title]) == 0
    data = descriptor_of(folder)
    assert data["name"] == name and data["title"] == title
    assert (folder / "README.md").read_text(encoding="utf-8").startswith(f"# {title}\n")


def test_name_from_folder_when_title_has_no_letters(tmp_path: Path) -> None:
    assert package_name(tmp_path / "My Review", None) == "my-review"
    assert package_name(tmp_path / "My Review", "???") == "my-review"
    with pytest.raises(UsageError, match="cannot make a package name"):
        package_name(tmp_path / "___", "!!!")


# ------------------------------------------------------------------- refusals


@pytest.mark.parametrize("force", [[], ["--force"]], ids=["plain", "force"])
def test_refuses_a_users_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], force: list[str]
) -> None:
    folder = tmp_path / "existing"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me\n", encoding="utf-8")
    assert main(["init", str(folder), *force]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a trialpool package" in err
    assert "with or without --force" in err and "Traceback" not in err
    assert tree(folder) == {"notes.txt": b"keep me\n"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing"]  # no temp left


def test_own_package_needs_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "existing"
    create_package(folder, title="Old")
    before = tree(folder)
    assert main(["init", str(folder)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "add --force to replace it" in err
    assert tree(folder) == before


def test_force_replaces_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "existing"
    create_package(folder, title="Old")
    (folder / "data/extra.csv").write_text("x\n", encoding="utf-8")
    result = create_package(folder, title="New", extensions=["msc"], force=True)
    assert result.replaced
    data = descriptor_of(folder)
    assert data["title"] == "New" and data["extensions"] == ["msc"]
    assert not (folder / "data/extra.csv").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing"]  # no backup left


def test_empty_folder_is_used(tmp_path: Path) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    assert run_init(folder, title=None, extensions=[], force=False, console=quiet()) == 0
    assert (folder / "datapackage.json").is_file()


def test_missing_parents_are_created(tmp_path: Path) -> None:
    folder = tmp_path / "a" / "b" / "review"
    create_package(folder)
    assert (folder / "datapackage.json").is_file()


def test_refuses_a_file(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x", encoding="utf-8")
    with pytest.raises(OutputFolderError, match="not a folder"):
        create_package(target, force=True)
    assert target.read_text(encoding="utf-8") == "x"


def test_unknown_extension_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "review"
    assert main(["init", str(folder), "--extension", "msc", "--extension", "oncology"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "unknown extension 'oncology'" in err and "known: msc" in err
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------- atomicity


def _fail_on_nth_copy(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    real = shutil.copyfile
    calls = {"n": 0}

    def copyfile(src: Any, dst: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == n:
            raise OSError(28, "No space left on device", str(dst))
        return real(src, dst, **kwargs)

    monkeypatch.setattr(shutil, "copyfile", copyfile)


def test_failure_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fail_on_nth_copy(monkeypatch, 5)
    folder = tmp_path / "new" / "review"
    with pytest.raises(PackageError, match="No space left on device"):
        create_package(folder, extensions=["msc"])
    assert list(tmp_path.iterdir()) == []  # no package, no temp folder, no parent made


def test_failure_with_force_keeps_the_old_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "existing"
    create_package(folder, title="Old")
    before = tree(folder)
    _fail_on_nth_copy(monkeypatch, 3)
    with pytest.raises(PackageError, match="cannot create"):
        create_package(folder, title="New", force=True)
    assert tree(folder) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing"]


def test_failed_final_rename_restores_the_old_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "existing"
    create_package(folder, title="Old")
    before = tree(folder)
    real = init_mod.os.replace

    def replace(src: Any, dst: Any) -> None:
        if ".tmp-" in Path(src).name:  # the new package moving in (atomic_folder)
            raise OSError(13, "Permission denied", str(dst))
        real(src, dst)

    monkeypatch.setattr(init_mod.os, "replace", replace)
    with pytest.raises(PackageError, match="Permission denied"):
        create_package(folder, title="New", force=True)
    assert tree(folder) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing"]
