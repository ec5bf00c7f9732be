"""The sentences a forest plot prints: RevMan's heterogeneity line, the test for the
overall effect, the test for subgroup differences, and the names of the measure and
the model for the header and subtitle.

The ``*_line`` functions take the numbers (shared by the plots of metafor results and
of imported RevMan analyses); the ``*_text`` ones read them from a metafor result.
"""

from __future__ import annotations

from trialpool.report.figures.style import fmt_num, fmt_p, fmt_small
from trialpool.stats.results import NotPooled, PoolResult, SubgroupResult

MEASURE_NAMES: dict[str, str] = {
    "MD": "Mean difference",
    "SMD": "Std. mean difference",
    "RR": "Risk ratio",
    "OR": "Odds ratio",
    "RD": "Risk difference",
}
_TAU2_NAMES: dict[str, str] = {
    "DL": "DerSimonian-Laird",
    "REML": "REML",
    "PM": "Paule-Mandel",
    "ML": "maximum likelihood",
}


def heterogeneity_line(
    tau2: float | None, q: float | None, df: int | None, p: float | None, i2: float | None
) -> str | None:
    """ "Heterogeneity: Tau² = 0.12; Chi² = 5.43, df = 2 (P = 0.066); I² = 63%" from its
    numbers (``tau2`` None: a fixed-effect model, no Tau²); None when nothing is known."""
    parts: list[str] = []
    if tau2 is not None:
        parts.append(f"Tau² = {fmt_small(tau2)}")
    if q is not None:
        chi = f"Chi² = {fmt_num(q)}"
        if df is not None:
            chi += f", df = {df}"
        if p is not None:
            chi += f" ({fmt_p(p)})"
        parts.append(chi)
    if i2 is not None:
        parts.append(f"I² = {i2:.0f}%")
    if not parts:
        return None
    return "Heterogeneity: " + "; ".join(parts)


def heterogeneity_text(result: PoolResult) -> str | None:
    """RevMan's heterogeneity line, e.g. "Heterogeneity: Tau² = 0.12; Chi² = 5.43, df = 2
    (P = 0.066); I² = 63%". Tau² is left out for fixed-effect models; None when k < 2."""
    if result.k < 2:
        return None
    tau2 = None if result.method in ("FE", "MH") else result.tau2
    return heterogeneity_line(tau2, result.q, result.q_df, result.q_p, result.i2)


def overall_effect_line(stat: float, p: float | None, t_df: int | None = None) -> str:
    """ "Test for overall effect: Z = 2.31 (P = 0.021)"; a t test when ``t_df`` is given."""
    text = f"t = {abs(stat):.2f}, df = {t_df}" if t_df is not None else f"Z = {abs(stat):.2f}"
    return f"Test for overall effect: {text} ({fmt_p(p)})"


def overall_effect_text(result: PoolResult) -> str:
    """ "Test for overall effect: Z = 2.31 (P = 0.021)"; with HKSJ a t test on k − 1 df."""
    t_df = max(result.k - 1, 1) if result.hksj else None
    return overall_effect_line(result.zval, result.p_value, t_df)


def subgroup_test_line(q: float, df: int | None, p: float | None, i2: float | None) -> str:
    """ "Test for subgroup differences: Chi² = 1.23, df = 1 (P = 0.267), I² = 18.7%"."""
    text = f"Test for subgroup differences: Chi² = {fmt_num(q)}"
    if df is not None:
        text += f", df = {df}"
    if p is not None:
        text += f" ({fmt_p(p)})"
    if i2 is not None:
        text += f", I² = {i2:.1f}%"
    return text


def subgroup_test_text(subgroups: SubgroupResult) -> str | None:
    """ "Test for subgroup differences: Chi² = 1.23, df = 1 (P = 0.267), I² = 18.7%".

    I² = max(0, (Q − df) / Q) as RevMan prints it. None when the test is not available.
    """
    q, df, p = subgroups.q_between, subgroups.q_between_df, subgroups.q_between_p
    if q is None:
        return None
    i2 = max(0.0, (q - df) / q) * 100 if df is not None and q > 0 else None
    return subgroup_test_line(q, df, p, i2)


def model_description(result: PoolResult | NotPooled) -> str:
    """Plain description of the model, for the subtitle."""
    if result.method == "FE":
        text = "inverse variance, fixed effect"
    elif result.method == "MH":
        text = "Mantel-Haenszel, fixed effect"
    else:
        text = f"inverse variance, random effects (τ² by {_TAU2_NAMES[result.method]})"
        if getattr(result, "hksj", False):
            text += ", Hartung-Knapp-Sidik-Jonkman CI"
    return text


def _model_short(result: PoolResult | NotPooled) -> str:
    if result.method == "MH":
        return "M-H, Fixed"
    if result.method == "FE":
        return "IV, Fixed"
    return "IV, Random"
