"""The corpus summary of ``trialpool audit``: summary.md and summary.html.

Short by design: the corpus in numbers, agreement by method and measure, the named known
differences, the quantities that differ, and the refusals grouped by reason. Built as the
report's document nodes (:mod:`trialpool.report.document`), so that the Markdown is written
and the HTML rendered (markdown-it, :mod:`trialpool.report.render`) exactly as a report's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from trialpool import __version__
from trialpool.corpus.review import ReviewOutcome, Tally
from trialpool.report.document import (
    Bullets,
    Code,
    Heading,
    Inlines,
    Muted,
    Node,
    Para,
    Table,
    render_markdown,
)
from trialpool.report.render import render_html

MD_NAME = "summary.md"
HTML_NAME = "summary.html"
_LISTED = 5
_BY_METHOD_HEADER = [
    "Model", "Measure", "Reviews", "Analyses", "Numbers", "Agree", "Known", "Differ",
    "Agree or known",
]  # fmt: skip


@dataclass(frozen=True)
class RunFacts:
    """How the run went, for the summary's first lines."""

    sources: Sequence[str]
    skipped: Sequence[str]
    jobs: int
    seconds: float


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.2f}%" if whole else "–"


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_LISTED])
    return shown + (f" and {len(names) - _LISTED} more" if len(names) > _LISTED else "")


def _corpus(outcomes: Sequence[ReviewOutcome], facts: RunFacts) -> list[Node]:
    imported = [o for o in outcomes if o.status == "imported"]
    total = Tally()
    for o in imported:
        total.add(o.total)
    rate = len(outcomes) / facts.seconds if facts.seconds > 0 else 0.0
    nodes: list[Node] = [
        Heading(2, "Corpus", "corpus"),
        Para(
            f"{len(outcomes)} reviews found in the sources: {len(imported)} imported, "
            f"{len(outcomes) - len(imported)} refused. {total.analyses} analyses; "
            f"{total.numbers} numbers RevMan stored, of which {total.agree} agree with "
            f"trialpool's ({_pct(total.agree, total.numbers)}), {total.known} differ by a "
            f"named, known RevMan peculiarity and {total.differ} differ."
        ),
        Para(
            Muted(
                f"Run: {facts.seconds:.1f} s with {facts.jobs} worker process(es), "
                f"{rate:.2f} reviews/s; trialpool {__version__}."
            )
        ),
    ]
    if facts.skipped:
        nodes.append(
            Para(
                f"{len(facts.skipped)} file(s) skipped as not reviews (by name and first "
                f"bytes): {_names(list(facts.skipped))}."
            )
        )
    return nodes


def _by_method(outcomes: Sequence[ReviewOutcome]) -> list[Node]:
    groups: dict[tuple[str, str], Tally] = {}
    reviews: Counter[tuple[str, str]] = Counter()
    for o in outcomes:
        for key, tally in o.groups.items():
            groups.setdefault(key, Tally()).add(tally)
            reviews[key] += 1
    if not groups:
        return [Heading(2, "Agreement by method and measure", "agreement"),
                Para("No analysis was audited.")]  # fmt: skip
    rows: list[list[Inlines]] = []
    for (model, measure), t in sorted(groups.items(), key=lambda kv: (-kv[1].numbers, kv[0])):
        rows.append(
            [model, measure, str(reviews[(model, measure)]), str(t.analyses), str(t.numbers),
             str(t.agree), str(t.known), str(t.differ), _pct(t.agree + t.known, t.numbers)]
        )  # fmt: skip
    return [
        Heading(2, "Agreement by method and measure", "agreement"),
        Table(
            header=_BY_METHOD_HEADER,
            rows=rows,
            caption="Every number RevMan stored, by the analysis's model and effect measure",
            numeric=frozenset(range(2, 9)),
        ),
    ]


def _differences(outcomes: Sequence[ReviewOutcome]) -> list[Node]:
    known: Counter[str] = Counter()
    differ: Counter[str] = Counter()
    differ_reviews: dict[str, list[str]] = {}
    for o in outcomes:
        known.update(o.known)
        differ.update(o.differ)
        for quantity in o.differ:
            differ_reviews.setdefault(quantity, []).append(o.review)
    nodes: list[Node] = [Heading(2, "Differences", "differences")]
    if known:
        nodes.append(
            Table(
                header=["Known difference", "Numbers"],
                rows=[[why, str(n)] for why, n in known.most_common()],
                caption="Numbers that differ by a named, known RevMan peculiarity",
                numeric=frozenset({1}),
            )
        )
    if differ:
        nodes.append(
            Table(
                header=["Quantity", "Numbers", "Reviews"],
                rows=[
                    [Code(q), str(n), _names(differ_reviews[q])] for q, n in differ.most_common()
                ],
                caption="Numbers that differ, by quantity (each one is in audit.csv)",
                numeric=frozenset({1}),
            )
        )
    else:
        nodes.append(Para("No number differs beyond the named, known RevMan peculiarities."))
    return nodes


def _refusals(outcomes: Sequence[ReviewOutcome]) -> list[Node]:
    refused = [o for o in outcomes if o.status == "refused"]
    nodes: list[Node] = [Heading(2, "Refusals by reason", "refusals")]
    if not refused:
        return [*nodes, Para("No review was refused.")]
    kinds: dict[str, list[str]] = {}
    for o in refused:
        kinds.setdefault(o.kind or o.reason, []).append(o.review)
    rows: list[list[Inlines]] = [
        [kind, str(len(names)), _names(names)]
        for kind, names in sorted(kinds.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    ]
    return [
        *nodes,
        Para(
            "Each refused review's reason, in full, is in reviews.csv; here the reasons are "
            "grouped with their particulars (file, row, values) masked."
        ),
        Table(
            header=["Reason", "Reviews", "Which"],
            rows=rows,
            caption=f"{len(refused)} refused review(s)",
            numeric=frozenset({1}),
        ),
    ]


def _files() -> list[Node]:
    return [
        Heading(2, "Files", "files"),
        Bullets(
            [
                [Code("reviews.csv"), ": one row per review (status, reason, counts, seconds)"],
                [Code("audit.csv"), ": one row per number RevMan stored, next to trialpool's"],
                [Code("<review>/"), ": the package of each imported review"],
            ]
        ),
    ]


def write_summary(folder: Path, outcomes: Sequence[ReviewOutcome], facts: RunFacts) -> None:
    """Write summary.md and summary.html into ``folder``."""
    doc: list[Node] = [
        *_corpus(outcomes, facts),
        *_by_method(outcomes),
        *_differences(outcomes),
        *_refusals(outcomes),
        *_files(),
    ]
    title = f"Corpus audit of {len(outcomes)} Cochrane review(s)"
    subtitle = [f"Sources: {', '.join(facts.sources)}", f"trialpool {__version__}"]
    (folder / MD_NAME).write_text(
        render_markdown(doc, title=title, subtitle=subtitle), encoding="utf-8"
    )
    html_text = render_html(
        doc, title=title, subtitle=subtitle, folder=folder, footer="Written by trialpool audit."
    )
    (folder / HTML_NAME).write_text(html_text, encoding="utf-8")
