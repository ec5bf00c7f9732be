"""The RevMan 5 CSV export read as a stream: limits on line length, columns and rows, each
refusal one line naming the file and the row, memory bounded by the limits (not by the
line), and the same review whatever the chunking, line ends and encoding.

Inputs are generated here; the real export (Fleiss 1993) is read in chunks of a few bytes
and compared with the default reading.
"""

from __future__ import annotations

import codecs
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from conftest import FIXTURES
from trialpool.errors import ImportSourceError
from trialpool.imports.revman_csv import DEFAULT_CSV_LIMITS, CsvLimits, read_revman_csv

HEADER = (
    "Comparison Number,Outcome Number,Subgroup Number,Name,Data Type,Statistical Method,"
    "Effect Measure,Analysis Model,Events 1,Total 1,Events 2,Total 2\n"
)
BODY = "1,0,0,A vs B,,,,,,,,\n1,1,0,Death,DIC,MH,RR,Fixed,,,,\n"


def _study(name: str, e1: int = 3, n1: int = 20, e2: int = 5, n2: int = 20) -> str:
    return f"1,1,0,{name},,,,,{e1},{n1},{e2},{n2}\n"


def _refused(data: bytes, *parts: str, limits: CsvLimits = DEFAULT_CSV_LIMITS) -> str:
    with pytest.raises(ImportSourceError) as caught:
        read_revman_csv(data, "export.csv", limits)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("export.csv: "), message
    for part in parts:
        assert part in message, message
    return message


def test_a_long_line_is_refused_naming_the_row() -> None:
    data = (HEADER + BODY + _study("X" * 5000) + _study("Y")).encode()
    _refused(
        data,
        "row 4 (line 4)",
        "line longer than 1000 characters",
        limits=CsvLimits(max_line_chars=1000, chunk_bytes=256),
    )


def test_a_long_last_line_without_a_line_end_is_refused() -> None:
    data = (HEADER + BODY + _study("X" * 5000).rstrip("\n")).encode()
    _refused(data, "row 4", "line longer than 1000", limits=CsvLimits(max_line_chars=1000))


def test_a_long_line_is_refused_with_memory_bounded_by_the_limit() -> None:
    """A 24 MB line with a limit of 64 KiB: refused after reading about the limit, the
    memory allocated by the reader a small multiple of limit and chunk (never the line)."""
    line = "1,1,0," + "Z" * (24 * 1024 * 1024) + ",DIC,MH,RR,Fixed,,,,\n"
    data = (HEADER + BODY).encode() + line.encode()
    limits = CsvLimits(max_line_chars=64 * 1024, chunk_bytes=64 * 1024)
    tracemalloc.start()
    try:
        _refused(data, "row 4 (line 4)", "line longer than 65536 characters", limits=limits)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024, peak


def test_too_many_columns_and_too_many_rows() -> None:
    wide = HEADER.rstrip("\n") + ",x" * 30 + "\n" + BODY
    _refused(wide.encode(), "row 1", "42 fields, more than 40", limits=CsvLimits(max_columns=40))
    many = HEADER + BODY + "".join(_study(f"S{i}") for i in range(20))
    _refused(many.encode(), "row 11", "more than 10 rows", limits=CsvLimits(max_rows=10))
    read_revman_csv(many.encode(), "export.csv", CsvLimits(max_rows=23))  # 23 records: fine


def test_a_malformed_record_names_the_row() -> None:
    data = (HEADER + BODY + '1,1,0,"Quoted"x,,,,,1,2,3,4\n').encode()
    _refused(data, "row 4 (line 4)", "malformed CSV")


def _studies(data: bytes, limits: CsvLimits = DEFAULT_CSV_LIMITS) -> list[tuple[str, ...]]:
    review = read_revman_csv(data, "export.csv", limits)
    return [
        (row.study_id, str(row.e1), str(row.n1), str(row.e2), str(row.n2))
        for analysis in review.analyses
        for row in analysis.rows
    ]


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"])
def test_line_ends_quoted_line_breaks_and_chunk_boundaries(end: str) -> None:
    """The same studies whatever the line ends and however small the chunks (a quoted
    name holding a line break, a "\\r\\n" cut between two chunks)."""
    text = HEADER + BODY + _study("Alpha 2001") + _study('"Beta\nGamma 2002"', 1, 9, 2, 9)
    text += _study("Δέλτα 2003")
    data = text.replace("\n", end).replace('"Beta' + end, '"Beta\n').encode()
    expected = [
        ("Alpha 2001", "3", "20", "5", "20"),
        ("Beta Gamma 2002", "1", "9", "2", "9"),
        ("Δέλτα 2003", "3", "20", "5", "20"),
    ]
    for chunk in (1, 2, 3, 7, 64, 1024 * 1024):
        assert _studies(data, CsvLimits(chunk_bytes=chunk)) == expected, chunk


def test_utf16_and_cp1252_exports() -> None:
    text = HEADER + BODY + _study("Müller 1999")
    utf16 = codecs.BOM_UTF16_LE + text.encode("utf-16-le")
    assert _studies(utf16, CsvLimits(chunk_bytes=5))[0][0] == "Müller 1999"
    # a byte that is not UTF-8 after the first chunk: the whole file is read as cp1252
    cp1252 = (HEADER + BODY + "".join(_study(f"S{i}") for i in range(50))).encode()
    cp1252 += _study("Gärtner 2004").encode("cp1252")
    names = [s[0] for s in _studies(cp1252, CsvLimits(chunk_bytes=64))]
    assert names[-1] == "Gärtner 2004" and len(names) == 51
    broken = codecs.BOM_UTF16_LE + text.encode("utf-16-le")[:-1] + b"\x00\xd8"
    _refused(broken, "invalid UTF-16")


def test_the_real_export_read_in_small_chunks_is_the_same_review() -> None:
    data = (FIXTURES / "revman" / "Fleiss1993_CR.csv").read_bytes()
    whole = read_revman_csv(data, "Fleiss1993_CR.csv")
    chunked = read_revman_csv(data, "Fleiss1993_CR.csv", CsvLimits(chunk_bytes=13))
    assert chunked == whole
    assert len(whole.analyses) == 2 and sum(len(a.rows) for a in whole.analyses) == 12


def test_import_of_a_line_over_the_limit_exits_1_and_writes_nothing(tmp_path: Path) -> None:
    """Through the CLI with the default limits: a 3 MiB line (the limit is 1 MiB)."""
    source = tmp_path / "huge_line.csv"
    source.write_text(HEADER + BODY + _study("N" * (3 * 1024 * 1024)), encoding="utf-8")
    out = tmp_path / "pkg"
    done = subprocess.run(
        [sys.executable, "-m", "trialpool.cli", "import", str(source), "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines == [
        "trialpool: error: huge_line.csv: row 4 (line 4): line longer than 1048576 characters"
    ]
    assert "Traceback" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["huge_line.csv"]
