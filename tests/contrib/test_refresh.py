"""trialpool refresh: the descriptor's generated parts after editing a CSV."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import build_package
from trialpool import cli
from trialpool.validate import validate_package


def _append_source(descriptor: Path) -> None:
    sources = descriptor.parent / "data" / "sources.csv"
    with sources.open("a", encoding="utf-8") as out:
        out.write("test_c,other,A third test source.,,,,,,\n")


def test_refresh_makes_an_edited_package_valid_again(tmp_path: Path, capsys) -> None:
    descriptor = build_package(tmp_path / "pkg")
    _append_source(descriptor)
    assert not validate_package(descriptor).valid  # bytes and hash are stale
    assert cli.main(["refresh", str(descriptor), "--check"]) == 1
    assert "stale" in capsys.readouterr().out
    assert cli.main(["refresh", str(descriptor)]) == 0
    assert validate_package(descriptor).valid
    titles = [s["title"] for s in json.loads(descriptor.read_text("utf-8"))["sources"]]
    assert "A third test source." in titles
    assert cli.main(["refresh", str(descriptor), "--check"]) == 0
    assert sorted(p.name for p in descriptor.parent.iterdir()) == [
        "data",
        "datapackage.json",
        "schemas",
    ]


def test_refresh_refuses_unsafe_paths_and_writes_nothing(tmp_path: Path, capsys) -> None:
    def escape(d: dict) -> None:
        d["resources"][0]["path"] = "../outside.csv"

    descriptor = build_package(tmp_path / "pkg", edit_descriptor=escape)
    before = descriptor.read_bytes()
    assert cli.main(["refresh", str(descriptor)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert descriptor.read_bytes() == before
