"""`trialpool report`: validate, run every analysis of a plan, write one report folder.

The folder holds::

    report.html          self-contained: figures embedded as base64 PNG (a lighter
                         copy of each, :mod:`.embed`), inline CSS,
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

import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

from trialpool import __version__
from trialpool.analysis.plan import AnalysisPlan
from trialpool.analysis.plan_source import FROM_DATA, resolve_plan
from trialpool.analysis.runs import study_info
from trialpool.errors import TrialpoolError
from trialpool.package.atomic import REPORT_KIND, atomic_folder, write_marker
from trialpool.package.loader import Package, load_package
from trialpool.report.context import Context
from trialpool.report.document import MAX_HEADING_CHARS, Node, render_markdown, shorten
from trialpool.report.exports import REVMAN_NOT_REFITTED, render_reproduce_r
from trialpool.report.output import MARKER_NAME, ReportError, check_out_path
from trialpool.report.render import render_html
from trialpool.report.sections import (
    audit,
    caveats,
    changes,
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


def build_report(
    descriptor: Path | str,
    plan: AnalysisPlan | Path | str | None,
    out: Path | str,
    *,
    console: Console | None = None,
    validation: Any = None,
    since: Path | str | None = None,
) -> Path:
    """Validate, run every analysis of the plan, and write the report folder ``out``.

    With ``since`` (an earlier version's descriptor), the section "What changed since
    version X" follows the data status (:mod:`.sections.changes`).
    Raises ValidationFailedError (invalid package, or an invalid ``since``), PlanError
    (invalid plan) or ReportError (unsafe or occupied ``out``): one line each. Returns the
    folder path.
    """
    console = console or Console(quiet=True)
    if validation is None:
        validation = validate_package(descriptor)
    validation.require_valid(descriptor)
    pkg = load_package(descriptor)
    the_plan, origin = resolve_plan(plan, pkg)
    since_nodes = [] if since is None else changes.since(since, descriptor, the_plan, origin)
    target = check_out_path(Path(out), pkg.root)
    with atomic_folder(target, REPORT_KIND) as tmp:
        _write_report(pkg, the_plan, origin, tmp, console, validation, since_nodes)
    return target


def _write_report(
    pkg: Package,
    plan: AnalysisPlan,
    origin: str,
    tmp: Path,
    console: Console,
    validation: Any,
    since_nodes: list[Node] | None = None,
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
                headline = shorten(ctx.statuses[-1][1].headline, MAX_HEADING_CHARS)
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
            *(since_nodes or []),
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
        html_text = render_html(
            doc, title=title, subtitle=subtitle, folder=tmp, embedded=ctx.embedded
        )
        (tmp / HTML_NAME).write_text(html_text, encoding="utf-8")
        md_text = render_markdown(doc, title=title, subtitle=subtitle)
        (tmp / MD_NAME).write_text(md_text, encoding="utf-8")
        details = {"package": pkg.name, "version": pkg.version, "figures": ctx.figures}
        write_marker(tmp, REPORT_KIND, details)
        progress.advance(task)


def run_report(
    descriptor: Path | str,
    *,
    plan: Path | None,
    out: Path,
    console: Console,
    since: Path | None = None,
) -> int:
    """``trialpool report``: print progress and the report's path; return the exit code."""
    validation = validate_package(descriptor)
    if not validation.valid:
        print_report(validation, console, as_json=False)
        console.out(f"report not written: {descriptor} is invalid", highlight=False)
        return 1
    try:
        path = build_report(
            descriptor, plan, out, console=console, validation=validation, since=since
        )
    except TrialpoolError as exc:
        print(f"trialpool: error: {exc}", file=sys.stderr)
        return exc.exit_code
    console.out(
        f"Report written to {path / HTML_NAME} (Markdown: {path / MD_NAME})", highlight=False
    )
    return 0
