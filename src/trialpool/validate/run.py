"""``trialpool validate``: one pass — load safely, Table Schema, cross-table rules, report.

1. ``package.load_package`` vets the descriptor (paths, profiles); a package that cannot be
   loaded is one issue. Data files over the size limit are one issue each; nothing is read.
2. The descriptor rules (``validate.descriptor``) and conformance to the core schema and
   the declared extensions (``validate.conformance``).
3. Table Schema by one engine (``validate.tableschema``), which also says which resources
   could be parsed.
4. The cross-table rules (``validate.rules``, and the GRADE rules of ``certainty`` in
   ``validate.certainty``) on the typed rows of those resources (``validate.frames``),
   only when the descriptor itself is valid.
5. The summary (``validate.summary``) and the printed report.

Never raises on bad data; the input is only ever read. Row numbers follow frictionless:
the header is row 1, the first data row is row 2. Files are named relative to the package
folder.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.table import Table

from trialpool.errors import PackageError
from trialpool.package.loader import load_package
from trialpool.validate.certainty import certainty_rules
from trialpool.validate.conformance import conformance_issues
from trialpool.validate.descriptor import descriptor_rule_issues
from trialpool.validate.fast import start_prefetch
from trialpool.validate.frames import read_text_frame, typed_frame
from trialpool.validate.issues import (
    FRICTIONLESS,
    TRIALPOOL,
    Collector,
    ValidationReport,
    issue_counts,
    package_issue,
)
from trialpool.validate.rules import run_rules
from trialpool.validate.summary import summarise, summary_lines
from trialpool.validate.tableschema import (
    check_tables,
    choose_engine,
    max_file_bytes,
    size_issues,
)


@contextmanager
def _without_cyclic_gc() -> Iterator[None]:
    """Pause Python's cyclic garbage collector (restored after): a pass allocates many
    objects that hold no cycles (distinct values, arrays), and reference counting frees
    them; the collector would only walk them again and again."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def validate_package(descriptor: Path | str, *, engine: str | None = None) -> ValidationReport:
    """Validate a package: Table Schema first, then the cross-table rules.

    ``engine`` picks the Table Schema engine (see ``tableschema.choose_engine``):
    ``"frictionless"`` (the reference), ``"fast"`` or ``"auto"``/None.

    Never raises on bad input: a package that cannot be loaded (bad JSON, unsafe path)
    gives one ``package`` issue; a data file over ``max_file_bytes()`` gives a
    ``file-too-large`` issue and nothing is read; frictionless failures become issues.
    The input is only ever read.
    """
    with _without_cyclic_gc():
        return _validate(descriptor, engine)


def _validate(descriptor: Path | str, engine: str | None) -> ValidationReport:
    try:
        package = load_package(descriptor)
    except PackageError as exc:
        return ValidationReport(str(descriptor), [package_issue(descriptor, str(exc), "package")])
    too_large, data_bytes = size_issues(package, max_file_bytes())
    if too_large:
        return ValidationReport(str(descriptor), too_large, {"issues": issue_counts(too_large)})
    # the fast engine's large files start being read now, beside frictionless' work
    fast = choose_engine(engine, data_bytes) == "fast"
    prefetch = start_prefetch(package) if fast else None
    issues = descriptor_rule_issues(package) + conformance_issues(package)
    tables = check_tables(package, engine=engine, data_bytes=data_bytes, prefetch=prefetch)
    issues.extend(tables.issues)
    frames = dict(tables.frames) if tables.parsable is not None else {}
    collector = Collector(package)
    if tables.parsable is not None:
        for name in sorted(tables.parsable - set(frames)):
            fl_resource = tables.fl_package.get_resource(name) if tables.fl_package else None
            text = read_text_frame(package.resources[name], fl_resource)
            if text is not None:
                frames[name] = typed_frame(package.resources[name], text)
        run_rules(package, frames, collector)
        certainty_rules(package, frames, collector)
    issues.extend(collector.issues)
    summary = summarise(package, frames)
    summary["engine"] = tables.engine
    if tables.fallback:
        summary["frictionless_fallback"] = tables.fallback
    if tables.readers:
        summary["readers"] = tables.readers
    summary["issues"] = issue_counts(issues)
    if collector.truncated:
        summary["issues"]["not_listed"] = collector.truncated
    return ValidationReport(str(descriptor), issues, summary)


def print_report(report: ValidationReport, console: Console, *, as_json: bool) -> None:
    """Print the report: JSON (one object), or a table for people and a summary line.

    On a terminal the issues are a rich table (resource, row, field, rule, message);
    otherwise (pipes, CI logs) one line per issue (``ValidationIssue.line``), so each
    problem stays on one greppable line.
    """
    if as_json:
        console.out(json.dumps(report.to_json(), ensure_ascii=False), highlight=False)
        return
    if report.issues:
        if console.is_terminal:
            table = Table(title=f"Problems in {report.descriptor}", show_lines=False)
            for col in ("file", "row", "field", "rule", "message"):
                table.add_column(col, overflow="fold")
            for issue in report.issues:
                table.add_row(
                    issue.file or issue.resource or "",
                    "" if issue.row is None else str(issue.row),
                    issue.field or "",
                    issue.rule,
                    issue.message,
                )
            console.print(table)
        else:
            for issue in report.issues:
                console.out(issue.line(), highlight=False)
        counts = report.summary.get("issues", issue_counts(report.issues))
        hidden = sum((counts.get("not_listed") or {}).values())
        more = f"; {hidden} more not listed" if hidden else ""
        console.out(
            f"INVALID: {report.descriptor}: {counts['total']} problem(s) "
            f"({counts[FRICTIONLESS]} Table Schema, {counts[TRIALPOOL]} trialpool rules){more}",
            highlight=False,
        )
        return
    lines = summary_lines(report.summary)
    if console.is_terminal and lines:
        table = Table(title=f"{report.summary.get('package', '')} {report.summary.get('version')}")
        table.add_column("holds")
        table.add_column("count")
        for label, value in lines:
            table.add_row(label, value)
        console.print(table)
    else:
        for label, value in lines:
            console.out(f"{label}: {value}", highlight=False)
    console.out(f"VALID: {report.descriptor}", highlight=False)


def run_validate(descriptor: Path | str, *, as_json: bool, console: Console) -> int:
    """``trialpool validate``: print the report; return 0 when valid, 1 when invalid."""
    report = validate_package(descriptor)
    print_report(report, console, as_json=as_json)
    return 0 if report.valid else 1
