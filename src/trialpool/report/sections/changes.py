"""Section "What changed since version X": the results that changed since an earlier version.

Built from :func:`trialpool.contrib.diff_results.compare_results` (both versions
re-pooled, each with its own plan): the studies added and removed, how many results
changed, and a table of every result that changed, was added or was removed (k,
estimate and CI, P, tau² and certainty, old → new), with "conclusion changed" where the
CI crossed no effect or the direction of the estimate flipped. ``trialpool report --since
OLD`` puts it after the data status; ``scripts/release.py --notes OLD`` puts its Markdown
(:func:`markdown`) in the release notes. Unlike the other sections it is made from the
comparison, not from the report's context, so that the release notes need no report.
"""

from __future__ import annotations

from pathlib import Path

from trialpool.analysis.plan import AnalysisPlan
from trialpool.contrib.diff_results import (
    ABS_TOL,
    NO_EFFECT_TEXT,
    NOT_ASSESSED,
    REL_TOL,
    ResultChange,
    ResultsDiff,
    Snapshot,
    compare_results,
)
from trialpool.report.document import (
    Bullets,
    Heading,
    Inlines,
    Link,
    Muted,
    Node,
    Para,
    Strong,
    Table,
    md_node,
)
from trialpool.report.format import anchor, p_value, small

ANCHOR = "changes"
HEADER = ["Analysis", "Change", "k", "Estimate [CI]", "P", "τ²", "Certainty", "Conclusion"]

_STATUS = {
    "changed": "changed",
    "added": "new in this version",
    "removed": "no longer in the plan or the data",
}
_FIELD_WORDS = {
    "k": "k",
    "measure": "measure",
    "pooled": "pooled or not",
    "estimate": "estimate",
    "ci_lower": "CI",
    "ci_upper": "CI",
    "p_value": "P",
    "tau2": "τ²",
    "certainty": "certainty",
}


def heading(diff: ResultsDiff) -> str:
    return f"What changed since version {diff.old_label}"


def _effect(s: Snapshot | None) -> str:
    if s is None:
        return "–"
    if not s.pooled:
        return "not pooled"
    # two decimals, or two significant digits near zero: -0.004 is not shown as 0.00
    return f"{s.measure} {small(s.estimate)} [{small(s.ci_lower)}, {small(s.ci_upper)}]"


def _certainty(s: Snapshot | None) -> str:
    if s is None:
        return "–"
    return (s.certainty or NOT_ASSESSED).replace("_", " ")


def _pair(old: str, new: str, status: str) -> str:
    if status == "added":
        return new
    if status == "removed":
        return old
    return old if old == new else f"{old} → {new}"


def _what(c: ResultChange) -> Inlines:
    """The kind of change, with the fields that changed."""
    if c.status != "changed":
        return _STATUS[c.status]
    words = list(dict.fromkeys(_FIELD_WORDS.get(f, f) for f in c.changed))
    return "changed: " + ", ".join(words)


def _k(s: Snapshot | None) -> str:
    return "–" if s is None else str(s.k)


def _row(c: ResultChange, link: bool) -> list[Inlines]:
    o, n = c.old, c.new
    name = f"{c.analysis_id} {c.title}"
    cell: Inlines = Link(name, "#" + anchor("analysis", c.analysis_id)) if link else name
    why: Inlines = (
        [Strong("conclusion changed: "), "; ".join(c.conclusion)] if c.conclusion_changed else ""
    )
    if not c.conclusion_changed and n is not None and not n.pooled and o is not None:
        why = Muted(f"not pooled: {n.reason}" if n.reason else "not pooled")
    return [
        cell,
        _what(c),
        _pair(_k(o), _k(n), c.status),
        _pair(_effect(o), _effect(n), c.status),
        _pair(p_value(o.p_value if o else None), p_value(n.p_value if n else None), c.status),
        _pair(small(o.tau2 if o else None), small(n.tau2 if n else None), c.status),
        _pair(_certainty(o), _certainty(n), c.status),
        why,
    ]


def _studies(diff: ResultsDiff) -> list[Inlines]:
    items: list[Inlines] = []
    if diff.studies_added:
        names = ", ".join(diff.new.labels.get(s, s) for s in diff.studies_added)
        items.append([Strong("Studies added: "), names])
    if diff.studies_removed:
        names = ", ".join(diff.old.labels.get(s, s) for s in diff.studies_removed)
        items.append([Strong("Studies removed: "), names])
    return items


def _counts(diff: ResultsDiff) -> Inlines:
    by = {s: sum(1 for c in diff.changes if c.status == s) for s in _STATUS}
    conclusions = diff.conclusions_changed
    text = (
        f"{by['changed']} result(s) changed, {by['added']} added, {by['removed']} removed, "
        f"{len(diff.unchanged)} unchanged"
    )
    if not conclusions:
        return [Strong("Results: "), text + "; no conclusion changed."]
    which = ", ".join(c.analysis_id + (f" ({c.block})" if c.block else "") for c in conclusions)
    return [
        Strong("Results: "),
        text + "; ",
        Strong(f"the conclusion changed in {len(conclusions)}"),
        f": {which}.",
    ]


def section(diff: ResultsDiff, *, link: bool = True) -> list[Node]:
    """The section's nodes; ``link`` makes each analysis a link to its part of the report
    (off for the release notes, which have no such part)."""
    old, new = diff.old, diff.new
    nodes: list[Node] = [
        Heading(2, heading(diff), ANCHOR),
        Para(
            f"Every analysis was pooled again from version {diff.old_label} "
            f"({old.name}; plan: {old.plan_origin}) and from this version "
            f"({new.version or new.name}; plan: {new.plan_origin}), and the results were "
            "matched by analysis and block (a time point or subgroup). A number counts as "
            f"changed when it differs by more than a relative {REL_TOL:g} (absolute "
            f"{ABS_TOL:g}): re-pooling noise is not a change. No effect is {NO_EFFECT_TEXT}; "
            "a conclusion changed when the CI moved to the other side of no effect (one "
            "version's CI excludes it and the other's does not, or they exclude it on "
            "opposite sides) or the direction of the estimate flipped."
        ),
        Bullets([*_studies(diff), _counts(diff)]),
    ]
    if diff.changes:
        nodes.append(
            Table(
                header=HEADER,
                rows=[_row(c, link and c.status != "removed") for c in diff.changes],
                caption=f"Results that changed since version {diff.old_label} (old → new)",
                numeric=frozenset({2, 4, 5}),
            )
        )
    else:
        nodes.append(Para("No result changed.", cls="note"))
    if diff.unchanged:
        keys = ", ".join(a + (f" ({b})" if b else "") for a, b in diff.unchanged)
        nodes.append(Para(Muted(f"Unchanged: {keys}.")))
    return nodes


def markdown(diff: ResultsDiff) -> str:
    """The section as Markdown (release notes): no links into a report."""
    return "\n".join(md_node(node) for node in section(diff, link=False))


def since(
    old_descriptor: Path | str, descriptor: Path | str, plan: AnalysisPlan, origin: str
) -> list[Node]:
    """``trialpool report --since OLD``: compare OLD (validated here; an invalid one is a
    one-line ValidationFailedError) with the report's package, which the report has
    validated, pooled with the report's plan; return the section."""
    diff = compare_results(
        old_descriptor, descriptor, new_plan=plan, new_plan_origin=origin, new_validated=True
    )
    return section(diff)
