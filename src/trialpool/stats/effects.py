"""Per-study effect sizes from per-arm data, as metafor's ``escalc``, and conversions.

Effect sizes (group 1 = intervention / MSC, group 2 = control):

* ``MD``  raw mean difference ``m1 - m2`` with metafor's default (heteroscedastic)
  sampling variance ``sd1²/n1 + sd2²/n2`` (escalc ``vtype="LS"``).
* ``SMD`` Hedges' g: Cohen's d with the pooled SD, times the *exact* small-sample
  correction ``c(m) = Γ(m/2) / (√(m/2) Γ((m-1)/2))``, ``m = n1 + n2 - 2``
  (Hedges LV. J Educ Stat 1981;6:107-128, eq. 6e; metafor's ``.cmicalc``), with the
  large-sample variance ``1/n1 + 1/n2 + g²/(2(n1+n2))`` (metafor's default ``vtype="LS"``;
  Hedges LV, Olkin I. Statistical Methods for Meta-Analysis. Academic Press 1985).
* ``RR`` log risk ratio, variance ``1/a - 1/n1 + 1/c - 1/n2``;
  ``OR`` log odds ratio, variance ``1/a + 1/b + 1/c + 1/d``;
  ``RD`` risk difference, variance ``p1(1-p1)/n1 + p2(1-p2)/n2``
  (Fleiss JL, Berlin JA. In: Cooper H et al., The Handbook of Research Synthesis and
  Meta-Analysis, 2nd ed. 2009, ch. 13). As in metafor's ``escalc`` (defaults
  ``add=1/2, to="only0", drop00=FALSE``, checked against metafor 3.8-1's code), 1/2 is
  added to all four cells of every study with a zero cell *for all three measures,
  RD included*, and a double-zero study (no events in either arm, or events in every
  patient of both arms) is kept with the correction unless ``drop00=True``.

Conversions to mean and SD (the caller records the result as ``verification =
derived`` with :attr:`MeanSD.derivation` as the ``derivation``):

* median, quartiles -> mean: Luo D, Wan X, Liu J, Tong T. Optimally estimating the
  sample mean from the sample size, median, mid-range, and/or mid-quartile range.
  Stat Methods Med Res 2018;27:1785-1805 (default), or Wan X, Wang W, Liu J, Tong T.
  Estimating the sample mean and standard deviation from the sample size, median,
  range and/or interquartile range. BMC Med Res Methodol 2014;14:135.
* median, range -> mean: Luo 2018 (default) or Wan 2014; -> SD: Wan 2014.
* median, quartiles -> SD: Wan 2014; with all five numbers, Shi J, Luo D, Weng H,
  et al. Optimally estimating the sample standard deviation from the five-number
  summary. Res Synth Methods 2020;11:641-654 (optional).
* SE -> SD and CI -> SD: Higgins JPT et al. (eds). Cochrane Handbook for Systematic
  Reviews of Interventions, version 6.4 (2023), section 6.5.2.2.

The constants of the Luo, Wan and Shi formulas are those that metafor's
``conv.fivenum`` (metafor >= 4.0) uses; metafor 3.8-1, the version the golden values
come from, has no ``conv.fivenum``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import integrate, special, stats

from trialpool.errors import AnalysisError

ContinuousMeasure = Literal["MD", "SMD"]
BinaryMeasure = Literal["RR", "OR", "RD"]
AddTo = Literal["only0", "all", "if0all", "none"]

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True)
class Effects:
    """Per-study effect sizes (analysis scale: log for RR and OR) and flags."""

    measure: str
    yi: FloatArray
    vi: FloatArray
    zero_cell_corrected: BoolArray
    double_zero: BoolArray

    @property
    def k(self) -> int:
        """Number of studies (including any with a missing effect)."""
        return int(self.yi.size)

    @property
    def sei(self) -> FloatArray:
        """Standard errors ``sqrt(vi)``."""
        return np.sqrt(self.vi)

    def ci(self, level: float = 95.0) -> tuple[FloatArray, FloatArray]:
        """Wald confidence limits ``yi ± z·sei`` on the analysis scale (as metafor)."""
        crit = stats.norm.ppf(1 - (1 - level / 100) / 2)
        return self.yi - crit * self.sei, self.yi + crit * self.sei


def _as_float(name: str, values: ArrayLike) -> FloatArray:
    arr = np.atleast_1d(np.asarray(values, dtype=np.float64))
    if arr.ndim != 1:
        raise AnalysisError(f"{name} must be one-dimensional")
    return arr


def _same_length(**arrays: FloatArray) -> int:
    lengths = {name: a.size for name, a in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise AnalysisError(f"inputs differ in length: {lengths}")
    return next(iter(lengths.values()))


def hedges_correction(m: ArrayLike) -> FloatArray:
    """Exact small-sample correction ``c(m) = Γ(m/2) / (√(m/2) Γ((m-1)/2))``.

    Hedges LV. Distribution theory for Glass's estimator of effect size and related
    estimators. J Educ Stat 1981;6:107-128 (eq. 6e). Computed on the log scale as
    metafor's ``.cmicalc``; NaN for ``m <= 1``.
    """
    m_arr = np.asarray(m, dtype=np.float64)
    out = np.full(m_arr.shape, np.nan)
    ok = m_arr > 1
    mm = m_arr[ok]
    log_c = special.gammaln(mm / 2) - np.log(np.sqrt(mm / 2)) - special.gammaln((mm - 1) / 2)
    out[ok] = np.exp(log_c)
    return out


def escalc_continuous(
    measure: ContinuousMeasure,
    m1i: ArrayLike,
    sd1i: ArrayLike,
    n1i: ArrayLike,
    m2i: ArrayLike,
    sd2i: ArrayLike,
    n2i: ArrayLike,
) -> Effects:
    """Mean differences (``MD``) or Hedges' g (``SMD``) as metafor's ``escalc``.

    MD: ``yi = m1 - m2``, ``vi = sd1²/n1 + sd2²/n2`` (escalc default ``vtype="LS"``).
    SMD: ``d = (m1 - m2) / s_p`` with ``s_p² = ((n1-1)sd1² + (n2-1)sd2²)/(n1+n2-2)``,
    ``g = c(n1+n2-2)·d`` (:func:`hedges_correction`, Hedges 1981) and
    ``vi = 1/n1 + 1/n2 + g²/(2(n1+n2))`` (escalc ``vtype="LS"``; Hedges & Olkin 1985).
    """
    if measure not in ("MD", "SMD"):
        raise AnalysisError(f"measure {measure!r} is not a continuous measure (MD, SMD)")
    m1, s1, n1 = _as_float("m1i", m1i), _as_float("sd1i", sd1i), _as_float("n1i", n1i)
    m2, s2, n2 = _as_float("m2i", m2i), _as_float("sd2i", sd2i), _as_float("n2i", n2i)
    k = _same_length(m1i=m1, sd1i=s1, n1i=n1, m2i=m2, sd2i=s2, n2i=n2)
    if np.any(np.concatenate([s1, s2]) < 0):
        raise AnalysisError("one or more standard deviations are negative")
    if np.any(np.concatenate([n1, n2]) <= 0):
        raise AnalysisError("one or more group sizes are <= 0")
    if measure == "MD":
        yi = m1 - m2
        vi = s1**2 / n1 + s2**2 / n2
    else:
        mi = n1 + n2 - 2
        with np.errstate(divide="ignore", invalid="ignore"):
            sdp = np.sqrt(((n1 - 1) * s1**2 + (n2 - 1) * s2**2) / mi)
            di = (m1 - m2) / sdp
        yi = hedges_correction(mi) * di
        vi = 1 / n1 + 1 / n2 + yi**2 / (2 * (n1 + n2))
    flags = np.zeros(k, dtype=bool)
    return Effects(measure, yi, vi, flags, flags.copy())


def escalc_binary(
    measure: BinaryMeasure,
    ai: ArrayLike,
    n1i: ArrayLike,
    ci: ArrayLike,
    n2i: ArrayLike,
    *,
    add: float = 0.5,
    to: AddTo = "only0",
    drop00: bool = False,
) -> Effects:
    """Log risk ratios, log odds ratios or risk differences as metafor's ``escalc``.

    ``ai``/``ci`` are the events and ``n1i``/``n2i`` the totals of group 1 and 2. The
    continuity correction follows escalc: ``to="only0"`` (default) adds ``add`` to all
    four cells of studies with a zero cell, ``"all"`` to every study, ``"if0all"`` to
    every study when any study has a zero cell, ``"none"`` never (a zero cell then gives
    an infinite or undefined effect, as in R). ``double_zero`` flags studies with no
    events in both arms or only events in both arms; with ``drop00=True`` their yi and
    vi are NaN (left out of the analysis), otherwise they are kept with the correction.
    Formulas: Fleiss & Berlin 2009 (see the module docstring).
    """
    if measure not in ("RR", "OR", "RD"):
        raise AnalysisError(f"measure {measure!r} is not a dichotomous measure (RR, OR, RD)")
    if to not in ("only0", "all", "if0all", "none"):
        raise AnalysisError(f"to={to!r}: use one of only0, all, if0all, none")
    a, n1 = _as_float("ai", ai), _as_float("n1i", n1i)
    c, n2 = _as_float("ci", ci), _as_float("n2i", n2i)
    k = _same_length(ai=a, n1i=n1, ci=c, n2i=n2)
    if np.any(np.concatenate([a, c]) < 0):
        raise AnalysisError("one or more event counts are negative")
    if np.any(a > n1) or np.any(c > n2):
        raise AnalysisError("one or more event counts are larger than the group sizes")
    b, d = n1 - a, n2 - c
    double_zero = ((a == 0) & (c == 0)) | ((b == 0) & (d == 0))
    any_zero = (a == 0) | (b == 0) | (c == 0) | (d == 0)
    if to == "all":
        corrected = np.ones(k, dtype=bool)
    elif to == "only0":
        corrected = any_zero.copy()
    elif to == "if0all":
        corrected = np.full(k, bool(np.any(any_zero)))
    else:
        corrected = np.zeros(k, dtype=bool)
    if add == 0:
        corrected = np.zeros(k, dtype=bool)
    a_c = np.where(corrected, a + add, a)
    b_c = np.where(corrected, b + add, b)
    c_c = np.where(corrected, c + add, c)
    d_c = np.where(corrected, d + add, d)
    n1_c, n2_c = a_c + b_c, c_c + d_c
    with np.errstate(divide="ignore", invalid="ignore"):
        p1, p2 = a_c / n1_c, c_c / n2_c
        if measure == "RR":
            yi = np.log(p1) - np.log(p2)
            vi = 1 / a_c - 1 / n1_c + 1 / c_c - 1 / n2_c
        elif measure == "OR":
            yi = np.log(p1 / (1 - p1)) - np.log(p2 / (1 - p2))
            vi = 1 / a_c + 1 / b_c + 1 / c_c + 1 / d_c
        else:
            yi = p1 - p2
            vi = p1 * (1 - p1) / n1_c + p2 * (1 - p2) / n2_c
    if drop00:
        yi = np.where(double_zero, np.nan, yi)
        vi = np.where(double_zero, np.nan, vi)
        corrected = corrected & ~double_zero
    return Effects(measure, yi, vi, corrected, double_zero)


# --------------------------------------------------------------------------------------
# Conversions to mean and SD
# --------------------------------------------------------------------------------------

MeanMethod = Literal["luo2018", "wan2014"]
SdMethod = Literal["wan2014", "shi2020"]
RangeSdMethod = Literal["wan2014", "wan2014_exact"]


def _check_n(n: float) -> float:
    if not (isinstance(n, int | float | np.integer | np.floating) and n >= 1):
        raise AnalysisError(f"sample size must be a number >= 1 (got {n!r})")
    return float(n)


def _check_order(*values: float) -> None:
    present = [v for v in values if v is not None]
    if any(x > y for x, y in itertools.pairwise(present)):
        raise AnalysisError(f"values must be ordered min <= q1 <= median <= q3 <= max: {values}")


def xi_range(n: float) -> float:
    """``ξ(n) = 2Φ⁻¹((n - 0.375)/(n + 0.25))``: Blom's approximation to the expected
    range of ``n`` standard normal draws (Wan 2014, eq. 9; metafor's ``conv.fivenum``)."""
    return float(2 * stats.norm.ppf((n - 0.375) / (n + 0.25)))


def expected_normal_range(n: int) -> float:
    """Exact expected range ``E(Z₍ₙ₎ - Z₍₁₎)`` of ``n`` standard normal draws.

    ``∫ 1 - Φ(z)ⁿ - (1 - Φ(z))ⁿ dz`` (Tippett 1925; the ``ξ(n)`` of Wan 2014 Table 1,
    which the paper tabulates for ``n <= 50``).
    """
    if n < 1:
        raise AnalysisError(f"sample size must be >= 1 (got {n})")
    if n == 1:
        return 0.0

    def integrand(z: float) -> float:
        return float(1 - stats.norm.cdf(z) ** n - stats.norm.sf(z) ** n)

    value, _ = integrate.quad(integrand, -np.inf, np.inf)
    return float(value)


def eta_iqr(n: float) -> float:
    """``η(n) = 2Φ⁻¹((0.75n - 0.125)/(n + 0.25))``: expected IQR of ``n`` standard
    normal draws (Wan 2014, eq. 16; metafor's ``conv.fivenum``)."""
    return float(2 * stats.norm.ppf((0.75 * n - 0.125) / (n + 0.25)))


def mean_from_median_iqr(
    q1: float, median: float, q3: float, n: float, *, method: MeanMethod = "luo2018"
) -> float:
    """Mean from the median and quartiles (scenario C2/S2).

    ``luo2018``: ``w(q1+q3)/2 + (1-w)·median`` with ``w = 0.7 + 0.39/n``
    (Luo 2018, eq. 11). ``wan2014``: ``(q1 + median + q3)/3`` (Wan 2014, scenario C2).
    """
    n = _check_n(n)
    _check_order(q1, median, q3)
    if method == "luo2018":
        w = 0.7 + 0.39 / n
        return w * (q1 + q3) / 2 + (1 - w) * median
    if method == "wan2014":
        return (q1 + median + q3) / 3
    raise AnalysisError(f"unknown mean method {method!r} (luo2018, wan2014)")


def sd_from_iqr(q1: float, q3: float, n: float) -> float:
    """SD from the quartiles: ``(q3 - q1)/η(n)`` (Wan 2014, eq. 16; :func:`eta_iqr`)."""
    n = _check_n(n)
    _check_order(q1, q3)
    return (q3 - q1) / eta_iqr(n)


def mean_from_median_range(
    minimum: float, median: float, maximum: float, n: float, *, method: MeanMethod = "luo2018"
) -> float:
    """Mean from the median and range (scenario C1/S1).

    ``luo2018``: ``w(min+max)/2 + (1-w)·median`` with ``w = 4/(4 + n^0.75)``
    (Luo 2018, eq. 7). ``wan2014``: ``(min + 2·median + max)/4`` (Wan 2014, scenario C1,
    after Hozo et al. 2005).
    """
    n = _check_n(n)
    _check_order(minimum, median, maximum)
    if method == "luo2018":
        w = 4 / (4 + n**0.75)
        return w * (minimum + maximum) / 2 + (1 - w) * median
    if method == "wan2014":
        return (minimum + 2 * median + maximum) / 4
    raise AnalysisError(f"unknown mean method {method!r} (luo2018, wan2014)")


def sd_from_range(
    minimum: float, maximum: float, n: float, *, method: RangeSdMethod = "wan2014"
) -> float:
    """SD from the range: ``(max - min)/ξ(n)``.

    ``wan2014``: ``ξ(n)`` by the approximation of Wan 2014 eq. 9 (:func:`xi_range`, as
    metafor's ``conv.fivenum``). ``wan2014_exact``: the exact expected range of Wan 2014
    eq. 7 / Table 1 (:func:`expected_normal_range`; integer ``n`` only).
    """
    n = _check_n(n)
    _check_order(minimum, maximum)
    if method == "wan2014":
        return (maximum - minimum) / xi_range(n)
    if method == "wan2014_exact":
        if n < 2 or n != int(n):
            raise AnalysisError("wan2014_exact needs an integer sample size >= 2")
        return (maximum - minimum) / expected_normal_range(int(n))
    raise AnalysisError(f"unknown SD method {method!r} (wan2014, wan2014_exact)")


def mean_from_five_numbers(
    minimum: float,
    q1: float,
    median: float,
    q3: float,
    maximum: float,
    n: float,
    *,
    method: MeanMethod = "luo2018",
) -> float:
    """Mean from the five-number summary (scenario C3/S3).

    ``luo2018``: ``w1(min+max)/2 + w2(q1+q3)/2 + (1-w1-w2)·median`` with
    ``w1 = 2.2/(2.2 + n^0.75)``, ``w2 = 0.7 - 0.72/n^0.55`` (Luo 2018, eq. 15).
    ``wan2014``: ``(min + 2q1 + 2median + 2q3 + max)/8`` (Wan 2014, scenario C3).
    """
    n = _check_n(n)
    _check_order(minimum, q1, median, q3, maximum)
    if method == "luo2018":
        w1 = 2.2 / (2.2 + n**0.75)
        w2 = 0.7 - 0.72 / n**0.55
        return w1 * (minimum + maximum) / 2 + w2 * (q1 + q3) / 2 + (1 - w1 - w2) * median
    if method == "wan2014":
        return (minimum + 2 * q1 + 2 * median + 2 * q3 + maximum) / 8
    raise AnalysisError(f"unknown mean method {method!r} (luo2018, wan2014)")


def sd_from_five_numbers(
    minimum: float, q1: float, q3: float, maximum: float, n: float, *, method: SdMethod = "wan2014"
) -> float:
    """SD from the five-number summary.

    ``wan2014``: ``((max-min)/ξ(n) + (q3-q1)/η(n))/2`` (Wan 2014, scenario C3).
    ``shi2020``: ``w(max-min)/ξ(n) + (1-w)(q3-q1)/η(n)`` with ``w = 1/(1 + 0.07n^0.6)``
    (Shi 2020, eq. 10).
    """
    n = _check_n(n)
    _check_order(minimum, q1, q3, maximum)
    by_range = (maximum - minimum) / xi_range(n)
    by_iqr = (q3 - q1) / eta_iqr(n)
    if method == "wan2014":
        return (by_range + by_iqr) / 2
    if method == "shi2020":
        w = 1 / (1 + 0.07 * n**0.6)
        return w * by_range + (1 - w) * by_iqr
    raise AnalysisError(f"unknown SD method {method!r} (wan2014, shi2020)")


def sd_from_se(se: float, n: float) -> float:
    """SD from the standard error of a mean: ``SE·√n`` (Cochrane Handbook 6.5.2.2)."""
    n = _check_n(n)
    if se < 0:
        raise AnalysisError(f"standard error must be >= 0 (got {se})")
    return se * math.sqrt(n)


def sd_from_ci(
    lower: float,
    upper: float,
    n: float,
    *,
    level: float = 95.0,
    dist: Literal["t", "normal"] = "t",
) -> float:
    """SD from a confidence interval of a mean: ``√n·(upper - lower)/(2·crit)``.

    ``crit`` is the t quantile on ``n - 1`` degrees of freedom (``dist="t"``, for small
    samples) or the normal quantile (3.92/2 for 95%) (Cochrane Handbook 6.5.2.2).
    """
    n = _check_n(n)
    if upper < lower:
        raise AnalysisError(f"CI upper limit {upper} is below the lower limit {lower}")
    p = 1 - (1 - level / 100) / 2
    if dist == "t":
        if n < 2:
            raise AnalysisError("a t-based conversion needs n >= 2")
        crit = float(stats.t.ppf(p, df=n - 1))
    elif dist == "normal":
        crit = float(stats.norm.ppf(p))
    else:
        raise AnalysisError(f"unknown distribution {dist!r} (t, normal)")
    return math.sqrt(n) * (upper - lower) / (2 * crit)


@dataclass(frozen=True)
class MeanSD:
    """A mean and SD, with how they were obtained (``derivation``; empty when given)."""

    mean: float
    sd: float
    derivation: str = ""

    @property
    def derived(self) -> bool:
        return bool(self.derivation)


_MEAN_CITE = {"luo2018": "Luo 2018", "wan2014": "Wan 2014"}


def to_mean_sd(
    statistic: str,
    n: float,
    *,
    mean: float | None = None,
    sd: float | None = None,
    se: float | None = None,
    median: float | None = None,
    q1: float | None = None,
    q3: float | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    mean_method: MeanMethod = "luo2018",
    sd_method: SdMethod = "wan2014",
) -> MeanSD:
    """Mean and SD from one row of ``continuous_outcomes`` (by its ``statistic``).

    ``mean_sd`` and ``change_mean_sd`` pass through; ``mean_se`` converts the SE
    (:func:`sd_from_se`); ``median_iqr`` and ``median_range`` use Luo 2018 / Wan 2014
    (:func:`mean_from_median_iqr`, :func:`sd_from_iqr`, :func:`mean_from_median_range`,
    :func:`sd_from_range`); a row that states all five numbers uses the five-number
    formulas (:func:`mean_from_five_numbers`, :func:`sd_from_five_numbers`; Shi 2020
    with ``sd_method="shi2020"``). Shi 2020 has no estimator of its own for three-number
    summaries, so ``shi2020`` falls back to Wan 2014 there (as metafor's recommended set).
    """
    if statistic in ("mean_sd", "change_mean_sd"):
        if mean is None or sd is None:
            raise AnalysisError(f"{statistic} row needs mean and sd")
        return MeanSD(mean, sd)
    if statistic == "mean_se":
        if mean is None or se is None:
            raise AnalysisError("mean_se row needs mean and se")
        how = f"sd = se * sqrt(n) (Cochrane Handbook 6.5.2.2; se={se:g}, n={n:g})"
        return MeanSD(mean, sd_from_se(se, n), how)
    if median is None:
        raise AnalysisError(f"{statistic} row needs a median")
    has_iqr = q1 is not None and q3 is not None
    has_range = minimum is not None and maximum is not None
    if mean_method not in _MEAN_CITE:
        raise AnalysisError(f"unknown mean method {mean_method!r} (luo2018, wan2014)")
    if sd_method not in ("wan2014", "shi2020"):
        raise AnalysisError(f"unknown SD method {sd_method!r} (wan2014, shi2020)")
    if statistic not in ("median_iqr", "median_range"):
        raise AnalysisError(f"unknown statistic {statistic!r}")
    if has_iqr and has_range:
        assert q1 is not None and q3 is not None and minimum is not None and maximum is not None
        m = mean_from_five_numbers(minimum, q1, median, q3, maximum, n, method=mean_method)
        s = sd_from_five_numbers(minimum, q1, q3, maximum, n, method=sd_method)
        sd_cite = "Shi 2020" if sd_method == "shi2020" else "Wan 2014"
        how = (
            f"mean by {_MEAN_CITE[mean_method]}, sd by {sd_cite} from the five-number "
            f"summary (median={median:g}, q1={q1:g}, q3={q3:g}, min={minimum:g}, "
            f"max={maximum:g}, n={n:g})"
        )
        return MeanSD(m, s, how)
    if statistic == "median_iqr":
        if not has_iqr:
            raise AnalysisError("median_iqr row needs q1 and q3")
        assert q1 is not None and q3 is not None
        m = mean_from_median_iqr(q1, median, q3, n, method=mean_method)
        s = sd_from_iqr(q1, q3, n)
        how = (
            f"mean by {_MEAN_CITE[mean_method]}, sd by Wan 2014 from median and IQR "
            f"(median={median:g}, q1={q1:g}, q3={q3:g}, n={n:g})"
        )
        return MeanSD(m, s, how)
    if not has_range:
        raise AnalysisError("median_range row needs min and max")
    assert minimum is not None and maximum is not None
    m = mean_from_median_range(minimum, median, maximum, n, method=mean_method)
    s = sd_from_range(minimum, maximum, n)
    how = (
        f"mean by {_MEAN_CITE[mean_method]}, sd by Wan 2014 from median and range "
        f"(median={median:g}, min={minimum:g}, max={maximum:g}, n={n:g})"
    )
    return MeanSD(m, s, how)
