"""The fast engine's readers and scale path: pyarrow's streaming CSV reader (the default
for UTF-8 files whose records have the schema's width) and pandas' C parser (anything
else) give frictionless' verdicts and locations, across block boundaries; the engine is
chosen by ``TRIALPOOL_ENGINE`` or the API; the cross-table rules give the same issues by
either engine on a package of thousands of rows.

The package here is the benchmark's (``scripts/bench_validate.py``), a few thousand rows,
with faults planted at the start, in the middle and at the end of the large file.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from test_validate_corpus import _refresh_hashes, engine_locations, reference_locations

from conftest import REPO
from trialpool.validate import fast as fastvalidate
from trialpool.validate import fast_read, tableschema, validate_package


def _bench() -> Any:
    spec = importlib.util.spec_from_file_location(
        "bench_validate", REPO / "scripts" / "bench_validate.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ROWS = 4_000
CONT = "data/continuous_outcomes.csv"


@pytest.fixture(scope="module")
def valid_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _bench().build(tmp_path_factory.mktemp("scale") / "pkg", studies=40, rows=ROWS)


def _edit_rows(descriptor: Path, edit: Any) -> Path:
    """Apply ``edit(lines)`` to the lines of the large file; refresh bytes and hashes."""
    path = descriptor.parent / CONT
    lines = path.read_text("utf-8").split("\n")
    edit(lines)
    path.write_text("\n".join(lines), encoding="utf-8")
    _refresh_hashes(descriptor)
    return descriptor


def _set(lines: list[str], row: int, column: int, value: str) -> None:
    cells = lines[row - 1].split(",")
    cells[column] = value
    lines[row - 1] = ",".join(cells)


def _faults(lines: list[str]) -> None:
    """Type, constraint, foreign-key, primary-key and trialpool-rule faults and a blank
    row, spread over the file (row numbers as frictionless counts them)."""
    _set(lines, 2, 6, "many")  # n: type-error
    _set(lines, 1500, 8, "-1")  # sd: constraint-error (minimum)
    _set(lines, 2100, 2, "nope")  # outcome: foreign-key
    _set(lines, 2500, 4, "60")  # timepoint_weeks beyond the follow-up (52)
    _set(lines, 3000, 7, "inf")  # mean: non-finite-number
    _set(lines, 3100, 6, str(2**63))  # n: integer-out-of-range
    lines.insert(ROWS + 1, lines[ROWS])  # the last row again: a repeated primary key
    lines.insert(3500, "")  # a blank row (row 3501; the repeated key is now row ROWS + 3)


def _where(report: Any) -> set[tuple[Any, ...]]:
    return {(i.resource, i.file, i.row, i.field, i.rule) for i in report.issues}


def test_valid_package_read_by_pyarrow(valid_package: Path) -> None:
    report = validate_package(valid_package, engine="fast")
    assert report.valid, [i.line() for i in report.issues[:5]]
    assert report.summary["engine"] == "fast"
    assert report.summary["readers"]["continuous_outcomes"] == "arrow"
    assert report.summary["rows"]["continuous_outcomes"] == ROWS
    assert not report.summary.get("frictionless_fallback")


@pytest.mark.parametrize(
    ("block_bytes", "table_bytes"),
    [
        (fast_read.ARROW_BLOCK_BYTES, fast_read.ARROW_TABLE_BYTES),  # one table
        (4096, fast_read.ARROW_TABLE_BYTES),  # one table of many chunks
        (4096, 0),  # streamed, block by block
    ],
)
def test_faults_across_blocks_match_frictionless(
    valid_package: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    block_bytes: int,
    table_bytes: int,
) -> None:
    """Small blocks put each fault in another block (or chunk); every distinct value is
    still parsed once and each error keeps its row."""
    descriptor = tmp_path / "pkg" / "datapackage.json"
    shutil.copytree(valid_package.parent, descriptor.parent)
    _edit_rows(descriptor, _faults)
    monkeypatch.setattr(fast_read, "ARROW_BLOCK_BYTES", block_bytes)
    monkeypatch.setattr(fast_read, "ARROW_TABLE_BYTES", table_bytes)
    monkeypatch.setattr(fast_read, "ARROW_PARALLEL_BYTES", 0)  # the threaded encoding too
    reference = reference_locations(descriptor)
    fast = validate_package(descriptor, engine="fast")
    assert fast.summary["readers"]["continuous_outcomes"] == "arrow"
    assert {(r, row, f, rule) for r, _, row, f, rule in _where(fast) if rule in _FL} == reference
    slow = validate_package(descriptor, engine="frictionless")
    assert _where(fast) == _where(slow)
    rows = {(i.row, i.rule) for i in fast.issues if i.resource == "continuous_outcomes"}
    assert {
        (2, "type-error"),
        (1500, "constraint-error"),
        (2100, "foreign-key"),
        (2500, "timepoint-beyond-follow-up"),
        (3000, "non-finite-number"),
        (3100, "integer-out-of-range"),
        (3501, "blank-row"),
        (ROWS + 3, "primary-key"),
    } <= rows


def test_threaded_and_sequential_reads_give_the_same_issues(
    valid_package: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small packages are read one file at a time, large ones by READ_THREADS threads:
    both to the same issues in the same order."""
    descriptor = tmp_path / "pkg" / "datapackage.json"
    shutil.copytree(valid_package.parent, descriptor.parent)
    _edit_rows(descriptor, _faults)
    monkeypatch.setattr(fastvalidate, "THREADS_MIN_BYTES", 10**12)
    one_by_one = validate_package(descriptor, engine="fast")
    monkeypatch.setattr(fastvalidate, "THREADS_MIN_BYTES", 0)
    threaded = validate_package(descriptor, engine="fast")
    assert len(one_by_one.issues) >= 8
    assert [i.line() for i in threaded.issues] == [i.line() for i in one_by_one.issues]
    assert threaded.summary == one_by_one.summary


_FL = {
    "type-error",
    "constraint-error",
    "foreign-key",
    "primary-key",
    "blank-row",
    "missing-cell",
    "unique-error",
}


def test_pandas_reader_gives_the_same_issues(
    valid_package: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With pyarrow ruled out, pandas' parser reads every file, to the same issues."""
    descriptor = tmp_path / "pkg" / "datapackage.json"
    shutil.copytree(valid_package.parent, descriptor.parent)
    _edit_rows(descriptor, _faults)
    by_arrow = validate_package(descriptor, engine="fast")
    monkeypatch.setattr(fastvalidate, "arrow_readable", lambda *args: False)
    by_pandas = validate_package(descriptor, engine="fast")
    assert set(by_pandas.summary["readers"].values()) == {"pandas"}
    assert [i.line() for i in by_pandas.issues] == [i.line() for i in by_arrow.issues]


def test_short_rows_and_quotes_take_the_right_reader(
    valid_package: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A short record sends the file to pandas' parser (missing cells); quoted cells
    with commas and line breaks stay with pyarrow once the csv module agrees. The reads
    started in the background (here for every file) are dropped in both cases."""
    monkeypatch.setattr(fast_read, "ARROW_PARALLEL_BYTES", 0)
    short = tmp_path / "short" / "datapackage.json"
    shutil.copytree(valid_package.parent, short.parent)

    def cut(lines: list[str]) -> None:
        lines[9] = ",".join(lines[9].split(",")[:-2])

    _edit_rows(short, cut)
    report = validate_package(short, engine="fast")
    assert report.summary["readers"]["continuous_outcomes"] == "pandas"
    assert engine_locations(short, "fast") == reference_locations(short)
    assert {(i.row, i.field, i.rule) for i in report.issues} >= {
        (10, "derivation", "missing-cell"),
        (10, "notes", "missing-cell"),
    }

    quoted = tmp_path / "quoted" / "datapackage.json"
    shutil.copytree(valid_package.parent, quoted.parent)

    def quote(lines: list[str]) -> None:
        _set(lines, 5, 20, '"a note, with a comma"')
        _set(lines, 7, 20, '"two\nlines and ""quotes"""')

    _edit_rows(quoted, quote)
    report = validate_package(quoted, engine="fast")
    assert report.valid, [i.line() for i in report.issues]
    assert report.summary["readers"]["continuous_outcomes"] == "arrow"
    assert engine_locations(quoted, "fast") == reference_locations(quoted)


def test_engine_chosen_by_environment_and_argument(
    valid_package: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(tableschema.ENGINE_ENV, raising=False)
    assert validate_package(valid_package).summary["engine"] == "fast"  # auto, any size
    monkeypatch.setenv(tableschema.ENGINE_ENV, "frictionless")
    assert validate_package(valid_package).summary["engine"] == "frictionless"
    assert validate_package(valid_package, engine="fast").summary["engine"] == "fast"
    monkeypatch.setenv(tableschema.ENGINE_ENV, "fast")
    report = validate_package(valid_package)
    assert report.summary["engine"] == "fast" and report.valid


def test_hash_checked_by_the_background_digest(valid_package: Path, tmp_path: Path) -> None:
    """The hash is computed beside the parse; a wrong one is still reported."""
    descriptor = tmp_path / "pkg" / "datapackage.json"
    shutil.copytree(valid_package.parent, descriptor.parent)
    data = json.loads(descriptor.read_text("utf-8"))
    entry = next(r for r in data["resources"] if r["name"] == "continuous_outcomes")
    entry["hash"] = "sha256:" + "0" * 64
    descriptor.write_text(json.dumps(data), encoding="utf-8")
    report = validate_package(descriptor, engine="fast")
    assert [(i.file, i.rule) for i in report.issues] == [(CONT, "hash-count")]
    assert engine_locations(descriptor, "fast") == reference_locations(descriptor)


PATTERNS = [
    "^[a-z][a-z0-9_]*$",
    "^(NCT[0-9]{8}|ChiCTR[-A-Za-z0-9]+|ISRCTN[0-9]+|EUCTR[-0-9A-Za-z]+|[A-Za-z0-9-]+)$",
    "^[a-z0-9][a-z0-9_]*-[0-9]{3,}$",
    "^10\\.[0-9]{4,9}/\\S+$",  # \S: Python's re decides
    "a|b",  # re.match anchors only the start: "a..." matches
    "^a|b$",
    "(a|b)c?",
    "a.c",
    "x*",
    "(?=a)a",  # look-ahead: Python's re decides
]
VALUES = [
    "abc",
    "abc\n",
    "Abc",
    "a_1",
    "",
    "ab c",
    "é",
    "a\nb",
    "1ab",
    "abc-123",
    "NCT12345678",
    "ChiCTR-1",
    "axyz",
    "xb",
    "b",
    "b\n",
    "10.1000/x\x0b",
    "a\rc",
]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_pattern_by_pyarrow_as_python_reads_it(pattern: str) -> None:
    """Patterns are checked by RE2 (pyarrow) only where it reads them as Python's re
    (frictionless' engine) does; the verdict per value is the same."""
    import re

    import numpy as np
    import pyarrow as pa

    values = np.array(VALUES, dtype=object)
    expected = [bool(re.match("^" + pattern + "$", v)) for v in VALUES]
    got = fast_read._pattern_matches(pattern, values, pa.array(VALUES))
    assert got.tolist() == expected


def test_background_read_used_when_the_file_is_as_assumed(
    valid_package: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The read started before frictionless runs is handed over for a plain comma file
    of the schema's width, and the verdict is the one of a read made afterwards."""
    taken: dict[str, str] = {}
    take = fast_read.Prefetch.take

    def spy(self: Any, path: Path, *args: Any) -> Any:
        found = take(self, path, *args)
        taken[path.name] = type(found).__name__
        return found

    without = validate_package(valid_package, engine="fast")
    monkeypatch.setattr(fast_read, "ARROW_PARALLEL_BYTES", 0)
    monkeypatch.setattr(fast_read.Prefetch, "take", spy)
    report = validate_package(valid_package, engine="fast")
    assert taken["continuous_outcomes.csv"] == "Table"
    assert report.valid and without.valid
    assert report.summary == without.summary
