"""Pool one analysis of an imported review with RevMan's conventions (a plan's
``RevManAnalysis``), from the package's rows.

The analysis names its study rows (``comparison_ids``, in RevMan's order) and its
subgroups; each comparison gives the study and its experimental and control arms, whose
rows for the analysis's outcome and time point are the data (``effect_estimates`` for
generic inverse variance). The numbers come from :mod:`trialpool.stats.revman`, which
reproduces RevMan 5 and RevMan Web (Deeks & Higgins, *Statistical algorithms in Review
Manager 5*). A study row without usable data in the package is kept in the result as not
estimable, with the reason, as RevMan shows it.

The result keeps the keys of ``trialpool pool --json`` (ratio measures on the ratio scale;
``se``, ``yi`` and ``vi`` on the log scale; ``weight`` in percent, as RevMan's) and adds
``model``, ``subgroups`` and ``subgroup_test``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from trialpool.analysis.finite import finite, not_finite
from trialpool.analysis.plan import RevManAnalysis
from trialpool.errors import AnalysisError
from trialpool.package.loader import Package
from trialpool.stats.revman import (
    RevManFit,
    RevManSettings,
    revman_fit,
    revman_fit_subgroups,
)

_INPUTS = {
    "dichotomous": ("e1", "n1", "e2", "n2"),
    "continuous": ("m1", "sd1", "n1", "m2", "sd2", "n2"),
    "generic": ("estimate", "se"),
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReviewStudy(_Model):
    """One study row of the analysis (a study may have several)."""

    study_id: str
    comparison_id: str
    label: str
    subgroup: str | None = None
    estimable: bool
    reason: str | None = None
    no_data: bool = Field(
        False, description="The package holds no usable data for this row (not RevMan's verdict)."
    )
    yi: float | None = Field(None, description="Effect (natural log for ratio measures).")
    vi: float | None = Field(None, description="Its variance.")
    estimate: float | None = Field(None, description="Effect on the display scale.")
    ci_lower: float | None = None
    ci_upper: float | None = None
    weight: float = Field(description="Percent of the total, as RevMan's.")
    zero_cell_corrected: bool = False
    arm_data: dict[str, float | int | None] = Field(default_factory=dict)


class ReviewTotal(_Model):
    """A pooled total (overall or one subgroup), RevMan's numbers."""

    k: int
    estimable: bool
    reason: str | None = None
    estimate: float | None = None
    ci_lower: float | None = None
    ci_upper: float | None = None
    se: float | None = None
    zval: float | None = None
    p_value: float | None = None
    tau2: float | None = None
    i2: float | None = None
    q: float | None = None
    q_df: int | None = None
    q_p: float | None = None
    pi_lower: float | None = None
    pi_upper: float | None = None
    weight: float | None = None
    #: with HKSJ: the Wald test's P, which RevMan Web stores as its "Effect P"
    p_wald: float | None = None


class ReviewSubgroup(ReviewTotal):
    """One subgroup's total (``id`` is the review's number, C.O.S)."""

    id: str
    label: str


class SubgroupTest(_Model):
    """RevMan's test for subgroup differences."""

    q: float
    df: int
    p: float
    i2: float | None = None


class ReviewPoolResult(ReviewTotal):
    """One imported analysis pooled with the review's settings."""

    analysis_id: str
    measure: str
    method: str
    model: str
    ratio: bool = Field(description="Shown on the ratio scale (analysis on the log scale).")
    level: float
    studies: list[ReviewStudy] = Field(default_factory=list)
    subgroups: list[ReviewSubgroup] = Field(default_factory=list)
    subgroup_test: SubgroupTest | None = None
    notes: list[str] = Field(default_factory=list)


def settings_of(a: RevManAnalysis) -> RevManSettings:
    """The engine's settings for a plan analysis (AnalysisError when RevMan has no such
    combination)."""
    measure = "OR" if a.method == "PETO" and a.measure in ("PETO_OR", "OR") else a.measure
    return RevManSettings(
        data_type=a.data_type,
        method=a.method,
        measure=measure,
        random=a.random,
        tau2_method=a.tau2_method,
        ci_method=a.ci_method,
        level=a.level / 100,
        prediction=a.prediction,
        log_data=a.log_data,
        totals=a.totals,
        study_level=None if a.study_level is None else a.study_level / 100,
        software=a.software,
    )


def model_text(a: RevManAnalysis) -> str:
    """The model as RevMan prints it, e.g. ``M-H, Random (DL, Wald)``."""
    method = {"MH": "M-H", "IV": "IV", "PETO": "Peto"}[a.method]
    if not a.random:
        return f"{method}, Fixed"
    return f"{method}, Random ({a.tau2_method}, {a.ci_method})"


def _value(x: Any) -> Any:
    if x is None or x is pd.NA or (isinstance(x, float) and math.isnan(x)):
        return None
    return x.item() if isinstance(x, np.generic) else x


@dataclass
class PackageIndex:
    """The rows an imported analysis needs, indexed once per package (pooling every analysis
    of a large review then reads each table once, not once per analysis)."""

    comparisons: dict[str, dict[str, Any]]
    studies: dict[str, dict[str, Any]]
    #: (resource, outcome, timepoint) -> {(study_id, arm_id) or (comparison_id,): row}
    rows: dict[tuple[str, str, str], dict[tuple[Any, ...], dict[str, Any]]] = field(
        default_factory=dict
    )
    #: analysis_id -> published_results rows, in file order
    published: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def of(cls, pkg: Package) -> PackageIndex:
        """Index ``pkg``'s comparisons, studies and outcome rows."""

        def records(name: str) -> list[dict[str, Any]]:
            if not pkg.has(name):
                return []
            frame = pkg.table(name)
            names = [str(c) for c in frame.columns]
            # column by column (Series.tolist gives Python scalars): several times faster
            # than DataFrame.to_dict("records"), the same rows
            columns = [[_value(v) for v in frame[c].tolist()] for c in frame.columns]
            return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]

        index = cls(
            comparisons={str(r["comparison_id"]): r for r in records("comparisons")},
            studies={str(r["study_id"]): r for r in records("studies")},
        )
        for resource, key in (
            ("dichotomous_outcomes", ("study_id", "arm_id")),
            ("continuous_outcomes", ("study_id", "arm_id")),
            ("effect_estimates", ("comparison_id",)),
        ):
            for r in records(resource):
                group = index.rows.setdefault(
                    (resource, str(r["outcome"]), str(r["timepoint"])), {}
                )
                group[tuple(r[k] for k in key)] = r
        for r in records("published_results"):
            if r.get("analysis_id") is not None:
                index.published.setdefault(str(r["analysis_id"]), []).append(r)
        return index


def _study_inputs(
    index: PackageIndex, a: RevManAnalysis
) -> tuple[list[dict[str, Any]], list[dict[str, Any] | None], list[str]]:
    """Per comparison: (the comparison record, its inputs or None, why none)."""
    resource = "effect_estimates" if a.data_type == "generic" else f"{a.data_type}_outcomes"
    rows = index.rows.get((resource, a.outcome, a.timepoint), {})
    comps: list[dict[str, Any]] = []
    inputs: list[dict[str, Any] | None] = []
    reasons: list[str] = []
    for cid in a.comparison_ids:
        comp = index.comparisons.get(cid)
        if comp is None:
            raise AnalysisError(f"analysis {a.id}: comparison {cid!r} is not in comparisons")
        comps.append(comp)
        sid = comp["study_id"]
        data: dict[str, Any] | None = None
        if a.data_type == "generic":
            row = rows.get((cid,))
            if row is not None:
                data = {"estimate": float(row["estimate"]), "se": float(row["se"])}
        else:
            r1 = rows.get((sid, comp["experimental_arm_id"]))
            r2 = rows.get((sid, comp["control_arm_id"]))
            if r1 is not None and r2 is not None:
                if a.data_type == "dichotomous":
                    e1, n1 = int(r1["events"]), int(r1["total"])
                    e2, n2 = int(r2["events"]), int(r2["total"])
                    if a.swap_events:
                        e1, e2 = n1 - e1, n2 - e2
                    data = {"e1": e1, "n1": n1, "e2": e2, "n2": n2}
                else:
                    if r1.get("statistic") != "mean_sd" or r2.get("statistic") != "mean_sd":
                        raise AnalysisError(
                            f"analysis {a.id}: study {sid} needs mean and SD rows (RevMan's "
                            "conventions pool means and SDs only)"
                        )
                    data = {
                        "m1": float(r1["mean"]),
                        "sd1": float(r1["sd"]),
                        "n1": int(r1["n"]),
                        "m2": float(r2["mean"]),
                        "sd2": float(r2["sd"]),
                        "n2": int(r2["n"]),
                    }
        inputs.append(data)
        reasons.append("" if data is not None else "no usable data for both arms in the package")
    return comps, inputs, reasons


def _total(fit: RevManFit) -> dict[str, Any]:
    return {
        "k": fit.k,
        "estimable": fit.estimable,
        "reason": fit.reason,
        "estimate": fit.estimate,
        "ci_lower": fit.ci_lower,
        "ci_upper": fit.ci_upper,
        "se": fit.se,
        "zval": fit.z,
        "p_value": fit.p,
        "tau2": fit.tau2,
        "i2": fit.i2,
        "q": fit.chi2,
        "q_df": fit.df,
        "q_p": fit.p_chi2,
        "pi_lower": fit.pi_lower,
        "pi_upper": fit.pi_upper,
        "weight": fit.weight,
        "p_wald": fit.p_wald,
    }


def pool_review_analysis(
    pkg: Package, a: RevManAnalysis, index: PackageIndex | None = None
) -> ReviewPoolResult:
    """Pool ``a`` from ``pkg`` with the review's settings (RevMan's conventions).

    Give ``index`` (``PackageIndex.of(pkg)``) when pooling many analyses of one package.
    """
    settings = settings_of(a)
    index = PackageIndex.of(pkg) if index is None else index
    comps, inputs, reasons = _study_inputs(index, a)
    for comp, data in zip(comps, inputs, strict=True):
        why = None if data is None else not_finite(data)
        if why is not None:
            raise AnalysisError(f"analysis {a.id}: study {comp['study_id']}: {why}")
    subgroup_of = {cid: s.id for s in a.subgroups for cid in s.comparison_ids}
    labels = {s.id: s.label for s in a.subgroups}
    usable = [i for i, d in enumerate(inputs) if d is not None]
    names = _INPUTS[a.data_type]
    data = {n: np.array([inputs[i][n] for i in usable], dtype=float) for n in names}  # type: ignore[index]
    notes: list[str] = []
    missing = [i for i, d in enumerate(inputs) if d is None]
    if missing:
        notes.append(
            f"{len(missing)} study row(s) without usable data in the package: not estimable"
        )
    fitted: list[Any] = [None] * len(inputs)
    subgroup_fits: list[tuple[str, RevManFit]] = []
    test: SubgroupTest | None = None
    if a.subgroups:
        groups = [subgroup_of[a.comparison_ids[i]] for i in usable]
        if usable:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                sg = revman_fit_subgroups(data, groups, settings)
            overall = sg.overall
            subgroup_fits = list(sg.subgroups)
            if sg.test_chi2 is not None:
                test = SubgroupTest(
                    q=sg.test_chi2,
                    df=int(sg.test_df or 0),
                    p=float(sg.test_p or 0.0),
                    i2=sg.test_i2,
                )
        else:
            overall = None
    else:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            overall = revman_fit(data, settings) if usable else None
    if overall is not None:
        for j, i in enumerate(usable):
            fitted[i] = overall.studies[j]
            why = not_finite(inputs[i] or {}, (fitted[i].yi, fitted[i].se))
            if why is not None:
                sid = comps[i]["study_id"]
                raise AnalysisError(f"analysis {a.id}: study {sid}: {why}")
        for fit in [overall, *(f for _, f in subgroup_fits)]:
            numbers = (fit.estimate, fit.ci_lower, fit.ci_upper, fit.se)
            if fit.estimable and not all(x is None or finite(x) for x in numbers):
                raise AnalysisError(
                    f"analysis {a.id}: the pooled estimate is not a finite number (the data "
                    "hold values too large to pool); check the package's values"
                )
    studies: list[ReviewStudy] = []
    for i, comp in enumerate(comps):
        sid = str(comp["study_id"])
        st = index.studies.get(sid, {})
        label = str(st.get("label") or sid)
        fit = fitted[i]
        common = {
            "study_id": sid,
            "comparison_id": a.comparison_ids[i],
            "label": label,
            "subgroup": subgroup_of.get(a.comparison_ids[i]),
            "arm_data": inputs[i] or {},
        }
        if fit is None:
            studies.append(
                ReviewStudy(**common, estimable=False, reason=reasons[i], no_data=True, weight=0.0)
            )
            continue
        studies.append(
            ReviewStudy(
                **common,
                estimable=fit.estimable,
                reason=fit.reason,
                yi=fit.yi,
                vi=None if fit.se is None else fit.se**2,
                estimate=fit.estimate,
                ci_lower=fit.ci_lower,
                ci_upper=fit.ci_upper,
                weight=fit.weight,
                zero_cell_corrected=fit.zero_cell_corrected,
            )
        )
    if overall is None:
        total: dict[str, Any] = {
            "k": 0,
            "estimable": False,
            "reason": "no study row has usable data in the package",
        }
    else:
        total = _total(overall)
    members: dict[str, int] = {}
    for cid in a.comparison_ids:
        if cid in subgroup_of:
            members[subgroup_of[cid]] = members.get(subgroup_of[cid], 0) + 1
    fits = dict(subgroup_fits)
    subgroups = []
    for s in a.subgroups:
        fit = fits.get(s.id)
        body = (
            _total(fit)
            if fit is not None
            else {
                "k": 0,
                "estimable": False,
                "reason": "no study row has usable data in the package",
            }
        )
        subgroups.append(ReviewSubgroup(id=s.id, label=labels[s.id], **body))
    return ReviewPoolResult(
        analysis_id=a.id,
        measure=a.measure,
        method=a.method,
        model=model_text(a),
        ratio=settings.ratio,
        level=a.level,
        studies=studies,
        subgroups=subgroups,
        subgroup_test=test,
        notes=notes,
        **total,
    )


def review_result_json(result: ReviewPoolResult) -> dict[str, Any]:
    """The ``trialpool pool --analysis ID --json`` object: today's keys (``studies`` with
    ``study_id``, ``yi``, ``vi``, ``weight``), plus ``model``, ``subgroups`` (``id``,
    ``label``, ``k``, ``estimate``, ``ci_lower``, ``ci_upper``, ``tau2``, ``i2``, ``q``) and
    ``subgroup_test`` (``q``, ``df``, ``p``)."""
    out = result.model_dump(mode="json")
    out["k"] = result.k
    for s in out["subgroups"]:
        s.pop("weight", None)
    return out
