"""package.core reads the schemas bundled in trialpool, a generated copy of schemas/."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import trialpool
from trialpool.errors import PackageError
from trialpool.package import core

REPO = Path(__file__).resolve().parents[2]


def sync_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sync_schemas", REPO / "scripts/sync_schemas.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bundled_copy_equals_schemas() -> None:
    """src/trialpool/_schemas is schemas/ byte for byte (run scripts/sync_schemas.py)."""
    sync = sync_script()
    assert sync.differences(sync.expected(), sync.actual()) == []


def test_sync_check_finds_stale_missing_and_stray_files(tmp_path: Path) -> None:
    sync = sync_script()
    source = tmp_path / "schemas"
    (source / "extensions/x").mkdir(parents=True)
    (source / "a.schema.json").write_text('{"fields": []}\n', encoding="utf-8")
    (source / "extensions/x/b.schema.json").write_text("{}\n", encoding="utf-8")
    (source / "README.md").write_text("not copied\n", encoding="utf-8")
    mirror = tmp_path / "mirror"
    want = sync.expected(source)
    assert sorted(want) == ["README.md", "a.schema.json", "extensions/x/b.schema.json"]
    assert want["README.md"] != (source / "README.md").read_bytes()  # the "generated" note
    sync.write(want, mirror)
    assert sync.differences(want, sync.actual(mirror)) == []
    (mirror / "a.schema.json").write_text("{}\n", encoding="utf-8")
    (mirror / "extensions/x/b.schema.json").unlink()
    (mirror / "c.schema.json").write_text("{}\n", encoding="utf-8")
    assert sync.differences(want, sync.actual(mirror)) == [
        "missing: extensions/x/b.schema.json",
        "stale: a.schema.json",
        "not in schemas/: c.schema.json",
    ]
    sync.write(want, mirror)
    assert sync.actual(mirror) == want


def test_sync_check_command_passes_on_the_repository() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts/sync_schemas.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("src/trialpool/_schemas: up to date")


def test_schemas_are_read_from_inside_the_package() -> None:
    package_dir = Path(trialpool.__file__).parent
    manifest = core.bundled_schema(core.MANIFEST_NAME)
    assert Path(str(manifest)).is_relative_to(package_dir / "_schemas")
    for res in core.known_resources().values():
        assert core.bundled_schema(res.schema_path).is_file(), res.schema_path
    assert core.schema_json("core.json") is core.manifest()


def test_copy_schema_copies_bytes(tmp_path: Path) -> None:
    relpath = "extensions/msc/msc_arms.schema.json"
    target = tmp_path / "msc_arms.schema.json"
    core.copy_schema(relpath, target)
    assert target.read_bytes() == (REPO / "schemas" / relpath).read_bytes()


@pytest.mark.parametrize("relpath", ["", "../pyproject.toml", "a//b.json", "./core.json", "a\\b"])
def test_paths_outside_the_bundled_schemas_are_refused(relpath: str) -> None:
    with pytest.raises(PackageError, match="not a path inside trialpool's schemas"):
        core.bundled_schema(relpath)


def test_a_missing_bundled_schema_is_one_line(tmp_path: Path) -> None:
    core.schema_json.cache_clear()
    try:
        with pytest.raises(PackageError) as info:
            core.schema_json("nowhere.schema.json")
        with pytest.raises(PackageError) as copied:
            core.copy_schema("nowhere.schema.json", tmp_path / "x.json")
    finally:
        core.schema_json.cache_clear()
    for message in (str(info.value), str(copied.value)):
        assert message.startswith("trialpool's schema nowhere.schema.json cannot be read")
        assert "reinstall trialpool" in message and "\n" not in message
    assert not (tmp_path / "x.json").exists()
