"""Bad input never crashes or loses data: a corpus of broken packages.

Each case is one fault planted in the valid fixture (or, for encodings, a committed
file from tests/fixtures/bad). For every case ``trialpool validate`` exits 1, prints a
one-line message naming the file (and the row and field where there is one), no
traceback, and leaves the package byte-for-byte as it was. The fast path
(``trialpool.validate.fast``) and frictionless (the reference) must report the same
Table Schema errors at the same (resource, row, field) locations.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

import trialpool.cli as cli_module
from conftest import FIXTURES, REPO, add_row, build_package, drop_rows, set_cell
from trialpool.package.loader import load_package
from trialpool.validate import fast as fastvalidate
from trialpool.validate import tableschema, validate_package

Setup = Callable[[Path], Path]


@dataclass(frozen=True)
class Bad:
    """A broken package: how to make it, and what the one-line message must contain."""

    name: str
    setup: Setup
    expect: tuple[str, ...]  # all on one line of the output
    exit_code: int = 1


def edits(**changes: Any) -> Setup:
    """Setup: the valid fixture with CSV edits (resource name -> edit)."""
    return lambda dest: build_package(dest, edits=changes)


def descriptor_edit(fn: Callable[[dict[str, Any]], None]) -> Setup:
    return lambda dest: build_package(dest, edit_descriptor=fn)


def resource_set(index: int, key: str, value: Any) -> Setup:
    def fn(descriptor: dict[str, Any]) -> None:
        descriptor["resources"][index][key] = value

    return descriptor_edit(fn)


def raw_descriptor(text: str) -> Setup:
    def setup(dest: Path) -> Path:
        path = build_package(dest)
        path.write_text(text, encoding="utf-8")
        return path

    return setup


def replace_file(resource: str, source: Path) -> Setup:
    """The valid fixture with one CSV replaced by a committed file (bytes as they are)."""

    def setup(dest: Path) -> Path:
        path = build_package(dest)
        shutil.copyfile(source, dest / "data" / f"{resource}.csv")
        _refresh_hashes(path)
        return path

    return setup


def _refresh_hashes(descriptor: Path) -> None:
    data = json.loads(descriptor.read_text("utf-8"))
    for res in data["resources"]:
        blob = (descriptor.parent / res["path"]).read_bytes()
        res["bytes"] = len(blob)
        res["hash"] = "sha256:" + hashlib.sha256(blob).hexdigest()
    descriptor.write_text(json.dumps(data, indent=2), encoding="utf-8")


def symlink_outside(dest: Path) -> Path:
    path = build_package(dest)
    outside = dest.parent / f"{dest.name}_outside.csv"
    shutil.copyfile(dest / "data/claims.csv", outside)
    (dest / "data/claims.csv").unlink()
    (dest / "data/claims.csv").symlink_to(outside)
    return path


def missing_file(dest: Path) -> Path:
    path = build_package(dest)
    (dest / "data/claims.csv").unlink()
    return path


def schema_edit(name: str, fn: Callable[[dict[str, Any]], None]) -> Setup:
    def setup(dest: Path) -> Path:
        path = build_package(dest)
        schema_path = dest / "schemas" / f"{name}.schema.json"
        schema = json.loads(schema_path.read_text("utf-8"))
        fn(schema)
        schema_path.write_text(json.dumps(schema), encoding="utf-8")
        return path

    return setup


def _exclusive_minimum(schema: dict[str, Any]) -> None:
    schema["fields"][5]["constraints"]["exclusiveMinimum"] = 0


def _lines(text: str) -> Callable[[str], str]:
    return lambda _: text


def _columns(fn: Callable[[list[str]], list[str]]) -> Callable[[str], str]:
    return lambda text: (
        "\n".join(",".join(fn(line.split(","))) for line in text.splitlines()) + "\n"
    )


CONT = "data/continuous_outcomes.csv"
DICH = "data/dichotomous_outcomes.csv"

CORPUS: list[Bad] = [
    # --- the descriptor
    Bad("malformed JSON", raw_descriptor("{not json"), ("datapackage.json", "malformed JSON")),
    Bad("empty JSON file", raw_descriptor(""), ("datapackage.json", "malformed JSON")),
    Bad("JSON not an object", raw_descriptor("[1, 2]"), ("must be a JSON object",)),
    Bad(
        "no resources",
        raw_descriptor('{"name": "x", "resources": []}'),
        ("'resources' must be a non-empty list",),
    ),
    Bad("resource without name", resource_set(0, "name", ""), ("'name' is missing",)),
    Bad("duplicate resource names", resource_set(1, "name", "sources"), ("used twice",)),
    Bad("absolute path", resource_set(0, "path", "/etc/passwd"), ("absolute path '/etc/passwd'",)),
    Bad(
        "URL path",
        resource_set(0, "path", "https://example.org/sources.csv"),
        ("remote path", "refused"),
    ),
    Bad(
        "path escapes with ../", resource_set(0, "path", "../sources.csv"), ("leaves the package",)
    ),
    Bad("path escapes by a symlink", symlink_outside, ("leaves the package folder (symlink)",)),
    Bad(
        "schema path absolute",
        resource_set(0, "schema", "/etc/hosts"),
        ("schema: absolute path",),
    ),
    Bad(
        "custom profile URL",
        descriptor_edit(lambda d: d.update(profile="https://example.org/profile.json")),
        ("profile", "refused"),
    ),
    Bad("resource path is a folder", resource_set(6, "path", "data"), ("is not a file",)),
    Bad("missing resource file", missing_file, ("data/claims.csv", "[scheme-error]")),
    Bad(
        "schema not valid for frictionless",
        schema_edit("continuous_outcomes", _exclusive_minimum),
        ("exclusiveMinimum", "[field-error]"),
    ),
    Bad(
        "hash does not match",
        descriptor_edit(lambda d: d["resources"][2].update(hash="sha256:" + "0" * 64)),
        ("data/arms.csv", "[hash-count]"),
    ),
    Bad(
        "bytes do not match",
        descriptor_edit(lambda d: d["resources"][2].update(bytes=1)),
        ("data/arms.csv", "[byte-count]"),
    ),
    # --- encodings and shape
    Bad(
        "Latin-1 file declared UTF-8",
        replace_file("studies", FIXTURES / "bad/latin1/studies.csv"),
        ("data/studies.csv", "could not be successfully decoded", "[encoding-error]"),
    ),
    Bad(
        "row with an extra cell",
        edits(arms=lambda t: t.replace("test_a,\n", "test_a,,extra\n", 1)),
        ("data/arms.csv: row 2:", "extra value", "[extra-cell]"),
    ),
    Bad(
        "row with missing cells",
        edits(arms=lambda t: t.replace(",test_a,\n", "\n", 1)),
        ("data/arms.csv: row 2: field source_id:", "[missing-cell]"),
    ),
    Bad(
        "missing column",
        edits(studies=_columns(lambda cells: cells[:-1])),
        ("data/studies.csv: row 1: field notes:", "[missing-label]"),
    ),
    Bad(
        "extra column",
        edits(studies=_columns(lambda cells: [*cells, "x"])),
        ("data/studies.csv: row 1: field x:", "[extra-label]"),
    ),
    Bad(
        "duplicated column",
        edits(studies=lambda t: t.replace("source_id,notes\n", "source_id,source_id\n", 1)),
        ("data/studies.csv: row 1:", "[duplicate-label]"),
    ),
    Bad(
        "header-only arms",
        edits(arms=lambda t: t.splitlines()[0] + "\n"),
        (f"{CONT}: row 2: field study_id,arm_id:", "[foreign-key]"),
    ),
    Bad(
        "zero-byte CSV",
        edits(claims=_lines("")),
        ("data/claims.csv", "the source is empty", "[source-error]"),
    ),
    Bad(
        "blank row",
        edits(arms=lambda t: t + "\n"),
        ("data/arms.csv: row 6:", "[blank-row]"),
    ),
    # --- keys
    Bad(
        "duplicate primary key",
        edits(arms=add_row({}, like=2)),
        ("data/arms.csv: row 6: field study_id,arm_id:", "[primary-key]"),
    ),
    Bad(
        "duplicate unique value",
        edits(sources=add_row({"kind": "review"}, like=2)),
        ("data/sources.csv: row 5: field source_id:", "[unique-error]"),
    ),
    Bad(
        "dangling foreign key",
        edits(studies=set_cell(3, "source_id", "nowhere")),
        ("data/studies.csv: row 3: field source_id:", "[foreign-key]"),
    ),
    Bad(
        "outcome row names an unknown arm",
        edits(dichotomous_outcomes=set_cell(5, "arm_id", "placebo")),
        (f"{DICH}: row 5: field study_id,arm_id:", "[foreign-key]"),
    ),
    # --- values
    Bad(
        "value outside an enum",
        edits(arms=set_cell(3, "route", "oral")),
        ("data/arms.csv: row 3: field route:", '"enum"', "[constraint-error]"),
    ),
    Bad(
        "value below the range",
        edits(studies=set_cell(2, "year", "1800")),
        ("data/studies.csv: row 2: field year:", '"minimum"', "[constraint-error]"),
    ),
    Bad(
        "value above the range",
        edits(continuous_outcomes=set_cell(2, "timepoint_weeks", "2000")),
        (f"{CONT}: row 2: field timepoint_weeks:", '"maximum"', "[constraint-error]"),
    ),
    Bad(
        "pattern",
        edits(claims=set_cell(2, "claim_id", "Alpha-1")),
        ("data/claims.csv: row 2: field claim_id:", '"pattern"', "[constraint-error]"),
    ),
    Bad(
        "NaN SD",
        edits(continuous_outcomes=set_cell(2, "sd", "NaN")),
        (f"{CONT}: row 2: field sd:", "[constraint-error]"),
    ),
    Bad(
        "infinite mean",
        edits(continuous_outcomes=set_cell(3, "mean", "inf")),
        (f"{CONT}: row 3: field mean:", "[non-finite-number]"),
    ),
    Bad(
        "NA in an integer",
        edits(continuous_outcomes=set_cell(2, "n", "NA")),
        (f"{CONT}: row 2: field n:", "[type-error]"),
    ),
    Bad(
        "text in a number",
        edits(studies=set_cell(2, "follow_up_weeks", "about 24")),
        ("data/studies.csv: row 2: field follow_up_weeks:", "[type-error]"),
    ),
    Bad(
        "signalling NaN (frictionless itself crashes)",
        edits(continuous_outcomes=set_cell(2, "sd", "sNaN")),
        (f"{CONT}: row 2: field sd:", "[type-error]"),
    ),
    Bad(
        "not a boolean",
        edits(arms=set_cell(2, "primary_comparison", "yes")),
        ("data/arms.csv: row 2: field primary_comparison:", "[type-error]"),
    ),
    Bad(
        "empty string in a required field",
        edits(studies=set_cell(3, "label", "")),
        ("data/studies.csv: row 3: field label:", '"required"', "[constraint-error]"),
    ),
    Bad(
        "whitespace in a required field",
        edits(sources=set_cell(2, "citation", "  ")),
        ("data/sources.csv: row 2: field citation:", "[blank-value]"),
    ),
    Bad(
        "negative SD",
        edits(continuous_outcomes=set_cell(2, "sd", "-4.2")),
        (f"{CONT}: row 2: field sd:", '"minimum"', "[constraint-error]"),
    ),
    Bad(
        "zero SD",
        edits(continuous_outcomes=set_cell(3, "sd", "0")),
        (f"{CONT}: row 3: field sd:", "[sd-not-positive]"),
    ),
    # --- cross-table rules
    Bad(
        "events exceed total",
        edits(dichotomous_outcomes=set_cell(3, "events", "31")),
        (f"{DICH}: row 3: field events:", "[events-exceed-total]"),
    ),
    Bad(
        "n_analysed exceeds n_randomised",
        edits(arms=set_cell(5, "n_analysed", "21")),
        ("data/arms.csv: row 5: field n_analysed:", "[n-analysed-exceeds-randomised]"),
    ),
    Bad(
        "study without a control arm",
        edits(
            arms=drop_rows(5),
            continuous_outcomes=drop_rows(7),
            dichotomous_outcomes=drop_rows(5),
        ),
        ("data/studies.csv: row 3: field study_id:", "[missing-control-arm]"),
    ),
    Bad(
        "timepoint beyond follow-up",
        edits(continuous_outcomes=set_cell(2, "timepoint_weeks", "25")),
        (f"{CONT}: row 2: field timepoint_weeks:", "[timepoint-beyond-follow-up]"),
    ),
    Bad(
        "derived row without derivation",
        edits(dichotomous_outcomes=set_cell(4, "derivation", " ")),
        (f"{DICH}: row 4: field derivation:", "[derived-without-derivation]"),
    ),
]

ACCEPTED: list[Bad] = [
    Bad(
        "UTF-8 with a byte-order mark",
        replace_file("studies", FIXTURES / "bad/bom/studies.csv"),
        ("VALID",),
        0,
    ),
    Bad("CRLF line ends", edits(studies=lambda t: t.replace("\n", "\r\n")), ("VALID",), 0),
    Bad("CR line ends", edits(arms=lambda t: t.replace("\n", "\r")), ("VALID",), 0),
    Bad(
        "quoted cells with commas and quotes",
        edits(studies=set_cell(3, "notes", 'a "quoted", note; with\nnew line')),
        ("VALID",),
        0,
    ),
]


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file (and symlink target) under ``root``; also lists the names."""
    out: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            out[rel] = "link:" + os.readlink(path)
        elif path.is_file():
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            out[rel] = "dir"
    return out


def run_cli(*args: str) -> tuple[int, str]:
    buffer = io.StringIO()
    saved = cli_module.console
    cli_module.console = Console(file=buffer, width=120, highlight=False)
    try:
        code = cli_module.main(list(args))
    finally:
        cli_module.console = saved
    return code, buffer.getvalue()


def test_corpus_size() -> None:
    assert len(CORPUS) >= 40
    assert len({case.name for case in CORPUS + ACCEPTED}) == len(CORPUS) + len(ACCEPTED)


@pytest.mark.parametrize("case", CORPUS + ACCEPTED, ids=[c.name for c in CORPUS + ACCEPTED])
def test_bad_input(case: Bad, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    descriptor = case.setup(tmp_path / "pkg")
    before = tree_digest(tmp_path)
    code, out = run_cli("validate", str(descriptor))
    err = capsys.readouterr().err
    assert code == case.exit_code, out + err
    assert "Traceback" not in out + err
    lines = out.splitlines()
    assert any(all(part in line for part in case.expect) for line in lines), out
    assert tree_digest(tmp_path) == before  # nothing written, nothing changed
    # --json: one JSON object, same verdict
    code_json, out_json = run_cli("validate", str(descriptor), "--json")
    payload = json.loads(out_json)
    assert code_json == case.exit_code
    assert payload["valid"] is (case.exit_code == 0)
    assert tree_digest(tmp_path) == before


def test_file_too_large(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    descriptor = build_package(tmp_path / "pkg")
    monkeypatch.setenv(tableschema.MAX_FILE_BYTES_ENV, "300")
    before = tree_digest(tmp_path)
    code, out = run_cli("validate", str(descriptor))
    assert code == 1
    line = next(line for line in out.splitlines() if "data/arms.csv" in line)
    assert "over the limit of 300 bytes" in line and "[file-too-large]" in line
    assert "Traceback" not in out + capsys.readouterr().err
    assert tree_digest(tmp_path) == before


def test_bundled_package_unchanged_by_validate() -> None:
    watched = ["datapackage.json", "data", "schemas"]
    before = {
        name: tree_digest(REPO / name) if (REPO / name).is_dir() else None for name in watched
    }
    digest = hashlib.sha256((REPO / "datapackage.json").read_bytes()).hexdigest()
    validate_package(REPO / "datapackage.json", engine="fast")
    validate_package(REPO / "datapackage.json", engine="frictionless")
    after = {name: tree_digest(REPO / name) if (REPO / name).is_dir() else None for name in watched}
    assert after == before
    assert hashlib.sha256((REPO / "datapackage.json").read_bytes()).hexdigest() == digest


# --- parity: fast path vs frictionless ------------------------------------------------


def reference_locations(descriptor: Path) -> set[tuple[Any, ...]]:
    """frictionless' own errors (from the descriptor path), mapped as tableschema does."""
    from frictionless import FrictionlessException, Package

    package = load_package(descriptor)
    name = descriptor.name
    try:
        report = Package(str(descriptor)).validate()
    except FrictionlessException as exc:
        errors = exc.reasons or [exc.error]
        mapped = {tableschema._fl_issue(e.to_descriptor(), None, name) for e in errors}
        return {(i.resource, i.row, i.field, i.rule) for i in mapped}
    found = {tableschema._fl_issue(e.to_descriptor(), None, name) for e in report.errors}
    for task in report.tasks:
        resource = package.resources.get(task.name)
        found |= {tableschema._fl_issue(e.to_descriptor(), resource, name) for e in task.errors}
    return {(i.resource, i.row, i.field, i.rule) for i in found}


def engine_locations(descriptor: Path, engine: str) -> set[tuple[Any, ...]]:
    report = validate_package(descriptor, engine=engine)
    return {
        (i.resource, i.row, i.field, i.rule) for i in report.issues if i.source == "frictionless"
    }


def _loads(case: Bad, dest: Path) -> Path | None:
    descriptor = case.setup(dest)
    try:
        load_package(descriptor)
    except Exception:
        return None
    return descriptor


PARITY = [c for c in CORPUS + ACCEPTED if "frictionless itself crashes" not in c.name]


@pytest.mark.parametrize("case", PARITY, ids=[c.name for c in PARITY])
def test_fast_path_matches_frictionless(
    case: Bad, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    descriptor = _loads(case, tmp_path / "pkg")
    if descriptor is None:
        # refused by the safe loader before either engine reads anything: both engines
        # must then give the very same one-line refusal
        raw = case.setup(tmp_path / "again")
        fast = validate_package(raw, engine="fast")
        slow = validate_package(raw, engine="frictionless")
        assert not fast.valid
        assert [i.line() for i in fast.issues] == [i.line() for i in slow.issues]
        return
    reference = reference_locations(descriptor)
    assert engine_locations(descriptor, "fast") == reference
    # the vectorised readers (used for columns with many distinct values) agree too
    monkeypatch.setattr(fastvalidate, "DISTINCT_READER_LIMIT", 0)
    assert engine_locations(descriptor, "fast") == reference


def test_fast_path_matches_frictionless_on_bundled_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    descriptor = REPO / "datapackage.json"
    reference = reference_locations(descriptor)
    assert engine_locations(descriptor, "fast") == reference
    monkeypatch.setattr(fastvalidate, "DISTINCT_READER_LIMIT", 0)
    assert engine_locations(descriptor, "fast") == reference


def test_fast_path_keeps_frictionless_error_limit(tmp_path: Path) -> None:
    """1000 errors per resource, in frictionless' order; hash checks then skipped."""

    def many(text: str) -> str:
        lines = text.splitlines()
        body = [line.replace(",meld,", ",unknown,") for line in lines[1:]]
        return "\n".join([lines[0]] + body * 200) + "\n"

    descriptor = build_package(tmp_path / "pkg", edits={"continuous_outcomes": many})
    reference = reference_locations(descriptor)
    fast = engine_locations(descriptor, "fast")
    assert fast == reference
    assert sum(1 for r in fast if r[0] == "continuous_outcomes") == fastvalidate.LIMIT_ERRORS
