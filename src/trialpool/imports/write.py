"""``trialpool import SOURCE --out DIR``: a Cochrane review becomes a conforming package.

Reads the source (``read_review``: format detected from the content), maps it onto the core
resources (``imports.tables``), writes the package into a temporary folder beside ``--out``
(core schemas, one CSV per core resource, ``datapackage.json``, ``analysis/plan.json`` with
one analysis per analysis of the review, a README naming the source, and
``import-log.csv``: one line per value that is legal in the source but outside
trialpool's vocabulary or ranges, and what was done with it), validates what it wrote
(Table Schema and every cross-table rule) and only then moves it into place. Rows are
fitted to the schemas first (``imports.fit``); should a row still break a rule, it is
left out and logged rather than costing the whole review (``MAX_REPAIRS`` rounds). An
``--out`` is written only when it is new, empty, or a package trialpool made (replaced
with ``--force``; ``package.atomic.check_replaceable``); on any failure nothing is left
behind.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
from pathlib import Path
from typing import Any

from rich.console import Console

from trialpool.analysis.plan import parse_plan
from trialpool.errors import TrialpoolError
from trialpool.imports.detect import read_review
from trialpool.imports.fit import fit_rows
from trialpool.imports.log import LOG_FILE, log_csv_text
from trialpool.imports.model import LogEntry, Review
from trialpool.imports.tables import Tables, review_tables, slug
from trialpool.package.atomic import PACKAGE_KIND, atomic_folder, check_replaceable
from trialpool.package.core import copy_schema, core_resources, core_version
from trialpool.package.descriptor import dumps, refresh
from trialpool.text import md_text
from trialpool.validate import ValidationReport, validate_package

#: rounds of leaving out rows that still break a rule after fitting (see run_import)
MAX_REPAIRS = 5

PLAN_PATH = "analysis/plan.json"
#: notes listed in the package README (the import log has every case)
MAX_README_NOTES = 200

_FORMAT_WORDS = {
    "rm5": "RevMan 5 file (.rm5)",
    "revman5_csv": "RevMan 5 CSV analysis export",
    "cochrane_data_package": "Cochrane data package (RevMan Web)",
}


class ImportOutputError(TrialpoolError):
    """The import cannot be written as asked (existing --out, invalid result)."""


def _csv_text(fields: list[str], rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n", extrasaction="raise")
    writer.writeheader()
    for row in rows:
        writer.writerow({f: row.get(f, "") for f in fields})
    return out.getvalue()


def _source_row(review: Review, source_id: str) -> dict[str, str]:
    title = review.title or f"Cochrane review {review.review_id or review.source_file}"
    parts = [title]
    if review.citation:
        parts.append(review.citation)
    citation = ". ".join(p.rstrip(". ") for p in parts) + "."
    return {
        "source_id": source_id,
        "kind": "meta_analysis",
        "citation": citation,
        "doi": "",
        "pmid": "",
        "pmcid": "",
        "registration": "",
        "url": "",
        "notes": f"Imported by trialpool from {review.source_file} "
        f"({_FORMAT_WORDS.get(review.format, review.format)}).",
    }


def _descriptor(review: Review, name: str, source_id: str) -> dict[str, Any]:
    title = review.title or f"Cochrane review {review.review_id or review.source_file}"
    return {
        "profile": "tabular-data-package",
        "name": name,
        "version": "0.1.0",
        "title": title,
        "description": (
            f"The studies, analyses, per-study data, risk-of-bias judgements and RevMan's own "
            f"results of {title}, imported by trialpool from {review.source_file} "
            f"({_FORMAT_WORDS.get(review.format, review.format)}). Every row cites the review "
            f"(source {source_id}) and where in it the value is."
        ),
        "licenses": [
            {
                "name": "LicenseRef-source-terms",
                "title": "The review's publisher's terms apply to its data (see README.md)",
                "path": "README.md",
            }
        ],
        "contributors": [{"title": f"Authors of {title}", "role": "author"}],
        "created": _dt.datetime.now(_dt.UTC)
        .replace(microsecond=0)
        .isoformat()
        .replace("+00:00", "Z"),
        "trialpool_core": core_version(),
        "resources": [
            {
                "name": spec.name,
                "title": spec.title,
                "path": f"data/{spec.name}.csv",
                "schema": f"schemas/{spec.schema_path}",
                "profile": "tabular-data-resource",
                "format": "csv",
                "mediatype": "text/csv",
                "encoding": "utf-8",
            }
            for spec in core_resources()
        ],
    }


def _readme(review: Review, tables: Tables, source_id: str) -> str:
    """The package's README (Markdown; every text from the review escaped)."""
    title = review.title or f"Cochrane review {review.review_id or review.source_file}"
    counts = {name: len(rows) for name, rows in sorted(tables.rows.items())}
    lines = [
        f"# {md_text(title)}",
        "",
        f"Imported by `trialpool import` from {md_text(review.source_file)} "
        f"({_FORMAT_WORDS.get(review.format, review.format)}).",
        "",
        f"Cite the review itself (source `{source_id}` in `data/sources.csv`)"
        + (f": {md_text(review.citation)}." if review.citation else "."),
        "The review's data remain under its publisher's terms; this package only reorganises "
        "them so that they can be validated, pooled and compared with RevMan's own numbers.",
        "",
        "## What is here",
        "",
        *(f"- `{name}`: {n} rows" for name, n in counts.items()),
        f"- `{PLAN_PATH}`: {len(tables.analyses)} analyses, with the review's own settings",
        "",
        "Reproduce: `trialpool validate datapackage.json`, then "
        "`trialpool report datapackage.json --out report` (the reproduction audit puts every "
        "RevMan number next to trialpool's).",
    ]
    if tables.log:
        lines += [
            "",
            "## The import log",
            "",
            f"`{LOG_FILE}` has {len(tables.log)} line(s): each value that is legal in the "
            "review's format but outside trialpool's vocabulary or ranges (file, row, field, "
            "value) and what was done with it (mapped, clamped, kept verbatim in notes or "
            "claims, or left out of the plan).",
        ]
    if tables.notes:
        lines += ["", "## Not imported, or imported with a caveat", ""]
        lines += [f"- {md_text(note)}" for note in tables.notes[:MAX_README_NOTES]]
        if len(tables.notes) > MAX_README_NOTES:
            lines.append(f"- … and {len(tables.notes) - MAX_README_NOTES} more ({LOG_FILE})")
    return "\n".join(lines) + "\n"


def write_review_package(review: Review, folder: Path) -> Tables:
    """Write the package of ``review`` into the empty ``folder``; return its tables."""
    source_id = slug(review.review_id or Path(review.source_file).stem, prefix="review")
    tables = review_tables(review, source_id)
    tables.rows["sources"] = [_source_row(review, source_id)]
    tables.log.extend(fit_rows(tables.rows, review.source_file))
    _write_files(review, tables, folder, source_id)
    return tables


def _write_files(review: Review, tables: Tables, folder: Path, source_id: str) -> None:
    """Write (or rewrite) every file of the package from ``tables``."""
    for spec in core_resources():
        schema_target = folder / "schemas" / spec.schema_path
        schema_target.parent.mkdir(parents=True, exist_ok=True)
        if not schema_target.exists():
            copy_schema(spec.schema_path, schema_target)
        fields = [f["name"] for f in spec.schema()["fields"]]
        data = folder / "data" / f"{spec.name}.csv"
        data.parent.mkdir(parents=True, exist_ok=True)
        data.write_text(_csv_text(fields, tables.rows.get(spec.name, [])), encoding="utf-8")
    name = slug(review.review_id or Path(review.source_file).stem, prefix="review").replace(
        "_", "-"
    )
    descriptor = refresh(_descriptor(review, name, source_id), folder)
    (folder / "datapackage.json").write_text(dumps(descriptor), encoding="utf-8")
    plan = {
        "plan_version": 1,
        "title": f"The analyses of {descriptor['title']}",
        "description": "One analysis per analysis of the review, with the review's own "
        "statistical method, effect measure, model, heterogeneity estimator, CI method and "
        "subgroups (RevMan's conventions).",
        "caveats": tables.notes[:50]
        + (
            [f"... and {len(tables.notes) - 50} more (README.md)"] if len(tables.notes) > 50 else []
        ),
        "analyses": tables.analyses,
    }
    parse_plan(plan, origin=PLAN_PATH)  # the plan conforms before it is written
    (folder / "analysis").mkdir(exist_ok=True)
    (folder / PLAN_PATH).write_text(
        json.dumps(plan, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (folder / "README.md").write_text(_readme(review, tables, source_id), encoding="utf-8")
    (folder / LOG_FILE).write_text(log_csv_text(tables.log), encoding="utf-8")


def _leave_out(review: Review, tables: Tables, report: ValidationReport) -> bool:
    """Leave out every row a validation issue names (logged); False when an issue names
    no row (nothing to leave out: the package cannot be repaired this way)."""
    bad: dict[str, dict[int, list[str]]] = {}
    for issue in report.issues:
        if issue.resource is None or issue.row is None or issue.resource not in tables.rows:
            return False
        bad.setdefault(issue.resource, {}).setdefault(issue.row - 2, []).append(issue.line())
    for resource, rows in bad.items():
        table = tables.rows[resource]
        for index in sorted(rows, reverse=True):
            if not 0 <= index < len(table):
                return False
            row = table.pop(index)
            where = str(row.get("locator") or f"data/{resource}.csv row {index + 2}")
            tables.log.append(
                LogEntry.of(
                    review.source_file,
                    where,
                    "",
                    "; ".join(rows[index]),
                    f"the row breaks a rule of the core schema; left out of {resource}",
                )
            )
    plan_ids = {str(row["comparison_id"]) for row in tables.rows.get("comparisons", [])}
    for analysis in tables.analyses:
        analysis["comparison_ids"] = [c for c in analysis["comparison_ids"] if c in plan_ids]
        for subgroup in analysis.get("subgroups", []):
            subgroup["comparison_ids"] = [c for c in subgroup["comparison_ids"] if c in plan_ids]
        analysis["subgroups"] = [s for s in analysis.get("subgroups", []) if s["comparison_ids"]]
    tables.analyses[:] = [a for a in tables.analyses if a["comparison_ids"]]
    return True


def write_valid_package(
    review: Review, folder: Path, *, engine: str | None = None
) -> tuple[Tables, ValidationReport]:
    """Write the package of ``review`` into the empty ``folder`` and validate it (with
    ``engine``, as ``validate_package``); rows that still break a rule are left out (and
    logged) for at most ``MAX_REPAIRS`` rounds. Returns the tables and the last validation
    report (invalid only if repair failed)."""
    tables = write_review_package(review, folder)
    report = validate_package(folder / "datapackage.json", engine=engine)
    source_id = str(tables.rows["sources"][0]["source_id"])
    for _ in range(MAX_REPAIRS):
        if report.valid or not _leave_out(review, tables, report):
            break
        _write_files(review, tables, folder, source_id)
        report = validate_package(folder / "datapackage.json", engine=engine)
    return tables, report


def run_import(source: Path, *, out: Path, force: bool, console: Console) -> int:
    """``trialpool import``: read, map, write atomically, validate; 0 on success.

    Input errors (unreadable, malformed or impossible source) raise ImportSourceError
    (one line, exit 1); an ``--out`` that may not be replaced (a folder trialpool did not
    make, or a package it made without ``--force``: ``package.atomic.check_replaceable``)
    and a package that does not validate raise ImportOutputError (one line, exit 1).
    Nothing is written on failure.
    """
    target = out.absolute()
    check_replaceable(
        target, kind=PACKAGE_KIND, force=force, label=f"--out {out}", error=ImportOutputError
    )
    if target.exists() and source.resolve().is_relative_to(target.resolve()):
        raise ImportOutputError(f"--out {out} holds the source; choose another folder")
    review = read_review(source)
    with atomic_folder(target, PACKAGE_KIND, {"command": "import"}) as tmp:
        tables, report = write_valid_package(review, tmp)
        if not report.valid:
            first = report.issues[0].line()
            raise ImportOutputError(
                f"{source.name}: the imported package does not validate "
                f"({len(report.issues)} problem(s)); first: {first}"
            )
    counts = ", ".join(
        f"{n} {name}" for name, n in sorted((k, len(v)) for k, v in tables.rows.items()) if n
    )
    console.out(
        f"Imported {review.source_file} ({_FORMAT_WORDS.get(review.format, review.format)}): "
        f"{len(tables.analyses)} analyses; {counts}",
        highlight=False,
    )
    console.out(
        f"Import log: {len(tables.log)} line(s) on values kept in another form, or left out "
        f"({out / LOG_FILE})",
        highlight=False,
    )
    console.out(f"Package written to {out / 'datapackage.json'} (valid)", highlight=False)
    return 0
