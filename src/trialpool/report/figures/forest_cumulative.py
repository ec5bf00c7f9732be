"""Cumulative forest plots: one row per step of a cumulative meta-analysis.

Each row is the pooled estimate and its CI once that study is added (studies in order of
year; :mod:`trialpool.analysis.cumulative`), as R's metafor (``forest(cumul(...))``) and
meta (``metacum``) draw them: the study added ("+ Aronson 1948"), its year, k, tau² (for
random-effects models) and I², the estimate with its CI as text, and on the axis a square
with the CI whiskers. A square's area is proportional to the step's precision (1/SE² of
the pooled estimate), so the plot shows the information growing as trials accrue. The
last line is the diamond of the analysis with every study (the last step). A step that
cannot be fitted says "Not estimable" and a footnote gives the reason.

Drawn by :func:`trialpool.report.figures.forest_draw.render_forest`, the code of every
forest plot (columns, log axis for ratio measures, favours labels, footnotes), from the
:class:`~trialpool.analysis.cumulative.CumulativeResult` alone.
"""

from __future__ import annotations

from matplotlib.figure import Figure

from trialpool.analysis.cumulative import CumulativeResult, CumulativeStep
from trialpool.report.figures.forest_draw import render_forest
from trialpool.report.figures.forest_layout import (
    ForestLayout,
    _effect_text,
    _Row,
    _to_analysis,
)
from trialpool.report.figures.style import (
    SMALL_FONTSIZE,
    TITLE_FONTSIZE,
    fmt_small,
    truncate_to_width,
)

__all__ = ["MAX_HEAD_W", "cumulative_forest", "cumulative_rows", "draw_cumulative_forest"]

#: the widest title and subtitle, inches (longer ones are shortened with an ellipsis)
MAX_HEAD_W = 11.0

NOT_ESTIMABLE = "Not estimable"


def _step_row(step: CumulativeStep, ratio: bool, random: bool) -> _Row:
    cells = {
        "study": f"+ {step.label}",
        "year": "–" if step.year is None else str(step.year),
        "k": str(step.k),
    }
    if not step.fitted:
        cells["effect"] = NOT_ESTIMABLE
        return _Row("study", cells=cells)
    est = _to_analysis(step.estimate, ratio)
    lo = _to_analysis(step.ci_lower, ratio)
    hi = _to_analysis(step.ci_upper, ratio)
    if est is not None and lo is not None and hi is not None:
        cells["effect"] = _effect_text(est, lo, hi, ratio)
    if random and step.tau2 is not None:
        cells["tau2"] = fmt_small(step.tau2)
    if step.i2 is not None:
        cells["i2"] = f"{step.i2:.0f}%"
    precision = 1 / step.se**2 if step.se is not None and step.se > 0 else 0.0
    return _Row("study", cells=cells, est=est, lo=lo, hi=hi, weight=precision)


def cumulative_rows(c: CumulativeResult) -> list[_Row]:
    """The plot's rows: one per step, then the diamond of the last step (every study)."""
    random = _random(c)
    rows = [_step_row(s, c.ratio, random) for s in c.steps]
    last = c.steps[-1] if c.steps else None
    if last is not None and last.fitted:
        est = _to_analysis(last.estimate, c.ratio)
        lo = _to_analysis(last.ci_lower, c.ratio)
        hi = _to_analysis(last.ci_upper, c.ratio)
        if est is not None and lo is not None and hi is not None:
            rows.append(_Row("blank"))
            rows.append(
                _Row(
                    "pooled",
                    cells={
                        "study": f"All studies (k = {last.k})",
                        "effect": _effect_text(est, lo, hi, c.ratio),
                    },
                    est=est,
                    lo=lo,
                    hi=hi,
                    bold=True,
                )
            )
    return rows


def _random(c: CumulativeResult) -> bool:
    if c.engine == "revman":
        return "Random" in c.model
    return c.method not in ("FE", "MH")


def _footnotes(c: CumulativeResult) -> list[str]:
    notes = [
        "Each row pools the studies up to and including the one added; square area: "
        "precision of that pooled estimate (1/SE²)."
    ]
    for s in c.steps:
        if not s.fitted:
            notes.append(f"{s.label} (step {s.step}): not estimable: {s.reason}")
    notes.extend(c.notes)
    return notes


def cumulative_forest(
    c: CumulativeResult,
    *,
    title: str,
    measure_label: str,
    favours_text: tuple[str, str],
) -> Figure:
    """The cumulative forest plot of ``c`` (sized to hold all its texts: save it with
    ``tight=False``). ``measure_label`` names the measure over the effect column (e.g.
    "Risk ratio"); ``favours_text`` are the labels under the axis (left, right)."""
    if not c.steps:
        raise ValueError("a cumulative forest plot needs at least one step")
    random = _random(c)
    extra = [("year", "Year"), ("k", "k")]
    if random:
        extra.append(("tau2", "Tau²"))
    extra.append(("i2", "I²"))
    subtitle = (
        f"{measure_label} ({c.measure}), {c.model}: studies added in order of year "
        "(no year: last), each step refitted"
    )
    layout = ForestLayout(
        kind="generic",
        arm_keys=[],
        groups=("", ""),
        header=(measure_label, f"{c.model}, {c.level:g}% CI"),
        subgroups=False,
        ratio=c.ratio,
        favours_text=favours_text,
        title=truncate_to_width(title, MAX_HEAD_W, TITLE_FONTSIZE, "bold"),
        subtitle=truncate_to_width(subtitle, MAX_HEAD_W, SMALL_FONTSIZE),
        notes=_footnotes(c),
        weight=False,
        exact=True,
        extra=tuple(extra),
    )
    return render_forest(cumulative_rows(c), layout)


def draw_cumulative_forest(
    c: CumulativeResult, title: str, measure_label: str, favours_text: tuple[str, str]
) -> Figure:
    """:func:`cumulative_forest` with positional arguments (a report's figure job)."""
    return cumulative_forest(c, title=title, measure_label=measure_label, favours_text=favours_text)
