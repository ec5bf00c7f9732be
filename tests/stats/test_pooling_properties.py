"""Property-based tests (hypothesis) of trialpool.stats.pooling.

Properties that any correct implementation of these models has, checked on random
data: a study with (near-)zero weight changes nothing; with homogeneous data every
estimator gives tau² = 0 and the fixed-effect result; reversing the direction of all
effects negates the estimate and leaves heterogeneity unchanged; the vectorised
``rma_batch`` equals ``rma`` analysis by analysis.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from trialpool.errors import AnalysisError
from trialpool.stats.pooling import ConvergenceError, RmaFit, rma, rma_batch, rma_mh

METHODS = ["FE", "DL", "REML", "PM", "ML"]
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

effects = st.floats(-3.0, 3.0, allow_nan=False, allow_infinity=False)
variances = st.floats(0.005, 2.0, allow_nan=False, allow_infinity=False)


@st.composite
def datasets(draw: st.DrawFn, min_k: int = 2, max_k: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """(yi, vi) of one meta-analysis, k studies."""
    k = draw(st.integers(min_k, max_k))
    yi = np.array(draw(st.lists(effects, min_size=k, max_size=k)))
    vi = np.array(draw(st.lists(variances, min_size=k, max_size=k)))
    return yi, vi


def fit_or_none(yi: np.ndarray, vi: np.ndarray, **kw: object) -> RmaFit | None:
    try:
        return rma(yi, vi, **kw)  # type: ignore[arg-type]
    except ConvergenceError:
        return None


def he_start(yi: np.ndarray, vi: np.ndarray) -> float:
    """metafor's starting value for REML/ML Fisher scoring (Hedges estimator, >= 0)."""
    k = yi.size
    return max(0.0, (np.sum((yi - yi.mean()) ** 2) - vi.sum() * (k - 1) / k) / (k - 1))


# --- a study with (near-)zero weight changes nothing -----------------------------------


@SETTINGS
@given(data=datasets(), y_new=effects)
def test_zero_weight_study_changes_nothing_fe(
    data: tuple[np.ndarray, np.ndarray], y_new: float
) -> None:
    yi, vi = data
    v_new = 1e15 * vi.max()
    a = rma(yi, vi, method="FE")
    b = rma(np.append(yi, y_new), np.append(vi, v_new), method="FE")
    assert b.beta == pytest.approx(a.beta, rel=1e-9, abs=1e-9)
    assert b.se == pytest.approx(a.se, rel=1e-9)
    assert b.q == pytest.approx(a.q, rel=1e-9, abs=1e-9)
    assert b.weights[:-1] == pytest.approx(a.weights, rel=1e-9, abs=1e-9)
    assert b.weights[-1] < 1e-9


@st.composite
def datasets_with_zero_start(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Data whose Hedges starting value is 0 by construction (drawn, not filtered).

    Every yi lies within 0.3·sqrt(min vi) of a common centre, so Σ(yi - ȳ)² is at most
    0.36·k·min(vi) <= (k - 1)/k·Σvi for k >= 2, which makes the Hedges estimate <= 0.
    """
    k = draw(st.integers(2, 12))
    vi = np.array(draw(st.lists(variances, min_size=k, max_size=k)))
    centre = draw(effects)
    unit = st.floats(-1.0, 1.0, allow_nan=False, allow_infinity=False)
    offsets = np.array(draw(st.lists(unit, min_size=k, max_size=k)))
    return centre + 0.3 * math.sqrt(vi.min()) * offsets, vi


@SETTINGS
@given(data=datasets_with_zero_start(), y_new=effects, method=st.sampled_from(["REML", "ML"]))
def test_zero_weight_study_changes_nothing_reml_ml(
    data: tuple[np.ndarray, np.ndarray], y_new: float, method: str
) -> None:
    """REML and ML likelihoods are unchanged by a study of infinite variance.

    metafor's Fisher scoring starts at the Hedges estimate, which a huge-variance study
    pulls to 0; its answer can depend on the start (e.g. ML stopping at tau² = 0), so the
    comparison is made where the original data's start is 0 as well.
    """
    yi, vi = data
    assume(he_start(yi, vi) == 0.0)
    a = fit_or_none(yi, vi, method=method)
    b = fit_or_none(np.append(yi, y_new), np.append(vi, 1e12 * vi.max()), method=method)
    assume(a is not None and b is not None)
    assert a is not None and b is not None
    assert b.tau2 == pytest.approx(a.tau2, rel=1e-6, abs=1e-8)
    assert b.beta == pytest.approx(a.beta, rel=1e-6, abs=1e-8)
    assert b.se == pytest.approx(a.se, rel=1e-6)


# --- homogeneous data: tau² = 0 and every estimator is the fixed-effect model ----------


@SETTINGS
@given(
    vi=st.lists(variances, min_size=2, max_size=12),
    mu=effects,
    hksj=st.booleans(),
)
def test_identical_effects_give_tau2_zero_for_all(vi: list[float], mu: float, hksj: bool) -> None:
    v = np.array(vi)
    y = np.full(v.size, mu)
    fe = rma(y, v, method="FE", hksj=hksj)
    for method in METHODS:
        fit = rma(y, v, method=method, hksj=hksj)
        assert fit.tau2 == 0.0, method
        assert fit.q == pytest.approx(0.0, abs=1e-20)  # Q of yi - mean(yi): rounding only
        assert fit.i2 == pytest.approx(0.0, abs=1e-12)
        assert (fit.beta, fit.se, fit.ci_lb, fit.ci_ub) == (fe.beta, fe.se, fe.ci_lb, fe.ci_ub)
        assert fit.pi_lb == fe.ci_lb and fit.pi_ub == fe.ci_ub
        if method != "FE":
            assert fit.tau2_ci_lb == 0.0 and fit.tau2_ci_ub == 0.0  # Q(0) below both bounds


@SETTINGS
@given(
    vi=st.lists(variances, min_size=2, max_size=12),
    z=st.lists(st.floats(-1.0, 1.0), min_size=12, max_size=12),
    mu=effects,
    spread=st.floats(0.0, 0.6),
    hksj=st.booleans(),
)
def test_homogeneous_data_all_estimators_agree(
    vi: list[float], z: list[float], mu: float, spread: float, hksj: bool
) -> None:
    """Q <= k - 1 makes DL and PM zero; any estimator at tau² = 0 is the FE model."""
    v = np.array(vi)
    y = mu + spread * np.array(z[: v.size]) * np.sqrt(v)
    fe = rma(y, v, method="FE", hksj=hksj)
    assert fe.q is not None
    assume(fe.q < v.size - 1)
    zero = []
    for method in ["DL", "PM", "REML", "ML"]:
        fit = fit_or_none(y, v, method=method, hksj=hksj)
        if fit is None:
            continue
        if method in ("DL", "PM"):
            assert fit.tau2 == 0.0, method
        if fit.tau2 == 0.0:
            zero.append(method)
            assert fit.beta == pytest.approx(fe.beta, rel=1e-12, abs=1e-14)
            assert fit.se == pytest.approx(fe.se, rel=1e-12)
            assert fit.pval == pytest.approx(fe.pval, rel=1e-9, abs=1e-300, nan_ok=True)
            assert fit.i2 == 0.0 and fit.h2 == 1.0
            assert fit.weights == pytest.approx(fe.weights, rel=1e-12)
    assert {"DL", "PM"} <= set(zero)


# --- reversing the direction of the effects --------------------------------------------


@SETTINGS
@given(data=datasets(min_k=1), method=st.sampled_from(METHODS), hksj=st.booleans())
def test_negating_effects_negates_estimate(
    data: tuple[np.ndarray, np.ndarray], method: str, hksj: bool
) -> None:
    yi, vi = data
    a = fit_or_none(yi, vi, method=method, hksj=hksj)
    b = fit_or_none(-yi, vi, method=method, hksj=hksj)
    assert (a is None) == (b is None)  # convergence does not depend on the direction
    if a is None or b is None:
        return
    assert b.tau2 == pytest.approx(a.tau2, rel=1e-12, abs=1e-15)
    assert b.beta == pytest.approx(-a.beta, rel=1e-12, abs=1e-15)
    assert b.se == pytest.approx(a.se, rel=1e-12, nan_ok=True)
    assert b.zval == pytest.approx(-a.zval, rel=1e-12, abs=1e-12, nan_ok=True)
    assert b.pval == pytest.approx(a.pval, rel=1e-9, nan_ok=True)
    assert b.ci_lb == pytest.approx(-a.ci_ub, rel=1e-12, abs=1e-14, nan_ok=True)
    assert b.pi_ub == pytest.approx(-a.pi_lb, rel=1e-12, abs=1e-14, nan_ok=True)
    assert b.q == pytest.approx(a.q, rel=1e-12, abs=1e-14)
    assert b.i2 == pytest.approx(a.i2, rel=1e-9, abs=1e-12)
    assert b.weights == pytest.approx(a.weights, rel=1e-12)
    if a.tau2_ci_ub is not None:
        assert b.tau2_ci_ub == pytest.approx(a.tau2_ci_ub, rel=1e-9, abs=1e-12)


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[int], list[int], list[int], list[int]]:
    k = draw(st.integers(1, 8))
    n1 = draw(st.lists(st.integers(1, 300), min_size=k, max_size=k))
    n2 = draw(st.lists(st.integers(1, 300), min_size=k, max_size=k))
    ai = [draw(st.integers(0, n)) for n in n1]
    ci = [draw(st.integers(0, n)) for n in n2]
    return ai, n1, ci, n2


@SETTINGS
@given(t=tables(), measure=st.sampled_from(["RR", "OR", "RD"]))
def test_mh_swapping_groups_negates_estimate(
    t: tuple[list[int], list[int], list[int], list[int]], measure: str
) -> None:
    ai, n1, ci, n2 = t
    try:
        a = rma_mh(ai, n1, ci, n2, measure=measure)  # type: ignore[arg-type]
    except AnalysisError:
        with pytest.raises(AnalysisError):
            rma_mh(ci, n2, ai, n1, measure=measure)  # type: ignore[arg-type]
        return
    b = rma_mh(ci, n2, ai, n1, measure=measure)  # type: ignore[arg-type]
    assert b.beta == pytest.approx(-a.beta, rel=1e-12, abs=1e-15)
    assert b.se**2 == pytest.approx(a.se**2, rel=1e-9, abs=1e-14)  # variances: sqrt hides noise
    assert b.q == pytest.approx(a.q, rel=1e-9, abs=1e-12)
    assert b.q_df == a.q_df
    if measure == "RD":  # weights n1·n2/N are symmetric
        assert b.weights == pytest.approx(a.weights, rel=1e-12)


# --- rma_batch equals rma ----------------------------------------------------------------


@SETTINGS
@given(
    data=st.lists(datasets(min_k=1, max_k=10), min_size=1, max_size=8),
    method=st.sampled_from(METHODS),
    hksj=st.booleans(),
    level=st.sampled_from([95.0, 90.0, 99.0]),
)
def test_batch_equals_rma(
    data: list[tuple[np.ndarray, np.ndarray]], method: str, hksj: bool, level: float
) -> None:
    kmax = max(y.size for y, _ in data)
    y = np.full((len(data), kmax), np.nan)
    v = np.full((len(data), kmax), np.nan)
    for i, (yi, vi) in enumerate(data):
        y[i, : yi.size] = yi
        v[i, : vi.size] = vi
    res = rma_batch(y, v, method=method, hksj=hksj, level=level)
    for i, (yi, vi) in enumerate(data):
        fit = fit_or_none(yi, vi, method=method, hksj=hksj, level=level, tau2_ci=False)
        assert res.k[i] == yi.size
        if fit is None:
            assert not res.converged[i]
            continue
        assert res.converged[i]
        for name in ["beta", "se", "zval", "pval", "ci_lb", "ci_ub", "tau2", "pi_lb", "pi_ub"]:
            got, want = float(getattr(res, name)[i]), float(getattr(fit, name))
            if math.isnan(want):
                assert math.isnan(got), name
            else:
                assert got == pytest.approx(want, rel=1e-9, abs=1e-12), name
        assert res.q[i] == pytest.approx(fit.q, rel=1e-9, abs=1e-12)
        assert res.i2[i] == pytest.approx(fit.i2, rel=1e-9, abs=1e-12)
        assert res.h2[i] == pytest.approx(fit.h2, rel=1e-9, abs=1e-12)
        assert res.q_p[i] == pytest.approx(fit.q_p, rel=1e-9, abs=1e-12)
