"""Command line: parse options, call one function, print. No logic lives here.

Each command delegates to a ``run_*`` function of the module that owns the job; that
function prints through the given console and returns the exit code. Exit codes:
0 success, 1 invalid input or analysis impossible, 2 usage error (unknown option,
missing file). Errors caused by the input reach the user as one line, never a traceback
(set TRIALPOOL_DEBUG=1 to see one).
"""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from trialpool import __version__
from trialpool.errors import TrialpoolError

app = typer.Typer(
    name="trialpool",
    help="Validate, then pool, Frictionless data packages of controlled trials.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

console = Console(highlight=False, soft_wrap=True)


class Measure(StrEnum):
    MD = "MD"
    SMD = "SMD"
    RR = "RR"
    OR = "OR"
    RD = "RD"


class Method(StrEnum):
    FE = "FE"
    MH = "MH"
    DL = "DL"
    REML = "REML"
    PM = "PM"
    ML = "ML"


def _version(value: bool) -> None:
    if value:
        console.print(f"trialpool {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Validate, then pool, Frictionless data packages of controlled trials."""


Descriptor = Annotated[
    Path,
    typer.Argument(exists=True, dir_okay=False, readable=True, help="Path to datapackage.json."),
]


@app.command()
def validate(
    descriptor: Descriptor = Path("datapackage.json"),
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable error list.")] = False,
) -> None:
    """Check a package: Table Schema (frictionless), then the cross-table rules."""
    from trialpool.validate import run_validate

    raise typer.Exit(run_validate(descriptor, as_json=as_json, console=console))


@app.command()
def pool(
    descriptor: Descriptor,
    outcome: Annotated[
        str | None, typer.Option("--outcome", help="Outcome code, e.g. meld.")
    ] = None,
    measure: Annotated[Measure | None, typer.Option("--measure", help="Effect measure.")] = None,
    method: Annotated[
        Method | None, typer.Option("--method", help="Model / tau² estimator.")
    ] = None,
    timepoint: Annotated[
        float | None, typer.Option("--timepoint", help="Time point in weeks.")
    ] = None,
    hksj: Annotated[bool, typer.Option("--hksj", help="Hartung-Knapp-Sidik-Jonkman.")] = False,
    analysis: Annotated[
        str | None,
        typer.Option(
            "--analysis",
            help="Analysis id of the plan (e.g. 1.1), pooled with its recorded settings.",
        ),
    ] = None,
    plan: Annotated[
        Path | None,
        typer.Option(
            "--plan",
            exists=True,
            dir_okay=False,
            help="Analysis plan (default: analysis/plan.json beside DESCRIPTOR).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    cumulative: Annotated[
        bool,
        typer.Option(
            "--cumulative",
            help="Also the cumulative meta-analysis: studies added by year, each step refitted.",
        ),
    ] = False,
) -> None:
    """Validate, then pool one outcome (or one analysis of the plan) of a package."""
    from trialpool.analysis.command import run_pool

    raise typer.Exit(
        run_pool(
            descriptor,
            outcome=outcome,
            timepoint=timepoint,
            measure=None if measure is None else measure.value,
            method=None if method is None else method.value,
            hksj=hksj,
            as_json=as_json,
            console=console,
            analysis=analysis,
            plan=plan,
            cumulative=cumulative,
        )
    )


@app.command()
def report(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the report into.")],
    descriptor: Descriptor = Path("datapackage.json"),
    plan: Annotated[
        Path | None,
        typer.Option("--plan", exists=True, dir_okay=False, help="Analysis plan (JSON)."),
    ] = None,
    since: Annotated[
        Path | None,
        typer.Option(
            "--since",
            exists=True,
            dir_okay=False,
            help="An earlier version's datapackage.json: add the section 'What changed "
            "since version X'.",
        ),
    ] = None,
) -> None:
    """Validate, pool every analysis of the plan, and write figures and the report."""
    from trialpool.report.writer import run_report

    raise typer.Exit(run_report(descriptor, plan=plan, out=out, console=console, since=since))


@app.command()
def init(
    folder: Annotated[Path, typer.Argument(help="Folder to create the empty package in.")],
    title: Annotated[str | None, typer.Option("--title", help="Title of the package.")] = None,
    extension: Annotated[
        list[str] | None,
        typer.Option("--extension", help="Topic extension to include (repeatable), e.g. msc."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing package in FOLDER.")
    ] = False,
) -> None:
    """Create an empty package that conforms to the core schema (and the extensions named)."""
    from trialpool.contrib.init import run_init

    raise typer.Exit(
        run_init(folder, title=title, extensions=extension or [], force=force, console=console)
    )


@app.command()
def refresh(
    descriptor: Descriptor = Path("datapackage.json"),
    check: Annotated[
        bool, typer.Option("--check", help="Only say whether it is up to date (exit 1 if not).")
    ] = False,
) -> None:
    """Recompute the descriptor's bytes, hashes and sources after editing the CSVs."""
    from trialpool.contrib.refresh import run_refresh

    raise typer.Exit(run_refresh(descriptor, check=check, console=console))


@app.command("import")
def import_(
    source: Annotated[
        Path,
        typer.Argument(
            exists=True,
            help="A RevMan 5 file (.rm5), RevMan 5 CSV export, or Cochrane data "
            "package (folder or zip).",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Folder to write the package into.")],
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --out.")] = False,
) -> None:
    """Import a Cochrane review into a package that conforms to the core schema."""
    from trialpool.imports.write import run_import

    raise typer.Exit(run_import(source, out=out, force=force, console=console))


@app.command()
def audit(
    sources: Annotated[
        list[Path],
        typer.Argument(
            exists=True,
            help="Reviews (.rm5, RevMan 5 CSV, Cochrane data package folder or zip), or "
            "folders that hold many.",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Folder to write the audit into.")],
    jobs: Annotated[
        int | None,
        typer.Option("--jobs", min=1, help="Worker processes (default: the number of CPUs)."),
    ] = None,
    strict: Annotated[
        bool,
        typer.Option("--strict", help="Exit 1 when any review is refused or any number differs."),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Replace a previous audit in --out.")
    ] = False,
) -> None:
    """Import every review of a corpus and compare every number RevMan stored with ours."""
    from trialpool.corpus import run_audit

    raise typer.Exit(
        run_audit(sources, out=out, jobs=jobs, strict=strict, force=force, console=console)
    )


@app.command("new-study")
def new_study(
    study_id: Annotated[str, typer.Argument(help="Identifier of the new study, e.g. smith2026.")],
    descriptor: Annotated[
        Path, typer.Option("--descriptor", exists=True, dir_okay=False, help="datapackage.json")
    ] = Path("datapackage.json"),
) -> None:
    """Add empty rows for a new study (sources, studies, arms, screening, RoB) to fill in."""
    from trialpool.contrib.new_study import run_new_study

    raise typer.Exit(run_new_study(descriptor, study_id, console=console))


@app.command()
def diff(
    old: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Old datapackage.json")],
    new: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="New datapackage.json")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    results: Annotated[
        bool,
        typer.Option(
            "--results",
            help="Also validate and re-pool both versions (each with its own plan) and list "
            "every result that changed.",
        ),
    ] = False,
) -> None:
    """What changed between two versions of a package, and the version bump it needs."""
    from trialpool.contrib.diff import run_diff

    raise typer.Exit(run_diff(old, new, as_json=as_json, console=console, results=results))


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app; turn input errors into one line and an exit code."""
    debug = os.environ.get("TRIALPOOL_DEBUG") == "1"
    try:
        app(args=argv, standalone_mode=True)
    except SystemExit as exc:  # typer/click exit with the command's code
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except TrialpoolError as exc:
        if debug:
            raise
        print(f"trialpool: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("trialpool: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # last line of defence: never a traceback
        if debug:
            raise
        print(
            f"trialpool: internal error: {type(exc).__name__}: {exc} "
            "(set TRIALPOOL_DEBUG=1 for details; please report it)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
