"""Reproduction audit of an imported analysis: every number RevMan stored next to ours.

RevMan's own results are ``published_results`` rows of the review's source (overall,
per subgroup, per study, and the test for subgroup differences), matched to the plan's
analysis by ``analysis_id``. Each number is compared at the precision it was stored with:
full doubles (RevMan 5 files) to 1e-6 relative; numbers the source rounded (a Cochrane
data package prints 6 decimals, a RevMan 5 CSV export 8) to half a unit of the last
decimal the source kept (``RevManAnalysis.published_decimals``).

With HKSJ intervals RevMan Web stores, as "Effect P", the P of the Wald (normal) test of
the same random-effects estimate, not the P of its HKSJ t statistic (review CD007798,
data package specification 2.3, every HKSJ analysis): the stored P is compared with that
Wald P (``ReviewTotal.p_wald``), which trialpool computes alongside, while trialpool's own
``p_value`` stays the HKSJ t test's.

P of Chi² is computed as RevMan computes it (``stats.revman.p_chi2``: its incomplete gamma
series, with RevMan 5's or RevMan Web's gamma function), so it is compared like every
other number. Three kinds of difference are known and named, never hidden, all about a
single study:

* RevMan sometimes stores a Chi² of rounding noise (about 1e-31) for a single study and
  then P = 0 and I² = 100%, where trialpool's Chi² is 0, P = 1 and I² = 0;
* RevMan Web once printed such a Chi² as 0 (6 decimals) with P = 0, where it stores 1
  for its other single studies;
* with HKSJ, RevMan Web stores a t statistic of 0 for a single study (there is no t test
  on 0 df), where trialpool gives the study's z.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from trialpool.analysis.plan import RevManAnalysis
from trialpool.analysis.revman import PackageIndex, ReviewPoolResult, ReviewTotal
from trialpool.package.loader import Package

#: the note of a published result that RevMan marks not estimable (its numbers are blank:
#: RevMan stores placeholders there)
NOT_ESTIMABLE = "RevMan: not estimable"
FULL_DOUBLE_RTOL = 1e-6

#: quantity -> attribute of our totals
_TOTAL_FIELDS = {
    "estimate": "estimate",
    "ci_lower": "ci_lower",
    "ci_upper": "ci_upper",
    "z": "zval",
    "p_value": "p_value",
    "tau2": "tau2",
    "q": "q",
    "q_df": "q_df",
    "q_p": "q_p",
    "i2": "i2",
    "pi_lower": "pi_lower",
    "pi_upper": "pi_upper",
}


@dataclass(frozen=True)
class Check:
    """One stored number and ours."""

    analysis_id: str
    scope: str  # overall, subgroup, study, subgroup_difference
    where: str  # "total", "subgroup 1.1.2 (label)", "Brink 1951"
    quantity: str
    published: float | None
    ours: float | None
    tolerance: float
    agrees: bool
    known: str | None = None  # a named, known difference

    @property
    def status(self) -> str:
        """``agrees``, ``known`` (a named RevMan peculiarity) or ``differs``."""
        if self.agrees:
            return "agrees"
        return "known" if self.known else "differs"


def _float(value: Any) -> float | None:
    if value is None or value is pd.NA:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(out) else out


def tolerance(published: float, decimals: int | None) -> float:
    """How far ours may be from a number stored at ``decimals`` (None: a full double)."""
    if decimals is None:
        return max(FULL_DOUBLE_RTOL * abs(published), 1e-12)
    return 0.5 * 10.0 ** (-decimals) * (1 + 1e-9) + 1e-12 * abs(published)


def _check(
    a: RevManAnalysis,
    scope: str,
    where: str,
    quantity: str,
    published: float | None,
    ours: float | None,
    *,
    df: int | None = None,
    single_noise: bool = False,
    k: int | None = None,
) -> Check | None:
    if published is None:
        return None
    tol = tolerance(published, a.published_decimals)
    agrees = ours is not None and abs(ours - published) <= tol
    known = None
    if not agrees and ours is not None:
        if single_noise and quantity in ("q_p", "i2"):
            known = "RevMan's P and I² from a Chi² of rounding noise for a single study"
        elif quantity == "q_p" and df == 0 and published == 0:
            known = (
                "P of a Chi² on 0 df (a single study) printed as 0: RevMan Web stored P = 0 "
                "here and 1 for its other single studies; trialpool 1"
            )
        elif quantity == "z" and published == 0 and k == 1 and a.ci_method == "HKSJ":
            known = (
                "t statistic of a single study with HKSJ: RevMan Web stores 0 (no t test on "
                "0 df), trialpool the study's z"
            )
    return Check(a.id, scope, where, quantity, published, ours, tol, agrees, known)


def _published_rows(index: PackageIndex, a: RevManAnalysis) -> list[dict[str, Any]]:
    rows = index.published.get(a.id, [])
    if a.published_source_id is None:
        return rows
    return [r for r in rows if r.get("source_id") == a.published_source_id]


def _total_checks(
    a: RevManAnalysis, scope: str, where: str, row: dict[str, Any], ours: ReviewTotal | None
) -> list[Check]:
    out: list[Check] = []
    q = _float(row.get("q"))
    single_noise = q is not None and 0 < q < 1e-20
    df = _float(row.get("q_df"))
    for quantity, attr in _TOTAL_FIELDS.items():
        published = _float(row.get(quantity))
        value = None if ours is None else getattr(ours, attr)
        if quantity == "p_value" and ours is not None and ours.p_wald is not None:
            value = ours.p_wald  # RevMan Web's "Effect P" with HKSJ (see the docstring)
        if quantity == "q_df" and value is not None:
            value = float(value)
        check = _check(
            a,
            scope,
            where,
            quantity,
            published,
            value,
            df=None if df is None else int(df),
            single_noise=single_noise,
            k=None if ours is None else ours.k,
        )
        if check is not None:
            out.append(check)
    if scope == "subgroup":
        check = _check(
            a,
            scope,
            where,
            "weight",
            _float(row.get("weight")),
            None if ours is None else ours.weight,
        )
        if check is not None:
            out.append(check)
    return out


def _estimable_check(
    a: RevManAnalysis, scope: str, where: str, row: dict[str, Any], ours_estimable: bool
) -> Check | None:
    """RevMan's not-estimable marks (its numbers are blank) against ours."""
    if row.get("note") != NOT_ESTIMABLE:
        return None
    return Check(
        a.id, scope, where, "estimable", 0.0, float(ours_estimable), 0.0, not ours_estimable
    )


def reproduction_checks(
    pkg: Package, a: RevManAnalysis, result: ReviewPoolResult, index: PackageIndex | None = None
) -> list[Check]:
    """Every stored RevMan number of analysis ``a`` compared with ``result`` (give
    ``index``, ``PackageIndex.of(pkg)``, when auditing many analyses of one package)."""
    rows = _published_rows(PackageIndex.of(pkg) if index is None else index, a)
    out: list[Check] = []
    subgroups = {s.id: s for s in result.subgroups}
    studies = iter(result.studies)
    for row in rows:
        scope = row.get("scope") or "overall"
        if scope == "overall":
            flag = _estimable_check(a, scope, "total", row, result.estimable)
            if flag is not None:
                out.append(flag)
                continue
            ours = result if result.estimable else None
            out += _total_checks(a, "overall", "total", row, ours)
        elif scope == "subgroup":
            sub = subgroups.get(str(row.get("subgroup_id")))
            label = f"subgroup {row.get('subgroup_id')}" + (f" ({sub.label})" if sub else "")
            flag = _estimable_check(a, scope, label, row, sub is not None and sub.estimable)
            if flag is not None:
                out.append(flag)
                continue
            ours_sub = sub if sub is not None and sub.estimable else None
            out += _total_checks(a, "subgroup", label, row, ours_sub)
        elif scope == "subgroup_difference":
            test = result.subgroup_test
            values = {
                "q": None if test is None else test.q,
                "q_df": None if test is None else float(test.df),
                "q_p": None if test is None else test.p,
                "i2": None if test is None else test.i2,
            }
            for quantity, value in values.items():
                check = _check(
                    a,
                    scope,
                    "test for subgroup differences",
                    quantity,
                    _float(row.get(quantity)),
                    value,
                )
                if check is not None:
                    out.append(check)
        elif scope == "study":
            study = next(studies, None)
            if study is None:
                break
            where = study.label + (f" ({study.subgroup})" if study.subgroup else "")
            flag = _estimable_check(a, scope, where, row, study.estimable)
            if flag is not None:
                out.append(flag)
                continue
            se = None if study.vi is None else math.sqrt(study.vi)
            for quantity, value in (
                ("estimate", study.estimate),
                ("ci_lower", study.ci_lower),
                ("ci_upper", study.ci_upper),
                ("se", se),
                ("weight", study.weight if study.estimable else None),
            ):
                published = _float(row.get(quantity))
                if quantity == "weight" and published == 0 and not study.estimable:
                    continue
                check = _check(a, "study", where, quantity, published, value)
                if check is not None:
                    out.append(check)
    return out
