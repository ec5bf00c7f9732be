"""Reads a RevMan 5 CSV analysis export ("Data and analyses" export) into a
:class:`~trialpool.imports.model.Review`.

The export is one table: a comparison row (Outcome Number 0), then per analysis a header
row (Subgroup Number 0 and a Data Type), optional subgroup header rows (a Subgroup Number
and a Data Type) and study rows (no Data Type). Columns are found by normalised name with
aliases, so optional columns may be missing or reordered.

Read: comparisons, analyses with their settings, subgroups, study rows with their data and
the numbers RevMan computed (estimate, SE, CI, weight; heterogeneity and subgroup tests).
Not read (the export does not hold them): study characteristics, references, risk of bias
(the optional "Risk of bias tables" field is not a table RevMan can write consistently).
Study ids are the study names as printed; the title is the file name, as RevMan names the
export after the review.

The file is parsed as a stream (:class:`StreamTable`): its bytes are decoded a chunk at a
time (UTF-16 with a byte-order mark, UTF-8, or cp1252 when the bytes are not UTF-8) and
cut into lines, and the CSV records are read from those lines one at a time, within
:class:`CsvLimits` (line length, columns, rows): a line of 150 MB is refused when its
first megabyte has been read, never held whole. Every refusal is one line naming the file
and the row.
"""

from __future__ import annotations

import codecs
import csv
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from trialpool.errors import ImportSourceError
from trialpool.imports.log import ImportLog
from trialpool.imports.model import (
    DataType,
    Method,
    Review,
    ReviewAnalysis,
    ReviewRow,
    ReviewStudy,
    ReviewSubgroup,
    RevManResult,
    SubgroupTest,
    normalise_measure,
    normalise_method,
)
from trialpool.imports.safety import (
    HeaderTable,
    cell,
    fail,
    html_to_text,
    normalise_header,
    optional_text,
    parse_count,
    parse_input,
    parse_number,
    parse_year,
)

#: the three columns that make a CSV a RevMan 5 analysis export
SIGNATURE = ("comparison number", "outcome number", "subgroup number")

_COLUMNS: dict[str, tuple[str, ...]] = {
    "comparison": ("Comparison Number",),
    "outcome": ("Outcome Number",),
    "subgroup": ("Subgroup Number",),
    "name": ("Name", "Study", "Study ID"),
    "data_type": ("Data Type",),
    "method": ("Statistical Method",),
    "measure": ("Effect Measure",),
    "model": ("Analysis Model", "Model"),
    "totals": ("Totals",),
    "study_ci": ("Study Confidence Interval", "Study CI"),
    "total_ci": ("Total Confidence Interval", "Total CI"),
    "subgroup_test": ("Test for subgroup differences",),
    "swap": ("Swap event and non-event",),
    "log_data": (
        "Entered data are on log scale (Generic Inverse Variance only)",
        "Entered data are on log scale",
        "Log-scale data",
    ),
    "units": ("Units", "Unit of effect measure"),
    "e1": ("Events 1",),
    "m1": ("Mean 1",),
    "sd1": ("SD 1",),
    "n1": ("Total 1",),
    "e2": ("Events 2",),
    "m2": ("Mean 2",),
    "sd2": ("SD 2",),
    "n2": ("Total 2",),
    "oe": ("O-E", "O E"),
    "var": ("Var", "Variance", "V"),
    "estimate": ("Effect Estimate", "Estimate"),
    "se": ("SE",),
    "ci_lower": ("CI Start", "CI Lower"),
    "ci_upper": ("CI End", "CI Upper"),
    "weight": ("Weight",),
    "chi2": ("Q", "Chi2", "Chi²"),
    "p_chi2": ("P(Q)", "P(Chi2)"),
    "i2": ("I²(Q)", "I2(Q)", "I²", "I2"),
    "tau2": ("Tau²", "Tau2"),
    "z": ("Z",),
    "p": ("P(Z)",),
    "q_int": ("Qint",),
    "p_int": ("P(Qint)",),
    "i2_int": ("I²(Qint)", "I2(Qint)"),
    "df": ("df",),
    "label1": ("Group Label 1",),
    "label2": ("Group Label 2",),
    "left": ("Left Graph Label",),
    "right": ("Right Graph Label",),
    "year": ("Year of study", "Year"),
    "order": ("User defined order", "Order"),
}

_DATA_TYPES: tuple[tuple[str, DataType | None], ...] = (
    ("dic", "dichotomous"),
    ("con", "continuous"),
    ("iv", "generic"),
    ("giv", "generic"),
    ("gen", "generic"),
    ("ipd", "o_e"),
    ("o e", "o_e"),
    ("oe", "o_e"),
    ("exp o e", "o_e"),
    ("oth", None),
)


def is_revman_csv_header(header: list[str]) -> bool:
    keys = {normalise_header(name) for name in header}
    return all(key in keys for key in SIGNATURE)


@dataclass(frozen=True, slots=True)
class CsvLimits:
    """Bounds of a RevMan 5 CSV export (tests may pass smaller ones). An export's lines
    are a few hundred characters, and a large review has some ten thousand rows."""

    #: the longest line, in characters
    max_line_chars: int = 1024 * 1024
    #: the most fields in one record (the header included)
    max_columns: int = 500
    #: the most records, the header included
    max_rows: int = 500_000
    #: bytes decoded at a time
    chunk_bytes: int = 1024 * 1024


DEFAULT_CSV_LIMITS = CsvLimits()


def read_revman_csv(data: bytes, source: str, limits: CsvLimits = DEFAULT_CSV_LIMITS) -> Review:
    """Read a RevMan 5 CSV export's bytes; ``source`` is the file name used in messages."""
    try:
        return _Export(StreamTable(data, source, limits, encoding=_encoding(data))).read()
    except _NotUtf8Error:  # as RevMan 5 on Windows writes it: read it again as cp1252
        return _Export(StreamTable(data, source, limits, encoding="cp1252")).read()


class _NotUtf8Error(Exception):
    """The bytes are not UTF-8 (read again as cp1252)."""


def _encoding(data: bytes) -> str:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return "utf-8-sig"


_LINE_END = re.compile(r"\r\n|\r|\n")


class StreamTable(HeaderTable):
    """The records of a CSV export read as a stream, with its header's columns found by
    normalised name with aliases (as :class:`~trialpool.imports.safety.CsvTable`)."""

    def __init__(self, data: bytes, source: str, limits: CsvLimits, *, encoding: str) -> None:
        self.source = source  # named by the errors of the records read below
        self.limits = limits
        self._data = data
        self._encoding = encoding
        self._row = 0  # records read so far (the header is record 1)
        self._line = 0  # lines read so far
        self._records = self._read_records()
        first = next(self._records, None)
        if first is None:
            raise fail(source, None, "empty CSV file (no header row)")
        self._set_header(source, first)

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """(row number with the header as row 1, cells padded to the header width); blank
        records are skipped."""
        # the number is read after its record, so it is that record's
        return self._padded((self._row, record) for record in self._records)

    def _where(self) -> str:
        return f"row {self._row + 1} (line {self._line})"

    def _read_records(self) -> Iterator[list[str]]:
        reader = csv.reader(self._lines(), strict=True)
        limits = self.limits
        while True:
            try:
                record = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise fail(self.source, self._where(), f"malformed CSV: {exc}") from None
            self._row += 1
            if self._row > limits.max_rows:
                raise fail(self.source, f"row {self._row}", f"more than {limits.max_rows} rows")
            if len(record) > limits.max_columns:
                raise fail(
                    self.source,
                    f"row {self._row}",
                    f"{len(record)} fields, more than {limits.max_columns}",
                )
            if any("\x00" in value for value in record):
                raise fail(self.source, f"row {self._row}", "holds a NUL byte (not a text file)")
            yield record

    def _lines(self) -> Iterator[str]:
        """The decoded text line by line (line ends kept, as ``csv`` wants them); a line
        longer than the limit is refused as soon as that many characters are read."""
        limit = self.limits.max_line_chars
        step = self.limits.chunk_bytes
        decoder = codecs.getincrementaldecoder(self._encoding)(errors="strict")
        if self._encoding == "cp1252":
            decoder = codecs.getincrementaldecoder("cp1252")(errors="replace")
        view = memoryview(self._data)
        rest = ""
        for start in range(0, len(view) + 1, step):
            final = start + step >= len(view)
            try:
                text = decoder.decode(view[start : start + step], final=final)
            except UnicodeDecodeError as exc:
                if self._encoding == "utf-16":
                    raise fail(
                        self.source, None, f"invalid UTF-16 at byte {start + exc.start}"
                    ) from None
                raise _NotUtf8Error from None
            buffer = rest + text
            begin = 0
            for match in _LINE_END.finditer(buffer):
                if match.group() == "\r" and match.end() == len(buffer) and not final:
                    break  # its "\n" may be in the next chunk
                self._line += 1
                if match.end() - begin > limit:
                    raise fail(self.source, self._where(), f"line longer than {limit} characters")
                yield buffer[begin : match.end()]
                begin = match.end()
            rest = buffer[begin:]
            if len(rest) > limit:
                self._line += 1
                raise fail(self.source, self._where(), f"line longer than {limit} characters")
            if final:
                break
        if rest:
            self._line += 1
            yield rest


@dataclass
class _Analysis:
    header_row: int
    comparison: int
    outcome: int
    comparison_name: str
    name: str
    data_type: DataType
    method: Method
    measure: str
    measure_label: str
    random: bool
    level: float
    study_level: float
    log_data: bool
    swap_events: bool
    overall_shown: bool
    subgroup_test_shown: bool
    totals: Literal["overall", "subgroups", "none"]
    labels: tuple[str | None, str | None, str | None, str | None]
    units: str | None
    result: RevManResult
    subgroup_test: SubgroupTest | None
    subgroups: list[ReviewSubgroup] = field(default_factory=list)
    rows: list[ReviewRow] = field(default_factory=list)
    #: why trialpool cannot re-run it (ReviewAnalysis.unsupported)
    unsupported: str | None = None


class _Export:
    def __init__(self, table: StreamTable) -> None:
        self.table = table
        self.source = table.source
        if not is_revman_csv_header(table.header):
            raise fail(
                self.source,
                "header",
                "not a RevMan 5 analysis export (needs Comparison Number, Outcome Number "
                "and Subgroup Number columns)",
            )
        self.col = {key: table.column(*aliases) for key, aliases in _COLUMNS.items()}
        if self.col["name"] is None:
            raise fail(self.source, "header", "missing column 'Name'")
        self.notes: list[str] = []
        self.log = ImportLog(self.source)
        #: analyses left out on purpose (other data, an unknown data type)
        self.skipped: set[tuple[int, int]] = set()

    def error(self, row: int, problem: str) -> ImportSourceError:
        return fail(self.source, f"row {row}", problem)

    def value(self, record: list[str], key: str) -> str | None:
        return cell(record, self.col[key])

    def integer(self, record: list[str], key: str, row: int, label: str) -> int:
        raw = self.value(record, key)
        number = parse_number(raw, self.source, f"row {row}", label)
        if number is None or number != int(number) or number < 0:
            raise self.error(row, f"{label}={raw!r} is not a whole number")
        return int(number)

    def num(self, record: list[str], key: str, row: int) -> float | None:
        """A number RevMan stored (results, Q and P of subgroup tests): one that does not
        parse is logged and read as missing."""
        return self.log.stored_number(self.value(record, key), f"row {row}", _COLUMNS[key][0])

    def result(self, record: list[str], row: int, *, pooled: bool) -> RevManResult:
        def count(key: str) -> int | None:
            if not pooled:
                return None
            value = self.num(record, key, row)
            return int(value) if value is not None and value.is_integer() else None

        return RevManResult(
            estimate=self.num(record, "estimate", row),
            ci_lower=self.num(record, "ci_lower", row),
            ci_upper=self.num(record, "ci_upper", row),
            se=self.num(record, "se", row),
            weight=self.num(record, "weight", row),
            z=self.num(record, "z", row) if pooled else None,
            p=self.num(record, "p", row) if pooled else None,
            tau2=self.num(record, "tau2", row) if pooled else None,
            chi2=self.num(record, "chi2", row) if pooled else None,
            df=self.num(record, "df", row) if pooled else None,
            p_chi2=self.num(record, "p_chi2", row) if pooled else None,
            i2=self.num(record, "i2", row) if pooled else None,
            events1=count("e1"),
            total1=count("n1"),
            events2=count("e2"),
            total2=count("n2"),
            estimable=None if pooled else self.num(record, "estimate", row) is not None,
        )

    def read(self) -> Review:
        comparisons: dict[int, str] = {}
        analyses: dict[tuple[int, int], _Analysis] = {}
        studies: dict[str, ReviewStudy] = {}
        for row, record in self.table.rows():
            c = self.integer(record, "comparison", row, "Comparison Number")
            o = self.integer(record, "outcome", row, "Outcome Number")
            s = self.integer(record, "subgroup", row, "Subgroup Number")
            name = html_to_text(self.value(record, "name") or "").replace("\n", " ")
            data_type_raw = self.value(record, "data_type")
            if o == 0:
                comparisons[c] = name
                continue
            if data_type_raw and s == 0:
                if (c, o) in analyses:
                    raise self.error(row, f"second header row for Analysis {c}.{o}")
                analysis = self.analysis(record, row, c, o, comparisons.get(c, ""), name)
                if analysis is not None:
                    analyses[(c, o)] = analysis
                continue
            analysis = analyses.get((c, o))
            if analysis is None:
                if (c, o) in self.skipped:
                    continue
                raise self.error(row, f"data for Analysis {c}.{o} before its header row")
            subgroup = f"{c}.{o}.{s}" if s else None
            if data_type_raw and s:
                analysis.subgroups.append(
                    ReviewSubgroup(
                        number=f"{c}.{o}.{s}",
                        name=name,
                        result=self.result(record, row, pooled=True),
                        locator=f"{self.source} row {row}",
                    )
                )
                continue
            if subgroup and not any(sg.number == subgroup for sg in analysis.subgroups):
                analysis.subgroups.append(
                    ReviewSubgroup(number=subgroup, name="", result=None, locator="")
                )
            study_id = " ".join((self.value(record, "name") or "").split())
            if not study_id:
                raise self.error(row, "study row without a study name")
            analysis.rows.append(self.study_row(record, row, analysis, study_id, subgroup))
            studies.setdefault(
                study_id,
                ReviewStudy(
                    study_id=study_id,
                    label=name or study_id,
                    year=parse_year(self.value(record, "year")),
                    status="included",
                    locator=f"{self.source} row {row}",
                ),
            )
        title = re.sub(r"\.csv$", "", self.source, flags=re.IGNORECASE)
        match = re.search(r"\b((?:CD|MR)\d{6})", self.source)
        return Review(
            source_file=self.source,
            format="revman5_csv",
            review_id=match.group(1) if match else None,
            title=title or None,
            citation=None,
            studies=tuple(studies.values()),
            analyses=tuple(self.finish(a) for a in analyses.values()),
            bias_domains=(),
            bias_items=(),
            notes=tuple(self.notes),
            log=tuple(self.log.entries),
        )

    def analysis(
        self, record: list[str], row: int, c: int, o: int, comparison_name: str, name: str
    ) -> _Analysis | None:
        where = f"row {row}"
        raw_type = self.value(record, "data_type") or ""
        key = normalise_header(raw_type)
        data_type: DataType | None = None
        known = False
        for prefix, mapped in _DATA_TYPES:
            if key.startswith(prefix):
                known, data_type = True, mapped
                break
        if data_type is None:
            what = "other data (text only)" if known else "an unknown data type"
            self.log.add(
                where, "Data Type", raw_type,
                f"Analysis {c}.{o} ({name}) holds {what} that cannot be pooled; it and its "
                "rows are not imported",
            )  # fmt: skip
            self.skipped.add((c, o))
            return None
        unsupported: str | None = None

        def cannot(field: str, raw: str | None, why: str) -> str:
            self.log.add(
                where, field, raw or "",
                f"{why}: the analysis's data and RevMan's numbers are imported, the "
                "analysis is left out of the plan",
            )  # fmt: skip
            return why

        raw_method = self.value(record, "method") or ""
        method = normalise_method(raw_method) if raw_method else None
        if method is None:
            default: Method = "PETO" if data_type == "o_e" else "IV"
            if raw_method or data_type == "dichotomous":
                default = "MH" if data_type == "dichotomous" else default
                unsupported = cannot(
                    "Statistical Method", raw_method,
                    f"its statistical method {raw_method!r} is not MH, IV or Peto",
                )  # fmt: skip
            method = default
        measure_label = self.value(record, "measure") or ""
        if not measure_label:
            unsupported = unsupported or cannot("Effect Measure", "", "it names no effect measure")
        model = normalise_header(self.value(record, "model") or "fixed")
        if not model.startswith(("fixed", "random", "common")):
            unsupported = unsupported or cannot(
                "Analysis Model", self.value(record, "model"),
                f"its model {self.value(record, 'model')!r} is neither random nor fixed effect",
            )  # fmt: skip

        def flag(key: str, default: bool) -> bool:
            return self.log.flag(self.value(record, key), where, _COLUMNS[key][0], default)

        def level(key: str) -> float:
            value = self.log.level(self.value(record, key), where, _COLUMNS[key][0])
            return 0.95 if value is None else value

        totals = normalise_header(self.value(record, "totals") or "yes")
        q_int = self.num(record, "q_int", row)
        p_int = self.num(record, "p_int", row)
        log_data = flag("log_data", False)
        if data_type == "generic" and log_data:
            self.notes.append(
                f"Analysis {c}.{o}: generic data on the log scale; the export prints the "
                "estimate on the ratio scale, so each row's estimate is its natural log"
            )
        return _Analysis(
            header_row=row,
            comparison=c,
            outcome=o,
            comparison_name=comparison_name,
            name=name,
            data_type=data_type,
            method=method,
            measure=normalise_measure(measure_label, method),
            measure_label=measure_label,
            random=model.startswith("random"),
            level=level("total_ci"),
            study_level=level("study_ci"),
            log_data=log_data,
            swap_events=flag("swap", False),
            overall_shown=totals in {"yes", "true", "1"},
            totals="overall"
            if totals in {"yes", "true", "1"}
            else ("subgroups" if totals in {"sub", "subtotals", "subtotals only"} else "none"),
            subgroup_test_shown=flag("subgroup_test", True),
            labels=(
                optional_text(self.value(record, "label1")),
                optional_text(self.value(record, "label2")),
                optional_text(self.value(record, "left")),
                optional_text(self.value(record, "right")),
            ),
            units=optional_text(self.value(record, "units")),
            result=self.result(record, row, pooled=True),
            subgroup_test=SubgroupTest(
                chi2=q_int, df=None, p=p_int, i2=self.num(record, "i2_int", row)
            )
            if q_int is not None or p_int is not None
            else None,
            unsupported=unsupported,
        )

    def study_row(
        self,
        record: list[str],
        row: int,
        analysis: _Analysis,
        study_id: str,
        subgroup: str | None,
    ) -> ReviewRow:
        where = f"row {row}"

        def count(key: str) -> int | None:
            return parse_count(
                self.value(record, key), self.source, where, _COLUMNS[key][0], grouped=True
            )

        def number(key: str, *, non_negative: bool = False) -> float | None:
            value = parse_input(
                self.value(record, key), self.source, where, _COLUMNS[key][0], grouped=True
            )
            if non_negative and value is not None and value < 0:
                raise self.error(row, f"{_COLUMNS[key][0]}={self.value(record, key)!r} is negative")
            return value

        values: dict[str, float | int | None] = {"n1": count("n1"), "n2": count("n2")}
        if analysis.data_type == "dichotomous":
            values |= {"e1": count("e1"), "e2": count("e2")}
            for arm in ("1", "2"):
                events, total = values[f"e{arm}"], values[f"n{arm}"]
                if events is not None and total is not None and events > total:
                    raise self.error(row, f"Events {arm}={events} > Total {arm}={total}")
        elif analysis.data_type == "continuous":
            values |= {
                "m1": number("m1"),
                "sd1": number("sd1", non_negative=True),
                "m2": number("m2"),
                "sd2": number("sd2", non_negative=True),
            }
        elif analysis.data_type == "generic":
            estimate = number("estimate")
            if analysis.log_data and estimate is not None:
                if estimate <= 0:
                    raise self.error(row, f"Effect Estimate={estimate} is not a positive ratio")
                estimate = math.log(estimate)
            values |= {"estimate": estimate, "se": number("se", non_negative=True)}
        else:
            values |= {"oe": number("oe"), "variance": number("var", non_negative=True)}
        order = self.num(record, "order", row)
        return ReviewRow(
            study_id=study_id,
            subgroup=subgroup,
            applicability=None,
            stored=self.result(record, row, pooled=False),
            order=int(order) if order is not None and order.is_integer() else None,
            locator=f"{self.source} row {row}",
            **values,  # type: ignore[arg-type]
        )

    def finish(self, a: _Analysis) -> ReviewAnalysis:
        label1, label2, left, right = a.labels
        return ReviewAnalysis(
            number=f"{a.comparison}.{a.outcome}",
            comparison_number=a.comparison,
            comparison_name=a.comparison_name,
            outcome_number=a.outcome,
            name=a.name,
            data_type=a.data_type,
            method=a.method,
            measure=a.measure,
            measure_label=a.measure_label,
            random=a.random,
            tau2_method="DL",
            ci_method="Wald",
            level=a.level,
            study_level=a.study_level,
            prediction=False,
            log_data=a.log_data,
            swap_events=a.swap_events,
            experimental_label=label1,
            control_label=label2,
            favours_left=left,
            favours_right=right,
            units=a.units,
            overall_shown=a.overall_shown,
            subgroup_test_shown=bool(a.subgroups) and a.subgroup_test_shown,
            totals=a.totals,
            subgroups=tuple(a.subgroups),
            rows=tuple(a.rows),
            result=a.result,
            subgroup_test=a.subgroup_test if a.subgroups else None,
            locator=f"{self.source} row {a.header_row}",
            unsupported=a.unsupported,
        )
