"""Meta-analysis exactly as Cochrane's Review Manager computes it (RevMan 5 and RevMan Web).

Reference: Deeks JJ, Higgins JPT. Statistical algorithms in Review Manager 5. The Cochrane
Collaboration, 2010 ("RM5 §" below names its sections: 1 dichotomous data, 2 continuous
data, 3 generic inverse variance, 4 heterogeneity, 5 subgroup analyses). Readable second
source: R package meta, ``settings.meta("RevMan5")`` (Schwarzer G), whose ``metabin``/
``metacont``/``metagen`` reproduce RevMan 5 with ``RR.Cochrane``, ``Q.Cochrane``,
``MH.exact = FALSE``, ``method.tau = "DL"``. RevMan Web's further random-effects options
(REML tau², HKSJ intervals, prediction intervals) follow the Cochrane Handbook for
Systematic Reviews of Interventions v6.5 (2024), chapter 10.10.4, as adopted in RevMan on
the Cochrane Statistical Methods Group's recommendation.

The numbers were checked against what RevMan itself stored in real review files
(``tests/test_revman_engine.py``). Where the published formulas leave a choice open,
those files settled it:

* Zero cells (RM5 §1): a study with a zero in any of its four cells gets 0.5 added to all
  four (each arm's total +1), for its own effect and variance and inside the
  Mantel-Haenszel RR and OR.
* Studies with no events in either arm are not estimable for RR, OR and Peto OR (nor, for
  OR and Peto OR, studies where everybody had the event). For RD they count, with RD = 0
  and the zero-cell corrected variance.
* A study in which everybody had the event in both arms has RR = 1 exactly (not the
  corrected table's ratio) with the corrected table's variance, and enters the M-H RR
  with RR = 1 and its corrected M-H weight (RevMan Web, review CD004366).
* Mantel-Haenszel risk difference: the pooled estimate and the weights use the counts as
  given; its variance is Greenland & Robins' P/W² with P from the corrected tables and W
  the sum of the weights as given.
* Heterogeneity for Mantel-Haenszel (RM5 §4): Q is taken about the M-H pooled (log)
  estimate with inverse-variance weights 1/vᵢ; random effects use DerSimonian-Laird tau²
  from that Q and inverse-variance weights 1/(vᵢ + tau²) on the study (log) effects.
* One study is its own pooled result (Chi² = 0 on 0 df, P = 1, I² = 0).
* Z is |estimate| / SE (RevMan shows it without sign).

P(Chi²) is the exact chi² upper tail; RevMan's own values come from an approximation
that is up to ~3.4e-5 (relative) larger.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from trialpool.errors import AnalysisError

__all__ = [
    "RevManFit",
    "RevManSettings",
    "RevManStudy",
    "RevManSubgroupFit",
    "revman_fit",
    "revman_fit_subgroups",
]

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
DataType = Literal["dichotomous", "continuous", "generic"]
Method = Literal["MH", "IV", "PETO"]
Totals = Literal["overall", "subgroups", "none"]

_INPUTS: dict[str, tuple[str, ...]] = {
    "dichotomous": ("e1", "n1", "e2", "n2"),
    "continuous": ("m1", "sd1", "n1", "m2", "sd2", "n2"),
    "generic": ("estimate", "se"),
}
_MEASURES: dict[tuple[str, str], frozenset[str]] = {
    ("dichotomous", "MH"): frozenset({"RR", "OR", "RD"}),
    ("dichotomous", "IV"): frozenset({"RR", "OR", "RD"}),
    ("dichotomous", "PETO"): frozenset({"OR"}),
    ("continuous", "IV"): frozenset({"MD", "SMD"}),
}


@dataclass(frozen=True)
class RevManSettings:
    """One analysis's settings, as RevMan stores them with the outcome.

    ``measure`` is RR, OR or RD for dichotomous data (Peto: OR), MD or SMD for continuous
    data, and any label for generic inverse variance, where ``log_data`` says that the
    estimates are natural logs (shown exponentiated, as ratios). ``level`` is RevMan's
    "CI_TOTAL" and ``study_level`` its "CI_STUDY" (default: the same). ``totals`` is
    RevMan's "Totals" option: ``"overall"`` (totals and subtotals), ``"subgroups"``
    (subtotals only: study weights are then percentages of their subgroup, and an
    analysis without subgroups has no total) or ``"none"`` (no pooling at all).
    ``tau2_method`` (DL or REML), ``ci_method`` (Wald or HKSJ) and ``prediction`` are
    RevMan Web's random-effects options.
    """

    data_type: DataType
    method: Method
    measure: str
    random: bool
    tau2_method: Literal["DL", "REML"] = "DL"
    ci_method: Literal["Wald", "HKSJ"] = "Wald"
    level: float = 0.95
    prediction: bool = False
    log_data: bool = False
    totals: Totals = "overall"
    study_level: float | None = None

    def __post_init__(self) -> None:
        if self.data_type not in _INPUTS:
            raise AnalysisError(f"unknown data type {self.data_type!r}")
        if self.data_type == "generic":
            if self.method != "IV":
                raise AnalysisError("generic inverse variance data use the IV method")
        else:
            allowed = _MEASURES.get((self.data_type, self.method))
            if allowed is None:
                raise AnalysisError(f"RevMan has no {self.method} method for {self.data_type} data")
            if self.measure not in allowed:
                raise AnalysisError(
                    f"effect measure {self.measure!r} is not available for {self.method} "
                    f"{self.data_type} data (choose one of {', '.join(sorted(allowed))})"
                )
        if self.method == "PETO" and self.random:
            raise AnalysisError("Peto's method is fixed-effect only in RevMan")
        if self.tau2_method not in ("DL", "REML"):
            raise AnalysisError(f"unknown heterogeneity estimator {self.tau2_method!r}")
        if self.ci_method not in ("Wald", "HKSJ"):
            raise AnalysisError(f"unknown CI method {self.ci_method!r}")
        if not self.random and (self.ci_method == "HKSJ" or self.prediction):
            raise AnalysisError(
                "HKSJ intervals and prediction intervals need a random-effects model"
            )
        for level in (self.level, self.study_level):
            if level is not None and not 0 < level < 1:
                raise AnalysisError(f"confidence level must lie between 0 and 1, not {level}")
        if self.totals not in ("overall", "subgroups", "none"):
            raise AnalysisError(f"unknown totals option {self.totals!r}")

    @property
    def ratio(self) -> bool:
        """Whether results are shown as ratios (analysis on the natural-log scale)."""
        if self.data_type == "generic":
            return self.log_data
        return self.measure in ("RR", "OR")


@dataclass(frozen=True)
class RevManStudy:
    """One study's own result, as RevMan shows it in the forest plot.

    ``yi``/``se`` are on the analysis scale (natural log for ratios), ``estimate``,
    ``ci_lower`` and ``ci_upper`` on the display scale (normal interval at
    ``study_level``, for ratios on the log scale). ``weight`` is a percentage (0 when the
    study is not estimable or no total is computed); see :func:`revman_fit_subgroups`
    for its base in subgrouped analyses.
    """

    estimable: bool
    yi: float | None
    se: float | None
    estimate: float | None
    ci_lower: float | None
    ci_upper: float | None
    weight: float
    zero_cell_corrected: bool
    reason: str | None


@dataclass(frozen=True)
class RevManFit:
    """A pooled result (overall or one subgroup).

    ``estimate``/``ci_*``/``pi_*`` are on the display scale, ``log_estimate``/``se`` on
    the analysis scale (natural log for ratio measures; the name is kept for both
    scales). ``z`` is |estimate| / SE, a t statistic on k - 1 df with HKSJ. ``i2`` is a
    percentage. ``weight`` is the percentage of the total this result carries (100 for
    a stand-alone analysis). When ``estimable`` is false all numbers are ``None`` and
    ``reason`` says why in plain words.
    """

    k: int
    estimable: bool
    reason: str | None
    estimate: float | None
    ci_lower: float | None
    ci_upper: float | None
    log_estimate: float | None
    se: float | None
    z: float | None
    p: float | None
    tau2: float | None
    chi2: float | None
    df: int | None
    p_chi2: float | None
    i2: float | None
    pi_lower: float | None
    pi_upper: float | None
    weight: float | None
    studies: tuple[RevManStudy, ...]


@dataclass(frozen=True)
class RevManSubgroupFit:
    """A subgrouped analysis: the overall result, each subgroup's, and the test for
    subgroup differences (``None`` when fewer than two subgroups are estimable)."""

    overall: RevManFit
    subgroups: tuple[tuple[str, RevManFit], ...]
    test_chi2: float | None
    test_df: int | None
    test_p: float | None
    test_i2: float | None


# --- study-level effects --------------------------------------------------------------


@dataclass(frozen=True)
class _Effects:
    y: FloatArray  # analysis scale; NaN where not estimable
    v: FloatArray
    ok: BoolArray
    corrected: BoolArray
    reasons: tuple[str | None, ...]
    cells: tuple[FloatArray, FloatArray, FloatArray, FloatArray] | None = None  # corrected
    raw: tuple[FloatArray, FloatArray, FloatArray, FloatArray] | None = None  # as given
    all_events: BoolArray | None = None  # everybody had the event, in both groups


def _vectors(data: Mapping[str, ArrayLike], names: tuple[str, ...]) -> list[FloatArray]:
    missing = [n for n in names if n not in data]
    if missing:
        raise AnalysisError(f"missing input column(s): {', '.join(missing)}")
    out = [np.atleast_1d(np.asarray(data[n], dtype=np.float64)) for n in names]
    k = out[0].size
    for name, arr in zip(names, out, strict=True):
        if arr.ndim != 1 or arr.size != k:
            raise AnalysisError(f"input {name!r} must be one value per study ({k} studies)")
        bad = np.flatnonzero(~np.isfinite(arr))
        if bad.size:
            raise AnalysisError(f"study {bad[0] + 1}: {name} is missing or not a number")
    return out


def _dichotomous(data: Mapping[str, ArrayLike], s: RevManSettings) -> _Effects:
    """RM5 §1.1 (OR, RR, RD of each study), §1.4 (Peto OR of each study)."""
    e1, n1, e2, n2 = _vectors(data, _INPUTS["dichotomous"])
    for i in range(e1.size):
        for name, e, n in (("group 1", e1[i], n1[i]), ("group 2", e2[i], n2[i])):
            if n <= 0:
                raise AnalysisError(f"study {i + 1}: {name} has {n:g} participants")
            if e < 0 or e > n:
                raise AnalysisError(f"study {i + 1}: {name} has {e:g} events out of {n:g}")
    a, c = e1, e2
    b, d = n1 - e1, n2 - e2
    zero = (a == 0) | (b == 0) | (c == 0) | (d == 0)
    no_events = (a + c) == 0
    all_events = (b + d) == 0
    half = np.where(zero, 0.5, 0.0)
    ac, bc, cc, dc = a + half, b + half, c + half, d + half
    m1, m2 = ac + bc, cc + dc
    reasons: list[str | None] = [None] * a.size
    if s.method == "PETO":
        total = n1 + n2
        events = a + c
        oe = a - n1 * events / total
        var = n1 * n2 * events * (total - events) / (total**2 * (total - 1))
        ok = var > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            y = np.where(ok, oe / var, np.nan)
            v = np.where(ok, 1 / var, np.nan)
        for i in np.flatnonzero(~ok):
            reasons[i] = (
                "no events in either group" if no_events[i] else "every participant had the event"
            )
        return _Effects(y, v, ok, np.zeros(a.size, dtype=bool), tuple(reasons))
    # The corrected cells are all positive, so every formula below is finite.
    if s.measure == "RR":
        ok = ~no_events
        # Everybody had the event in both groups: RR = 1 exactly (RevMan Web), with the
        # variance of the corrected table.
        y = np.where(all_events, 0.0, np.log((ac / m1) / (cc / m2)))
        v = 1 / ac - 1 / m1 + 1 / cc - 1 / m2
    elif s.measure == "OR":
        ok = ~no_events & ~all_events
        y = np.log(ac * dc / (bc * cc))
        v = 1 / ac + 1 / bc + 1 / cc + 1 / dc
    else:  # RD
        ok = np.ones(a.size, dtype=bool)
        y = a / n1 - c / n2
        v = ac * bc / m1**3 + cc * dc / m2**3
    for i in np.flatnonzero(~ok):
        reasons[i] = (
            "no events in either group" if no_events[i] else "every participant had the event"
        )
    y = np.where(ok, y, np.nan)
    v = np.where(ok, v, np.nan)
    return _Effects(y, v, ok, zero & ok, tuple(reasons), (ac, bc, cc, dc), (a, b, c, d), all_events)


def _continuous(data: Mapping[str, ArrayLike], s: RevManSettings) -> _Effects:
    """RM5 §2.1 (MD) and §2.2 (SMD: Hedges' adjusted g with RevMan's approximate
    correction 1 - 3/(4N - 9) and variance N/(n1 n2) + g²/(2(N - 3.94)))."""
    m1, sd1, n1, m2, sd2, n2 = _vectors(data, _INPUTS["continuous"])
    for i in range(m1.size):
        for name, sd, n in (("group 1", sd1[i], n1[i]), ("group 2", sd2[i], n2[i])):
            if n <= 0:
                raise AnalysisError(f"study {i + 1}: {name} has {n:g} participants")
            if sd <= 0:
                raise AnalysisError(f"study {i + 1}: {name} has standard deviation {sd:g}")
    k = m1.size
    if s.measure == "MD":
        y = m1 - m2
        v = sd1**2 / n1 + sd2**2 / n2
    else:
        total = n1 + n2
        small = np.flatnonzero(total <= 3)
        if small.size:
            raise AnalysisError(
                f"study {small[0] + 1}: a standardised mean difference needs more than "
                "3 participants"
            )
        pooled_sd = np.sqrt(((n1 - 1) * sd1**2 + (n2 - 1) * sd2**2) / (total - 2))
        y = (m1 - m2) / pooled_sd * (1 - 3 / (4 * total - 9))
        v = total / (n1 * n2) + y**2 / (2 * (total - 3.94))
    ok = np.ones(k, dtype=bool)
    return _Effects(y, v, ok, np.zeros(k, dtype=bool), (None,) * k)


def _generic(data: Mapping[str, ArrayLike]) -> _Effects:
    """RM5 §3 (generic inverse variance: estimate and its standard error as given)."""
    y, se = _vectors(data, _INPUTS["generic"])
    bad = np.flatnonzero(se <= 0)
    if bad.size:
        raise AnalysisError(f"study {bad[0] + 1}: standard error {se[bad[0]]:g} is not positive")
    k = y.size
    return _Effects(y, se**2, np.ones(k, dtype=bool), np.zeros(k, dtype=bool), (None,) * k)


def _effects(data: Mapping[str, ArrayLike], s: RevManSettings) -> _Effects:
    if s.data_type == "dichotomous":
        return _dichotomous(data, s)
    if s.data_type == "continuous":
        return _continuous(data, s)
    return _generic(data)


# --- pooling --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Pooled:
    k: int
    theta: float
    se: float
    tau2: float
    q: float
    df: int
    i2: float
    weights: FloatArray  # unnormalised, for the pooled studies (in index order)


@dataclass(frozen=True)
class _Inference:
    stat: float
    p: float
    lo: float
    hi: float
    pi: tuple[float, float] | None


@lru_cache(maxsize=64)
def _crit(level: float) -> float:
    """The normal critical value of a two-sided ``level`` (cached: every study of an
    analysis asks for the same one)."""
    return float(stats.norm.ppf(0.5 + level / 2))


def _mh(e: _Effects, idx: NDArray[np.intp], measure: str) -> tuple[float, float, FloatArray]:
    """Mantel-Haenszel pooled (log) estimate, its SE and the M-H weights (RM5 §1.2):
    Greenland & Robins (1985) variances for RR and RD, Robins, Breslow & Greenland (1986)
    for OR, on the zero-cell corrected tables (RM5 §1.1). Risk difference: estimate and
    weights from the tables as given, variance P/W² with P from the corrected tables and
    W the sum of the weights as given (this reproduces RevMan for analyses whose studies
    have no events at all)."""
    assert e.cells is not None and e.raw is not None and e.all_events is not None
    a, b, c, d = (x[idx] for x in e.cells)
    n1, n2 = a + b, c + d
    n = n1 + n2
    if measure == "RR":
        w = c * n1 / n
        # RR = 1 for a study in which everybody had the event (RevMan Web): R_i = w_i.
        r = np.where(e.all_events[idx], w, a * n2 / n)
        big_r, big_s = r.sum(), w.sum()
        big_p = ((n1 * n2 * (a + c) - a * c * n) / n**2).sum()
        return math.log(big_r / big_s), math.sqrt(big_p / (big_r * big_s)), w
    if measure == "OR":
        r = a * d / n
        w = b * c / n
        p_ = (a + d) / n
        q_ = (b + c) / n
        big_r, big_s = r.sum(), w.sum()
        var = (p_ * r).sum() / (2 * big_r**2)
        var += (p_ * w + q_ * r).sum() / (2 * big_r * big_s)
        var += (q_ * w).sum() / (2 * big_s**2)
        return math.log(big_r / big_s), math.sqrt(var), w
    ra, rb, rc, rd = (x[idx] for x in e.raw)
    rn1, rn2 = ra + rb, rc + rd
    rn = rn1 + rn2
    w = rn1 * rn2 / rn
    theta = ((ra * rn2 - rc * rn1) / rn).sum() / w.sum()
    big_p = ((a * b * n2**3 + c * d * n1**3) / (n1 * n2 * n**2)).sum()
    return float(theta), math.sqrt(big_p) / w.sum(), w


def _tau2_reml(y: FloatArray, v: FloatArray) -> float:
    """REML tau² (Viechtbauer 2005) by metafor's Fisher scoring, as trialpool.pooling's
    ``rma`` replicates it (imported here: only REML analyses need it)."""
    from trialpool.stats import pooling

    return float(pooling.rma(y, v, method="REML", tau2_ci=False).tau2)


def _i2(q: float, df: int) -> float:
    """Higgins & Thompson (2002) I² = (Q - df)/Q in percent, 0 when Q <= df (RM5 §4)."""
    return 100 * (q - df) / q if df > 0 and q > df else 0.0


def _pool(e: _Effects, idx: NDArray[np.intp], s: RevManSettings) -> _Pooled:
    """Pool the estimable studies ``idx``: RM5 §1.2-1.4 (fixed effect), §4 (Q, I²) and
    the DerSimonian & Laird (1986) random-effects model; RevMan Web's REML tau²
    (I² then from tau², Higgins & Thompson 2002: tau²/(tau² + s²) with s² the typical
    within-study variance) and HKSJ scale (Hartung & Knapp 2001; Sidik & Jonkman 2002:
    s² = Σwᵢ(yᵢ-μ)²/(k-1), not truncated). One study is its own pooled result."""
    y, v = e.y[idx], e.v[idx]
    k = idx.size
    w = 1 / v
    if k == 1:
        return _Pooled(1, float(y[0]), math.sqrt(float(v[0])), 0.0, 0.0, 0, 0.0, w)
    if s.method == "MH":
        theta, se, wts = _mh(e, idx, s.measure)
    else:  # IV and Peto (Peto: y = (O-E)/V, v = 1/V, so the IV formulas are RM5 §1.4's)
        theta = float((w * y).sum() / w.sum())
        se = math.sqrt(1 / w.sum())
        wts = w
    q = float((w * (y - theta) ** 2).sum())
    df = k - 1
    i2 = _i2(q, df)
    tau2 = 0.0
    if s.random:
        if s.tau2_method == "REML":
            tau2 = _tau2_reml(y, v)
            typical = df * w.sum() / (w.sum() ** 2 - (w**2).sum())
            i2 = 100 * tau2 / (tau2 + typical)
        else:
            tau2 = max(0.0, (q - df) / (w.sum() - (w**2).sum() / w.sum()))
        wts = 1 / (v + tau2)
        theta = float((wts * y).sum() / wts.sum())
        se = math.sqrt(1 / wts.sum())
        if s.ci_method == "HKSJ":
            se *= math.sqrt(float((wts * (y - theta) ** 2).sum() / df))
    return _Pooled(k, theta, se, tau2, q, df, i2, wts)


def _infer(theta: float, se: float, k: int, tau2: float, s: RevManSettings) -> _Inference:
    """Test and intervals: Wald (normal) as RevMan 5; with HKSJ the t distribution on
    k - 1 df. Prediction interval (Higgins, Thompson & Spiegelhalter 2009; Cochrane
    Handbook v6.5 §10.10.4.3, as metafor's predict()): θ ± crit·sqrt(SE² + tau²), crit
    from the distribution of the CI method; none for k < 2."""
    hksj = s.ci_method == "HKSJ" and k > 1
    crit = float(stats.t.ppf(0.5 + s.level / 2, k - 1)) if hksj else _crit(s.level)
    stat = abs(theta) / se if se > 0 else (math.inf if theta != 0 else 0.0)
    p = float(2 * (stats.t.sf(stat, k - 1) if hksj else stats.norm.sf(stat)))
    pi = None
    if s.prediction and k > 1:
        half = crit * math.sqrt(se**2 + tau2)
        pi = (theta - half, theta + half)
    return _Inference(stat, p, theta - crit * se, theta + crit * se, pi)


# --- assembling results ---------------------------------------------------------------


def _show(x: float, s: RevManSettings) -> float:
    return math.exp(x) if s.ratio else x


def _study(e: _Effects, i: int, weight: float, s: RevManSettings) -> RevManStudy:
    if not e.ok[i]:
        return RevManStudy(False, None, None, None, None, None, 0.0, False, e.reasons[i])
    y, se = float(e.y[i]), math.sqrt(float(e.v[i]))
    crit = _crit(s.study_level if s.study_level is not None else s.level)
    return RevManStudy(
        True, y, se, _show(y, s), _show(y - crit * se, s), _show(y + crit * se, s), weight,
        bool(e.corrected[i]), None,
    )  # fmt: skip


def _not_estimable(k: int, reason: str, studies: tuple[RevManStudy, ...]) -> RevManFit:
    return RevManFit(
        k, False, reason, None, None, None, None, None, None, None, None, None, None, None,
        None, None, None, None, studies,
    )  # fmt: skip


def _why_none(e: _Effects, idx: NDArray[np.intp]) -> str:
    if idx.size == 0:
        return "no studies (k = 0)"
    reasons = {e.reasons[i] for i in idx}
    if reasons == {"no events in either group"}:
        return "no events in any study (k = 0)"
    return "no estimable study (k = 0)"


def _fit(
    e: _Effects,
    idx: NDArray[np.intp],
    s: RevManSettings,
    weights: FloatArray,
    share: float,
    centre: tuple[float, float] | None = None,
) -> RevManFit:
    """The result for the rows ``idx`` (one subgroup or the whole analysis); ``weights``
    are the displayed study weights (percent) of every row. ``centre`` replaces the
    pooled (log) estimate and SE, keeping heterogeneity from the pooled studies."""
    studies = tuple(_study(e, int(i), float(weights[i]), s) for i in idx)
    used = idx[e.ok[idx]]
    if used.size == 0:
        return _not_estimable(0, _why_none(e, idx), studies)
    r = _pool(e, used, s)
    if centre is None:
        inf = _infer(r.theta, r.se, r.k, r.tau2, s)
        theta, se = r.theta, r.se
    else:
        theta, se = centre
        inf = _infer(theta, se, 1, 0.0, s)
        inf = _Inference(inf.stat, inf.p, inf.lo, inf.hi, None)
    return RevManFit(
        k=r.k, estimable=True, reason=None,
        estimate=_show(theta, s), ci_lower=_show(inf.lo, s), ci_upper=_show(inf.hi, s),
        log_estimate=theta, se=se, z=inf.stat, p=inf.p,
        tau2=r.tau2, chi2=r.q, df=r.df, p_chi2=_p_chi2(r.q, r.df), i2=r.i2,
        pi_lower=_show(inf.pi[0], s) if inf.pi else None,
        pi_upper=_show(inf.pi[1], s) if inf.pi else None,
        weight=share, studies=studies,
    )  # fmt: skip


def _p_chi2(q: float, df: int) -> float:
    """Upper tail of chi² on df degrees of freedom; 1 for df = 0 (a single study,
    Q = 0)."""
    return float(stats.chi2.sf(q, df)) if df > 0 else 1.0


def _percent(e: _Effects, idx: NDArray[np.intp], s: RevManSettings, out: FloatArray) -> None:
    """Write the weights (percent of the total of the rows ``idx``) into ``out``."""
    used = idx[e.ok[idx]]
    if used.size:
        w = _pool(e, used, s).weights
        out[used] = 100 * w / w.sum()


_NO_TOTALS = "no totals requested (RevMan's Totals option is 'none')"


def revman_fit(data: Mapping[str, ArrayLike], settings: RevManSettings) -> RevManFit:
    """Pool one analysis without subgroups as RevMan does.

    ``data`` maps input names to one value per study: ``e1, n1, e2, n2`` (dichotomous),
    ``m1, sd1, n1, m2, sd2, n2`` (continuous) or ``estimate, se`` (generic inverse
    variance); group 1 is the experimental group. Impossible input raises
    :class:`AnalysisError`. An analysis RevMan does not estimate comes back with
    ``estimable=False`` and a ``reason``: no estimable study, or no total requested
    (``totals="none"``, or ``"subgroups"`` for an analysis without subgroups); study
    weights are then 0, as RevMan stores them.
    """
    e = _effects(data, settings)
    idx = np.arange(e.y.size)
    weights = np.zeros(e.y.size)
    if settings.totals != "overall":
        studies = tuple(_study(e, int(i), 0.0, settings) for i in idx)
        why = (
            _NO_TOTALS
            if settings.totals == "none"
            else "only subgroup totals requested and the analysis has no subgroups"
        )
        return _not_estimable(int(e.ok.sum()), why, studies)
    _percent(e, idx, settings, weights)
    return _fit(e, idx, settings, weights, 100.0)


def _subgroup_test(fits: Sequence[RevManFit]) -> tuple[float, float, float, int] | None:
    """Inverse-variance mean of the estimable subgroups' (log) estimates, its SE, and
    Cochran's Q about it with its df (RM5 §5; Deeks, Altman & Bradburn 2001)."""
    est = [(f.log_estimate, f.se) for f in fits if f.estimable]
    if not est:
        return None
    theta = np.array([t for t, _ in est], dtype=np.float64)
    w = 1 / np.array([se for _, se in est], dtype=np.float64) ** 2
    mean = float((w * theta).sum() / w.sum())
    q = float((w * (theta - mean) ** 2).sum()) if len(est) > 1 else 0.0
    return mean, math.sqrt(1 / w.sum()), q, len(est) - 1


def revman_fit_subgroups(
    data: Mapping[str, ArrayLike],
    subgroup_of_each_study: Sequence[str],
    settings: RevManSettings,
) -> RevManSubgroupFit:
    """Pool an analysis with subgroups as RevMan does (RM5 §5).

    Each subgroup is pooled on its own (its own tau²); subgroups are reported in order
    of first appearance. With ``totals="overall"`` the overall result pools all studies
    together (one tau² across all of them) and each study's weight is its percentage of
    that overall total (so a subgroup's ``weight`` is the sum of its studies' weights).
    With ``totals="subgroups"`` (RevMan: subtotals only) each study's weight is its
    percentage of its own subgroup's total (every subgroup has weight 100), and the
    overall estimate RevMan stores is the inverse-variance combination of the subgroup
    estimates (Wald interval, no prediction interval), while its Q, df, tau² and I² are
    those of all studies pooled together. With ``totals="none"`` nothing is pooled.

    The test for subgroup differences (RM5 §5) is Cochran's Q of the estimable
    subgroups' (log) estimates about their inverse-variance weighted mean (weights
    1/SE², with the SE each subgroup reports), on (estimable subgroups - 1) df, with
    I² = (Q - df)/Q; the same for fixed- and random-effects analyses. It is ``None``
    when fewer than two subgroups are estimable.
    """
    e = _effects(data, settings)
    labels = [str(x) for x in subgroup_of_each_study]
    if len(labels) != e.y.size:
        raise AnalysisError(
            f"{len(labels)} subgroup labels for {e.y.size} studies: give one per study"
        )
    members = {
        g: np.array([i for i, x in enumerate(labels) if x == g], dtype=np.intp)
        for g in dict.fromkeys(labels)
    }
    idx = np.arange(e.y.size)
    weights = np.zeros(e.y.size)
    if settings.totals == "none":
        studies = tuple(_study(e, int(i), 0.0, settings) for i in idx)
        empty = tuple(
            (g, _not_estimable(int(e.ok[m].sum()), _NO_TOTALS, tuple(studies[i] for i in m)))
            for g, m in members.items()
        )
        overall = _not_estimable(int(e.ok.sum()), _NO_TOTALS, studies)
        return RevManSubgroupFit(overall, empty, None, None, None, None)
    by_subgroup = settings.totals == "subgroups"
    for m in members.values() if by_subgroup else (idx,):
        _percent(e, m, settings, weights)
    subs = [
        (g, _fit(e, m, settings, weights, 100.0 if by_subgroup else float(weights[m].sum())))
        for g, m in members.items()
    ]
    test = _subgroup_test([f for _, f in subs])
    centre = test[:2] if by_subgroup and test is not None else None
    overall = _fit(e, idx, settings, weights, float(weights.sum()), centre)
    if test is None or test[3] < 1:
        return RevManSubgroupFit(overall, tuple(subs), None, None, None, None)
    q, df = test[2], test[3]
    return RevManSubgroupFit(overall, tuple(subs), q, df, _p_chi2(q, df), _i2(q, df))
