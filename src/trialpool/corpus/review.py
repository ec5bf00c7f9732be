"""One review of a corpus, in-process: import it into a package, validate it, and compare
every number RevMan stored with trialpool's.

:func:`audit_review` runs in a worker process (many reviews each, never a process per
review). It reads the source (``imports.detect.read_review``), writes the package into its
folder (``imports.write.write_review_package``), validates it with the fast engine, pools
every analysis of its plan with RevMan's conventions
(``analysis.revman.pool_review_analysis``) and checks every stored number
(``analysis.reproduce.reproduction_checks``). A review that cannot be imported, or whose
package does not validate, is *refused*: its folder is removed and the reason is one line;
nothing a review holds ever stops the run. The per-number rows go to a CSV part file
(``audit.csv`` is their concatenation); the outcome carries the counts the corpus tables and
summary need.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trialpool.analysis.plan import RevManAnalysis, load_plan
from trialpool.analysis.reproduce import Check, reproduction_checks
from trialpool.analysis.revman import PackageIndex, model_text, pool_review_analysis
from trialpool.errors import ImportSourceError, TrialpoolError
from trialpool.imports.detect import detect, read_review
from trialpool.imports.write import write_valid_package
from trialpool.package.loader import load_package

#: columns of DIR/reviews.csv (one row per review)
REVIEWS_COLUMNS = [
    "review", "source", "format", "status", "reason", "analyses", "numbers", "agree",
    "known", "differ", "seconds", "logged",
]  # fmt: skip
#: columns of DIR/audit.csv (one row per number RevMan stored)
AUDIT_COLUMNS = [
    "review", "analysis", "scope", "where", "quantity", "revman", "trialpool", "agrees",
    "reason",
]  # fmt: skip

#: TRIALPOOL_ENGINE may name another Table Schema engine (frictionless, to cross-check)
ENGINE_ENV = "TRIALPOOL_ENGINE"


@dataclass(frozen=True)
class ReviewTask:
    """What a worker needs: the review's name and source, its package folder, and the
    file its audit rows go to."""

    name: str
    source: Path
    folder: Path
    part: Path


@dataclass
class Tally:
    """Counts of one group of analyses (one model and measure)."""

    analyses: int = 0
    numbers: int = 0
    agree: int = 0
    known: int = 0
    differ: int = 0

    def add(self, other: Tally) -> None:
        """Add ``other``'s counts to these."""
        self.analyses += other.analyses
        self.numbers += other.numbers
        self.agree += other.agree
        self.known += other.known
        self.differ += other.differ


@dataclass
class ReviewOutcome:
    """What one review came to: its row of reviews.csv and the counts for the summary."""

    review: str
    source: str
    format: str
    status: str  # imported | refused
    reason: str = ""
    #: the reason with its particulars (file, row, values) masked: refusals grouped by it
    kind: str = ""
    seconds: float = 0.0
    logged: int = 0
    total: Tally = field(default_factory=Tally)
    #: (model as RevMan prints it, measure) -> counts
    groups: dict[tuple[str, str], Tally] = field(default_factory=dict)
    #: named known difference -> how many numbers
    known: Counter[str] = field(default_factory=Counter)
    #: quantity -> how many numbers differ
    differ: Counter[str] = field(default_factory=Counter)

    def row(self) -> list[Any]:
        """The review's row of reviews.csv."""
        t = self.total
        return [
            self.review, self.source, self.format, self.status, self.reason, t.analyses,
            t.numbers, t.agree, t.known, t.differ, f"{self.seconds:.3f}", self.logged,
        ]  # fmt: skip


def _engine() -> str | None:
    """The fast engine for packages of every size, unless TRIALPOOL_ENGINE names one."""
    return None if os.environ.get(ENGINE_ENV) else "fast"


def _number(x: float | None) -> str:
    return "" if x is None else repr(float(x))


def _reason(c: Check) -> str:
    if c.status == "agrees":
        return ""
    if c.known:
        return f"known: {c.known}"
    if c.ours is None or c.published is None:
        return "differs: trialpool has no value"
    return f"differs by {c.ours - c.published:.3g} (tolerance {c.tolerance:.2g})"


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|“[^”]*”")
_DIGITS = re.compile(r"\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def refusal_kind(reason: str, source: str) -> str:
    """``reason`` without the source's name, quoted values and numbers (masked), so that
    refusals for the same defect in different places group together."""
    text = reason.removeprefix(f"{source}: ")
    text = _QUOTED.sub("'…'", text)
    return _DIGITS.sub("#", text)


def guess_format(path: Path) -> str:
    """The format a refused source looks like, from its first bytes (or ``folder``)."""
    if path.is_dir():
        return "cochrane_data_package"
    try:
        with path.open("rb") as handle:
            head = handle.read(4096)
    except OSError:
        return "unknown"
    found = detect(head)
    return {"zip": "zip", None: "unknown"}.get(found, found or "unknown")


def _refused(task: ReviewTask, fmt: str, reason: str, kind: str, t0: float) -> ReviewOutcome:
    shutil.rmtree(task.folder, ignore_errors=True)
    task.part.unlink(missing_ok=True)
    return ReviewOutcome(
        task.name,
        str(task.source),
        fmt,
        "refused",
        reason=" ".join(reason.split()),
        kind=kind,
        seconds=time.perf_counter() - t0,
    )


def audit_review(task: ReviewTask) -> ReviewOutcome:
    """Import, validate and audit one review; never raises (a failure is a refusal)."""
    t0 = time.perf_counter()
    source = task.source.name or str(task.source)
    try:
        review = read_review(task.source)
    except ImportSourceError as exc:
        return _refused(
            task, guess_format(task.source), str(exc), refusal_kind(str(exc), source), t0
        )
    except Exception as exc:  # a reader's bug must not stop the corpus
        why = f"internal error while reading: {type(exc).__name__}: {exc}"
        kind = f"internal error while reading ({type(exc).__name__})"
        return _refused(task, guess_format(task.source), why, kind, t0)
    try:
        return _import_and_audit(task, review.format, review, t0)
    except TrialpoolError as exc:
        return _refused(task, review.format, str(exc), refusal_kind(str(exc), source), t0)
    except Exception as exc:  # a bug must not stop the corpus
        why = f"internal error: {type(exc).__name__}: {exc}"
        return _refused(task, review.format, why, f"internal error ({type(exc).__name__})", t0)


def _import_and_audit(task: ReviewTask, fmt: str, review: Any, t0: float) -> ReviewOutcome:
    task.folder.mkdir()
    tables, report = write_valid_package(review, task.folder, engine=_engine())
    descriptor = task.folder / "datapackage.json"
    if not report.valid:
        first = report.issues[0]
        reason = (
            f"the imported package does not validate ({len(report.issues)} problem(s)); "
            f"first: {first.line()}"
        )
        kind = f"the imported package does not validate ({first.rule}, {first.resource})"
        return _refused(task, fmt, reason, kind, t0)
    outcome = ReviewOutcome(task.name, str(task.source), fmt, "imported")
    outcome.logged = len(tables.log)
    pkg = load_package(descriptor)
    plan = load_plan(task.folder / "analysis" / "plan.json")
    index = PackageIndex.of(pkg)
    with task.part.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        for a in plan.analyses:
            if isinstance(a, RevManAnalysis):
                writer.writerows(_audit_analysis(outcome, pkg, a, index))
    outcome.seconds = time.perf_counter() - t0
    return outcome


def _audit_analysis(
    outcome: ReviewOutcome, pkg: Any, a: RevManAnalysis, index: PackageIndex
) -> list[list[Any]]:
    """The audit rows of one analysis; its counts added to ``outcome``."""
    tally = Tally(analyses=1)
    try:
        result = pool_review_analysis(pkg, a, index)
    except TrialpoolError as exc:  # the analysis cannot be pooled: one differing row
        why = " ".join(str(exc).split())
        tally.numbers, tally.differ = 1, 1
        outcome.differ["pooled"] += 1
        rows = [[outcome.review, a.id, "analysis", "", "pooled", "", "", "false",
                 f"differs: not pooled: {why}"]]  # fmt: skip
    else:
        rows = []
        for c in reproduction_checks(pkg, a, result, index):
            tally.numbers += 1
            if c.status == "agrees":
                tally.agree += 1
            elif c.status == "known":
                tally.known += 1
                outcome.known[str(c.known)] += 1
            else:
                tally.differ += 1
                outcome.differ[c.quantity] += 1
            rows.append(
                [outcome.review, c.analysis_id, c.scope, c.where, c.quantity,
                 _number(c.published), _number(c.ours), "true" if c.agrees else "false",
                 _reason(c)]
            )  # fmt: skip
    outcome.total.add(tally)
    outcome.groups.setdefault((model_text(a), a.measure), Tally()).add(tally)
    return rows
