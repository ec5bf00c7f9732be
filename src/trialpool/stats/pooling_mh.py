"""Mantel-Haenszel pooling of 2×2 tables, as metafor's ``rma.mh()`` (metafor 3.8-1).

One job: :func:`rma_mh` (pooled RR, OR or RD from counts, with Cochran's Q from escalc's
values, and for OR the Cochran-Mantel-Haenszel test and Tarone's test). It returns the
:class:`~trialpool.stats.rma_core.RmaFit` of :mod:`trialpool.stats.pooling`, which
re-exports it.

Formulas and their sources:

* Mantel-Haenszel: Mantel N, Haenszel W. Statistical aspects of the analysis of data
  from retrospective studies of disease. J Natl Cancer Inst 1959;22:719-48; variances
  of Greenland S, Robins JM. Estimation of a common effect parameter from sparse
  follow-up data. Biometrics 1985;41:55-68 (RR, RD) and Robins J, Breslow N, Greenland
  S. Biometrics 1986;42:311-23 (OR).
* Tarone's test for heterogeneity of the OR: Tarone RE. On heterogeneity tests based on
  efficient scores. Biometrika 1985;72:91-5 (the Breslow-Day statistic, corrected), as
  rma.mh computes it.
* Q, I² and H² (Higgins & Thompson 2002) from escalc's yi/vi with 1/2 added to the cells
  of tables with a zero cell and double-zero tables left out, as rma.mh.

Deviation from metafor (degenerate input): with Q exactly 0 and k > 1, metafor's I² is
NaN (0/0) and we report 0.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from trialpool.errors import AnalysisError
from trialpool.stats.rma_core import FloatArray, RmaFit, _alpha


def _ratio(num: float, den: float) -> float:
    """num/den with IEEE semantics (±inf, or NaN for 0/0), as R divides."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(num) / np.float64(den))


def _sqrt(x: float) -> float:
    """sqrt of a variance that cannot be negative except by rounding (then 0; R: NaN)."""
    return math.sqrt(max(x, 0.0)) if not math.isnan(x) else math.nan


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
