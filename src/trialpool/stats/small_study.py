"""Small-study effects: Egger's regression test, funnel-plot data, trim and fill.

Each function mirrors one metafor function (3.8-1), including its defaults:

=======================  ==============================================================
trialpool                metafor
=======================  ==============================================================
:func:`regtest`          ``regtest(rma(yi, vi, method=, test=))`` (``model="rma"``,
                         ``predictor="sei"``) and ``regtest(..., model="lm")``
:func:`funnel_data`      the points and pseudo-confidence region ``funnel()`` draws
:func:`trimfill`         ``trimfill(rma(yi, vi, method=))`` (estimator ``"L0"``, side
                         chosen from the sign of the Egger-type slope)
:func:`meta_regression`  ``rma(yi, vi, mods=X, method=, test=)`` (what the two above
                         fit internally; intercept-only pooling lives in pooling.py)
=======================  ==============================================================

Papers:

* Egger M, Davey Smith G, Schneider M, Minder C. Bias in meta-analysis detected by a
  simple, graphical test. BMJ 1997;315:629-34 (the classical test: weighted least
  squares of yi on sei with weights 1/vi, ``model="lm"``); Sterne JAC, Egger M.
  Regression methods to detect publication and other bias in meta-analysis. In:
  Rothstein HR, Sutton AJ, Borenstein M (eds). Publication Bias in Meta-Analysis.
  Wiley 2005:99-110 (the random/mixed-effects version, ``model="rma"``).
* Duval S, Tweedie R. Trim and fill: a simple funnel-plot-based method of testing and
  adjusting for publication bias in meta-analysis. Biometrics 2000;56:455-63; Duval S,
  Tweedie R. A nonparametric "trim and fill" method of accounting for publication bias
  in meta-analysis. J Am Stat Assoc 2000;95:89-98 (estimators L0, R0, Q0 and their
  standard errors).
* Light RJ, Pillemer DB. Summing Up. Harvard University Press 1984; Sterne JAC, Egger
  M. Funnel plots for detecting bias in meta-analysis. J Clin Epidemiol 2001;54:
  1046-55 (funnel plot with pseudo 95% confidence limits).
* Meta-regression tau² estimators: Viechtbauer W. J Educ Behav Stat 2005;30:261-93
  (REML/ML Fisher scoring, started at the Hedges estimate); DerSimonian & Laird 1986
  (generalised to moderators); Paule & Mandel 1982 (generalised Q = k - p).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, stats

from trialpool.errors import AnalysisError

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

# metafor 3.8-1 control defaults of rma.uni
_THRESHOLD = 1e-5
_MAXITER = 100
_TOL = float(np.finfo(float).eps ** 0.25)
_TAU2_MAX = 100.0
_METHODS = ("FE", "DL", "REML", "ML", "PM")


def _normalise_method(method: str) -> str:
    m = "FE" if method.upper() in ("FE", "EE", "CE") else method.upper()
    if m not in _METHODS:
        raise AnalysisError(f"unknown method {method!r} (FE, DL, REML, ML, PM)")
    return m


def _crit(level: float, df: int | None) -> float:
    alpha = (100.0 - level) / 100.0
    if df is None:
        return float(stats.norm.isf(alpha / 2))
    return float(stats.t.isf(alpha / 2, df))


def _vectors(yi: ArrayLike, vi: ArrayLike) -> tuple[FloatArray, FloatArray]:
    y = np.asarray(yi, dtype=float).reshape(-1)
    v = np.asarray(vi, dtype=float).reshape(-1)
    if y.shape != v.shape:
        raise AnalysisError(f"yi and vi differ in length ({y.size} vs {v.size})")
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(v))) or np.any(v <= 0):
        raise AnalysisError("yi and vi must be finite, with every vi > 0")
    return y, v


# --------------------------------------------------------------------------------------
# Meta-regression (rma.uni with moderators)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class MetaRegression:
    """A fitted mixed-effects meta-regression ``yi = X·beta + u + e`` (as ``rma.uni``)."""

    k: int
    p: int
    method: str
    hksj: bool
    level: float
    beta: FloatArray
    se: FloatArray
    zval: FloatArray
    pval: FloatArray
    ci_lb: FloatArray
    ci_ub: FloatArray
    tau2: float
    df: int | None
    s2w: float = 1.0
    iterations: int = 0


def _proj(x: FloatArray, w: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Return ``(X'WX)⁻¹`` and ``P = W - WX(X'WX)⁻¹X'W`` for diagonal weights ``w``."""
    xtwx_inv = np.linalg.inv(x.T @ (w[:, None] * x))
    wx = w[:, None] * x
    p = np.diag(w) - wx @ xtwx_inv @ wx.T
    return xtwx_inv, p


def _tau2(y: FloatArray, v: FloatArray, x: FloatArray, method: str) -> tuple[float, int]:
    """tau² of the meta-regression as metafor's rma.uni computes it (its code, 3.8-1)."""
    k, p = x.shape
    ymc = y - y.mean()
    if method == "FE":
        return 0.0, 0
    if method == "DL":
        _, pm = _proj(x, 1 / v)
        rss = float(ymc @ pm @ ymc)
        return max(0.0, (rss - (k - p)) / float(np.trace(pm))), 0
    if method == "PM":

        def q_minus(t2: float) -> float:
            _, pm = _proj(x, 1 / (v + t2))
            return float(ymc @ pm @ ymc) - (k - p)

        if q_minus(0.0) < 0:
            return 0.0, 0
        if q_minus(_TAU2_MAX) > 0:
            raise AnalysisError("Paule-Mandel: no root below tau2.max = 100")
        return float(optimize.brentq(q_minus, 0.0, _TAU2_MAX, xtol=1e-12)), 0
    # REML / ML: Fisher scoring from the Hedges (HE) estimate
    xtx_inv = np.linalg.inv(x.T @ x)
    p_ols = np.eye(k) - x @ xtx_inv @ x.T
    tau2 = max(0.0, (float(ymc @ p_ols @ ymc) - float(np.trace(p_ols * v))) / (k - p))
    change = _THRESHOLD + 1
    it = 0
    while change > _THRESHOLD:
        it += 1
        old = tau2
        w = 1 / (v + tau2)
        _, pm = _proj(x, w)
        pp = pm @ pm
        if method == "REML":
            adj = (float(ymc @ pp @ ymc) - float(np.trace(pm))) / float(np.trace(pp))
        else:
            adj = (float(ymc @ pp @ ymc) - float(w.sum())) / float((w**2).sum())
        if not math.isfinite(adj):
            adj = 0.0
        while tau2 + adj < 0:
            adj /= 2
        tau2 += adj
        change = abs(old - tau2)
        if it > _MAXITER:
            raise AnalysisError(
                f"{method}: Fisher scoring did not converge in {_MAXITER} iterations"
            )
    # metafor's check against a local maximum (ll at tau² = 0 larger than at tau²)
    if _loglik(y, v, x, 0.0, method) - _loglik(y, v, x, tau2, method) > _TOL and tau2 > _THRESHOLD:
        tau2 = 0.0
    return max(0.0, tau2), it


def _loglik(y: FloatArray, v: FloatArray, x: FloatArray, tau2: float, method: str) -> float:
    k, p = x.shape
    w = 1 / (v + tau2)
    xtwx = x.T @ (w[:, None] * x)
    beta = np.linalg.solve(xtwx, x.T @ (w * y))
    rss = float((w * (y - x @ beta) ** 2).sum())
    if method == "ML":
        return -0.5 * k * math.log(2 * math.pi) - 0.5 * float(np.log(v + tau2).sum()) - 0.5 * rss
    logdet = float(np.linalg.slogdet(xtwx)[1])
    return (
        -0.5 * (k - p) * math.log(2 * math.pi)
        - 0.5 * float(np.log(v + tau2).sum())
        - 0.5 * logdet
        - 0.5 * rss
    )


def meta_regression(
    yi: ArrayLike,
    vi: ArrayLike,
    x: ArrayLike,
    *,
    method: str = "REML",
    hksj: bool = False,
    level: float = 95.0,
) -> MetaRegression:
    """Fit ``rma(yi, vi, mods=X, intercept=FALSE, method=, test=)`` as metafor 3.8-1.

    ``x`` is the full model matrix (include a column of ones for an intercept). tau² by
    FE (0), DL, PM, ML or REML as in :mod:`trialpool.stats.pooling` but with moderators; with
    ``hksj`` (metafor ``test="knha"``) the covariance is scaled by
    ``s² = Σwᵢ(yᵢ - xᵢβ)²/(k - p)`` and tests use t on ``k - p`` df (Knapp G, Hartung J.
    Improved tests for a random effects meta-regression with a single covariate. Stat
    Med 2003;22:2693-710).
    """
    y, v = _vectors(yi, vi)
    xm = np.asarray(x, dtype=float)
    if xm.ndim == 1:
        xm = xm[:, None]
    k, p = xm.shape
    if k != y.size:
        raise AnalysisError("model matrix rows differ from the number of studies")
    if k <= p:
        raise AnalysisError(f"k = {k} studies cannot fit a model with {p} coefficients")
    if np.linalg.matrix_rank(xm) < p:
        raise AnalysisError("model matrix not of full rank (e.g. all sampling variances equal)")
    meth = _normalise_method(method)
    tau2, it = _tau2(y, v, xm, meth)
    w = 1 / (v + tau2)
    vb, _ = _proj(xm, w)
    beta = vb @ (xm.T @ (w * y))
    s2w = 1.0
    df: int | None = None
    if hksj:
        rss = float((w * (y - xm @ beta) ** 2).sum())
        s2w = 0.0 if rss <= np.finfo(float).eps else rss / (k - p)
        df = k - p
    vb = s2w * vb
    se = np.sqrt(np.diag(vb))
    with np.errstate(divide="ignore", invalid="ignore"):
        zval = beta / se
    dist = stats.norm if df is None else stats.t(df)
    pval = 2 * dist.sf(np.abs(zval))
    crit = _crit(level, df)
    return MetaRegression(
        k=k, p=p, method=meth, hksj=hksj, level=level, beta=beta, se=se, zval=zval,
        pval=pval, ci_lb=beta - crit * se, ci_ub=beta + crit * se, tau2=tau2, df=df,
        s2w=s2w, iterations=it,
    )  # fmt: skip


# --------------------------------------------------------------------------------------
# Egger's regression test
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegTest:
    """Result of Egger's regression test (as metafor's ``regtest`` prints it).

    ``zval``/``pval`` test the slope on the predictor (t on ``df`` when ``df`` is set);
    ``estimate`` and its CI are the intercept: the "limit estimate" as the SE goes to 0
    (reported for ``predictor`` "sei" and "vi").
    """

    model: str
    predictor: str
    method: str
    k: int
    zval: float
    pval: float
    df: int | None
    slope: float
    slope_se: float
    estimate: float
    ci_lower: float
    ci_upper: float
    tau2: float


def regtest(
    yi: ArrayLike,
    vi: ArrayLike,
    *,
    model: Literal["rma", "lm"] = "rma",
    predictor: Literal["sei", "vi"] = "sei",
    method: str = "REML",
    hksj: bool = False,
    level: float = 95.0,
) -> RegTest:
    """Egger's regression test for funnel-plot asymmetry, as ``regtest(rma(...))``.

    ``model="rma"`` (metafor's default) fits the meta-regression ``yi ~ 1 + sei`` with
    the pooled model's tau² estimator and test (``method``, ``hksj``) — Sterne & Egger
    2005; ``model="lm"`` is the classical weighted least-squares regression with weights
    ``1/vi`` and a t test on ``k - 2`` df (Egger et al. 1997). ``predictor="vi"`` uses
    the sampling variance instead (Moreno SG et al. BMC Med Res Methodol 2009;9:2).
    """
    y, v = _vectors(yi, vi)
    k = y.size
    if k < 3:
        raise AnalysisError(f"Egger's test needs at least 3 studies (k = {k})")
    pred = np.sqrt(v) if predictor == "sei" else v
    if predictor not in ("sei", "vi"):
        raise AnalysisError(f"unknown predictor {predictor!r} (sei, vi)")
    xm = np.column_stack([np.ones(k), pred])
    if model == "rma":
        fit = meta_regression(y, v, xm, method=method, hksj=hksj, level=level)
        return RegTest(
            model="rma", predictor=predictor, method=fit.method, k=k,
            zval=float(fit.zval[1]), pval=float(fit.pval[1]), df=fit.df,
            slope=float(fit.beta[1]), slope_se=float(fit.se[1]),
            estimate=float(fit.beta[0]), ci_lower=float(fit.ci_lb[0]),
            ci_upper=float(fit.ci_ub[0]), tau2=fit.tau2,
        )  # fmt: skip
    if model != "lm":
        raise AnalysisError(f"unknown model {model!r} (rma, lm)")
    w = 1 / v
    xtwx_inv = np.linalg.inv(xm.T @ (w[:, None] * xm))
    beta = xtwx_inv @ (xm.T @ (w * y))
    df = k - 2
    sigma2 = float((w * (y - xm @ beta) ** 2).sum()) / df
    se = np.sqrt(np.diag(xtwx_inv) * sigma2)
    tval = beta / se
    crit = _crit(level, df)
    return RegTest(
        model="lm", predictor=predictor, method="FE", k=k,
        zval=float(tval[1]), pval=float(2 * stats.t.sf(abs(tval[1]), df)), df=df,
        slope=float(beta[1]), slope_se=float(se[1]), estimate=float(beta[0]),
        ci_lower=float(beta[0] - crit * se[0]), ci_upper=float(beta[0] + crit * se[0]),
        tau2=0.0,
    )  # fmt: skip


# --------------------------------------------------------------------------------------
# Funnel plot
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class FunnelData:
    """What a funnel plot draws: the studies (yi against sei, y axis reversed), the
    reference line at the pooled estimate, and the pseudo-confidence region
    ``estimate ± z·sqrt(se² + tau²)`` over ``se_grid`` (tau² only with ``addtau2``)."""

    yi: FloatArray
    sei: FloatArray
    estimate: float
    level: float
    se_grid: FloatArray
    lower: FloatArray
    upper: FloatArray
    tau2: float
    filled: BoolArray


def funnel_data(
    yi: ArrayLike,
    vi: ArrayLike,
    estimate: float,
    *,
    tau2: float = 0.0,
    addtau2: bool = False,
    level: float = 95.0,
    filled: ArrayLike | None = None,
    n_points: int = 50,
) -> FunnelData:
    """Data for a funnel plot as metafor's ``funnel()`` draws it for an ``rma`` fit.

    Pseudo ``level``% confidence limits ``estimate ± z·sqrt(se² + t²)`` for se from 0 to
    the largest standard error (``t² = tau²`` when ``addtau2``, else 0, metafor's
    default); ``filled`` marks studies imputed by trim and fill (drawn hollow).
    """
    y, v = _vectors(yi, vi)
    sei = np.sqrt(v)
    t2 = float(tau2) if addtau2 else 0.0
    grid = np.linspace(0.0, float(sei.max()) if sei.size else 1.0, n_points)
    half = _crit(level, None) * np.sqrt(grid**2 + t2)
    fill = np.zeros(y.size, dtype=bool) if filled is None else np.asarray(filled, dtype=bool)
    return FunnelData(
        yi=y, sei=sei, estimate=float(estimate), level=level, se_grid=grid,
        lower=estimate - half, upper=estimate + half, tau2=t2, filled=fill,
    )  # fmt: skip


# --------------------------------------------------------------------------------------
# Trim and fill
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class TrimFill:
    """Result of trim and fill (as ``trimfill(rma(...))``).

    ``k0`` studies are imputed on ``side`` (``se_k0`` its SE; ``p_k0`` the test of
    k0 = 0 for the R0 estimator); ``filled_yi``/``filled_vi`` are the imputed studies and
    ``fit`` the model refitted on the observed plus imputed studies (metafor refits with
    the same tau² estimator and ``test="z"``, also when the original model used HKSJ;
    when ``k0 = 0``, ``fit`` is the original model).
    """

    k0: int
    se_k0: float
    side: Literal["left", "right"]
    estimator: str
    p_k0: float | None
    filled_yi: FloatArray
    filled_vi: FloatArray
    fit: object  # pooling.RmaFit (imported lazily)


def _ranks_first(values: FloatArray) -> FloatArray:
    """R's ``rank(x, ties.method = "first")``."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(values.size)
    ranks[order] = np.arange(1, values.size + 1)
    return ranks


def trimfill(
    yi: ArrayLike,
    vi: ArrayLike,
    *,
    method: str = "REML",
    hksj: bool = False,
    level: float = 95.0,
    side: Literal["left", "right"] | None = None,
    estimator: Literal["L0", "R0", "Q0"] = "L0",
    maxiter: int = 100,
) -> TrimFill:
    """Duval & Tweedie's trim and fill, as ``trimfill(rma(yi, vi, method=, test=))``.

    Without ``side``, the missing studies are sought on the side opposite to the sign of
    the slope of ``rma(yi, vi, mods = sqrt(vi))`` (metafor's rule: negative slope ->
    right). The studies are sorted, the ``k0`` most extreme on that side trimmed, the
    model refitted to the rest, and k0 re-estimated from the signed ranks of the
    centred effects (L0, R0 or Q0 of Duval & Tweedie 2000) until it does not change;
    then the trimmed studies are mirrored about the last estimate and the model is
    refitted to all (``test="z"``, as metafor).
    """
    from trialpool.stats import pooling

    y, v = _vectors(yi, vi)
    k = y.size
    if k < 2:
        raise AnalysisError("trim and fill needs at least 2 studies (metafor: k = 1)")
    meth = _normalise_method(method)
    if estimator not in ("L0", "R0", "Q0"):
        raise AnalysisError(f"unknown estimator {estimator!r} (L0, R0, Q0)")
    if side is None:
        slope = meta_regression(y, v, np.column_stack([np.ones(k), np.sqrt(v)]), method=meth)
        side = "right" if slope.beta[1] < 0 else "left"
    elif side not in ("left", "right"):
        raise AnalysisError(f"side must be left or right (got {side!r})")
    ys = -y if side == "right" else y.copy()
    order = np.argsort(ys, kind="stable")
    ys, vs = ys[order], v[order]
    k0_sav, k0, it = -1, 0, 0
    beta = math.nan
    se_k0 = math.nan
    while abs(k0 - k0_sav) > 0:
        k0_sav = k0
        it += 1
        if it > maxiter:
            raise AnalysisError("trim and fill did not converge")
        fit_t = pooling.rma(ys[: k - k0], vs[: k - k0], method=meth, tau2_ci=False)
        beta = fit_t.beta
        yc = ys - beta
        signed = np.sign(yc) * _ranks_first(np.abs(yc))
        with np.errstate(invalid="ignore"):
            if estimator == "R0":
                neg = -signed[signed < 0]
                k0f = (k - (neg.max() if neg.size else -math.inf)) - 1
                se_k0 = math.sqrt(2 * max(0.0, k0f) + 2)
            else:
                sr = float(signed[signed > 0].sum())
                if estimator == "L0":
                    k0f = (4 * sr - k * (k + 1)) / (2 * k - 1)
                else:
                    k0f = k - 0.5 - math.sqrt(2 * k**2 - 4 * sr + 0.25)
                var_sr = (
                    k * (k + 1) * (2 * k + 1)
                    + 10 * k0f**3
                    + 27 * k0f**2
                    + 17 * k0f
                    - 18 * k * k0f**2
                    - 18 * k * k0f
                    + 6 * k**2 * k0f
                ) / 24
                root = math.sqrt(var_sr) if var_sr >= 0 else math.nan
                if estimator == "L0":
                    se_k0 = 4 * root / (2 * k - 1)
                else:
                    se_k0 = 2 * root / math.sqrt((k - 0.5) ** 2 - k0f * (2 * k - k0f - 1))
        if not math.isfinite(k0f):
            raise AnalysisError(f"trim and fill: the {estimator} estimate of k0 is undefined")
        k0 = int(max(0.0, float(np.round(k0f))))
        if k0 >= k:
            raise AnalysisError(f"trim and fill: k0 = {k0} would trim every study (k = {k})")
        se_k0 = max(0.0, se_k0) if math.isfinite(se_k0) else math.nan
    p_k0: float | None = None
    if estimator == "R0":
        m = np.arange(-1, k0)
        p_k0 = float(1 - np.sum([math.comb(int(x) + 1, int(x) + 1) * 0.5 ** (x + 2) for x in m]))
    if k0 > 0:
        mirrored = 2 * beta - ys[k - k0 :]
        filled_yi = -mirrored if side == "right" else mirrored
        filled_vi = vs[k - k0 :].copy()
        fit = pooling.rma(
            np.concatenate([y, filled_yi]),
            np.concatenate([v, filled_vi]),
            method=meth,
            level=level,
            tau2_ci=False,
        )
    else:
        filled_yi = np.zeros(0)
        filled_vi = np.zeros(0)
        fit = pooling.rma(y, v, method=meth, hksj=hksj, level=level, tau2_ci=False)
    return TrimFill(
        k0=k0, se_k0=se_k0, side=side, estimator=estimator, p_k0=p_k0,
        filled_yi=filled_yi, filled_vi=filled_vi, fit=fit,
    )  # fmt: skip
