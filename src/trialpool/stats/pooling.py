"""Pooling models, computed as R's metafor computes them.

This module is the statistical engine of trialpool. Each public function mirrors one
metafor function, including its defaults, so that results agree with metafor 3.8-1 to
within floating-point noise (closed-form models) or far below the reporting precision
(iterative models, which replicate metafor's iterations step by step):

===================  =========================================================
trialpool            metafor
===================  =========================================================
:func:`rma`          ``rma(yi, vi, method=, test="z"|"knha", level=)``, with
                     ``predict()`` (prediction interval), ``weights()`` and
                     ``confint()`` (Q-profile CI for tau²)
:func:`rma_mh`       ``rma.mh(ai=, n1i=, ci=, n2i=, measure="RR"|"OR"|"RD")``
:func:`rma_batch`    ``rma`` over many analyses at once (vectorised)
:func:`leave1out`    ``leave1out(rma(...))``
:func:`subgroup_test`  ``rma(estimates, variances, method="EE")$QE`` (the test for
                     subgroup differences of RevMan and metafor)
===================  =========================================================

Models and the papers that define them:

* FE (metafor's "EE"): inverse-variance weighted mean.
* DL: DerSimonian R, Laird N. Meta-analysis in clinical trials. Control Clin Trials
  1986;7:177-88 (method-of-moments tau²).
* PM: Paule RC, Mandel J. Consensus values and weighting factors. J Res Natl Bur Stand
  1982;87:377-85 (tau² solving the generalised Q equation Q(tau²) = k - 1; found by
  R's ``uniroot`` (Brent's zeroin), replicated here).
* REML and ML: Viechtbauer W. Bias and efficiency of meta-analytic variance
  estimators in the random-effects model. J Educ Behav Stat 2005;30:261-93 (Fisher
  scoring, metafor's defaults: start at the Hedges (HE) estimate, threshold 1e-5,
  at most 100 iterations, step halving at the boundary, and the check against a local
  maximum at tau² > 0).
* HKSJ (metafor's ``test="knha"``): Hartung J, Knapp G. On tests of the overall
  treatment effect in meta-analysis with normally distributed responses. Stat Med
  2001;20:1771-82; Sidik K, Jonkman JN. A simple confidence interval for meta-analysis.
  Stat Med 2002;21:3153-9. The variance is scaled by s² = Σwᵢ(yᵢ-μ̂)²/(k-1) without
  truncation at 1, and tests and intervals use the t distribution on k-1 df.
* Q-profile CI for tau²: Viechtbauer W. Confidence intervals for the amount of
  heterogeneity in meta-analysis. Stat Med 2007;26:37-52.
* I² and H²: Higgins JPT, Thompson SG. Quantifying heterogeneity in a meta-analysis.
  Stat Med 2002;21:1539-58. As in metafor they are computed from the model's tau²:
  I² = 100·tau²/(tau² + s²) and H² = tau²/s² + 1, where s² = (k-1)/tr(P) is the
  "typical" within-study variance; for FE, I² = max(0, 100·(Q-(k-1))/Q), H² = Q/(k-1).
* Prediction interval: Riley RD, Higgins JPT, Deeks JJ. Interpretation of random
  effects meta-analyses. BMJ 2011;342:d549. Computed as metafor's ``predict()``:
  μ̂ ± crit·sqrt(SE(μ̂)² + tau²), with crit from the normal distribution, or from the t
  distribution on k-1 df with HKSJ.
* Mantel-Haenszel: Mantel N, Haenszel W. Statistical aspects of the analysis of data
  from retrospective studies of disease. J Natl Cancer Inst 1959;22:719-48; variances
  of Greenland S, Robins JM. Estimation of a common effect parameter from sparse
  follow-up data. Biometrics 1985;41:55-68 (RR, RD) and Robins J, Breslow N, Greenland
  S. Biometrics 1986;42:311-23 (OR).

Deviations from metafor (all at degenerate inputs; see the docstrings): for FE and
Mantel-Haenszel fits whose Q is exactly 0 with k > 1, metafor's I² is NaN (0/0) and we
report 0; with HKSJ and k = 1, metafor has no t distribution (0 df) and we report NaN
for the SE, test, p-value and intervals; where metafor only warns (the Fisher scoring
"local maximum" check), we add a message to ``RmaFit.messages``; where metafor stops
with an error (no convergence), :class:`ConvergenceError` is raised (``rma_batch``
reports ``converged=False`` instead).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from trialpool.errors import AnalysisError
from trialpool.stats.results import RATIO_MEASURES, PoolResult, StudyEffect

__all__ = [
    "BatchFit",
    "ConvergenceError",
    "RmaFit",
    "leave1out",
    "result_from_fit",
    "rma",
    "rma_batch",
    "rma_mh",
    "subgroup_test",
]

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
Method = Literal["FE", "DL", "REML", "PM", "ML"]

#: metafor's control defaults for rma.uni (metafor 3.8-1, rma.uni.R).
THRESHOLD = 1e-5  # Fisher scoring convergence: |change in tau²| <= threshold
MAXITER = 100  # Fisher scoring / PM uniroot iterations
TAU2_MAX = 100.0  # upper end for PM's root search (or 10·mad(yi)², if larger)
UNIROOT_TOL = float(np.finfo(float).eps ** 0.25)  # uniroot's and metafor's tol
CONFINT_MAXITER = 1000  # confint.rma.uni's uniroot maxiter
_EPS = float(np.finfo(float).eps)
_LOG_2PI = math.log(2.0 * math.pi)
_METHODS: tuple[str, ...] = ("FE", "DL", "REML", "PM", "ML")


class ConvergenceError(AnalysisError):
    """An iterative tau² estimator did not converge (metafor stops with an error too)."""


@dataclass(frozen=True, eq=False)
class RmaFit:
    """One fitted model, with the numbers metafor's rma/predict/confint/weights report.

    ``beta``, ``se``, ``ci_*`` and ``pi_*`` are on the analysis scale (log scale for
    RR and OR). ``zval`` is a t statistic when ``hksj`` is true. ``pi_lb``/``pi_ub``
    follow metafor's ``predict()`` formula; for FE and MH fits (tau² = 0) they equal
    the CI, and metafor's ``predict()`` does not show them (:func:`result_from_fit`
    reports none for those models). ``weights`` are percentages, as ``weights()``.
    For MH fits, ``yi``/``vi`` are escalc's values used for Q (NaN for double-zero
    tables, which Q leaves out) and ``k`` counts all tables.
    """

    k: int
    method: str
    measure: str | None
    hksj: bool
    level: float
    beta: float
    se: float
    zval: float
    pval: float
    ci_lb: float
    ci_ub: float
    tau2: float
    tau2_ci_lb: float | None
    tau2_ci_ub: float | None
    i2: float | None
    h2: float | None
    q: float | None
    q_df: int | None
    q_p: float | None
    pi_lb: float
    pi_ub: float
    weights: FloatArray
    yi: FloatArray
    vi: FloatArray
    #: HKSJ scaling factor s² (metafor's ``s2w``); 1 without HKSJ.
    s2w: float = 1.0
    #: Fisher scoring iterations (REML/ML), 0 otherwise.
    iterations: int = 0
    #: Plain-language messages where metafor would warn.
    messages: tuple[str, ...] = ()
    #: Mantel-Haenszel OR only: Cochran-Mantel-Haenszel test (with continuity
    #: correction, as rma.mh's default) and Tarone's test for heterogeneity.
    cmh: float | None = None
    cmh_p: float | None = None
    tarone: float | None = None
    tarone_p: float | None = None
    tarone_df: int | None = None


@dataclass(frozen=True, eq=False)
class BatchFit:
    """Results of :func:`rma_batch`: one entry per analysis (row) in each array."""

    k: NDArray[np.int64]
    beta: FloatArray
    se: FloatArray
    zval: FloatArray
    pval: FloatArray
    ci_lb: FloatArray
    ci_ub: FloatArray
    tau2: FloatArray
    i2: FloatArray
    h2: FloatArray
    q: FloatArray
    q_p: FloatArray
    pi_lb: FloatArray
    pi_ub: FloatArray
    converged: BoolArray
    q_df: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    s2w: FloatArray = field(default_factory=lambda: np.zeros(0))
    iterations: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    #: Fisher scoring reset tau² to 0 (metafor's "local maximum" warning).
    ll0_reset: BoolArray = field(default_factory=lambda: np.zeros(0, dtype=bool))


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def _alpha(level: float) -> float:
    """metafor's ``.level()``: 95 -> 0.05, 0.95 -> 0.05, 0.05 -> 0.05."""
    if level == 0:
        return 1.0
    if level >= 1:
        return (100.0 - level) / 100.0
    if level > 0.5:
        return 1.0 - level
    return float(level)


def _normalise_method(method: str) -> Method:
    m = method.upper()
    if m == "EE":
        m = "FE"
    if m not in _METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {', '.join(_METHODS)}")
    return m  # type: ignore[return-value]


def _wsum(a: FloatArray) -> FloatArray:
    """Row sums (axis 1)."""
    return np.sum(a, axis=1)


def _q_at(y: FloatArray, v: FloatArray, mask: FloatArray, tau2: FloatArray) -> FloatArray:
    """Generalised Q statistic Σ wᵢ(yᵢ - μ̂)², wᵢ = 1/(vᵢ + tau²), per row (metafor .QE.func)."""
    w = mask / (v + tau2[:, None])
    sw = _wsum(w)
    ybar = _wsum(w * y) / sw
    return _wsum(w * (y - ybar[:, None]) ** 2)


def _zeroin(
    f: Callable[[FloatArray, NDArray[np.intp]], FloatArray],
    ax: FloatArray,
    bx: FloatArray,
    fa: FloatArray,
    fb: FloatArray,
    tol: float,
    maxiter: int,
) -> tuple[FloatArray, BoolArray]:
    """Brent's root finder exactly as R's ``uniroot`` (R_zeroin2 in stats/src/zeroin.c).

    Vectorised over independent problems: ``f(x, rows)`` evaluates the functions of
    the problems ``rows`` at ``x``. ``fa``/``fb`` are f at the ends and must bracket a
    root. Returns the roots and, per problem, whether the tolerance was met within
    ``maxiter`` iterations (R's uniroot only warns when not; its last iterate is used).
    """
    n = ax.shape[0]
    a = ax.astype(float).copy()
    b = bx.astype(float).copy()
    fa = fa.astype(float).copy()
    fb = fb.astype(float).copy()
    c = a.copy()
    fc = fa.copy()
    root = np.full(n, np.nan)
    conv = np.zeros(n, dtype=bool)
    at_a = fa == 0.0
    root[at_a] = a[at_a]
    conv[at_a] = True
    at_b = ~at_a & (fb == 0.0)
    root[at_b] = b[at_b]
    conv[at_b] = True
    active = np.flatnonzero(~conv)
    maxit = maxiter + 1
    while active.size and maxit > 0:
        maxit -= 1
        xa, xb, xc = a[active], b[active], c[active]
        fxa, fxb, fxc = fa[active], fb[active], fc[active]
        prev_step = xb - xa
        swap = np.abs(fxc) < np.abs(fxb)
        xa = np.where(swap, xb, xa)
        xb = np.where(swap, xc, xb)
        xc = np.where(swap, xa, xc)
        fxa = np.where(swap, fxb, fxa)
        fxb = np.where(swap, fxc, fxb)
        fxc = np.where(swap, fxa, fxc)
        tol_act = 2.0 * _EPS * np.abs(xb) + tol / 2.0
        new_step = (xc - xb) / 2.0
        done = (np.abs(new_step) <= tol_act) | (fxb == 0.0)
        if done.any():
            rows = active[done]
            root[rows] = xb[done]
            conv[rows] = True
        keep = ~done
        if not keep.any():
            active = active[keep]
            break
        active = active[keep]
        xa, xb, xc, fxa, fxb, fxc = xa[keep], xb[keep], xc[keep], fxa[keep], fxb[keep], fxc[keep]
        prev_step, tol_act, new_step = prev_step[keep], tol_act[keep], new_step[keep]
        try_interp = (np.abs(prev_step) >= tol_act) & (np.abs(fxa) > np.abs(fxb))
        if try_interp.any():
            cb = xc - xb
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                t1_lin = fxb / fxa
                p_lin = cb * t1_lin
                q_lin = 1.0 - t1_lin
                qq = fxa / fxc
                t1 = fxb / fxc
                t2 = fxb / fxa
                p_quad = t2 * (cb * qq * (qq - t1) - (xb - xa) * (t1 - 1.0))
                q_quad = (qq - 1.0) * (t1 - 1.0) * (t2 - 1.0)
                linear = xa == xc
                p = np.where(linear, p_lin, p_quad)
                q = np.where(linear, q_lin, q_quad)
                q = np.where(p > 0.0, -q, q)
                p = np.where(p > 0.0, p, -p)
                accept = (
                    try_interp
                    & (p < (0.75 * cb * q - np.abs(tol_act * q) / 2.0))
                    & (p < np.abs(prev_step * q / 2.0))
                )
                new_step = np.where(accept, p / q, new_step)
        small = np.abs(new_step) < tol_act
        new_step = np.where(small, np.where(new_step > 0.0, tol_act, -tol_act), new_step)
        xa = xb
        fxa = fxb
        xb = xb + new_step
        fxb = f(xb, active)
        flip = ((fxb > 0.0) & (fxc > 0.0)) | ((fxb < 0.0) & (fxc < 0.0))
        xc = np.where(flip, xa, xc)
        fxc = np.where(flip, fxa, fxc)
        a[active], b[active], c[active] = xa, xb, xc
        fa[active], fb[active], fc[active] = fxa, fxb, fxc
    if active.size:  # maxiter exhausted: R returns the last iterate (with a warning)
        root[active] = b[active]
    return root, conv


def _ratio(num: float, den: float) -> float:
    """num/den with IEEE semantics (±inf, or NaN for 0/0), as R divides."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(num) / np.float64(den))


def _sqrt(x: float) -> float:
    """sqrt of a variance that cannot be negative except by rounding (then 0; R: NaN)."""
    return math.sqrt(max(x, 0.0)) if not math.isnan(x) else math.nan


def _mad(y: FloatArray, mask: BoolArray) -> FloatArray:
    """R's ``mad()`` (constant 1.4826) per row, over the masked entries (k >= 1)."""
    yy = np.where(mask, y, np.nan)
    med = np.nanmedian(yy, axis=1)
    return 1.4826 * np.nanmedian(np.abs(yy - med[:, None]), axis=1)


# --------------------------------------------------------------------------------------
# Vectorised core shared by rma, rma_batch and leave1out
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Core:
    k: NDArray[np.int64]
    beta: FloatArray
    se: FloatArray
    zval: FloatArray
    pval: FloatArray
    ci_lb: FloatArray
    ci_ub: FloatArray
    tau2: FloatArray
    i2: FloatArray
    h2: FloatArray
    q: FloatArray
    q_p: FloatArray
    pi_lb: FloatArray
    pi_ub: FloatArray
    weights: FloatArray
    s2w: FloatArray
    converged: BoolArray
    iterations: NDArray[np.int64]
    ll0_reset: BoolArray


def _tau2_fisher(
    ymc: FloatArray,
    v: FloatArray,
    m: FloatArray,
    k: FloatArray,
    rows: NDArray[np.intp],
    reml: bool,
    tau2: FloatArray,
    conv: BoolArray,
    iters: NDArray[np.int64],
    reset: BoolArray,
) -> None:
    """REML/ML tau² by metafor's Fisher scoring (Viechtbauer 2005), in place on ``rows``.

    Start: the Hedges (HE) estimate truncated at 0. Step: REML
    (Y'PPY - tr P)/tr(PP), ML (Y'PPY - Σw)/Σw²; halved while it would make tau² < 0;
    stop when |change| <= 1e-5; fail after 100 iterations. Then metafor's check: if the
    log-likelihood at tau² = 0 exceeds that at the estimate by more than uniroot's tol
    (and tau² > 1e-5), tau² is set to 0 (metafor warns "may have gotten stuck at a local
    maximum").
    """
    y_r, v_r, m_r, k_r = ymc[rows], v[rows], m[rows], k[rows]
    # Hedges (HE) starting value: (RSS - tr(PV))/(k - p) with P = I - J/k
    ybar_u = _wsum(m_r * y_r) / k_r
    rss_u = _wsum(m_r * (y_r - ybar_u[:, None]) ** 2)
    tr_pv = _wsum(m_r * v_r) * (k_r - 1.0) / k_r
    t = np.maximum(0.0, (rss_u - tr_pv) / (k_r - 1.0))
    it = np.zeros(rows.size, dtype=np.int64)
    ok = np.zeros(rows.size, dtype=bool)
    act = np.arange(rows.size)
    iteration = 0
    while act.size:
        iteration += 1
        ya, va, ma, ta = y_r[act], v_r[act], m_r[act], t[act]
        w = ma / (va + ta[:, None])
        sw = _wsum(w)
        sw2 = _wsum(w * w)
        ybar = _wsum(w * ya) / sw
        res = ya - ybar[:, None]
        ypppy = _wsum(w * w * res * res)
        with np.errstate(divide="ignore", invalid="ignore"):
            if reml:
                sw3 = _wsum(w * w * w)
                tr_p = sw - sw2 / sw
                tr_pp = sw2 - 2.0 * sw3 / sw + sw2 * sw2 / (sw * sw)
                adj = (ypppy - tr_p) / tr_pp
            else:
                adj = (ypppy - sw) / sw2
        adj = np.where(np.isnan(adj), 0.0, adj)
        # step halving: while (tau2 + adj < tau2.min) adj <- adj/2
        zero_start = (ta == 0.0) & (adj < 0.0)
        adj = np.where(zero_start, -0.0, adj)  # halving underflows to -0 when tau2 = 0
        need = ta + adj < 0.0
        while need.any():
            adj = np.where(need, adj / 2.0, adj)
            need = ta + adj < 0.0
        new = ta + adj
        change = np.abs(ta - new)
        t[act] = new
        it[act] = iteration
        if iteration > MAXITER:
            break  # the remaining rows did not converge
        done = change <= THRESHOLD
        ok[act[done]] = True
        act = act[~done]
    # metafor's ll0check (ML/REML, converged, all vi > 0)
    chk = np.flatnonzero(ok & (t > THRESHOLD))
    if chk.size:
        ya, va, ma, ka, ta = y_r[chk], v_r[chk], m_r[chk], k_r[chk], t[chk]
        lls = []
        for tt in (np.zeros_like(ta), ta):
            w = ma / (va + tt[:, None])
            sw = _wsum(w)
            b = _wsum(w * ya) / sw
            rss = _wsum(w * (ya - b[:, None]) ** 2)
            slog = _wsum(ma * np.log(va + tt[:, None]))
            if reml:
                ll = -0.5 * (ka - 1.0) * _LOG_2PI - 0.5 * slog - 0.5 * np.log(sw) - 0.5 * rss
            else:
                ll = -0.5 * ka * _LOG_2PI - 0.5 * slog - 0.5 * rss
            lls.append(ll)
        bad = (lls[0] - lls[1]) > UNIROOT_TOL
        t[chk[bad]] = 0.0
        reset[rows[chk[bad]]] = True
    tau2[rows] = np.maximum(0.0, t)
    conv[rows] = ok
    iters[rows] = it


def _tau2_pm(
    ymc: FloatArray,
    y: FloatArray,
    v: FloatArray,
    m: FloatArray,
    mask: BoolArray,
    k: FloatArray,
    rows: NDArray[np.intp],
    tau2: FloatArray,
    conv: BoolArray,
) -> None:
    """Paule-Mandel tau² as metafor: root of Q(tau²) = k - 1 by R's uniroot, in place.

    Q(0) < k-1 gives tau² = 0; the search interval is [0, max(100, 10·mad(yi)²)] with
    tol = .Machine$double.eps^0.25 and maxiter = 100; no root below the upper end is a
    failure (metafor: "Value of 'tau2.max' too low").
    """
    target = k[rows] - 1.0
    tau2_max = np.maximum(TAU2_MAX, 10.0 * _mad(y[rows], mask[rows]) ** 2)

    def f(x: FloatArray, sub: NDArray[np.intp]) -> FloatArray:
        r = rows[sub]
        return _q_at(ymc[r], v[r], m[r], x) - target[sub]

    all_rows = np.arange(rows.size)
    f0 = f(np.zeros(rows.size), all_rows)
    fmax = f(tau2_max, all_rows)
    at_zero = f0 < 0.0
    too_low = ~at_zero & (fmax > 0.0)
    search = np.flatnonzero(~at_zero & ~too_low)
    out = np.zeros(rows.size)
    ok = ~too_low
    out[too_low] = np.nan
    if search.size:

        def fs(x: FloatArray, sub: NDArray[np.intp]) -> FloatArray:
            return f(x, search[sub])

        root, _ = _zeroin(
            fs, np.zeros(search.size), tau2_max[search], f0[search], fmax[search],
            UNIROOT_TOL, MAXITER,
        )  # fmt: skip
        out[search] = root
    tau2[rows] = np.maximum(0.0, out)
    tau2[rows[too_low]] = np.nan
    conv[rows] = ok


def _core(
    y: FloatArray,
    v: FloatArray,
    mask: BoolArray,
    method: Method,
    hksj: bool,
    level: float,
) -> _Core:
    """Fit one intercept-only model per row of ``y``/``v`` (entries where ``mask``)."""
    nrow = y.shape[0]
    m = mask.astype(float)
    y = np.where(mask, y, 0.0)
    v = np.where(mask, v, 1.0)
    kk = mask.sum(axis=1).astype(np.int64)
    k = kk.astype(float)
    alpha = _alpha(level)
    tau2 = np.zeros(nrow)
    conv = np.ones(nrow, dtype=bool)
    iters = np.zeros(nrow, dtype=np.int64)
    reset = np.zeros(nrow, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        # metafor centres yi (unweighted mean) before estimating tau²
        ymc = np.where(mask, y - (_wsum(m * y) / k)[:, None], 0.0)
        # fixed-effect quantities: Cochran's Q and tr(P)
        w0 = m / v
        sw0 = _wsum(w0)
        ybar0 = _wsum(w0 * ymc) / sw0
        q = _wsum(w0 * (ymc - ybar0[:, None]) ** 2)
        tr_p0 = sw0 - _wsum(w0 * w0) / sw0
    multi = np.flatnonzero(kk > 1)  # k = 1: metafor fixes tau² = 0 for every method
    if method == "DL" and multi.size:
        tau2[multi] = np.maximum(0.0, (q[multi] - (k[multi] - 1.0)) / tr_p0[multi])
    elif method in ("REML", "ML") and multi.size:
        _tau2_fisher(ymc, v, m, k, multi, method == "REML", tau2, conv, iters, reset)
    elif method == "PM" and multi.size:
        _tau2_pm(ymc, y, v, m, mask, k, multi, tau2, conv)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        t2 = np.where(np.isnan(tau2), 0.0, tau2)
        w = m / (v + t2[:, None])
        sw = _wsum(w)
        beta = _wsum(w * y) / sw
        vb = 1.0 / sw
        df = k - 1.0
        if hksj:
            rss = _wsum(w * (y - beta[:, None]) ** 2)
            s2w = np.where(rss <= _EPS, 0.0, rss / df)
            vb = s2w * vb
            has_df = df > 0
            se = np.where(has_df, np.sqrt(vb), np.nan)
            zval = beta / se
            pval = np.where(has_df, 2.0 * stats.t.sf(np.abs(zval), np.maximum(df, 1.0)), np.nan)
            crit = np.where(has_df, stats.t.isf(alpha / 2.0, np.maximum(df, 1.0)), np.nan)
        else:
            s2w = np.ones(nrow)
            se = np.sqrt(vb)
            zval = beta / se
            pval = 2.0 * stats.norm.sf(np.abs(zval))
            crit = np.full(nrow, stats.norm.isf(alpha / 2.0))
        ci_lb = beta - crit * se
        ci_ub = beta + crit * se
        sd_pred = np.sqrt(vb + t2)
        pi_lb = beta - crit * sd_pred
        pi_ub = beta + crit * sd_pred
        weights = 100.0 * w / sw[:, None]
        # heterogeneity (k > p); k = 1: Q = 0, p = 1, I² = 0, H² = 1
        q = np.where(kk > 1, np.maximum(0.0, q), 0.0)
        q_p = np.where(kk > 1, stats.chi2.sf(q, np.maximum(df, 1.0)), 1.0)
        if method == "FE":
            i2 = np.where(q > 0, np.maximum(0.0, 100.0 * (q - df) / q), 0.0)
            h2 = q / df
        else:
            vt = df / tr_p0
            i2 = 100.0 * t2 / (vt + t2)
            h2 = t2 / vt + 1.0
        i2 = np.where(kk > 1, i2, 0.0)
        h2 = np.where(kk > 1, h2, 1.0)
    bad = ~conv | (kk == 0)
    if bad.any():
        for arr in (beta, se, zval, pval, ci_lb, ci_ub, i2, h2, pi_lb, pi_ub, tau2):
            arr[bad] = np.nan
        weights[bad] = np.nan
        conv = conv & (kk > 0)
    return _Core(
        k=kk, beta=beta, se=se, zval=zval, pval=pval, ci_lb=ci_lb, ci_ub=ci_ub, tau2=tau2,
        i2=i2, h2=h2, q=q, q_p=q_p, pi_lb=pi_lb, pi_ub=pi_ub, weights=weights, s2w=s2w,
        converged=conv, iterations=iters, ll0_reset=reset,
    )  # fmt: skip


def _tau2_qprofile(
    y: FloatArray, v: FloatArray, tau2_hat: float, level: float
) -> tuple[float, float]:
    """Q-profile CI for tau² as metafor's ``confint()`` (Viechtbauer 2007).

    The bounds solve Q(tau²) = χ²_{k-1; 1-α/2} (lower) and χ²_{k-1; α/2} (upper) by R's
    uniroot on [0, max(100, 10·tau²)] (tol .Machine$double.eps^0.25, maxiter 1000); a
    bound that no root reaches is set to the end of the interval, as metafor does.
    """
    k = y.size
    alpha = _alpha(level)
    crit_u = float(stats.chi2.isf(alpha / 2.0, k - 1))
    crit_l = float(stats.chi2.ppf(alpha / 2.0, k - 1))
    lo = min(0.0, tau2_hat)
    hi = max(100.0, tau2_hat * 10.0, lo * 10.0)
    yy, vv, mm = y[None, :], v[None, :], np.ones((1, k))

    def qf(t: float) -> float:
        return float(_q_at(yy, vv, mm, np.array([t]))[0])

    q_lo, q_hi = qf(lo), qf(hi)

    def root(objective: float) -> float:
        def f(x: FloatArray, sub: NDArray[np.intp]) -> FloatArray:
            return _q_at(yy, vv, mm, x) - objective

        r, _ = _zeroin(
            f, np.array([lo]), np.array([hi]), np.array([q_lo - objective]),
            np.array([q_hi - objective]), UNIROOT_TOL, CONFINT_MAXITER,
        )  # fmt: skip
        return float(r[0])

    lb = ub = math.nan
    if q_lo < crit_l:
        lb = ub = lo
    elif q_hi > crit_l:
        ub = hi
    else:
        ub = root(crit_l)
    if q_hi > crit_u:
        lb = ub = hi
    elif q_lo < crit_u:
        lb = lo
    else:
        lb = root(crit_u)
    return lb, ub


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------


def _as_vectors(yi: ArrayLike, vi: ArrayLike) -> tuple[FloatArray, FloatArray]:
    y = np.asarray(yi, dtype=float).reshape(-1)
    v = np.asarray(vi, dtype=float).reshape(-1)
    if y.shape != v.shape:
        raise ValueError(f"yi and vi differ in length ({y.size} vs {v.size})")
    if y.size == 0:
        raise ValueError("no studies to pool (k = 0)")
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(v))):
        raise ValueError("yi and vi must be finite (drop studies without an effect first)")
    if np.any(v <= 0):
        raise ValueError("every vi must be positive")
    return y, v


def _opt(x: float | None) -> float | None:
    """None for a missing or non-finite value (the result models want None, not NaN)."""
    return None if x is None or not math.isfinite(x) else float(x)


def rma(
    yi: ArrayLike,
    vi: ArrayLike,
    *,
    method: str = "REML",
    hksj: bool = False,
    level: float = 95.0,
    tau2_ci: bool = True,
    measure: str | None = None,
) -> RmaFit:
    """Fit an intercept-only fixed- or random-effects model, as metafor's ``rma()``.

    Parameters mirror ``rma(yi, vi, method=, test=, level=)``: ``method`` is one of FE
    (metafor "EE"), DL, REML, PM, ML; ``hksj=True`` is ``test="knha"``. The returned
    fit also carries ``predict()``'s prediction interval, ``weights()`` in percent and,
    when ``tau2_ci`` (and the model has a tau², k >= 2), ``confint()``'s Q-profile CI
    for tau². ``measure`` is only recorded.

    Raises ``ValueError`` on malformed input (lengths, non-finite values, vi <= 0) and
    :class:`ConvergenceError` where metafor stops (Fisher scoring not converged after
    100 iterations; PM root beyond tau2.max).
    """
    y, v = _as_vectors(yi, vi)
    meth = _normalise_method(method)
    core = _core(y[None, :], v[None, :], np.ones((1, y.size), dtype=bool), meth, hksj, level)
    if not core.converged[0]:
        if meth == "PM":
            raise ConvergenceError(
                "Paule-Mandel: no root of Q(tau²) = k - 1 below tau2.max "
                "(metafor: \"Value of 'tau2.max' too low\")"
            )
        raise ConvergenceError(
            f"{meth}: Fisher scoring did not converge in {MAXITER} iterations "
            "(metafor stops with the same error)"
        )
    tau2 = float(core.tau2[0])
    lb: float | None = None
    ub: float | None = None
    if tau2_ci and meth != "FE" and y.size > 1:
        lb, ub = _tau2_qprofile(y, v, tau2, level)
    messages: list[str] = []
    if core.ll0_reset[0]:
        messages.append(
            "Fisher scoring may have stopped at a local maximum; tau² set to 0 "
            "(as metafor does, with a warning)."
        )
    if hksj and meth == "FE":
        messages.append("The Knapp-Hartung adjustment is not meant for fixed-effect models.")
    if hksj and y.size == 1:
        messages.append("HKSJ with k = 1 has 0 degrees of freedom: no test or interval.")
    k = int(core.k[0])
    return RmaFit(
        k=k, method=meth, measure=measure, hksj=hksj, level=float(level),
        beta=float(core.beta[0]), se=float(core.se[0]), zval=float(core.zval[0]),
        pval=float(core.pval[0]), ci_lb=float(core.ci_lb[0]), ci_ub=float(core.ci_ub[0]),
        tau2=tau2, tau2_ci_lb=lb, tau2_ci_ub=ub,
        i2=float(core.i2[0]), h2=float(core.h2[0]),
        q=float(core.q[0]), q_df=k - 1, q_p=float(core.q_p[0]),
        pi_lb=float(core.pi_lb[0]), pi_ub=float(core.pi_ub[0]),
        weights=core.weights[0].copy(), yi=y.copy(), vi=v.copy(),
        s2w=float(core.s2w[0]), iterations=int(core.iterations[0]), messages=tuple(messages),
    )  # fmt: skip


def rma_batch(
    yi: ArrayLike,
    vi: ArrayLike,
    *,
    method: str = "REML",
    hksj: bool = False,
    level: float = 95.0,
) -> BatchFit:
    """Fit many independent intercept-only models at once (one per row), as :func:`rma`.

    ``yi`` and ``vi`` are 2-D arrays (analyses × kmax), padded with NaN where an
    analysis has fewer studies (an entry counts when both yi and vi are finite). The
    iterations of REML/ML/PM run for all analyses together in NumPy; the results equal
    :func:`rma` per analysis. Rows that do not converge (or have k = 0) have
    ``converged=False`` and NaN estimates instead of raising. No tau² CI is computed.
    """
    y = np.asarray(yi, dtype=float)
    v = np.asarray(vi, dtype=float)
    if y.ndim == 1:
        y, v = y[None, :], v[None, :]
    if y.shape != v.shape or y.ndim != 2:
        raise ValueError("yi and vi must be 2-D arrays of the same shape")
    mask = np.isfinite(y) & np.isfinite(v)
    if np.any(v[mask] <= 0):
        raise ValueError("every vi must be positive")
    meth = _normalise_method(method)
    c = _core(y, v, mask, meth, hksj, level)
    return BatchFit(
        k=c.k, beta=c.beta, se=c.se, zval=c.zval, pval=c.pval, ci_lb=c.ci_lb, ci_ub=c.ci_ub,
        tau2=c.tau2, i2=c.i2, h2=c.h2, q=c.q, q_p=c.q_p, pi_lb=c.pi_lb, pi_ub=c.pi_ub,
        converged=c.converged, q_df=np.maximum(c.k - 1, 0), s2w=c.s2w,
        iterations=c.iterations, ll0_reset=c.ll0_reset,
    )  # fmt: skip


def leave1out(
    yi: ArrayLike,
    vi: ArrayLike,
    *,
    method: str = "REML",
    hksj: bool = False,
    level: float = 95.0,
) -> list[RmaFit]:
    """Refit the model with each study left out in turn, as metafor's ``leave1out()``.

    Element i is the fit without study i (same method, test and level, and metafor's
    default controls for each refit). Requires k >= 2 (metafor stops at k = 1). Each
    fit also has its Q-profile tau² CI, which metafor's ``leave1out`` does not report.
    """
    y, v = _as_vectors(yi, vi)
    if y.size < 2:
        raise ValueError("leave-one-out needs at least two studies (metafor: k = 1)")
    keep = ~np.eye(y.size, dtype=bool)
    return [
        rma(y[keep[i]], v[keep[i]], method=method, hksj=hksj, level=level) for i in range(y.size)
    ]


def subgroup_test(estimates: ArrayLike, variances: ArrayLike) -> tuple[float, int, float]:
    """Test for subgroup differences: (Q between, df, p), as RevMan and metafor.

    A fixed-effect (inverse-variance) Cochran's Q over the subgroup estimates with
    their variances (squared SEs of the subgroup pools), on (number of subgroups - 1)
    df: ``rma(estimates, variances, method="EE")``'s QE and QEp (Borenstein M, Higgins
    JPT. Meta-analysis and subgroups. Prev Sci 2013;14:134-43).
    """
    y, v = _as_vectors(estimates, variances)
    if y.size < 2:
        raise ValueError("a test for subgroup differences needs at least two subgroups")
    fit = rma(y, v, method="FE", tau2_ci=False)
    return float(fit.q or 0.0), y.size - 1, float(fit.q_p if fit.q_p is not None else 1.0)


# --------------------------------------------------------------------------------------
# Mantel-Haenszel
# --------------------------------------------------------------------------------------


def _escalc_2x2(
    measure: str, a: FloatArray, b: FloatArray, c: FloatArray, d: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """escalc RR/OR/RD as rma.mh calls it: add 1/2 to tables with a zero cell, NA for
    double-zero tables (``add=1/2, to="only0", drop00=TRUE``)."""
    dz = ((a == 0) & (c == 0)) | ((b == 0) & (d == 0))
    zero = (a == 0) | (b == 0) | (c == 0) | (d == 0)
    add = np.where(zero & ~dz, 0.5, 0.0)
    a, b, c, d = a + add, b + add, c + add, d + add
    n1, n2 = a + b, c + d
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure == "RR":
            yi = np.log(a / n1) - np.log(c / n2)
            vi = 1.0 / a - 1.0 / n1 + 1.0 / c - 1.0 / n2
        elif measure == "OR":
            yi = np.log(a * d / (b * c))
            vi = 1.0 / a + 1.0 / b + 1.0 / c + 1.0 / d
        else:
            p1, p2 = a / n1, c / n2
            yi = p1 - p2
            vi = p1 * (1.0 - p1) / n1 + p2 * (1.0 - p2) / n2
    yi = np.where(dz, np.nan, yi)
    vi = np.where(dz, np.nan, vi)
    return yi, vi


def rma_mh(
    ai: ArrayLike,
    n1i: ArrayLike,
    ci: ArrayLike,
    n2i: ArrayLike,
    *,
    measure: Literal["RR", "OR", "RD"],
    level: float = 95.0,
) -> RmaFit:
    """Mantel-Haenszel pooled RR, OR or RD from 2×2 counts, as metafor's ``rma.mh()``.

    ``ai``/``ci`` are the events and ``n1i``/``n2i`` the sizes of groups 1 and 2. The
    estimate pools the raw counts (no continuity correction; tables with a zero cell or
    no events at all keep their MH weight, which is 0 where a ratio is undefined).
    Cochran's Q (and I², H²) use escalc's yi/vi with 1/2 added to every cell of tables
    with a zero cell and double-zero tables left out, on (tables with a yi) - 1 df.
    For OR, the Cochran-Mantel-Haenszel test (continuity-corrected) and Tarone's test
    are returned too. Estimates: Mantel & Haenszel 1959; variances: Greenland & Robins
    1985 (RR, RD), Robins, Breslow & Greenland 1986 (OR).

    Raises :class:`~trialpool.errors.AnalysisError` when the RR or OR is not estimable
    (no events in one group across all tables; metafor returns NA).
    """
    if measure not in ("RR", "OR", "RD"):
        raise ValueError(f"unknown measure {measure!r} for Mantel-Haenszel")
    arrs = [np.asarray(x, dtype=float).reshape(-1) for x in (ai, n1i, ci, n2i)]
    if len({x.size for x in arrs}) != 1 or arrs[0].size == 0:
        raise ValueError("ai, n1i, ci, n2i must be non-empty and of equal length")
    a, n1, c, n2 = arrs
    if not all(np.all(np.isfinite(x)) for x in arrs):
        raise ValueError("counts must be finite (drop incomplete tables first)")
    if np.any(a < 0) or np.any(c < 0) or np.any(a > n1) or np.any(c > n2):
        raise ValueError("need 0 <= ai <= n1i and 0 <= ci <= n2i")
    if np.any(n1 <= 0) or np.any(n2 <= 0):
        raise ValueError("every group needs at least one participant (n1i, n2i > 0)")
    b, d = n1 - a, n2 - c
    n_tot = a + b + c + d
    k = a.size
    alpha = _alpha(level)
    z = float(stats.norm.isf(alpha / 2.0))
    cmh = cmh_p = tarone = tarone_p = None
    tarone_df: int | None = None
    if measure == "OR":
        p_i = a / n_tot + d / n_tot
        q_i = b / n_tot + c / n_tot
        r_i = (a / n_tot) * d
        s_i = (b / n_tot) * c
        r_sum, s_sum = float(r_i.sum()), float(s_i.sum())
        if r_sum == 0 or s_sum == 0:
            raise AnalysisError("Mantel-Haenszel OR not estimable (no informative tables)")
        beta_exp = r_sum / s_sum
        beta = math.log(beta_exp)
        se = _sqrt(
            0.5
            * (
                (p_i * r_i).sum() / r_sum**2
                + (p_i * s_i + q_i * r_i).sum() / (r_sum * s_sum)
                + (q_i * s_i).sum() / s_sum**2
            )
        )
        wts = (b / n_tot) * c
        xt, yt = a + c, b + d
        if xt.sum() > 0 and yt.sum() > 0:
            cmh = _ratio(
                (abs(float((a - (n1 / n_tot) * xt).sum())) - 0.5) ** 2,
                float(((n1 / n_tot) * (n2 / n_tot) * (xt * (yt / (n_tot - 1)))).sum()),
            )
            if math.isfinite(cmh):
                cmh_p = float(stats.chi2.sf(cmh, 1))
            else:
                cmh = None
        tarone, tarone_p, tarone_df = _tarone(a, n1, n2, n_tot, xt, yt, beta_exp)
    elif measure == "RR":
        r_sum = float((a * (n2 / n_tot)).sum())
        s_sum = float((c * (n1 / n_tot)).sum())
        if a.sum() == 0 or c.sum() == 0 or r_sum == 0 or s_sum == 0:
            raise AnalysisError("Mantel-Haenszel RR not estimable (no events in one group)")
        beta = math.log(r_sum / s_sum)
        se = _sqrt(
            ((n1 / n_tot) * (n2 / n_tot) * (a + c) - (a / n_tot) * c).sum() / (r_sum * s_sum)
        )
        wts = (c / n_tot) * (a + b)
    else:
        den = float((n1 * (n2 / n_tot)).sum())
        beta = float((a * (n2 / n_tot) - c * (n1 / n_tot)).sum()) / den
        se = _sqrt(
            (
                beta
                * (
                    c * (n1 / n_tot) ** 2
                    - a * (n2 / n_tot) ** 2
                    + (n1 / n_tot) * (n2 / n_tot) * (n2 - n1) / 2
                ).sum()
                + (a * (n2 - c) / n_tot + c * (n1 - a) / n_tot).sum() / 2
            )
            / den**2
        )
        wts = ((a + b) / n_tot) * (c + d)
    zval = _ratio(beta, se)
    pval = float(2.0 * stats.norm.sf(abs(zval)))
    yi, vi = _escalc_2x2(measure, a, b, c, d)
    ok = np.isfinite(yi)
    k_yi = int(ok.sum())
    if k_yi > 1:
        qe = max(0.0, float((((yi[ok] - beta) ** 2) / vi[ok]).sum()))
        qe_p = float(stats.chi2.sf(qe, k_yi - 1))
        i2 = max(0.0, 100.0 * (qe - (k_yi - 1)) / qe) if qe > 0 else 0.0
        h2 = qe / (k_yi - 1)
    else:
        qe, qe_p, i2, h2 = 0.0, 1.0, 0.0, 1.0
    return RmaFit(
        k=k, method="MH", measure=measure, hksj=False, level=float(level),
        beta=beta, se=se, zval=zval, pval=pval,
        ci_lb=beta - z * se, ci_ub=beta + z * se,
        tau2=0.0, tau2_ci_lb=None, tau2_ci_ub=None,
        i2=i2, h2=h2, q=qe, q_df=max(k_yi - 1, 0), q_p=qe_p,
        pi_lb=beta - z * se, pi_ub=beta + z * se,
        weights=100.0 * wts / wts.sum(), yi=yi, vi=vi,
        cmh=cmh, cmh_p=cmh_p, tarone=tarone, tarone_p=tarone_p, tarone_df=tarone_df,
    )  # fmt: skip


def _tarone(
    a: FloatArray,
    n1: FloatArray,
    n2: FloatArray,
    n_tot: FloatArray,
    xt: FloatArray,
    yt: FloatArray,
    psi: float,
) -> tuple[float | None, float | None, int | None]:
    """Tarone's (1985) test for heterogeneity of the OR, as rma.mh (Breslow-Day corrected)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if psi == 1.0:
            n11 = (n1 / n_tot) * xt
        else:
            aa = psi * (n1 + xt) + (n2 - xt)
            bb = np.sqrt(aa**2 - 4.0 * n1 * xt * psi * (psi - 1.0))
            n11 = (aa - bb) / (2.0 * (psi - 1.0))
        pos = (n11 > 0) & (xt > 0) & (yt > 0)
        k_pos = int(pos.sum())
        n11 = n11[pos]
        n12 = n1[pos] - n11
        n21 = xt[pos] - n11
        n22 = n11 - n1[pos] - xt[pos] + n_tot[pos]
        var = 1.0 / (1.0 / n11 + 1.0 / n12 + 1.0 / n21 + 1.0 / n22)
        dev = a[pos] - n11
        bd = max(0.0, float((dev**2 / var).sum()))
        ta = max(0.0, bd - float(dev.sum()) ** 2 / float(var.sum()))
    if not math.isfinite(ta):
        return None, None, None
    if k_pos > 1:
        return ta, float(stats.chi2.sf(ta, k_pos - 1)), k_pos - 1
    return None, None, None


# --------------------------------------------------------------------------------------
# From a fit to the reported result
# --------------------------------------------------------------------------------------


def result_from_fit(
    fit: RmaFit,
    *,
    measure: str,
    studies: Sequence[StudyEffect] | None = None,
    notes: list[str] | None = None,
) -> PoolResult:
    """Turn a fit into the reported :class:`~trialpool.stats.results.PoolResult`.

    For RR and OR the estimate, CI and prediction interval are exponentiated (``se``,
    ``yi`` and ``vi`` stay on the log scale), as the JSON contract says. Each study gets
    its weight (percent) from ``fit.weights`` and its CI yᵢ ± z·sqrt(vᵢ) (normal, at the
    fit's level; exponentiated for RR/OR). ``studies`` (in the order of the fit's
    studies) keep their ids, yi, vi and other fields (for MH, the caller's yi/vi may
    differ from the fit's, which leave double-zero tables out); without ``studies``,
    studies are numbered 1..k and take the fit's yi/vi.
    FE and MH fits report no prediction interval (metafor's ``predict()`` shows none).
    """
    ratio = measure in RATIO_MEASURES

    def tr(x: float) -> float:
        if not ratio:
            return x
        return math.exp(x) if x < 709.0 else math.inf

    def opt_tr(x: float | None) -> float | None:
        return None if x is None or not math.isfinite(x) else tr(x)

    z = float(stats.norm.isf(_alpha(fit.level) / 2.0))
    n = fit.yi.size
    if studies is not None and len(studies) != n:
        raise ValueError(f"{len(studies)} studies given for a fit of {n}")
    out: list[StudyEffect] = []
    for i in range(n):
        if studies is None:
            yi, vi = float(fit.yi[i]), float(fit.vi[i])
        else:
            yi, vi = studies[i].yi, studies[i].vi
        if math.isfinite(yi) and math.isfinite(vi) and vi >= 0:
            lo, hi = tr(yi - z * math.sqrt(vi)), tr(yi + z * math.sqrt(vi))
        else:
            lo = hi = None
        upd = {"weight": float(fit.weights[i]), "ci_lower": lo, "ci_upper": hi}
        if studies is None:
            out.append(StudyEffect(study_id=str(i + 1), yi=yi, vi=vi, **upd))  # type: ignore[arg-type]
        else:
            out.append(studies[i].model_copy(update=upd))
    has_pi = fit.method not in ("FE", "MH")
    return PoolResult(
        k=fit.k,
        measure=measure,  # type: ignore[arg-type]
        method=fit.method,  # type: ignore[arg-type]
        hksj=fit.hksj,
        level=fit.level,
        estimate=tr(fit.beta),
        ci_lower=tr(fit.ci_lb),
        ci_upper=tr(fit.ci_ub),
        se=fit.se,
        zval=fit.zval,
        p_value=fit.pval,
        tau2=fit.tau2,
        tau2_ci_lower=_opt(fit.tau2_ci_lb),
        tau2_ci_upper=_opt(fit.tau2_ci_ub),
        i2=_opt(fit.i2),
        h2=_opt(fit.h2),
        q=fit.q,
        q_df=fit.q_df,
        q_p=fit.q_p,
        pi_lower=opt_tr(fit.pi_lb) if has_pi else None,
        pi_upper=opt_tr(fit.pi_ub) if has_pi else None,
        studies=out,
        notes=[*list(fit.messages), *(notes or [])],
    )
