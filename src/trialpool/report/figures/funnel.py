"""Funnel plot as metafor's ``funnel``: effect sizes against their standard errors.

The y axis is the standard error, inverted (0 at the top), and the white triangle is
the pseudo confidence region ``estimate ± z · se`` (z = 1.96 for 95 %) on a grey
background. ``yi``, ``sei`` and ``estimate`` are on the analysis scale (log for RR and
OR, as ``StudyEffect.yi``); ratio axes are labelled on the ratio scale.
:func:`funnel_from_result` takes a :class:`~trialpool.stats.results.PoolResult` directly.

Optional extras: the Egger regression line (metafor's ``regtest`` with ``sei`` as
predictor, i.e. ``yi = b0 + b1 · sei``, so the line is ``x = b0 + b1 · se``) and its
test text, and trim-and-fill imputed studies drawn as open circles.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from statistics import NormalDist

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Polygon
from matplotlib.ticker import MaxNLocator

from trialpool.report.figures.style import (
    BASE_FONTSIZE,
    MUTED_TEXT,
    PI_COLOUR,
    SMALL_FONTSIZE,
    TITLE_FONTSIZE,
    fmt_num,
    fmt_p,
    new_figure,
    one_line,
    ratio_limit_and_ticks,
    save,
    style_context,
    tick_label,
    truncate_to_width,
)
from trialpool.stats.results import RATIO_MEASURES, PoolResult

__all__ = ["funnel_from_result", "funnel_plot", "save"]

_AXIS_NAMES: dict[str, str] = {
    "MD": "Mean difference",
    "SMD": "Standardised mean difference",
    "RR": "Risk ratio (log scale)",
    "OR": "Odds ratio (log scale)",
    "RD": "Risk difference",
}

EggerInput = str | Mapping[str, float | int | None]


def _egger_text(egger: EggerInput) -> str | None:
    if isinstance(egger, str):
        return egger
    stat = next((k for k in ("z", "zval", "t", "tval") if egger.get(k) is not None), None)
    p = next((egger[k] for k in ("p", "p_value", "pval") if egger.get(k) is not None), None)
    if stat is None and p is None:
        return None
    parts = ["Egger's test:"]
    if stat is not None:
        value = egger[stat]
        assert value is not None
        parts.append(f"{stat[0]} = {fmt_num(float(value))},")
    if p is not None:
        parts.append(fmt_p(float(p)))
    return " ".join(parts).rstrip(",")


def funnel_plot(
    yi: Sequence[float],
    sei: Sequence[float],
    *,
    estimate: float,
    measure: str,
    labels: Sequence[str] | None = None,
    egger: EggerInput | None = None,
    filled: Sequence[tuple[float, float]] | None = None,
    level: float = 95.0,
    title: str | None = None,
) -> Figure:
    """Draw a funnel plot and return the Figure.

    Parameters
    ----------
    yi, sei
        Study effects and standard errors on the analysis scale (log for RR/OR).
    estimate
        The pooled estimate on the same scale (the funnel's centre line).
    measure
        MD, SMD, RR, OR or RD (axis label; ratio measures get ratio tick labels).
    labels
        Optional study labels written next to the points.
    egger
        Either a ready text ("Egger's test: z = 1.2, P = 0.23") or a mapping with any
        of ``z``/``t``, ``p`` (the test) and ``intercept``/``slope`` (the fitted line
        ``x = intercept + slope · se``, as metafor's ``regtest`` with predictor sei).
    filled
        Trim-and-fill imputed studies as ``(yi, sei)`` pairs, drawn as open circles.
    """
    y = np.asarray(list(yi), dtype=float)
    se = np.asarray(list(sei), dtype=float)
    if y.shape != se.shape:
        raise ValueError("yi and sei must have the same length")
    if y.size == 0:
        raise ValueError("funnel_plot needs at least one study")
    if np.any(~np.isfinite(se)) or np.any(se < 0):
        raise ValueError("sei must be finite and non-negative")
    if labels is not None and len(labels) != y.size:
        raise ValueError("labels must have one entry per study")
    measure = measure.upper()
    ratio = measure in RATIO_MEASURES
    fill = np.asarray(list(filled or []), dtype=float).reshape(-1, 2)
    z = NormalDist().inv_cdf(0.5 + level / 200.0)

    se_all = np.concatenate([se, fill[:, 1]]) if fill.size else se
    se_max = float(se_all.max()) * 1.08 if float(se_all.max()) > 0 else 1.0
    x_all = np.concatenate([y, fill[:, 0]]) if fill.size else y
    with np.errstate(over="ignore", invalid="ignore"):
        half = max(
            float(np.max(np.abs(x_all - estimate))) * 1.08,
            z * se_max * 1.02,
        )
    if not math.isfinite(half) or not math.isfinite(se_max):
        raise ValueError("funnel_plot needs effects and standard errors within a float's range")

    with style_context():
        extras = (filled is not None and len(fill) > 0) or (
            isinstance(egger, Mapping) and egger.get("intercept") is not None
        )
        fig_h = (4.6 if title else 4.3) + (0.25 if extras else 0.0)
        fig = new_figure(5.6, fig_h)
        top = 1 - (0.45 if title else 0.2) / fig_h
        bottom = (0.55 + (0.25 if extras else 0.0)) / fig_h
        ax = fig.add_axes((0.14, bottom, 0.8, top - bottom))
        if ratio:
            # symmetric around the estimate on the log scale, ticks on the ratio scale
            lo_x, hi_x = estimate - half, estimate + half
            limit, ticks = ratio_limit_and_ticks(max(abs(lo_x), abs(hi_x)))
            tick_vals = [t for t in ticks if lo_x <= math.log(t) <= hi_x]
            if len(tick_vals) < 3:
                tick_vals = ticks
                lo_x, hi_x = -math.log(limit), math.log(limit)
            ax.set_xticks([math.log(t) for t in tick_vals], [tick_label(t) for t in tick_vals])
        else:
            lo_x, hi_x = estimate - half, estimate + half
            ax.xaxis.set_major_locator(MaxNLocator(nbins=7, steps=[1, 2, 2.5, 5, 10]))
        ax.set_xlim(lo_x, hi_x)
        ax.set_ylim(se_max, 0)
        ax.set_facecolor("#E5E5E5")
        ax.add_patch(
            Polygon(
                [(estimate - z * se_max, se_max), (estimate, 0), (estimate + z * se_max, se_max)],
                closed=True,
                facecolor="white",
                edgecolor="none",
                zorder=0,
                gid="funnel-region",
            )
        )
        ax.plot(
            [estimate - z * se_max, estimate, estimate + z * se_max],
            [se_max, 0, se_max],
            color="#555555",
            lw=0.8,
            ls=(0, (3, 2)),
            zorder=1,
        )
        ax.plot([estimate, estimate], [0, se_max], color="black", lw=0.9, zorder=1)
        ax.scatter(y, se, s=28, color="black", zorder=3, label="Studies", gid="studies")
        if fill.size:
            ax.scatter(
                fill[:, 0],
                fill[:, 1],
                s=28,
                facecolors="white",
                edgecolors="black",
                linewidths=0.9,
                zorder=3,
                label="Imputed (trim and fill)",
                gid="filled",
            )
        if labels is not None:
            for xi, si, lab in zip(y, se, labels, strict=True):
                ax.annotate(
                    truncate_to_width(one_line(lab), 1.6, SMALL_FONTSIZE),
                    (xi, si),
                    xytext=(4, 3),
                    textcoords="offset points",
                    fontsize=SMALL_FONTSIZE,
                    color=MUTED_TEXT,
                    annotation_clip=False,
                    parse_math=False,
                )
        note = None
        if egger is not None:
            note = _egger_text(egger)
            if not isinstance(egger, str):
                b0, b1 = egger.get("intercept"), egger.get("slope")
                if b0 is not None and b1 is not None:
                    ys = np.linspace(0, se_max, 50)
                    ax.plot(
                        float(b0) + float(b1) * ys,
                        ys,
                        color=PI_COLOUR,
                        lw=1.0,
                        ls="--",
                        zorder=2,
                        label="Egger regression line",
                        gid="egger-line",
                    )
        ax.set_xlabel(_AXIS_NAMES.get(measure, measure), fontsize=BASE_FONTSIZE)
        ax.set_ylabel("Standard error", fontsize=BASE_FONTSIZE)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        if len(handles := ax.get_legend_handles_labels()[0]) > 1:
            fig.legend(
                handles=handles,
                loc="lower center",
                ncol=len(handles),
                fontsize=SMALL_FONTSIZE,
                frameon=False,
                bbox_to_anchor=(0.54, 0.0),
            )
        if note:
            ax.text(
                0.02,
                0.98,
                note,
                transform=ax.transAxes,
                ha="left",
                va="top",
                fontsize=SMALL_FONTSIZE,
                parse_math=False,
                bbox={
                    "facecolor": "white",
                    "edgecolor": "#999999",
                    "linewidth": 0.6,
                    "boxstyle": "square,pad=0.3",
                },
            )
        if title:
            fig.text(
                0.02,
                0.98,
                truncate_to_width(one_line(title), 5.4, TITLE_FONTSIZE, "bold"),
                ha="left",
                va="top",
                fontsize=TITLE_FONTSIZE,
                fontweight="bold",
                parse_math=False,
            )
    return fig


def funnel_from_result(
    result: PoolResult,
    *,
    labels: bool = True,
    egger: EggerInput | None = None,
    filled: Sequence[tuple[float, float]] | None = None,
    title: str | None = None,
) -> Figure:
    """Funnel plot of a pooled result's studies around its estimate (log scale for RR/OR)."""
    studies = [s for s in result.studies if s.vi > 0]
    centre = math.log(result.estimate) if result.measure in RATIO_MEASURES else result.estimate
    return funnel_plot(
        [s.yi for s in studies],
        [math.sqrt(s.vi) for s in studies],
        estimate=centre,
        measure=result.measure,
        labels=[s.label or s.study_id for s in studies] if labels else None,
        egger=egger,
        filled=filled,
        level=result.level,
        title=title,
    )
