"""Fuzz: mutate cells (or raw bytes) of the valid fixture; validate never crashes.

Every resource of the fixture is fuzzed, the core 1.0 ones (comparisons, outcomes, the
header-only effect_estimates, whose first row is then a new one) and the msc extension's
msc_arms included; the special values include the codes those tables use.

Every outcome is either valid (exit 0) or invalid (exit 1) with one line per problem,
never a traceback or an internal error; and the fast path reports the same Table Schema
errors at the same locations as frictionless (the reference).
"""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console
from test_validate_corpus import engine_locations, reference_locations, tree_digest

from conftest import VALID_MINIMAL, build_package
from trialpool.validate import print_report, validate_package

RESOURCES = sorted(p.stem for p in (VALID_MINIMAL / "data").glob("*.csv"))


def test_every_resource_is_fuzzed() -> None:
    """The fixture has every resource of the core and of the msc extension."""
    from trialpool.package.core import known_resources

    assert set(RESOURCES) == set(known_resources())


SPECIAL = [
    "",
    " ",
    "NA",
    "NaN",
    "nan",
    "-inf",
    "Infinity",
    "sNaN",
    "1e400",
    "-0",
    "0",
    "1_000",
    "٣",
    "1.0",
    ".5",
    "5.",
    "+3",
    "true",
    "FALSE",
    "yes",
    "None",
    '"',
    '""',
    ",",
    "\n",
    "\r\n",
    "a,b",
    "x\x00y",
    "ä",
    "alpha2020",
    "beta2021",
    "control",
    "msc",
    "derived",
    "rob2",
    "death",
    "meld",
    "dichotomous",
    "generic",
    "as_reported",
    "week_4",
    "alpha2020_msc_vs_control",
    "not_applicable",
    "cells/kg",
    "99999999999999999999",
    "-1",
    "1040",
    "1040.0000000000001",
]

cell_values = st.one_of(
    st.sampled_from(SPECIAL),
    st.text(max_size=12),
    st.integers(-(10**20), 10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


@st.composite
def cell_mutation(draw: st.DrawFn) -> tuple[str, int, int, str]:
    resource = draw(st.sampled_from(RESOURCES))
    text = (VALID_MINIMAL / "data" / f"{resource}.csv").read_text("utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    row = draw(st.integers(1, max(1, len(rows) - 1)))  # 1 in a header-only file: a new row
    col = draw(st.integers(0, len(rows[0]) - 1))
    return resource, row, col, draw(cell_values)


def _set(row: int, col: int, value: str):
    def edit(text: str) -> str:
        rows = list(csv.reader(io.StringIO(text)))
        if row == len(rows):  # header only: the cell of a new, otherwise empty row
            rows.append([""] * len(rows[0]))
        rows[row][col] = value
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(rows)
        return out.getvalue()

    return edit


def _insert(offset: int, blob: bytes):
    def edit(text: str) -> bytes:
        raw = text.encode("utf-8")
        at = offset % (len(raw) + 1)
        return raw[:at] + blob + raw[at:]

    return edit


def _check(descriptor: Path, root: Path) -> None:
    before = tree_digest(root)
    buffer = io.StringIO()
    report = validate_package(descriptor)
    print_report(report, Console(file=buffer, width=100), as_json=False)
    out = buffer.getvalue()
    assert "Traceback" not in out
    assert not [i for i in report.issues if i.rule == "validation-failed"], out
    for issue in report.issues:
        assert "\n" not in issue.line()
        assert issue.line() in out.splitlines()
    assert out.splitlines()[-1].startswith("VALID" if report.valid else "INVALID")
    assert tree_digest(root) == before
    reference = _reference_or_none(descriptor)
    if reference is not None:
        assert engine_locations(descriptor, "fast") == reference


def _reference_or_none(descriptor: Path) -> set | None:
    """frictionless' locations, or None when frictionless itself crashes on the input."""
    try:
        return reference_locations(descriptor)
    except Exception:
        return None


FUZZ = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.slow
@FUZZ
@given(cell_mutation())
def test_fuzz_cell(mutation: tuple[str, int, int, str]) -> None:
    resource, row, col, value = mutation
    with tempfile.TemporaryDirectory() as tmp:
        descriptor = build_package(Path(tmp) / "pkg", edits={resource: _set(row, col, value)})
        _check(descriptor, Path(tmp))


@pytest.mark.slow
@FUZZ
@given(
    st.sampled_from(RESOURCES),
    st.integers(0, 10_000),
    st.sampled_from([b'"', b",", b"\n", b"\r", b"\x00", b"\xff", b"\xc3", b'",\n"', b"\n\n"]),
)
def test_fuzz_bytes(resource: str, offset: int, blob: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        descriptor = build_package(Path(tmp) / "pkg", edits={resource: _insert(offset, blob)})
        _check(descriptor, Path(tmp))
