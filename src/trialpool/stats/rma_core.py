"""The vectorised core of metafor's ``rma``, shared by ``rma``, ``rma_batch`` and ``leave1out``.

One job: fit intercept-only fixed- and random-effects models, one per row of padded
arrays, exactly as metafor 3.8-1 does (``rma.uni``, ``predict()``, ``weights()``,
``confint()``), and hold the fit type (:class:`RmaFit`), metafor's control constants and
:class:`ConvergenceError`. The public functions are in :mod:`trialpool.stats.pooling`.

Formulas and their sources:

* FE (metafor's "EE"): inverse-variance weighted mean; Cochran's Q.
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
* Root finding: Brent's zeroin exactly as R's ``uniroot`` (R_zeroin2 in
  stats/src/zeroin.c).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from trialpool.errors import AnalysisError

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
Method = Literal["FE", "DL", "REML", "PM", "ML"]

#: metafor's control defaults for rma.uni (metafor 3.8-1, rma.uni.R).
THRESHOLD = 1e-5  # Fisher scoring convergence: |change in tau²| <= threshold
#: ... or a change of rounding size, ``ROUNDING_ULPS`` · eps · tau²: where tau² is so large
#: (above about 1e10) that 1e-5 is below its resolution, the steps (sums here, matrix
#: products in metafor) can alternate between neighbouring doubles forever; below it the
#: absolute threshold is the larger and decides alone, as in metafor
ROUNDING_ULPS = 4.0
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
    stop when |change| <= 1e-5 (or, for tau² above about 1e10, when the change is of
    rounding size: ``ROUNDING_ULPS``); fail after 100 iterations. Then metafor's check: if the
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
        done = change <= np.maximum(THRESHOLD, ROUNDING_ULPS * _EPS * np.abs(new))
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
