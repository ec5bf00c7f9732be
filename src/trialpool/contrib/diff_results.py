"""What changed in the pooled results between two versions of a package.

``trialpool diff OLD NEW --results`` (through :func:`trialpool.contrib.diff.run_diff`),
``trialpool report --since OLD`` (the section "What changed since version X") and the
release notes (``scripts/release.py --notes OLD``) all use :func:`compare_results`:

1. both versions are validated first; an invalid one is a one-line
   :class:`~trialpool.errors.ValidationFailedError` naming its descriptor (exit 1);
2. each version is pooled with its own plan (:func:`trialpool.analysis.plan_source.resolve_plan`:
   its ``analysis/plan.json``, else the plan built from its data): analyses of an imported
   review with RevMan's engine (each subgroup total and the overall total the review
   shows), metafor-style analyses with trialpool's (each block: the analysis's single
   pool, or each time point or subgroup of it);
3. the results are matched by analysis id and block, and compared: k, measure, whether
   pooled, estimate, CI, P, tau² and the certainty of the evidence. Numbers count as
   changed when they differ by more than a relative 1e-6 and an absolute 1e-9
   (:data:`REL_TOL`, :data:`ABS_TOL`), so that re-pooling noise (a different summation
   order, an iterative tau² estimator) is not a change;
4. a changed result is flagged "conclusion changed" when its CI moves to the other side
   of no effect (1 for ratio measures, 0 otherwise: one version's CI excludes no effect
   and the other's does not, or they exclude it on opposite sides) or when the direction
   of the estimate flips.

The certainty is read from a resource ``certainty`` with the columns ``analysis_id`` and
``overall`` (GRADE's high, moderate, low, very_low) when the package has one; anything
else is "not assessed".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rich.console import Console
from rich.markup import escape

from trialpool.analysis.plan import AnalysisPlan, RevManAnalysis
from trialpool.analysis.plan_source import resolve_plan
from trialpool.analysis.pooled import json_safe
from trialpool.analysis.revman import (
    PackageIndex,
    ReviewPoolResult,
    ReviewTotal,
    pool_review_analysis,
)
from trialpool.analysis.runs import metafor_analyses, run_blocks, settings_for, study_info
from trialpool.errors import TrialpoolError
from trialpool.package.loader import Package, load_package
from trialpool.stats.results import RATIO_MEASURES, NotPooled, PoolResult
from trialpool.validate import validate_package

#: relative and absolute tolerance: numbers closer than this are the same result
REL_TOL = 1e-6
ABS_TOL = 1e-9
#: what "no effect" is
NO_EFFECT_TEXT = "1 for ratio measures, 0 otherwise"
#: the numbers compared, in the order they are reported
NUMBERS = ("estimate", "ci_lower", "ci_upper", "p_value", "tau2")
NOT_ASSESSED = "not assessed"

Status = Literal["changed", "added", "removed"]


@dataclass(frozen=True)
class Snapshot:
    """One pooled result of one version (a block of an analysis), as compared."""

    title: str
    engine: str  # metafor or revman
    measure: str
    ratio: bool  # estimate and CI on the ratio scale: no effect is 1
    k: int
    pooled: bool
    estimate: float | None = None
    ci_lower: float | None = None
    ci_upper: float | None = None
    p_value: float | None = None
    tau2: float | None = None
    certainty: str | None = None  # GRADE overall; None: not assessed
    reason: str | None = None  # why not pooled

    @property
    def null(self) -> float:
        """No effect on this result's scale."""
        return 1.0 if self.ratio else 0.0

    def as_dict(self) -> dict[str, Any]:
        return json_safe(
            {
                "title": self.title,
                "engine": self.engine,
                "measure": self.measure,
                "no_effect": self.null,
                "k": self.k,
                "pooled": self.pooled,
                "estimate": self.estimate,
                "ci_lower": self.ci_lower,
                "ci_upper": self.ci_upper,
                "p_value": self.p_value,
                "tau2": self.tau2,
                "certainty": self.certainty,
                "reason": self.reason,
            }
        )


@dataclass(frozen=True)
class ResultChange:
    """A result that differs between the versions, or exists in one only."""

    analysis_id: str
    block: str | None  # a time point or subgroup of the analysis; None: its only pool
    status: Status
    old: Snapshot | None
    new: Snapshot | None
    changed: tuple[str, ...] = ()  # k, measure, pooled, numbers, certainty
    conclusion: tuple[str, ...] = ()  # why the conclusion changed (empty: it did not)

    @property
    def conclusion_changed(self) -> bool:
        return bool(self.conclusion)

    @property
    def title(self) -> str:
        snap = self.new or self.old
        assert snap is not None  # one side always exists
        return snap.title + (f" — {self.block}" if self.block else "")

    def as_dict(self) -> dict[str, Any]:
        return {
            "analysis_id": self.analysis_id,
            "block": self.block,
            "title": self.title,
            "status": self.status,
            "changed": list(self.changed),
            "conclusion_changed": self.conclusion_changed,
            "conclusion": list(self.conclusion),
            "old": None if self.old is None else self.old.as_dict(),
            "new": None if self.new is None else self.new.as_dict(),
        }


@dataclass
class VersionResults:
    """One version pooled with its plan: every result by (analysis id, block)."""

    descriptor: Path
    name: str
    version: str | None
    plan_origin: str
    results: dict[tuple[str, str | None], Snapshot]
    studies: list[str]  # study ids, in the package's order (by year)
    labels: dict[str, str] = field(default_factory=dict)  # study id -> label


@dataclass
class ResultsDiff:
    """The comparison of two versions' results."""

    old: VersionResults
    new: VersionResults
    changes: list[ResultChange] = field(default_factory=list)
    unchanged: list[tuple[str, str | None]] = field(default_factory=list)

    @property
    def old_label(self) -> str:
        """The old version as the report's heading names it."""
        return self.old.version or str(self.old.descriptor)

    @property
    def studies_added(self) -> list[str]:
        before = set(self.old.studies)
        return [s for s in self.new.studies if s not in before]

    @property
    def studies_removed(self) -> list[str]:
        after = set(self.new.studies)
        return [s for s in self.old.studies if s not in after]

    @property
    def conclusions_changed(self) -> list[ResultChange]:
        return [c for c in self.changes if c.conclusion_changed]

    def as_dict(self) -> dict[str, Any]:
        """``results`` (each result that changed, was added or removed) and
        ``results_compared`` (the plans, the tolerance, what no effect is, the counts and
        the results that did not change)."""
        counts = {s: sum(1 for c in self.changes if c.status == s) for s in _STATUSES}
        return {
            "results": [c.as_dict() for c in self.changes],
            "results_compared": {
                "old_plan": self.old.plan_origin,
                "new_plan": self.new.plan_origin,
                "tolerance": {"relative": REL_TOL, "absolute": ABS_TOL},
                "no_effect": NO_EFFECT_TEXT,
                "counts": {
                    **counts,
                    "unchanged": len(self.unchanged),
                    "conclusion_changed": len(self.conclusions_changed),
                },
                "unchanged": [{"analysis_id": a, "block": b} for a, b in self.unchanged],
                "studies_added": self.studies_added,
                "studies_removed": self.studies_removed,
            },
        }


_STATUSES: tuple[Status, ...] = ("changed", "added", "removed")


# ------------------------------------------------------------------- one version


def certainty_by_analysis(pkg: Package) -> dict[str, str]:
    """GRADE overall certainty per analysis id, from a ``certainty`` resource with the
    columns ``analysis_id`` and ``overall`` (empty without one: not assessed)."""
    if not pkg.has("certainty"):
        return {}
    frame = pkg.table("certainty")
    if not {"analysis_id", "overall"} <= {str(c) for c in frame.columns}:
        return {}
    out: dict[str, str] = {}
    for aid, overall in zip(frame["analysis_id"], frame["overall"], strict=True):
        if _missing(aid) or _missing(overall):
            continue
        out.setdefault(str(aid).strip(), str(overall).strip())
    return out


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(value != value) or not str(value).strip()  # NaN, pd.NA, ""
    except TypeError:  # pd.NA != pd.NA is ambiguous
        return True


def _float(value: float | None) -> float | None:
    return None if value is None else float(value)


def _metafor_snapshots(
    pkg: Package, plan: AnalysisPlan, certainty: dict[str, str]
) -> dict[tuple[str, str | None], Snapshot]:
    out: dict[tuple[str, str | None], Snapshot] = {}
    info = study_info(pkg)
    for analysis in metafor_analyses(plan):
        s = settings_for(plan, analysis)
        common = {
            "title": analysis.title,
            "engine": "metafor",
            "measure": analysis.measure,
            "ratio": analysis.measure in RATIO_MEASURES,
            "certainty": certainty.get(analysis.id),
        }
        try:
            blocks, _ = run_blocks(pkg, info, analysis, s)
        except TrialpoolError as exc:
            out[(analysis.id, None)] = Snapshot(**common, k=0, pooled=False, reason=str(exc))
            continue
        if not blocks:
            out[(analysis.id, None)] = Snapshot(
                **common, k=0, pooled=False, reason="no data for this outcome"
            )
        for b in blocks:
            r = b.result
            if isinstance(r, PoolResult):
                snap = Snapshot(
                    **common,
                    k=r.k,
                    pooled=True,
                    estimate=r.estimate,
                    ci_lower=r.ci_lower,
                    ci_upper=r.ci_upper,
                    p_value=r.p_value,
                    tau2=r.tau2,
                )
            else:
                assert isinstance(r, NotPooled)
                snap = Snapshot(**common, k=r.k, pooled=False, reason=r.reason)
            out[(analysis.id, b.label)] = snap
    return out


def _total_snapshot(t: ReviewTotal, common: dict[str, Any]) -> Snapshot:
    if not t.estimable:
        return Snapshot(**common, k=t.k, pooled=False, reason=t.reason)
    return Snapshot(
        **common,
        k=t.k,
        pooled=True,
        estimate=_float(t.estimate),
        ci_lower=_float(t.ci_lower),
        ci_upper=_float(t.ci_upper),
        p_value=_float(t.p_value),
        tau2=_float(t.tau2),
    )


def _revman_snapshots(
    pkg: Package, plan: AnalysisPlan, certainty: dict[str, str]
) -> dict[tuple[str, str | None], Snapshot]:
    out: dict[tuple[str, str | None], Snapshot] = {}
    analyses = [a for a in plan.analyses if isinstance(a, RevManAnalysis)]
    index = PackageIndex.of(pkg) if analyses else None
    for a in analyses:
        common = {
            "title": a.title,
            "engine": "revman",
            "measure": a.measure,
            "ratio": False,
            "certainty": certainty.get(a.id),
        }
        try:
            r: ReviewPoolResult = pool_review_analysis(pkg, a, index)
        except TrialpoolError as exc:
            out[(a.id, None)] = Snapshot(**common, k=0, pooled=False, reason=str(exc))
            continue
        common["ratio"] = r.ratio
        shows_totals = a.totals == "overall" or (a.totals == "subgroups" and a.subgroups)
        if not shows_totals:  # the review's Totals option: study rows only
            rows = sum(1 for s in r.studies if s.estimable)
            out[(a.id, None)] = Snapshot(
                **common, k=rows, pooled=False, reason="no totals (the review's Totals option)"
            )
            continue
        for sub in r.subgroups:
            out[(a.id, f"{sub.id} {sub.label}")] = _total_snapshot(sub, common)
        if a.totals == "overall":
            out[(a.id, None)] = _total_snapshot(r, common)
    return out


def version_results(
    descriptor: Path | str,
    *,
    plan: AnalysisPlan | Path | str | None = None,
    plan_origin: str | None = None,
    validate: bool = True,
) -> VersionResults:
    """Validate one version (unless already done), pool its plan (``plan``, else its own:
    :func:`~trialpool.analysis.plan_source.resolve_plan`) and keep every result.
    ``plan_origin`` says where a ``plan`` given in code came from."""
    descriptor = Path(descriptor)
    if validate:
        validate_package(descriptor).require_valid(descriptor)
    pkg = load_package(descriptor)
    the_plan, origin = resolve_plan(plan, pkg)
    origin = plan_origin or origin
    info = study_info(pkg)
    certainty = certainty_by_analysis(pkg)
    results = _revman_snapshots(pkg, the_plan, certainty)
    results.update(_metafor_snapshots(pkg, the_plan, certainty))
    order = {a.id: i for i, a in enumerate(the_plan.analyses)}  # the plan's order
    ordered = dict(sorted(results.items(), key=lambda kv: order.get(kv[0][0], len(order))))
    return VersionResults(
        descriptor=descriptor,
        name=pkg.name,
        version=pkg.version,
        plan_origin=origin,
        results=ordered,
        studies=info.order,
        labels=info.labels,
    )


# -------------------------------------------------------------------- comparison


def same_number(a: float | None, b: float | None) -> bool:
    """Equal within :data:`REL_TOL` and :data:`ABS_TOL` (both missing: equal)."""
    if a is None or b is None:
        return a is None and b is None
    if not (math.isfinite(a) and math.isfinite(b)):
        return a == b or (math.isnan(a) and math.isnan(b))
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)


def changed_fields(old: Snapshot, new: Snapshot) -> tuple[str, ...]:
    """What differs: k, measure, pooled, each number beyond the tolerance, certainty."""
    out: list[str] = []
    if old.k != new.k:
        out.append("k")
    if old.measure != new.measure:
        out.append("measure")
    if old.pooled != new.pooled:
        out.append("pooled")
    out.extend(n for n in NUMBERS if not same_number(getattr(old, n), getattr(new, n)))
    if old.certainty != new.certainty:
        out.append("certainty")
    return tuple(out)


def _side(s: Snapshot) -> int:
    """+1: the CI lies above no effect, -1: below, 0: it includes no effect."""
    assert s.ci_lower is not None and s.ci_upper is not None
    if s.ci_lower > s.null:
        return 1
    if s.ci_upper < s.null:
        return -1
    return 0


def _direction(s: Snapshot) -> int:
    assert s.estimate is not None
    return (s.estimate > s.null) - (s.estimate < s.null)


def conclusion_change(old: Snapshot, new: Snapshot) -> tuple[str, ...]:
    """Why the conclusion changed: the CI crossed no effect, or the estimate's direction
    flipped (empty when neither, or when either version has no pooled estimate)."""
    values = (old.estimate, old.ci_lower, old.ci_upper, new.estimate, new.ci_lower, new.ci_upper)
    if not (old.pooled and new.pooled) or any(v is None or not math.isfinite(v) for v in values):
        return ()
    reasons: list[str] = []
    null = f"{new.null:g}"
    before, after = _side(old), _side(new)
    if before != after:
        if before == 0:
            reasons.append(f"the CI now excludes no effect ({null})")
        elif after == 0:
            reasons.append(f"the CI now includes no effect ({null})")
        else:
            reasons.append(f"the CI moved to the other side of no effect ({null})")
    if _direction(old) * _direction(new) < 0:
        reasons.append("the direction of the estimate flipped")
    return tuple(reasons)


def compare_versions(old: VersionResults, new: VersionResults) -> ResultsDiff:
    """Match the results by analysis id and block and keep what changed."""
    diff = ResultsDiff(old=old, new=new)
    for key, snap in new.results.items():
        before = old.results.get(key)
        if before is None:
            diff.changes.append(ResultChange(key[0], key[1], "added", None, snap))
            continue
        changed = changed_fields(before, snap)
        if not changed:
            diff.unchanged.append(key)
            continue
        diff.changes.append(
            ResultChange(
                key[0], key[1], "changed", before, snap, changed, conclusion_change(before, snap)
            )
        )
    for key, snap in old.results.items():
        if key not in new.results:
            diff.changes.append(ResultChange(key[0], key[1], "removed", snap, None))
    return diff


def compare_results(
    old_descriptor: Path | str,
    new_descriptor: Path | str,
    *,
    new_plan: AnalysisPlan | Path | str | None = None,
    new_plan_origin: str | None = None,
    new_validated: bool = False,
) -> ResultsDiff:
    """Validate both versions (the old one first), pool each with its own plan (or
    ``new_plan`` for the new one, e.g. the plan a report runs) and compare their results."""
    old = version_results(old_descriptor)
    new = version_results(
        new_descriptor,
        plan=new_plan,
        plan_origin=new_plan_origin,
        validate=not new_validated,
    )
    return compare_versions(old, new)


# ------------------------------------------------------------------------ output


def fmt(value: float | None, digits: int = 3) -> str:
    """A number for the console (– when missing)."""
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:.{digits}f}"


def fmt_p(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def fmt_tau2(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:.2g}" if value != 0 and abs(value) < 0.01 else f"{value:.3f}"


def effect_text(s: Snapshot | None) -> str:
    """ "MEASURE estimate [lower, upper]", or why not pooled."""
    if s is None:
        return "–"
    if not s.pooled:
        return f"not pooled ({s.reason})" if s.reason else "not pooled"
    return f"{s.measure} {fmt(s.estimate)} [{fmt(s.ci_lower)}, {fmt(s.ci_upper)}]"


def certainty_text(s: Snapshot | None) -> str:
    if s is None:
        return "–"
    return (s.certainty or NOT_ASSESSED).replace("_", " ")


def old_new(old: str, new: str) -> str:
    """ "old → new", or the one value when both are the same."""
    return old if old == new else f"{old} → {new}"


def columns(c: ResultChange) -> dict[str, str]:
    """The cells of one changed result (old → new where they differ)."""
    o, n = c.old, c.new
    return {
        "k": old_new("–" if o is None else str(o.k), "–" if n is None else str(n.k)),
        "effect": old_new(effect_text(o), effect_text(n)),
        "p": old_new(fmt_p(o.p_value if o else None), fmt_p(n.p_value if n else None)),
        "tau2": old_new(fmt_tau2(o.tau2 if o else None), fmt_tau2(n.tau2 if n else None)),
        "certainty": old_new(certainty_text(o), certainty_text(n)),
    }


def tolerance_text() -> str:
    return (
        f"numbers within a relative {REL_TOL:g} (absolute {ABS_TOL:g}) count as unchanged; "
        f"no effect is {NO_EFFECT_TEXT}"
    )


def print_results(diff: ResultsDiff, console: Console) -> None:
    """The results that changed, one block of lines each, after the row diff."""
    console.print(
        f"[bold]Results[/bold] re-pooled: old plan {escape(diff.old.plan_origin)}; "
        f"new plan {escape(diff.new.plan_origin)}; {tolerance_text()}"
    )
    if not diff.changes:
        console.print(f"No result changed ({len(diff.unchanged)} compared).")
        return
    for c in diff.changes:
        cells = columns(c)
        style = {"changed": "yellow", "added": "green", "removed": "red"}[c.status]
        console.print(
            f"  [{style}]{c.status:<7}[/{style}] {escape(c.analysis_id)} {escape(c.title)}"
        )
        console.print(
            f"          k {cells['k']}; {escape(cells['effect'])}; P {cells['p']}; "
            f"tau² {cells['tau2']}; certainty {escape(cells['certainty'])}"
        )
        if c.conclusion_changed:
            console.print(
                "          [bold red]conclusion changed[/bold red]: "
                + escape("; ".join(c.conclusion))
            )
    console.print(
        f"{len(diff.changes)} result(s) changed, added or removed "
        f"({len(diff.conclusions_changed)} with a changed conclusion); "
        f"{len(diff.unchanged)} unchanged."
    )
