"""Cumulative meta-analysis: a model refitted each time one more study is added.

Cumulative meta-analysis (Lau J, Antman EM, Jimenez-Silva J, Kupelnick B, Mosteller F,
Chalmers TC. Cumulative meta-analysis of therapeutic trials for myocardial infarction.
N Engl J Med 1992;327:248-54) pools the first study, then the first two, and so on, in
an order the caller chooses (usually the year of publication), to show how the answer
moved as trials accrued. Step i here is the pool of the first i studies of the order
given.

* :func:`cumul` and :func:`cumul_mh` are metafor's ``cumul()`` (metafor 3.8-1,
  ``cumul.rma.uni`` and ``cumul.rma.mh``; Viechtbauer W. Conducting meta-analyses in R
  with the metafor package. J Stat Softw 2010;36(3):1-48): each step refits ``rma``
  (or ``rma.mh``) on ``subset = 1:i`` with the model's method, test and level and
  metafor's default controls (:mod:`trialpool.stats.pooling`). Where metafor's refit
  stops with an error (an iterative tau² estimator that does not converge, Paule-Mandel
  without a root below ``tau2.max``, a Mantel-Haenszel ratio not estimable) its
  ``cumul()`` gives NA for that step; here the step has no fit and says why
  (:attr:`Step.error`). A step of one study with the Hartung-Knapp-Sidik-Jonkman test
  is fitted with the z test, as metafor's ``rma`` does for k = 1 ("Setting argument
  test='z' since k=1": a t distribution on 0 df does not exist).
* :func:`revman_cumul` refits an imported review's analysis with RevMan's engine
  (:func:`trialpool.stats.revman.revman_fit`, Deeks & Higgins, *Statistical algorithms
  in Review Manager 5*) on the first i study rows; RevMan itself has no cumulative
  analysis, so each step is the total RevMan would show for those rows. A step whose rows
  are all not estimable (e.g. no events in either group) is not estimable, as RevMan's
  total would be.

Pure numerics on arrays; the order and the studies' years are the caller's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from trialpool.errors import AnalysisError
from trialpool.stats.pooling import RmaFit, rma, rma_mh
from trialpool.stats.revman import RevManFit, RevManSettings, revman_fit

__all__ = ["K1_HKSJ_NOTE", "Step", "cumul", "cumul_mh", "revman_cumul"]

#: what a one-study step with HKSJ does (metafor's rule, see the module docstring)
K1_HKSJ_NOTE = (
    "a step of one study uses the z test: metafor's rma sets test = 'z' for k = 1 "
    "(no t distribution on 0 df)"
)


@dataclass(frozen=True)
class Step:
    """One step of a cumulative meta-analysis: the fit of the first ``k`` studies, or
    (``fit`` None) why metafor's refit stops with an error at this step."""

    k: int
    fit: RmaFit | None
    error: str | None = None


def _vectors(yi: ArrayLike, vi: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(yi, dtype=float).reshape(-1)
    v = np.asarray(vi, dtype=float).reshape(-1)
    if y.shape != v.shape:
        raise ValueError(f"yi and vi differ in length ({y.size} vs {v.size})")
    return y, v


def cumul(
    yi: ArrayLike,
    vi: ArrayLike,
    *,
    method: str = "REML",
    hksj: bool = False,
    level: float = 95.0,
    measure: str | None = None,
) -> list[Step]:
    """metafor's ``cumul(rma(yi, vi, method=, test=, level=))`` with the studies in the
    order given: step i is ``rma`` of the first i studies (no Q-profile CI for tau², which
    ``cumul()`` does not report). A refit that stops with an error is a step without a
    fit (metafor: NA). Malformed input (lengths, non-finite values, vi <= 0) raises
    ``ValueError`` as :func:`~trialpool.stats.pooling.rma` does."""
    y, v = _vectors(yi, vi)
    steps: list[Step] = []
    for i in range(1, y.size + 1):
        try:
            fit = rma(
                y[:i],
                v[:i],
                method=method,
                hksj=hksj and i > 1,
                level=level,
                tau2_ci=False,
                measure=measure,
            )
        except AnalysisError as exc:  # ConvergenceError: metafor's cumul() gives NA
            steps.append(Step(k=i, fit=None, error=str(exc)))
            continue
        if hksj and i == 1:
            fit = dataclasses.replace(fit, messages=(*fit.messages, K1_HKSJ_NOTE))
        steps.append(Step(k=i, fit=fit))
    return steps


def cumul_mh(
    ai: ArrayLike,
    n1i: ArrayLike,
    ci: ArrayLike,
    n2i: ArrayLike,
    *,
    measure: str,
    level: float = 95.0,
) -> list[Step]:
    """metafor's ``cumul(rma.mh(ai=, n1i=, ci=, n2i=, measure=))`` with the tables in
    the order given: step i is ``rma.mh`` of the first i tables. A step whose ratio is
    not estimable (e.g. no events in one group so far) has no fit (metafor: NA)."""
    arrays = [np.asarray(x, dtype=float).reshape(-1) for x in (ai, n1i, ci, n2i)]
    if len({a.size for a in arrays}) != 1:
        raise ValueError("ai, n1i, ci, n2i must be of equal length")
    a, n1, c, n2 = arrays
    steps: list[Step] = []
    for i in range(1, a.size + 1):
        try:
            fit = rma_mh(a[:i], n1[:i], c[:i], n2[:i], measure=measure, level=level)  # type: ignore[arg-type]
        except AnalysisError as exc:
            steps.append(Step(k=i, fit=None, error=str(exc)))
            continue
        steps.append(Step(k=i, fit=fit))
    return steps


def revman_cumul(data: Mapping[str, ArrayLike], settings: RevManSettings) -> list[RevManFit]:
    """RevMan's total of the first i study rows, for i = 1 .. k (rows in the order given).

    ``data`` is :func:`~trialpool.stats.revman.revman_fit`'s (one value per row).
    Subgroups play no part: every step pools all its rows together, as RevMan's overall
    total does, so ``settings.totals`` must be ``"overall"`` (AnalysisError otherwise:
    with the review's other Totals options RevMan computes no overall total of the rows).
    A step RevMan cannot estimate comes back with ``estimable=False`` and its reason.
    """
    if settings.totals != "overall":
        raise AnalysisError(
            "a cumulative analysis needs the overall total of the rows (RevMan's Totals "
            f"option 'overall'; this analysis has {settings.totals!r})"
        )
    columns = {name: np.asarray(values, dtype=float).reshape(-1) for name, values in data.items()}
    sizes = {c.size for c in columns.values()}
    if len(sizes) != 1:
        raise AnalysisError("every input of a cumulative analysis needs one value per row")
    n = sizes.pop()
    return [
        revman_fit({name: c[:i] for name, c in columns.items()}, settings) for i in range(1, n + 1)
    ]
