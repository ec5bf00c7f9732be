"""trialpool.stats.pooling against metafor's numbers on real metadat datasets.

The reference values are in tests/golden/pooling.json, written by
scripts/golden/pooling.R (run ``Rscript scripts/make_golden.R``): the inputs (yi, vi or
the 2×2 counts) and metafor 3.8-1's outputs. No number here is typed by hand.

Tolerances (``math.isclose``: |a - b| <= max(rel·|b|, abs)):

* closed form — FE, DL and Mantel-Haenszel estimates, SEs, tests, CIs, PIs, weights,
  and Cochran's Q, its p-value, I² and H² of FE, DL and MH: rel 1e-8, abs 1e-10;
* iterative — everything that depends on an iterated tau² (REML, ML, PM) and the
  Q-profile CI for tau² (metafor's confint): rel 1e-6, abs 1e-8.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from trialpool.stats.pooling import (
    leave1out,
    result_from_fit,
    rma,
    rma_batch,
    rma_mh,
    subgroup_test,
)

pytestmark = pytest.mark.golden

GOLDEN_PATH = Path(__file__).parents[1] / "golden" / "pooling.json"
GOLDEN: dict[str, Any] = json.loads(GOLDEN_PATH.read_text(encoding="utf-8"))

CLOSED = {"rel": 1e-8, "abs": 1e-10}
ITERATIVE = {"rel": 1e-6, "abs": 1e-8}
ITERATIVE_METHODS = {"REML", "ML", "PM"}


def close(actual: float | None, expected: float | None, tol: dict[str, float]) -> bool:
    """Equal within ``tol``; None/NaN only equals None/NaN."""
    a_missing = actual is None or (isinstance(actual, float) and math.isnan(actual))
    if expected is None:
        return a_missing
    if a_missing:
        return False
    assert actual is not None
    return math.isclose(float(actual), float(expected), rel_tol=tol["rel"], abs_tol=tol["abs"])


def check(label: str, actual: Any, expected: Any, tol: dict[str, float]) -> list[str]:
    """Compare scalars or arrays; return a list of mismatch descriptions."""
    if isinstance(expected, list) or isinstance(actual, np.ndarray):
        exp = np.atleast_1d(np.asarray(expected, dtype=float))
        act = np.atleast_1d(np.asarray(actual, dtype=float))
        if exp.shape != act.shape:
            return [f"{label}: shape {act.shape} != {exp.shape}"]
        bad = [
            i
            for i, (x, y) in enumerate(zip(act, exp, strict=True))
            if not close(float(x), None if math.isnan(y) else float(y), tol)
        ]
        return [f"{label}[{i}]: {act[i]!r} != {exp[i]!r}" for i in bad]
    if not close(actual, expected, tol):
        return [f"{label}: {actual!r} != metafor {expected!r}"]
    return []


UNI_FITS = [
    pytest.param(case, fit, id=f"{case['name']}-{fit['method']}-{fit['test']}-{fit['level']:g}")
    for case in GOLDEN["uni"]
    for fit in case["fits"]
]


@pytest.mark.parametrize(("case", "ref"), UNI_FITS)
def test_rma_matches_metafor(case: dict[str, Any], ref: dict[str, Any]) -> None:
    method = ref["method"]
    fit = rma(case["yi"], case["vi"], method=method, hksj=ref["test"] == "knha", level=ref["level"])
    tol = ITERATIVE if method in ITERATIVE_METHODS else CLOSED
    errors: list[str] = []
    assert fit.k == ref["k"] == len(np.atleast_1d(case["yi"]))
    for ours, theirs in [
        ("beta", "beta"),
        ("se", "se"),
        ("zval", "zval"),
        ("pval", "pval"),
        ("ci_lb", "ci_lb"),
        ("ci_ub", "ci_ub"),
        ("tau2", "tau2"),
        ("i2", "I2"),
        ("h2", "H2"),
        ("s2w", "s2w"),
    ]:
        errors += check(ours, getattr(fit, ours), ref[theirs], tol)
    errors += check("weights", fit.weights, ref["weights"], tol)
    # Cochran's Q does not depend on tau²: closed form for every method
    errors += check("q", fit.q, ref["QE"], CLOSED)
    errors += check("q_p", fit.q_p, ref["QEp"], CLOSED)
    assert fit.q_df == ref["k"] - 1
    # confint()$random: Q-profile CI (iterative for every method)
    errors += check("tau2_ci_lb", fit.tau2_ci_lb, ref["tau2_ci_lb"], ITERATIVE)
    errors += check("tau2_ci_ub", fit.tau2_ci_ub, ref["tau2_ci_ub"], ITERATIVE)
    if method == "FE":  # predict() gives no PI for equal-effects models; ours equals the CI
        assert ref["pi_lb"] is None
        assert (fit.pi_lb, fit.pi_ub) == (fit.ci_lb, fit.ci_ub)
    else:
        errors += check("pi_lb", fit.pi_lb, ref["pi_lb"], tol)
        errors += check("pi_ub", fit.pi_ub, ref["pi_ub"], tol)
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("ref", GOLDEN["mh"], ids=[m["name"] for m in GOLDEN["mh"]])
def test_rma_mh_matches_metafor(ref: dict[str, Any]) -> None:
    fit = rma_mh(ref["ai"], ref["n1i"], ref["ci"], ref["n2i"], measure=ref["measure"])
    assert fit.k == ref["k"]
    assert fit.q_df == ref["k_yi"] - 1
    errors: list[str] = []
    for ours, theirs in [
        ("beta", "beta"),
        ("se", "se"),
        ("zval", "zval"),
        ("pval", "pval"),
        ("ci_lb", "ci_lb"),
        ("ci_ub", "ci_ub"),
        ("q", "QE"),
        ("q_p", "QEp"),
        ("i2", "I2"),
        ("h2", "H2"),
    ]:
        errors += check(ours, getattr(fit, ours), ref[theirs], CLOSED)
    errors += check("weights", fit.weights, ref["weights"], CLOSED)
    errors += check("yi", fit.yi, [np.nan if x is None else x for x in ref["yi"]], CLOSED)
    errors += check("vi", fit.vi, [np.nan if x is None else x for x in ref["vi"]], CLOSED)
    if ref["measure"] == "OR":
        errors += check("cmh", fit.cmh, ref["MH"], CLOSED)
        errors += check("cmh_p", fit.cmh_p, ref["MHp"], CLOSED)
        errors += check("tarone", fit.tarone, ref["TA"], CLOSED)
        errors += check("tarone_p", fit.tarone_p, ref["TAp"], CLOSED)
    else:
        assert fit.cmh is None and fit.tarone is None
    assert fit.tau2 == 0.0 and fit.tau2_ci_lb is None
    assert not errors, "\n".join(errors)


def test_mh_golden_covers_zero_cells_and_double_zeros() -> None:
    """The MH cases exercise rma.mh's zero-cell and double-zero handling."""
    names = {m["name"] for m in GOLDEN["mh"] if m["k_yi"] < m["k"]}
    assert {"nielweise2007_MH_OR", "yusuf1985_t9_MH_OR"} <= names
    fit = rma_mh(
        *(GOLDEN["mh"][0][x] for x in ("ai", "n1i", "ci", "n2i")), measure="OR"
    )  # bcg, no zeros
    assert np.all(np.isfinite(fit.yi))


@pytest.mark.parametrize("ref", GOLDEN["leave1out"], ids=[c["name"] for c in GOLDEN["leave1out"]])
def test_leave1out_matches_metafor(ref: dict[str, Any]) -> None:
    fits = leave1out(ref["yi"], ref["vi"], method=ref["method"], hksj=ref["test"] == "knha")
    assert len(fits) == len(ref["yi"])
    tol = ITERATIVE if ref["method"] in ITERATIVE_METHODS else CLOSED
    errors: list[str] = []
    for ours, theirs in [
        ("beta", "estimate"),
        ("se", "se"),
        ("zval", "zval"),
        ("pval", "pval"),
        ("ci_lb", "ci_lb"),
        ("ci_ub", "ci_ub"),
        ("tau2", "tau2"),
        ("i2", "I2"),
        ("h2", "H2"),
    ]:
        errors += check(ours, np.array([getattr(f, ours) for f in fits]), ref[theirs], tol)
    errors += check("q", np.array([f.q for f in fits]), ref["QE"], CLOSED)
    errors += check("q_p", np.array([f.q_p for f in fits]), ref["QEp"], CLOSED)
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("ref", GOLDEN["subgroup"], ids=[c["name"] for c in GOLDEN["subgroup"]])
def test_subgroup_test_matches_metafor(ref: dict[str, Any]) -> None:
    q, df, p = subgroup_test(ref["estimates"], ref["variances"])
    assert df == ref["df"]
    assert not check("Q", q, ref["Q"], CLOSED) + check("p", p, ref["p"], CLOSED)


@pytest.mark.parametrize("method", ["FE", "DL", "REML", "PM", "ML"])
@pytest.mark.parametrize("hksj", [False, True])
def test_rma_batch_matches_metafor(method: str, hksj: bool) -> None:
    """All golden datasets (k = 1 ... 102) pooled in one NaN-padded batch."""
    cases = [c for c in GOLDEN["uni"] if not (hksj and c["k"] == 1)]
    kmax = max(c["k"] for c in cases)
    y = np.full((len(cases), kmax), np.nan)
    v = np.full((len(cases), kmax), np.nan)
    refs = []
    for i, case in enumerate(cases):
        yi = np.atleast_1d(np.asarray(case["yi"], dtype=float))
        y[i, : yi.size] = yi
        v[i, : yi.size] = np.atleast_1d(np.asarray(case["vi"], dtype=float))
        test = "knha" if hksj else "z"
        refs.append(
            next(
                f
                for f in case["fits"]
                if f["method"] == method and f["test"] == test and f["level"] == 95
            )
        )
    res = rma_batch(y, v, method=method, hksj=hksj)
    tol = ITERATIVE if method in ITERATIVE_METHODS else CLOSED
    errors: list[str] = []
    assert res.converged.all()
    for ours, theirs in [
        ("beta", "beta"),
        ("se", "se"),
        ("zval", "zval"),
        ("pval", "pval"),
        ("ci_lb", "ci_lb"),
        ("ci_ub", "ci_ub"),
        ("tau2", "tau2"),
        ("i2", "I2"),
        ("h2", "H2"),
    ]:
        errors += check(ours, getattr(res, ours), [r[theirs] for r in refs], tol)
    errors += check("q", res.q, [r["QE"] for r in refs], CLOSED)
    if method != "FE":
        errors += check("pi_lb", res.pi_lb, [r["pi_lb"] for r in refs], tol)
        errors += check("pi_ub", res.pi_ub, [r["pi_ub"] for r in refs], tol)
    assert list(res.k) == [r["k"] for r in refs]
    assert not errors, "\n".join(errors)


def test_result_from_fit_on_golden_rr() -> None:
    """The reported result: RR on the ratio scale, se on the log scale, weights copied."""
    case = next(c for c in GOLDEN["uni"] if c["name"] == "bcg_RR")
    ref = next(f for f in case["fits"] if f["method"] == "REML" and f["test"] == "z")
    fit = rma(case["yi"], case["vi"], method="REML")
    res = result_from_fit(fit, measure="RR")
    assert close(res.estimate, math.exp(ref["beta"]), ITERATIVE)
    assert close(res.ci_lower, math.exp(ref["ci_lb"]), ITERATIVE)
    assert close(res.ci_upper, math.exp(ref["ci_ub"]), ITERATIVE)
    assert close(res.pi_lower, math.exp(ref["pi_lb"]), ITERATIVE)
    assert close(res.pi_upper, math.exp(ref["pi_ub"]), ITERATIVE)
    assert close(res.se, ref["se"], ITERATIVE)
    assert close(res.i2, ref["I2"], ITERATIVE)
    assert close(res.tau2_ci_lower, ref["tau2_ci_lb"], ITERATIVE)
    assert [s.weight for s in res.studies] == pytest.approx(ref["weights"], rel=1e-6)
    assert [s.yi for s in res.studies] == pytest.approx(case["yi"], rel=1e-12)
