"""small_study.py against metafor's regtest and trimfill (tests/golden/small_study.json,
written by scripts/golden/small_study.R on metadat datasets)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from trialpool.errors import AnalysisError
from trialpool.stats import small_study

GOLDEN = Path(__file__).parents[1] / "golden" / "small_study.json"
_CASES: list[dict[str, Any]] = (
    json.loads(GOLDEN.read_text(encoding="utf-8"))["cases"] if GOLDEN.exists() else []
)
_IDS = [f"{c['dataset']}-{c['method']}{'-hksj' if c['hksj'] else ''}" for c in _CASES]

# closed-form quantities within 1e-8; anything after an iterative tau² within 1e-6
EXACT = 1e-8
ITER = 1e-6


def _tol(case: dict[str, Any]) -> float:
    return ITER if case["method"] in ("REML", "ML") else EXACT


def _check_regtest(got: small_study.RegTest, want: dict[str, Any], tol: float) -> None:
    assert got.zval == pytest.approx(want["zval"], abs=tol, rel=tol)
    assert got.pval == pytest.approx(want["pval"], abs=tol, rel=tol)
    assert got.df == want["df"]
    assert got.estimate == pytest.approx(want["est"], abs=tol)
    assert got.ci_lower == pytest.approx(want["ci_lb"], abs=tol)
    assert got.ci_upper == pytest.approx(want["ci_ub"], abs=tol)
    assert [got.estimate, got.slope] == pytest.approx(want["fit_beta"], abs=tol)
    assert got.slope_se == pytest.approx(want["fit_se"][1], abs=tol)
    assert got.tau2 == pytest.approx(want["fit_tau2"], abs=tol)


@pytest.mark.golden
@pytest.mark.parametrize("case", _CASES, ids=_IDS)
def test_regtest_matches_metafor(case: dict[str, Any]) -> None:
    kw = {"method": case["method"], "hksj": case["hksj"]}
    tol = _tol(case)
    _check_regtest(small_study.regtest(case["yi"], case["vi"], **kw), case["regtest_rma"], tol)
    got_vi = small_study.regtest(case["yi"], case["vi"], predictor="vi", **kw)
    _check_regtest(got_vi, case["regtest_rma_vi"], tol)
    got_lm = small_study.regtest(case["yi"], case["vi"], model="lm", **kw)
    _check_regtest(got_lm, case["regtest_lm"], EXACT)


@pytest.mark.golden
@pytest.mark.parametrize("case", _CASES, ids=_IDS)
@pytest.mark.parametrize("estimator", ["L0", "R0", "Q0"])
def test_trimfill_matches_metafor(case: dict[str, Any], estimator: str) -> None:
    want = next(t for t in case["trimfill"] if t["estimator"] == estimator)
    got = small_study.trimfill(
        case["yi"], case["vi"], method=case["method"], hksj=case["hksj"], estimator=estimator
    )
    tol = _tol(case)
    assert got.k0 == want["k0"]
    assert got.side == want["side"]
    if want["se_k0"] is None:
        assert np.isnan(got.se_k0)
    else:
        assert got.se_k0 == pytest.approx(want["se_k0"], abs=tol)
    if estimator == "R0":
        assert got.p_k0 == pytest.approx(want["p_k0"], abs=1e-12)
    else:
        assert got.p_k0 is None
    np.testing.assert_allclose(got.filled_yi, want["filled_yi"] or [], atol=tol, rtol=0)
    np.testing.assert_allclose(got.filled_vi, want["filled_vi"] or [], atol=EXACT, rtol=0)
    fit = got.fit
    assert fit.k == want["k"]  # type: ignore[attr-defined]
    assert fit.beta == pytest.approx(want["beta"], abs=tol)  # type: ignore[attr-defined]
    assert fit.se == pytest.approx(want["se"], abs=tol)  # type: ignore[attr-defined]
    assert fit.zval == pytest.approx(want["zval"], abs=tol, rel=tol)  # type: ignore[attr-defined]
    assert fit.pval == pytest.approx(want["pval"], abs=tol, rel=tol)  # type: ignore[attr-defined]
    assert fit.ci_lb == pytest.approx(want["ci_lb"], abs=tol)  # type: ignore[attr-defined]
    assert fit.ci_ub == pytest.approx(want["ci_ub"], abs=tol)  # type: ignore[attr-defined]
    assert fit.tau2 == pytest.approx(want["tau2"], abs=tol)  # type: ignore[attr-defined]
    assert fit.hksj == (want["test"] == "knha")  # type: ignore[attr-defined]


@pytest.mark.golden
def test_golden_covers_both_sides_and_no_fill() -> None:
    seen = {(t["side"], t["k0"] > 0) for c in _CASES for t in c["trimfill"]}
    assert {("left", True), ("right", True), ("right", False)} <= seen


@pytest.mark.golden
def test_funnel_data_is_centred_on_the_pooled_estimate() -> None:
    case = _CASES[0]
    fd = small_study.funnel_data(case["yi"], case["vi"], case["beta"], tau2=case["tau2"])
    np.testing.assert_allclose(fd.sei, np.sqrt(case["vi"]))
    assert fd.se_grid[0] == 0 and fd.se_grid[-1] == pytest.approx(max(fd.sei))
    assert fd.lower[0] == fd.upper[0] == pytest.approx(case["beta"])
    # pseudo 95% limits: estimate ± 1.959964·se (no tau² unless addtau2)
    half = fd.upper[-1] - case["beta"]
    assert half == pytest.approx(1.959963984540054 * max(fd.sei))
    with_tau = small_study.funnel_data(
        case["yi"], case["vi"], case["beta"], tau2=case["tau2"], addtau2=True
    )
    assert with_tau.upper[0] - case["beta"] == pytest.approx(
        1.959963984540054 * np.sqrt(case["tau2"])
    )


def test_small_inputs_are_refused() -> None:
    with pytest.raises(AnalysisError):
        small_study.regtest([0.1, 0.2], [0.01, 0.02])
    with pytest.raises(AnalysisError):
        small_study.trimfill([0.1], [0.01])
    with pytest.raises(AnalysisError):
        small_study.regtest([0.1, 0.2, 0.3], [0.01, 0.01, 0.01])  # sei constant: not full rank
    with pytest.raises(AnalysisError):
        small_study.meta_regression([0.1, 0.2], [0.01, -0.02], np.ones(2))
