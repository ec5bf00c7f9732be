"""Unit tests of trialpool.stats.pooling: API behaviour, edge cases and internal pieces.

Agreement with metafor on real data is in test_pooling_golden.py; here the values are
either exact identities of the formulas or hand-checkable small cases.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize, stats

from trialpool.errors import AnalysisError
from trialpool.stats.pooling import (
    MAXITER,
    THRESHOLD,
    UNIROOT_TOL,
    ConvergenceError,
    _zeroin,
    leave1out,
    result_from_fit,
    rma,
    rma_batch,
    rma_mh,
    subgroup_test,
)
from trialpool.stats.results import PoolResult, StudyEffect

Y = np.array([-0.9, -1.6, -1.3, -1.4, -0.2, -0.8, -1.6, 0.0, -0.5, -1.4])
V = np.array([0.33, 0.19, 0.42, 0.02, 0.05, 0.007, 0.22, 0.004, 0.056, 0.073])


def test_metafor_control_defaults() -> None:
    assert THRESHOLD == 1e-5
    assert MAXITER == 100
    assert math.isclose(UNIROOT_TOL, np.finfo(float).eps ** 0.25, rel_tol=1e-15)


def test_fe_is_inverse_variance_mean() -> None:
    fit = rma(Y, V, method="FE")
    w = 1 / V
    assert fit.beta == pytest.approx(np.sum(w * Y) / np.sum(w), rel=1e-13)
    assert fit.se == pytest.approx(math.sqrt(1 / np.sum(w)), rel=1e-13)
    q = np.sum(w * (Y - fit.beta) ** 2)
    assert fit.q == pytest.approx(q, rel=1e-12)
    assert fit.q_df == 9
    assert fit.q_p == pytest.approx(stats.chi2.sf(q, 9), rel=1e-10)
    assert fit.i2 == pytest.approx(100 * (q - 9) / q, rel=1e-12)
    assert fit.h2 == pytest.approx(q / 9, rel=1e-12)
    assert fit.weights == pytest.approx(100 * w / w.sum(), rel=1e-12)
    assert fit.weights.sum() == pytest.approx(100.0)
    assert fit.tau2 == 0.0 and fit.tau2_ci_lb is None and fit.tau2_ci_ub is None
    z = stats.norm.isf(0.025)
    assert fit.ci_lb == pytest.approx(fit.beta - z * fit.se, rel=1e-13)
    assert fit.pval == pytest.approx(2 * stats.norm.sf(abs(fit.beta / fit.se)), rel=1e-10)


def test_dl_formula_and_i2_from_tau2() -> None:
    fit = rma(Y, V, method="DL")
    w = 1 / V
    ybar = np.sum(w * Y) / w.sum()
    q = np.sum(w * (Y - ybar) ** 2)
    c = w.sum() - np.sum(w**2) / w.sum()
    tau2 = max(0.0, (q - 9) / c)
    assert fit.tau2 == pytest.approx(tau2, rel=1e-12)
    s2 = 9 / c  # metafor's "typical" within-study variance
    assert fit.i2 == pytest.approx(100 * tau2 / (tau2 + s2), rel=1e-12)
    assert fit.h2 == pytest.approx(tau2 / s2 + 1, rel=1e-12)
    wr = 1 / (V + tau2)
    assert fit.beta == pytest.approx(np.sum(wr * Y) / wr.sum(), rel=1e-12)
    z = stats.norm.isf(0.025)
    half = z * math.sqrt(1 / wr.sum() + tau2)
    assert (fit.pi_lb, fit.pi_ub) == pytest.approx((fit.beta - half, fit.beta + half), rel=1e-12)


def test_hksj_scales_variance_and_uses_t() -> None:
    plain = rma(Y, V, method="REML")
    kh = rma(Y, V, method="REML", hksj=True)
    assert kh.beta == plain.beta and kh.tau2 == plain.tau2
    w = 1 / (V + kh.tau2)
    s2 = np.sum(w * (Y - kh.beta) ** 2) / 9
    assert kh.s2w == pytest.approx(s2, rel=1e-12)
    assert kh.se == pytest.approx(plain.se * math.sqrt(s2), rel=1e-12)
    assert kh.pval == pytest.approx(2 * stats.t.sf(abs(kh.zval), 9), rel=1e-10)
    crit = stats.t.isf(0.025, 9)
    assert kh.ci_ub - kh.beta == pytest.approx(crit * kh.se, rel=1e-12)
    assert kh.pi_ub - kh.beta == pytest.approx(crit * math.sqrt(kh.se**2 + kh.tau2), rel=1e-12)


def test_hksj_is_not_truncated_at_one() -> None:
    """metafor's knha uses s² as is, even when it is below 1 (narrower than Wald)."""
    y = np.array([0.10, 0.11, 0.09, 0.10])
    v = np.array([0.04, 0.05, 0.03, 0.06])
    kh = rma(y, v, method="DL", hksj=True)
    assert kh.s2w < 1
    assert kh.se < rma(y, v, method="DL").se


@pytest.mark.parametrize("method", ["FE", "DL", "REML", "PM", "ML"])
def test_k1_pools_as_fixed_effect(method: str) -> None:
    fit = rma([0.4], [0.09], method=method)
    assert fit.k == 1
    assert fit.tau2 == 0.0
    assert fit.beta == pytest.approx(0.4) and fit.se == pytest.approx(0.3)
    assert (fit.q, fit.q_df, fit.q_p, fit.i2, fit.h2) == (0.0, 0, 1.0, 0.0, 1.0)
    assert fit.weights.tolist() == [100.0]
    assert fit.tau2_ci_lb is None  # metafor's confint stops at k = 1


def test_k1_with_hksj_has_no_inference() -> None:
    fit = rma([0.4], [0.09], method="REML", hksj=True)
    assert fit.beta == pytest.approx(0.4)
    assert all(math.isnan(x) for x in (fit.se, fit.pval, fit.ci_lb, fit.ci_ub, fit.pi_lb))
    assert any("k = 1" in m for m in fit.messages)


def test_k2_random_effects() -> None:
    fit = rma([-1.44, 0.01], [0.02, 0.004], method="DL")
    assert fit.k == 2 and fit.tau2 > 0
    assert fit.tau2_ci_lb is not None and fit.tau2_ci_ub is not None
    assert fit.tau2_ci_lb <= fit.tau2 <= fit.tau2_ci_ub


def test_fe_i2_is_zero_when_q_is_zero() -> None:
    """Deviation from metafor (NaN from 0/0): identical effects give I² = 0."""
    fit = rma([0.2, 0.2, 0.2], [0.1, 0.2, 0.3], method="FE")
    assert fit.q == 0.0
    assert fit.i2 == 0.0 and fit.h2 == 0.0


def test_pm_estimate_lies_in_its_q_profile_ci() -> None:
    fit = rma(Y, V, method="PM")
    assert fit.tau2_ci_lb is not None and fit.tau2_ci_ub is not None
    assert fit.tau2_ci_lb < fit.tau2 < fit.tau2_ci_ub
    w = 1 / (V + fit.tau2)
    mu = np.sum(w * Y) / w.sum()
    assert np.sum(w * (Y - mu) ** 2) == pytest.approx(9, abs=1e-2)  # Q(tau²) = k - 1


def test_q_profile_bounds_solve_the_chi2_equations() -> None:
    fit = rma(Y, V, method="REML")
    assert fit.tau2_ci_lb is not None and fit.tau2_ci_ub is not None

    def q_at(t: float) -> float:
        w = 1 / (V + t)
        mu = np.sum(w * Y) / w.sum()
        return float(np.sum(w * (Y - mu) ** 2))

    assert q_at(fit.tau2_ci_lb) == pytest.approx(stats.chi2.isf(0.025, 9), rel=1e-3)
    assert q_at(fit.tau2_ci_ub) == pytest.approx(stats.chi2.ppf(0.025, 9), rel=1e-3)
    narrow = rma(Y, V, method="REML", level=80)
    assert fit.tau2_ci_lb < narrow.tau2_ci_lb < narrow.tau2_ci_ub < fit.tau2_ci_ub  # type: ignore[operator]


def test_level_accepts_percent_or_fraction() -> None:
    a = rma(Y, V, method="DL", level=90)
    b = rma(Y, V, method="DL", level=0.90)
    assert (a.ci_lb, a.ci_ub, a.tau2_ci_lb) == (b.ci_lb, b.ci_ub, b.tau2_ci_lb)
    assert a.ci_ub - a.ci_lb < rma(Y, V, method="DL").ci_ub - rma(Y, V, method="DL").ci_lb


def test_ee_is_an_alias_of_fe() -> None:
    assert rma(Y, V, method="EE").beta == rma(Y, V, method="FE").beta
    assert rma(Y, V, method="EE").method == "FE"


@pytest.mark.parametrize(
    ("yi", "vi", "message"),
    [
        ([0.1, 0.2], [0.1], "differ in length"),
        ([], [], "k = 0"),
        ([0.1, np.nan], [0.1, 0.1], "finite"),
        ([0.1, 0.2], [0.1, 0.0], "positive"),
        ([0.1, 0.2], [0.1, -1.0], "positive"),
    ],
)
def test_rma_rejects_bad_input(yi: list[float], vi: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rma(yi, vi)


def test_rma_rejects_unknown_method() -> None:
    with pytest.raises(ValueError, match="unknown method"):
        rma(Y, V, method="MH")


def test_pm_beyond_tau2_max_raises_and_batch_flags() -> None:
    """metafor: "Value of 'tau2.max' too low" (mad(yi) = 0 so tau2.max = 100)."""
    y = [0.0, 0.0, 0.0, 0.0, 0.0, 1000.0]
    v = [0.01] * 6
    with pytest.raises(ConvergenceError, match=r"tau2\.max"):
        rma(y, v, method="PM")
    assert isinstance(ConvergenceError("x"), AnalysisError)
    batch = rma_batch(np.array([y, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]]), np.array([v, v]), method="PM")
    assert batch.converged.tolist() == [False, True]
    assert math.isnan(batch.beta[0]) and math.isfinite(batch.beta[1])


def test_rma_batch_handles_padding_and_empty_rows() -> None:
    y = np.array([[0.1, 0.5, np.nan], [np.nan, np.nan, np.nan], [0.3, np.nan, np.nan]])
    v = np.array([[0.1, 0.2, np.nan], [np.nan, np.nan, np.nan], [0.05, np.nan, np.nan]])
    res = rma_batch(y, v, method="REML", hksj=True)
    assert res.k.tolist() == [2, 0, 1]
    assert res.converged.tolist() == [True, False, True]
    single = rma([0.1, 0.5], [0.1, 0.2], method="REML", hksj=True)
    assert res.beta[0] == pytest.approx(single.beta, rel=1e-14)
    assert res.se[0] == pytest.approx(single.se, rel=1e-14)
    assert res.beta[2] == pytest.approx(0.3) and math.isnan(res.se[2])  # k = 1 with HKSJ
    assert math.isnan(res.beta[1])


def test_rma_batch_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="same shape"):
        rma_batch(np.zeros((2, 3)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="positive"):
        rma_batch(np.zeros((1, 2)), np.array([[1.0, -1.0]]))


def test_leave1out_refits_without_each_study() -> None:
    fits = leave1out(Y, V, method="DL", hksj=True)
    assert len(fits) == Y.size
    for i, fit in enumerate(fits):
        ref = rma(np.delete(Y, i), np.delete(V, i), method="DL", hksj=True)
        assert fit.k == Y.size - 1
        assert (fit.beta, fit.se, fit.tau2) == (ref.beta, ref.se, ref.tau2)
    with pytest.raises(ValueError, match="at least two"):
        leave1out([0.1], [0.1])


def test_subgroup_test_is_fixed_effect_q() -> None:
    est = np.array([-0.9, -0.5, -0.4])
    var = np.array([0.08, 0.08, 0.13])
    q, df, p = subgroup_test(est, var)
    w = 1 / var
    mu = np.sum(w * est) / w.sum()
    assert q == pytest.approx(np.sum(w * (est - mu) ** 2), rel=1e-12)
    assert df == 2 and p == pytest.approx(stats.chi2.sf(q, 2), rel=1e-10)
    assert subgroup_test([0.3, 0.3], [0.1, 0.2]) == (0.0, 1, 1.0)
    with pytest.raises(ValueError, match="two subgroups"):
        subgroup_test([0.3], [0.1])


# --- Mantel-Haenszel ------------------------------------------------------------------

AI = [4, 6, 3, 62, 33]
N1 = [123, 306, 231, 13598, 5069]
CI = [11, 29, 11, 248, 47]
N2 = [139, 303, 220, 12867, 5808]


def test_mh_rr_by_hand() -> None:
    a, n1, c, n2 = (np.array(x, dtype=float) for x in (AI, N1, CI, N2))
    n = n1 + n2
    r, s = np.sum(a * n2 / n), np.sum(c * n1 / n)
    fit = rma_mh(AI, N1, CI, N2, measure="RR")
    assert fit.beta == pytest.approx(math.log(r / s), rel=1e-13)
    var = np.sum(n1 * n2 * (a + c) / n**2 - a * c / n) / (r * s)
    assert fit.se == pytest.approx(math.sqrt(var), rel=1e-12)
    assert fit.weights == pytest.approx(100 * (c * n1 / n) / np.sum(c * n1 / n), rel=1e-12)
    assert fit.method == "MH" and fit.tau2 == 0 and fit.k == 5 and fit.q_df == 4
    assert (fit.pi_lb, fit.pi_ub) == (fit.ci_lb, fit.ci_ub)


def test_mh_rd_by_hand() -> None:
    a, n1, c, n2 = (np.array(x, dtype=float) for x in (AI, N1, CI, N2))
    w = n1 * n2 / (n1 + n2)
    fit = rma_mh(AI, N1, CI, N2, measure="RD")
    assert fit.beta == pytest.approx(np.sum(w * (a / n1 - c / n2)) / w.sum(), rel=1e-12)


def test_mh_double_zero_tables_keep_weight_but_leave_q() -> None:
    fit = rma_mh([2, 0, 5], [50, 40, 60], [4, 0, 9], [50, 42, 61], measure="OR")
    assert fit.k == 3 and fit.q_df == 1
    assert math.isnan(fit.yi[1]) and math.isnan(fit.vi[1])
    assert fit.weights[1] == 0.0
    rd = rma_mh([2, 0, 5], [50, 40, 60], [4, 0, 9], [50, 42, 61], measure="RD")
    assert rd.weights[1] > 0  # a double-zero table informs the RD
    assert rd.q_df == 1


def test_mh_zero_cell_gets_half_for_q_only() -> None:
    fit = rma_mh([0, 5], [20, 30], [3, 8], [20, 30], measure="OR")
    a, b, c, d = 0.5, 20.5, 3.5, 17.5
    assert fit.yi[0] == pytest.approx(math.log(a * d / (b * c)), rel=1e-13)
    assert fit.vi[0] == pytest.approx(1 / a + 1 / b + 1 / c + 1 / d, rel=1e-13)
    r = 0 + 5 * 22 / 60
    s = 20 * 3 / 40 + 25 * 8 / 60
    assert fit.beta == pytest.approx(math.log(r / s), rel=1e-13)  # raw counts


def test_mh_not_estimable_and_bad_counts() -> None:
    with pytest.raises(AnalysisError, match="not estimable"):
        rma_mh([0, 0], [10, 10], [1, 2], [10, 10], measure="RR")
    with pytest.raises(AnalysisError, match="not estimable"):
        rma_mh([0, 0], [10, 10], [0, 0], [10, 10], measure="OR")
    with pytest.raises(ValueError, match="ai <= n1i"):
        rma_mh([11], [10], [1], [10], measure="OR")
    with pytest.raises(ValueError, match="equal length"):
        rma_mh([1, 2], [10], [1], [10], measure="OR")
    with pytest.raises(ValueError, match="unknown measure"):
        rma_mh([1], [10], [1], [10], measure="SMD")  # type: ignore[arg-type]


def test_mh_or_reports_cmh_and_tarone() -> None:
    fit = rma_mh(AI, N1, CI, N2, measure="OR")
    assert fit.cmh is not None and fit.cmh > 0 and fit.cmh_p is not None
    assert fit.tarone is not None and fit.tarone_df == 4


# --- result_from_fit --------------------------------------------------------------------


def test_result_from_fit_ratio_scale() -> None:
    fit = rma(Y, V, method="REML", measure="OR")
    res = result_from_fit(fit, measure="OR", notes=["a note"])
    assert isinstance(res, PoolResult)
    assert res.estimate == pytest.approx(math.exp(fit.beta))
    assert (res.ci_lower, res.ci_upper) == pytest.approx((math.exp(fit.ci_lb), math.exp(fit.ci_ub)))
    assert (res.pi_lower, res.pi_upper) == pytest.approx((math.exp(fit.pi_lb), math.exp(fit.pi_ub)))
    assert res.se == fit.se and res.tau2 == fit.tau2 and res.q == fit.q and res.q_df == 9
    assert res.method == "REML" and res.measure == "OR" and res.k == 10
    assert res.notes == ["a note"]
    z = stats.norm.isf(0.025)
    s0 = res.studies[0]
    assert s0.study_id == "1" and s0.yi == Y[0] and s0.vi == V[0]
    assert s0.ci_lower == pytest.approx(math.exp(Y[0] - z * math.sqrt(V[0])))
    assert sum(s.weight for s in res.studies) == pytest.approx(100.0)
    dumped = res.model_dump(mode="json")
    assert dumped["estimate"] == pytest.approx(math.exp(fit.beta))


def test_result_from_fit_raw_scale_and_studies_kept() -> None:
    fit = rma(Y[:3], V[:3], method="DL", level=90)
    studies = [
        StudyEffect(study_id=f"s{i}", label=f"S{i}", yi=Y[i], vi=V[i], weight=0, derived=i == 2)
        for i in range(3)
    ]
    res = result_from_fit(fit, measure="MD", studies=studies)
    assert res.estimate == fit.beta and res.ci_lower == fit.ci_lb
    assert [s.study_id for s in res.studies] == ["s0", "s1", "s2"]
    assert [s.label for s in res.studies] == ["S0", "S1", "S2"]
    assert [s.derived for s in res.studies] == [False, False, True]
    assert [s.yi for s in res.studies] == Y[:3].tolist()
    assert [s.weight for s in res.studies] == pytest.approx(fit.weights.tolist())
    z = stats.norm.isf(0.05)
    assert res.studies[1].ci_upper == pytest.approx(Y[1] + z * math.sqrt(V[1]))
    with pytest.raises(ValueError, match="studies given"):
        result_from_fit(fit, measure="MD", studies=studies[:2])


def test_result_from_fit_keeps_callers_effects_for_mh() -> None:
    """MH leaves a double-zero table out of Q (NaN yi) but the caller's yi is kept."""
    fit = rma_mh([2, 0, 5], [50, 40, 60], [4, 0, 9], [50, 42, 61], measure="RR")
    yi = [math.log((2 / 50) / (4 / 50)), math.log((0.5 / 41) / (0.5 / 43)), 0.1]
    studies = [StudyEffect(study_id=str(i), yi=y, vi=0.5, weight=0) for i, y in enumerate(yi)]
    res = result_from_fit(fit, measure="RR", studies=studies)
    assert res.studies[1].yi == yi[1] and res.studies[1].weight == 0.0
    z = stats.norm.isf(0.025)
    assert res.studies[1].ci_lower == pytest.approx(math.exp(yi[1] - z * math.sqrt(0.5)))


def test_result_from_fit_has_no_pi_for_fe_and_mh() -> None:
    assert result_from_fit(rma(Y, V, method="FE"), measure="MD").pi_lower is None
    mh = result_from_fit(rma_mh(AI, N1, CI, N2, measure="RR"), measure="RR")
    assert mh.pi_lower is None and mh.method == "MH"
    assert mh.estimate == pytest.approx(math.exp(rma_mh(AI, N1, CI, N2, measure="RR").beta))


def test_result_from_fit_double_zero_study_has_no_ci() -> None:
    fit = rma_mh([2, 0, 5], [50, 40, 60], [4, 0, 9], [50, 42, 61], measure="OR")
    res = result_from_fit(fit, measure="OR")
    assert res.studies[1].ci_lower is None and res.studies[1].weight == 0.0


# --- R's uniroot port -------------------------------------------------------------------


def test_zeroin_finds_roots_within_tol() -> None:
    def f(x: np.ndarray, rows: np.ndarray) -> np.ndarray:
        targets = np.array([2.0, 3.0, 10.0])[rows]
        return x * x - targets

    lo, hi = np.zeros(3), np.full(3, 5.0)
    root, conv = _zeroin(f, lo, hi, f(lo, np.arange(3)), f(hi, np.arange(3)), 1e-10, 1000)
    assert conv.all()
    assert root == pytest.approx(np.sqrt([2.0, 3.0, 10.0]), abs=1e-9)
    ref = optimize.brentq(lambda x: x * x - 2.0, 0.0, 5.0, xtol=1e-10)
    assert root[0] == pytest.approx(ref, abs=1e-9)


def test_zeroin_root_at_endpoint_and_maxiter() -> None:
    def f(x: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return x - 1.0

    root, conv = _zeroin(
        f, np.array([1.0]), np.array([3.0]), np.array([0.0]), np.array([2.0]), 1e-8, 100
    )
    assert root[0] == 1.0 and conv[0]
    root, conv = _zeroin(
        f, np.array([0.0]), np.array([3.0]), np.array([-1.0]), np.array([2.0]), 0.0, 0
    )
    assert not conv[0]


def _huge_tau2_datasets() -> list[tuple[list[float], list[float]]]:
    """Eight studies whose effects spread by about 1e7 (tau² about 1e13 to 1e14): there,
    metafor's absolute threshold of 1e-5 is below the resolution of tau²."""
    out = []
    for seed in range(12):
        rng = np.random.default_rng(seed)
        out.append((rng.normal(0.0, 1e7, 8).tolist(), rng.uniform(0.5, 2.0, 8).tolist()))
    return out


def test_reml_converges_where_tau2_is_beyond_the_threshold_resolution() -> None:
    """Fisher scoring stops on a change of rounding size (it alternated between two
    neighbouring doubles until the iteration limit): the estimate is a root of the REML
    score, Y'PPY = tr P (Viechtbauer 2005, eq. 11), up to rounding; rma and rma_batch
    agree."""
    data = _huge_tau2_datasets()
    for yi, vi in data:
        fit = rma(yi, vi, method="REML")
        assert fit.tau2 > 1e12
        y, w = np.asarray(yi), 1.0 / (np.asarray(vi) + fit.tau2)
        res = y - np.sum(w * y) / np.sum(w)
        tr_p = np.sum(w) - np.sum(w * w) / np.sum(w)
        assert abs(np.sum(w * w * res * res) - tr_p) <= 1e-8 * tr_p
    batch = rma_batch(np.array([d[0] for d in data]), np.array([d[1] for d in data]))
    assert batch.converged.all()
    singles = [rma(yi, vi, method="REML").tau2 for yi, vi in data]
    assert np.allclose(batch.tau2, singles, rtol=1e-12, atol=0.0)
