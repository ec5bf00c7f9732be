"""``trialpool audit SOURCE... --out DIR``: every review of a corpus imported and audited.

Finds the reviews (:mod:`.sources`), audits each in a pool of worker processes (each runs
many reviews in-process, :func:`.review.audit_review`), and writes, atomically (the whole
DIR is built beside it and moved into place when complete):

* ``DIR/<review>/``: the package of each imported review;
* ``DIR/reviews.csv``: one row per review (imported or refused, the reason, the counts);
* ``DIR/audit.csv``: one row per number RevMan stored, next to trialpool's;
* ``DIR/summary.md`` and ``summary.html`` (:mod:`.summary`);
* ``DIR/.trialpool-audit``: the marker that lets a later run replace DIR.

A refused review never stops the run. Exit 0 when the run completed; with ``strict``, 1 when
any review was refused or any number differs. DIR may be new or an empty folder; a previous
audit's DIR (it holds the marker) is replaced only with ``force``; any other folder, one that
holds a source, or a file, is refused.
"""

from __future__ import annotations

import csv
import multiprocessing
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from trialpool.corpus.review import (
    AUDIT_COLUMNS,
    REVIEWS_COLUMNS,
    ReviewOutcome,
    ReviewTask,
    audit_review,
)
from trialpool.corpus.sources import Corpus, find_reviews
from trialpool.corpus.summary import HTML_NAME, RunFacts, write_summary
from trialpool.errors import TrialpoolError
from trialpool.package.atomic import (
    AUDIT_KIND,
    atomic_folder,
    check_replaceable,
    marker_name,
    write_marker,
)

MARKER_NAME = marker_name(AUDIT_KIND)
_PARTS = ".parts"


class AuditError(TrialpoolError):
    """The audit cannot run as asked (no review in the sources, an unsafe or occupied DIR)."""


def default_jobs() -> int:
    """The number of CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def check_out_dir(out: Path, sources: list[Path], *, force: bool) -> Path:
    """Resolve DIR and refuse what may not be replaced (one line, AuditError).

    DIR may be new or an empty folder. An existing folder is replaced only when a previous
    ``trialpool audit`` made it (its marker file) and ``force`` is given; never a file, a
    symbolic link, a user's folder (``package.atomic.check_replaceable``), or a folder that
    holds (or is) a source.
    """
    target = Path(os.path.abspath(out))
    if target.is_symlink():
        raise AuditError(f"--out {out} is a symbolic link; give the real folder")
    resolved = target.resolve()
    for source in sources:
        src = Path(os.path.abspath(source)).resolve()
        if src == resolved or src.is_relative_to(resolved):
            raise AuditError(f"--out {out} holds the source {source}; choose another folder")
    check_replaceable(target, kind=AUDIT_KIND, force=force, label=f"--out {out}", error=AuditError)
    return target


def _quiet_worker() -> None:
    """Workers leave Ctrl-C to the main process, which stops the pool."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _context() -> multiprocessing.context.BaseContext:
    """Fork where the platform has it: workers start with trialpool already imported."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def _outcomes(tasks: list[ReviewTask], jobs: int) -> Iterator[ReviewOutcome]:
    """Each task's outcome as it completes: in this process for one job, else in a pool."""
    if jobs <= 1 or len(tasks) <= 1:
        for task in tasks:
            yield audit_review(task)
        return
    with ProcessPoolExecutor(
        max_workers=min(jobs, len(tasks)), mp_context=_context(), initializer=_quiet_worker
    ) as pool:
        futures = [pool.submit(audit_review, task) for task in tasks]
        try:
            for future in as_completed(futures):
                yield future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def _audit_all(corpus: Corpus, tmp: Path, jobs: int, console: Console) -> list[ReviewOutcome]:
    parts = tmp / _PARTS
    parts.mkdir()
    tasks = [
        ReviewTask(r.name, r.path, tmp / r.name, parts / f"{r.name}.csv") for r in corpus.reviews
    ]
    done: list[ReviewOutcome] = []
    with Progress(
        TextColumn("audit"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[last]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as progress:
        bar = progress.add_task("audit", total=len(tasks), last="")
        for outcome in _outcomes(tasks, jobs):
            done.append(outcome)
            if outcome.status == "refused":
                progress.console.out(f"refused {outcome.review}: {outcome.reason}", highlight=False)
            progress.update(bar, advance=1, last=outcome.review)
    return sorted(done, key=lambda o: o.review.casefold())


def _write_tables(tmp: Path, outcomes: list[ReviewOutcome]) -> None:
    with (tmp / "reviews.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(REVIEWS_COLUMNS)
        writer.writerows(o.row() for o in outcomes)
    parts = tmp / _PARTS
    with (tmp / "audit.csv").open("w", encoding="utf-8", newline="") as out:
        out.write(",".join(AUDIT_COLUMNS) + "\n")
        for o in outcomes:
            part = parts / f"{o.review}.csv"
            if part.is_file():
                with part.open(encoding="utf-8", newline="") as handle:
                    for chunk in iter(lambda h=handle: h.read(1 << 20), ""):
                        out.write(chunk)
                part.unlink()
    parts.rmdir()


def run_audit(
    sources: list[Path],
    *,
    out: Path,
    jobs: int | None,
    strict: bool,
    force: bool,
    console: Console,
) -> int:
    """``trialpool audit``: audit every review in ``sources`` into ``out``; the exit code."""
    if jobs is not None and jobs < 1:
        raise AuditError(f"--jobs {jobs}: give 1 or more worker processes")
    target = check_out_dir(out, sources, force=force)
    corpus = find_reviews(sources, exclude=target)
    if not corpus.reviews:
        raise AuditError(
            "no review found in " + ", ".join(str(s) for s in sources)
            + " (expected .rm5 files, RevMan 5 CSV exports, Cochrane data packages or zips)"
        )  # fmt: skip
    n_jobs = jobs or default_jobs()
    t0 = time.perf_counter()
    with atomic_folder(target, AUDIT_KIND) as tmp:
        outcomes = _audit_all(corpus, tmp, n_jobs, console)
        _write_tables(tmp, outcomes)
        seconds = time.perf_counter() - t0
        facts = RunFacts(
            sources=[str(s) for s in sources],
            skipped=[str(p) for p in corpus.skipped],
            jobs=min(n_jobs, len(corpus.reviews)),
            seconds=seconds,
        )
        write_summary(tmp, outcomes, facts)
        write_marker(tmp, AUDIT_KIND, {"command": "audit", "reviews": len(outcomes)})
    imported = [o for o in outcomes if o.status == "imported"]
    refused = len(outcomes) - len(imported)
    numbers = sum(o.total.numbers for o in imported)
    agree = sum(o.total.agree for o in imported)
    known = sum(o.total.known for o in imported)
    differ = sum(o.total.differ for o in imported)
    analyses = sum(o.total.analyses for o in imported)
    console.out(
        f"Audited {len(outcomes)} review(s) in {seconds:.1f} s "
        f"({len(outcomes) / seconds:.2f} reviews/s, {facts.jobs} worker(s)): "
        f"{len(imported)} imported, {refused} refused; {analyses} analyses, {numbers} numbers: "
        f"{agree} agree, {known} known, {differ} differ",
        highlight=False,
    )
    console.out(f"Summary written to {out / HTML_NAME} (tables: reviews.csv, audit.csv)",
                highlight=False)  # fmt: skip
    if strict and (refused or differ):
        console.out(
            f"--strict: {refused} refused review(s), {differ} differing number(s)", highlight=False
        )
        return 1
    return 0
