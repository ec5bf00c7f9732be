"""`trialpool report`: validate, run every analysis of a plan, write one report folder.

The folder holds::

    report.html          self-contained: figures embedded as base64 PNG, inline CSS,
                         no script, no external reference (a Content-Security-Policy
                         forbids any), opens without network
    report.md            the same content; figures referenced as figures/*.png
    figures/             every figure as PNG and SVG
    exports/             escalc-layout CSV per pooled block, robvis CSV per RoB tool,
                         summary_of_findings.csv (each result with its certainty),
                         reproduce.R (refits every pooled number with metafor; not
                         written for a plan of RevMan analyses only), revman_<id>.csv
                         per analysis of an imported review (RevMan's study rows)
    tables/              study characteristics, discrepancies, reproduction audit (CSV);
                         revman_audit.csv (every number RevMan stored, next to ours)
    .trialpool-report    marker: this folder was written by trialpool report

The folder is written atomically and only where it is safe (:mod:`.output`).
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

from trialpool import __version__
from trialpool.analysis.plan import AnalysisPlan, auto_plan, load_plan
from trialpool.analysis.runs import outcome_infos, study_info, table_or_none
from trialpool.errors import TrialpoolError, ValidationFailedError
from trialpool.package.atomic import REPORT_KIND, atomic_folder, write_marker
from trialpool.package.loader import Package, load_package
from trialpool.report.context import Context
from trialpool.report.document import Node, render_markdown
from trialpool.report.exports import REVMAN_NOT_REFITTED, render_reproduce_r
from trialpool.report.output import MARKER_NAME, ReportError, check_out_path
from trialpool.report.render import render_html
from trialpool.report.sections import (
    audit,
    caveats,
    characteristics,
    discrepancies,
    exports,
    methods,
    package,
    prisma,
    rob,
    sources,
    status,
    summary_of_findings,
)
from trialpool.report.sections.analyses import intro, run_analysis
from trialpool.validate import print_report, validate_package

__all__ = ["HTML_NAME", "MARKER_NAME", "MD_NAME", "ReportError", "build_report", "run_report"]

HTML_NAME = "report.html"
MD_NAME = "report.md"


#: where a plan built from the data comes from (the report's "Analysis plan" line)
FROM_DATA = "built from the data (no plan given, no analysis/plan.json)"


def _available(pkg: Package) -> list[tuple[str, float | str | None, str, bool]]:
    """Each outcome's time points with data: weeks, or the code of rows without weeks."""
    available: list[tuple[str, float | str | None, str, bool]] = []
    for name, kind in (
        ("continuous_outcomes", "continuous"),
        ("dichotomous_outcomes", "dichotomous"),
    ):
        frame = table_or_none(pkg, name)
        if frame is None or frame.empty:
            continue
        frame = frame.assign(
            _when=[
                float(w) if pd.notna(w) else (str(c) if pd.notna(c) else "as_reported")
                for w, c in zip(frame["timepoint_weeks"], frame["timepoint"], strict=True)
            ]
        )
        for outcome in sorted({str(o) for o in frame["outcome"].dropna()}):
            rows = frame[(frame["outcome"] == outcome).fillna(False)]
            whens = rows["_when"].tolist()
            weeks = sorted({w for w in whens if isinstance(w, float)})
            codes = sorted({w for w in whens if isinstance(w, str)})
            for when in [*weeks, *codes]:
                part = rows[[w == when for w in whens]]
                same_unit = "unit" not in part.columns or part["unit"].nunique(dropna=True) <= 1
                available.append((outcome, when, kind, bool(same_unit)))
    return available


def _favours(pkg: Package) -> tuple[str, str] | None:
    """The arms' names from the primary comparisons' one label ("BCG vaccine versus no
    vaccine" -> BCG vaccine, no vaccine); None when the labels differ or do not split."""
    frame = table_or_none(pkg, "comparisons")
    if frame is None or frame.empty:
        return None
    primary = frame[frame["primary"].fillna(False).astype(bool)]
    labels = {str(x).strip() for x in (primary if not primary.empty else frame)["label"].dropna()}
    if len(labels) != 1:
        return None
    parts = [x.strip() for x in next(iter(labels)).split(" versus ")]
    return (parts[0], parts[1]) if len(parts) == 2 and all(parts) else None


def resolve_plan(plan: AnalysisPlan | Path | str | None, pkg: Package) -> tuple[AnalysisPlan, str]:
    """The plan to run and where it came from: given, the package's, or built from the data
    (its outcomes' labels, units and directions from the package's ``outcomes``)."""
    if isinstance(plan, AnalysisPlan):
        return plan, "given in code"
    if plan is not None:
        path = Path(plan)
        loaded = load_plan(path)  # first: a missing or invalid plan is a PlanError
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        return loaded, f"{path.name} (sha256 {digest})"
    default = pkg.root / "analysis" / "plan.json"
    if default.is_file():
        digest = hashlib.sha256(default.read_bytes()).hexdigest()[:12]
        return load_plan(default), f"analysis/plan.json of the package (sha256 {digest})"
    title = f"{pkg.name}: every outcome and time point"
    built = auto_plan(
        _available(pkg), title=title, outcomes=outcome_infos(pkg), favours=_favours(pkg)
    )
    return built, FROM_DATA


def build_report(
    descriptor: Path | str,
    plan: AnalysisPlan | Path | str | None,
    out: Path | str,
    *,
    console: Console | None = None,
    validation: Any = None,
) -> Path:
    """Validate, run every analysis of the plan, and write the report folder ``out``.

    Raises ValidationFailedError (invalid package), PlanError (invalid plan) or
    ReportError (unsafe or occupied ``out``): one line each. Returns the folder path.
    """
    console = console or Console(quiet=True)
    if validation is None:
        validation = validate_package(descriptor)
    if not validation.valid:
        first = validation.issues[0].line() if validation.issues else ""
        raise ValidationFailedError(
            f"{descriptor}: package is invalid ({len(validation.issues)} problem(s); first: "
            f"{first}); run 'trialpool validate' for the list"
        )
    pkg = load_package(descriptor)
    the_plan, origin = resolve_plan(plan, pkg)
    target = check_out_path(Path(out), pkg.root)
    with atomic_folder(target, REPORT_KIND) as tmp:
        _write_report(pkg, the_plan, origin, tmp, console, validation)
    return target


def _write_report(
    pkg: Package, plan: AnalysisPlan, origin: str, tmp: Path, console: Console, validation: Any
) -> None:
    ctx = Context(
        pkg=pkg,
        plan=plan,
        plan_origin=origin,
        root=tmp,
        studies=study_info(pkg),
        console=console,
        plan_from_data=origin == FROM_DATA,
    )
    for sub in ("figures", "exports", "tables"):
        (tmp / sub).mkdir()
    analysis_nodes: list[Node] = intro(plan)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as progress:
        task = progress.add_task("report", total=len(plan.analyses) + 5)

        def step(description: str) -> None:
            progress.update(task, description=description)

        for analysis in plan.analyses:
            step(f"analysis {analysis.id}")
            before = len(ctx.statuses)
            analysis_nodes.extend(run_analysis(ctx, analysis))
            if len(ctx.statuses) > before:  # for the console
                headline = ctx.statuses[-1][1].headline
                progress.console.print(
                    f"  {analysis.id}: {headline}", highlight=False, markup=False
                )
            progress.advance(task)
        step("study characteristics and discrepancies")
        char_nodes = characteristics.section(ctx)
        disc_nodes = discrepancies.section(ctx)
        progress.advance(task)
        step("risk of bias")
        rob_nodes = rob.section(ctx)
        progress.advance(task)
        step("PRISMA flow")
        prisma_nodes = prisma.section(ctx)
        progress.advance(task)
        step("reproduction audit")
        audit_nodes = audit.section(ctx)
        progress.advance(task)
        step("summary of findings")
        sof_nodes = summary_of_findings.section(ctx)  # before exports: it adds its CSV
        step("drawing figures")
        ctx.draw_figures()
        step("writing")
        if ctx.metafor_analyses or not ctx.revman_analyses:  # metafor refits metafor's pools
            (tmp / "exports" / "reproduce.R").write_text(
                render_reproduce_r(
                    ctx.export_blocks,
                    package=f"{pkg.name} {pkg.version or ''}".strip(),
                    version=__version__,
                    note=REVMAN_NOT_REFITTED if ctx.revman_analyses else None,
                ),
                encoding="utf-8",
            )
        doc: list[Node] = [
            *package.section(ctx, validation),
            *status.section(ctx),
            *methods.section(ctx),
            *caveats.section(ctx),
            *sof_nodes,
            *char_nodes,
            *disc_nodes,
            *rob_nodes,
            *prisma_nodes,
            *analysis_nodes,
            *audit_nodes,
            *exports.section(ctx),
            *sources.section(ctx),
        ]
        title = str(pkg.descriptor.get("title") or pkg.name)
        subtitle = [
            f"Package {pkg.name} {pkg.version or ''}".rstrip() + f" · trialpool {__version__}",
            f"Plan: {plan.title}",
        ]
        html_text = render_html(doc, title=title, subtitle=subtitle, folder=tmp)
        (tmp / HTML_NAME).write_text(html_text, encoding="utf-8")
        md_text = render_markdown(doc, title=title, subtitle=subtitle)
        (tmp / MD_NAME).write_text(md_text, encoding="utf-8")
        details = {"package": pkg.name, "version": pkg.version, "figures": ctx.figures}
        write_marker(tmp, REPORT_KIND, details)
        progress.advance(task)


def run_report(descriptor: Path | str, *, plan: Path | None, out: Path, console: Console) -> int:
    """``trialpool report``: print progress and the report's path; return the exit code."""
    validation = validate_package(descriptor)
    if not validation.valid:
        print_report(validation, console, as_json=False)
        console.out(f"report not written: {descriptor} is invalid", highlight=False)
        return 1
    try:
        path = build_report(descriptor, plan, out, console=console, validation=validation)
    except TrialpoolError as exc:
        print(f"trialpool: error: {exc}", file=sys.stderr)
        return exc.exit_code
    console.out(
        f"Report written to {path / HTML_NAME} (Markdown: {path / MD_NAME})", highlight=False
    )
    return 0
