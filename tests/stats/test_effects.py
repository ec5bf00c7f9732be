"""effects.py: escalc against metafor (golden), conversions against papers and properties.

Golden numbers: tests/golden/effects.json, written by scripts/golden/effects.R from
metafor's escalc on metadat datasets. Paper numbers are cited where they are used.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from trialpool.errors import AnalysisError
from trialpool.stats import effects

GOLDEN = Path(__file__).parents[1] / "golden" / "effects.json"


def _golden() -> dict[str, Any]:
    return json.loads(GOLDEN.read_text(encoding="utf-8"))


def _nan(values: list[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _case_id(case: dict[str, Any]) -> str:
    args = case["args"] or {}
    extra = ",".join(f"{k}={v}" for k, v in sorted(args.items()))
    return f"{case['dataset']}-{case['measure']}" + (f"-{extra}" if extra else "")


_CASES = _golden()["escalc"] if GOLDEN.exists() else []


@pytest.mark.golden
@pytest.mark.parametrize("case", _CASES, ids=[_case_id(c) for c in _CASES])
def test_escalc_matches_metafor(case: dict[str, Any]) -> None:
    inputs = case["inputs"]
    args = case["args"] or {}
    if case["measure"] in ("MD", "SMD"):
        res = effects.escalc_continuous(
            case["measure"],
            inputs["m1i"],
            inputs["sd1i"],
            inputs["n1i"],
            inputs["m2i"],
            inputs["sd2i"],
            inputs["n2i"],
        )
    else:
        res = effects.escalc_binary(
            case["measure"],
            inputs["ai"],
            inputs["n1i"],
            inputs["ci"],
            inputs["n2i"],
            add=args.get("add", 0.5),
            to=args.get("to", "only0"),
            drop00=args.get("drop00", False),
        )
    np.testing.assert_allclose(res.yi, _nan(case["yi"]), rtol=0, atol=1e-8)
    np.testing.assert_allclose(res.vi, _nan(case["vi"]), rtol=1e-10, atol=1e-8)


@pytest.mark.golden
def test_golden_covers_zero_cells_and_double_zeros() -> None:
    """The golden set really exercises the corrections it is meant to test."""
    flagged = set()
    for case in _CASES:
        if case["measure"] in ("MD", "SMD"):
            continue
        i = case["inputs"]
        res = effects.escalc_binary(case["measure"], i["ai"], i["n1i"], i["ci"], i["n2i"])
        if res.zero_cell_corrected.any():
            flagged.add(("zero", case["dataset"]))
        if res.double_zero.any():
            flagged.add(("double", case["dataset"]))
    assert ("zero", "dat.li2007") in flagged
    assert ("double", "dat.nielweise2007") in flagged
    assert ("double", "dat.hahn2001") in flagged


def test_zero_cell_flags_follow_escalc_defaults() -> None:
    # one study with a zero cell, one double-zero study, one without zeros
    res = effects.escalc_binary("RR", [0, 0, 3], [10, 12, 20], [2, 0, 5], [11, 12, 20])
    assert res.zero_cell_corrected.tolist() == [True, True, False]
    assert res.double_zero.tolist() == [False, True, False]
    # 1/2 added to all four cells: (0.5/11) / (2.5/12)
    assert res.yi[0] == pytest.approx(math.log((0.5 / 11) / (2.5 / 12)))
    dropped = effects.escalc_binary(
        "RR", [0, 0, 3], [10, 12, 20], [2, 0, 5], [11, 12, 20], drop00=True
    )
    assert np.isnan(dropped.yi[1]) and np.isnan(dropped.vi[1])
    assert not np.isnan(dropped.yi[0])


def test_rd_gets_the_correction_too() -> None:
    """metafor 3.8-1's escalc adds 1/2 for RD as well (checked in its code)."""
    res = effects.escalc_binary("RD", [0], [10], [2], [10])
    assert res.zero_cell_corrected.tolist() == [True]
    assert res.yi[0] == pytest.approx(0.5 / 11 - 2.5 / 11)


def test_to_none_gives_infinite_effect_without_warnings() -> None:
    res = effects.escalc_binary("RR", [0], [10], [2], [10], to="none")
    assert np.isneginf(res.yi[0])
    assert np.isinf(res.vi[0])


@pytest.mark.parametrize(
    "args",
    [
        ("RR", [3], [2], [1], [5]),  # events > total
        ("RR", [-1], [5], [1], [5]),
        ("XX", [1], [5], [1], [5]),
        ("RR", [1, 2], [5], [1], [5]),
    ],
)
def test_binary_input_errors(args: tuple[Any, ...]) -> None:
    with pytest.raises(AnalysisError):
        effects.escalc_binary(*args)


def test_continuous_input_errors() -> None:
    with pytest.raises(AnalysisError):
        effects.escalc_continuous("MD", [1], [-1], [5], [1], [1], [5])
    with pytest.raises(AnalysisError):
        effects.escalc_continuous("MD", [1], [1], [0], [1], [1], [5])
    with pytest.raises(AnalysisError):
        effects.escalc_continuous("RR", [1], [1], [5], [1], [1], [5])  # type: ignore[arg-type]


def test_hedges_correction_is_exact_gamma_form() -> None:
    m = np.array([2.0, 10.0, 100.0])
    expected = [math.gamma(x / 2) / (math.sqrt(x / 2) * math.gamma((x - 1) / 2)) for x in m]
    np.testing.assert_allclose(effects.hedges_correction(m), expected, rtol=1e-13)
    assert np.isnan(effects.hedges_correction(np.array([1.0]))[0])


# ---------------------------------------------------------------- conversions


# Wan X et al. BMC Med Res Methodol 2014;14:135, Table 1 ("Values of ξ(n) in the formula
# (7) and the formula (12) for n ≤ 50"), a selection of the printed values (3 decimals).
WAN2014_TABLE1 = {
    2: 1.128,
    3: 1.693,
    5: 2.326,
    10: 3.078,
    11: 3.173,
    20: 3.735,
    25: 3.931,
    30: 4.086,
    40: 4.322,
    50: 4.498,
}


@pytest.mark.parametrize(("n", "xi"), sorted(WAN2014_TABLE1.items()))
def test_exact_expected_range_matches_wan2014_table1(n: int, xi: float) -> None:
    assert effects.expected_normal_range(n) == pytest.approx(xi, abs=5e-4)
    sd = effects.sd_from_range(0.0, xi, n, method="wan2014_exact")
    assert sd == pytest.approx(1, abs=5.1e-4 / xi)


def test_blom_approximation_is_close_to_wan2014_table1_for_larger_n() -> None:
    """Wan 2014 eq. 9 approximates the exact ξ(n); within 0.5% for 10 <= n <= 50."""
    for n, xi in WAN2014_TABLE1.items():
        if n >= 10:
            assert effects.xi_range(n) == pytest.approx(xi, rel=5e-3)


@pytest.mark.golden
def test_conv_fivenum_golden_when_available() -> None:
    conv = _golden()["conv_fivenum"]
    if not conv["available"]:
        pytest.skip(f"metafor {conv['metafor']} has no conv.fivenum (added in metafor 4.0)")
    grid = conv["inputs"]
    for i, n in enumerate(grid["n"]):
        mn, q1, md, q3, mx = (grid[c][i] for c in ("min", "q1", "median", "q3", "max"))
        r = effects.to_mean_sd("median_iqr", n, median=md, q1=q1, q3=q3)
        assert r.mean == pytest.approx(conv["median_iqr"]["mean"][i], abs=1e-8)
        assert r.sd == pytest.approx(conv["median_iqr"]["sd"][i], abs=1e-8)
        r = effects.to_mean_sd("median_range", n, median=md, minimum=mn, maximum=mx)
        assert r.mean == pytest.approx(conv["median_range"]["mean"][i], abs=1e-8)
        assert r.sd == pytest.approx(conv["median_range"]["sd"][i], abs=1e-8)
        r = effects.to_mean_sd(
            "median_iqr", n, median=md, q1=q1, q3=q3, minimum=mn, maximum=mx, sd_method="shi2020"
        )
        assert r.mean == pytest.approx(conv["five_number"]["mean"][i], abs=1e-8)
        assert r.sd == pytest.approx(conv["five_number"]["sd"][i], abs=1e-8)


def _normal_summary(n: int, mu: float, sigma: float) -> dict[str, float]:
    """Population quantiles where the formulas place the order statistics of N(mu, sigma)."""
    return {
        "median": mu,
        "q1": mu - sigma * effects.eta_iqr(n) / 2,
        "q3": mu + sigma * effects.eta_iqr(n) / 2,
        "minimum": mu - sigma * effects.xi_range(n) / 2,
        "maximum": mu + sigma * effects.xi_range(n) / 2,
    }


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(min_value=5, max_value=2000),
    mu=st.floats(min_value=-1e3, max_value=1e3),
    sigma=st.floats(min_value=1e-2, max_value=1e3),
)
def test_symmetric_summaries_recover_mean_and_sd(n: int, mu: float, sigma: float) -> None:
    """For symmetric summaries placed at the expected normal order statistics, every
    estimator returns the centre, and the Wan/Shi SDs return sigma (by construction of
    ξ(n), η(n) in Wan 2014 eqs. 9, 16 and the weights of Shi 2020 summing to 1)."""
    s = _normal_summary(n, mu, sigma)
    tol = 1e-9 * max(1.0, abs(mu), sigma)
    for method in ("luo2018", "wan2014"):
        assert effects.mean_from_median_iqr(
            s["q1"], mu, s["q3"], n, method=method
        ) == pytest.approx(mu, abs=tol)
        assert effects.mean_from_median_range(
            s["minimum"], mu, s["maximum"], n, method=method
        ) == pytest.approx(mu, abs=tol)
        assert effects.mean_from_five_numbers(
            s["minimum"], s["q1"], mu, s["q3"], s["maximum"], n, method=method
        ) == pytest.approx(mu, abs=tol)
    assert effects.sd_from_iqr(s["q1"], s["q3"], n) == pytest.approx(sigma, rel=1e-9)
    assert effects.sd_from_range(s["minimum"], s["maximum"], n) == pytest.approx(sigma, rel=1e-9)
    for method in ("wan2014", "shi2020"):
        got = effects.sd_from_five_numbers(
            s["minimum"], s["q1"], s["q3"], s["maximum"], n, method=method
        )
        assert got == pytest.approx(sigma, rel=1e-9)


def test_luo_weights_move_towards_the_median_as_n_grows() -> None:
    """Luo 2018: the mid-range weight 4/(4 + n^0.75) falls with n (eq. 7)."""
    small = effects.mean_from_median_range(0, 1, 10, 5)
    large = effects.mean_from_median_range(0, 1, 10, 500)
    assert 1 < large < small < 5.5


def test_se_and_ci_conversions() -> None:
    # Cochrane Handbook 6.5.2.2: SD = SE * sqrt(N); SD = sqrt(N) * (upper - lower) / 3.92
    assert effects.sd_from_se(2.0, 25) == pytest.approx(10.0)
    assert effects.sd_from_ci(10.0, 13.92, 25, dist="normal") == pytest.approx(
        5 * 3.92 / (2 * stats.norm.ppf(0.975))
    )
    t_crit = stats.t.ppf(0.975, 24)
    assert effects.sd_from_ci(10.0, 14.0, 25) == pytest.approx(5 * 4 / (2 * t_crit))
    with pytest.raises(AnalysisError):
        effects.sd_from_ci(14.0, 10.0, 25)


def test_to_mean_sd_dispatch_and_derivation_text() -> None:
    plain = effects.to_mean_sd("mean_sd", 20, mean=3.0, sd=1.0)
    assert (plain.mean, plain.sd, plain.derived) == (3.0, 1.0, False)
    se = effects.to_mean_sd("mean_se", 16, mean=3.0, se=0.5)
    assert se.sd == pytest.approx(2.0) and se.derived and "Cochrane" in se.derivation
    iqr = effects.to_mean_sd("median_iqr", 30, median=5.0, q1=4.0, q3=7.0)
    assert "Luo 2018" in iqr.derivation and "Wan 2014" in iqr.derivation
    assert iqr.mean == pytest.approx(effects.mean_from_median_iqr(4.0, 5.0, 7.0, 30))
    rng = effects.to_mean_sd(
        "median_range", 30, median=5.0, minimum=1.0, maximum=12.0, mean_method="wan2014"
    )
    assert rng.mean == pytest.approx((1 + 10 + 12) / 4)
    five = effects.to_mean_sd(
        "median_iqr", 30, median=5.0, q1=4.0, q3=7.0, minimum=1.0, maximum=12.0, sd_method="shi2020"
    )
    assert "Shi 2020" in five.derivation
    with pytest.raises(AnalysisError):
        effects.to_mean_sd("median_iqr", 30, median=5.0, q1=4.0)
    with pytest.raises(AnalysisError):
        effects.to_mean_sd("median_iqr", 30, median=5.0, q1=6.0, q3=7.0)  # q1 > median
