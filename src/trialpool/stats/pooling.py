"""Pooling models, computed as R's metafor computes them: the public API.

This module is the face of trialpool's statistical engine. Each public function mirrors one
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

The work is split by job: this module holds the public functions (fit, refit, batch,
subgroup test) and turns a fit into the reported result; :mod:`trialpool.stats.rma_core`
holds :class:`RmaFit`, metafor's control constants and the vectorised core (tau²
estimators, tests, intervals, Q-profile CI) that :func:`rma`, :func:`rma_batch` and
:func:`leave1out` share; :mod:`trialpool.stats.pooling_mh` holds Mantel-Haenszel
(:func:`rma_mh`, Tarone's test). Every name is importable from here.

Models and the papers that define them are named once, in the docstring of the module
that implements them: :mod:`trialpool.stats.rma_core` (FE, DL, PM, REML, ML, HKSJ, the
Q-profile CI for tau², I² and H², the prediction interval, root finding) and
:mod:`trialpool.stats.pooling_mh` (Mantel-Haenszel with the Greenland-Robins and
Robins-Breslow-Greenland variances, Tarone's test).

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
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from trialpool.stats.pooling_mh import rma_mh
from trialpool.stats.results import RATIO_MEASURES, PoolResult, StudyEffect
from trialpool.stats.rma_core import CONFINT_MAXITER as CONFINT_MAXITER
from trialpool.stats.rma_core import (
    MAXITER,
    BoolArray,
    ConvergenceError,
    FloatArray,
    RmaFit,
    _alpha,
    _core,
    _normalise_method,
    _tau2_qprofile,
)
from trialpool.stats.rma_core import TAU2_MAX as TAU2_MAX
from trialpool.stats.rma_core import THRESHOLD as THRESHOLD
from trialpool.stats.rma_core import UNIROOT_TOL as UNIROOT_TOL
from trialpool.stats.rma_core import Method as Method
from trialpool.stats.rma_core import _zeroin as _zeroin

# The `X as X` imports keep metafor's controls, the model names and the root finder (which
# the tests check against scipy) importable from here, as before the split.
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
