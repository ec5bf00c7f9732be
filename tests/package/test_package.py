"""package.load_package: unsafe paths are refused before anything is read."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import build_package
from trialpool.errors import PackageError
from trialpool.package import loader as package_module
from trialpool.package.loader import load_package


def _edit(descriptor: Path, fn: Callable[[dict[str, Any]], None]) -> Path:
    data = json.loads(descriptor.read_text("utf-8"))
    fn(data)
    descriptor.write_text(json.dumps(data), encoding="utf-8")
    return descriptor


def _set(index: int, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def fn(data: dict[str, Any]) -> None:
        data["resources"][index][key] = value

    return fn


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (_set(0, "path", "/etc/passwd"), "absolute path"),
        (_set(0, "path", "C:\\data\\x.csv"), "absolute path"),
        (_set(0, "path", "https://example.org/x.csv"), "remote path"),
        (_set(0, "path", "file:///etc/passwd"), "remote path"),
        (_set(0, "path", "data/../../x.csv"), "leaves the package folder"),
        (_set(0, "path", ["data/a.csv", "data/b.csv"]), "non-empty string"),
        (_set(0, "path", "data"), "is not a file"),
        (_set(0, "schema", "../schemas/sources.schema.json"), "leaves the package folder"),
        (_set(0, "schema", {"fields": [{"type": "string"}]}), "has no string 'name'"),
        (_set(0, "schema", {"no": "fields"}), "schema has no 'fields' list"),
        (_set(0, "dialect", "/etc/dialect.json"), "absolute path"),
        (_set(0, "profile", "https://example.org/p.json"), "refused"),
        (_set(0, "data", [["a"]]), "inline 'data'"),
        (_set(0, "extrapaths", ["x.csv"]), "multipart"),
        (_set(1, "name", "sources"), "used twice"),
        (lambda d: d.update(profile="https://example.org/p.json"), "refused"),
        (lambda d: d.update(resources=[]), "non-empty list"),
    ],
)
def test_refused(tmp_path: Path, change: Callable[[dict[str, Any]], None], words: str) -> None:
    descriptor = _edit(build_package(tmp_path / "pkg"), change)
    with pytest.raises(PackageError) as info:
        load_package(descriptor)
    assert words in str(info.value)
    assert "\n" not in str(info.value)


def test_symlink_escape_and_loop(tmp_path: Path) -> None:
    descriptor = build_package(tmp_path / "pkg")
    data = tmp_path / "pkg" / "data"
    (tmp_path / "outside.csv").write_text("x\n", encoding="utf-8")
    (data / "claims.csv").unlink()
    (data / "claims.csv").symlink_to(tmp_path / "outside.csv")
    with pytest.raises(PackageError, match="symlink"):
        load_package(descriptor)
    (data / "claims.csv").unlink()
    (data / "claims.csv").symlink_to(data / "claims.csv")
    with pytest.raises(PackageError, match="claims"):
        load_package(descriptor)


def test_symlink_inside_is_fine(tmp_path: Path) -> None:
    descriptor = build_package(tmp_path / "pkg")
    data = tmp_path / "pkg" / "data"
    (data / "claims.csv").rename(data / "claims_real.csv")
    (data / "claims.csv").symlink_to(data / "claims_real.csv")
    assert load_package(descriptor).table("claims").shape[0] == 3


def test_json_size_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    descriptor = build_package(tmp_path / "pkg")
    monkeypatch.setattr(package_module, "MAX_JSON_BYTES", 100)
    with pytest.raises(PackageError, match="over the limit"):
        load_package(descriptor)


def test_reads_typed_tables(tmp_path: Path) -> None:
    package = load_package(build_package(tmp_path / "pkg"))
    arms = package.table("arms")
    assert str(arms["n_randomised"].dtype) == "Int64"
    assert package.table("comparisons")["primary"].tolist() == [True, True]
    assert package.resources["arms"].display_path == "data/arms.csv"
    assert package.row_number(0) == 2
