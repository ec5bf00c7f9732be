"""Forest plots laid out as reviewers know them from RevMan and R's ``meta``.

One row per study with its label, per-arm data (mean, SD and n, or events and total),
weight, effect with its CI as text and a square (area proportional to weight) with CI
whiskers on a shared axis; a pooled diamond per block with the prediction interval
under it, the heterogeneity line and the test for the overall effect; subgroup blocks
with subtotals and the test for subgroup differences; "Favours ..." labels under the
axis on the sides given by ``lower_is_better`` (or, when the direction of benefit is
unclear, neutral labels saying which arm is lower on each side).

Inputs are the pooling engine's models (:mod:`trialpool.stats.results`); nothing is
recomputed here except what is needed to draw (study CIs when a study has none, on the
normal approximation at the analysis's level, and the subgroup I² from Q and df).
Ratio measures (RR, OR) are drawn on a log axis labelled on the ratio scale, with the
line of no effect at 1; the other measures on a linear axis with the line at 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any, Literal

from matplotlib import transforms
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Polygon

from trialpool.report.figures.style import (
    BASE_FONTSIZE,
    MUTED_TEXT,
    NOT_POOLED_COLOUR,
    NULL_LINE_COLOUR,
    PI_COLOUR,
    POOLED_COLOUR,
    SMALL_FONTSIZE,
    STUDY_COLOUR,
    TITLE_FONTSIZE,
    decimals_needed,
    fig_inches,
    fmt_num,
    fmt_p,
    fmt_plain,
    fmt_small,
    linear_ticks,
    new_figure,
    nice_symmetric_limit,
    ratio_limit_and_ticks,
    save,
    style_context,
    text_width_in,
    tick_label,
    truncate_to_width,
    wrap_to_width,
)
from trialpool.stats.results import (
    RATIO_MEASURES,
    NotPooled,
    PoolResult,
    StudyEffect,
    SubgroupResult,
)

__all__ = [
    "Block",
    "forest_plot",
    "forest_rows",
    "heterogeneity_text",
    "overall_effect_text",
    "save",
    "subgroup_blocks",
    "subgroup_test_text",
]

#: One block of a forest plot: an optional heading and its result.
Block = tuple[str | None, PoolResult | NotPooled]

DERIVED_MARK = "†"
ZERO_CELL_MARK = "‡"

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
_CONTINUOUS_MEASURES = frozenset({"MD", "SMD"})

# geometry, inches
_ROW_H = 0.2
_PAD = 0.16
_PLOT_W = 3.0
_LEFT_MARGIN = 0.12
_GAP_TEXT_PLOT = 0.18
_RIGHT_MARGIN = 0.35
_MAX_LABEL_W = 2.8


# --------------------------------------------------------------------------- texts


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


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


# --------------------------------------------------------------------------- rows


def subgroup_blocks(subgroups: SubgroupResult) -> list[Block]:
    """The blocks of a subgroup analysis, in the order of ``subgroups.groups``."""
    return [(str(name), result) for name, result in subgroups.groups.items()]


def _normalise_blocks(
    blocks: Sequence[Block] | SubgroupResult,
) -> tuple[list[Block], SubgroupResult | None]:
    if isinstance(blocks, SubgroupResult):
        return subgroup_blocks(blocks), blocks
    out: list[Block] = []
    for item in blocks:
        if isinstance(item, (PoolResult, NotPooled)):
            out.append((None, item))
            continue
        label, result = item
        if not isinstance(result, (PoolResult, NotPooled)):
            raise TypeError(f"block {label!r}: expected PoolResult or NotPooled, got {result!r}")
        out.append((label, result))
    return out, None


def _z(level: float) -> float:
    return NormalDist().inv_cdf(0.5 + level / 200.0)


def _study_interval(study: StudyEffect, ratio: bool, level: float) -> tuple[float, float, float]:
    """(estimate, lower, upper) on the analysis scale (log for ratio measures)."""
    lo, hi = study.ci_lower, study.ci_upper
    if lo is not None and hi is not None and (not ratio or (lo > 0 and hi > 0)):
        if ratio:
            return study.yi, math.log(lo), math.log(hi)
        return study.yi, float(lo), float(hi)
    half = _z(level) * math.sqrt(study.vi) if study.vi >= 0 else math.nan
    return study.yi, study.yi - half, study.yi + half


def _to_report(value: float, ratio: bool) -> float:
    return math.exp(value) if ratio else value


def _to_analysis(value: float | None, ratio: bool) -> float | None:
    if value is None:
        return None
    if ratio:
        return math.log(value) if value > 0 else None
    return value


def forest_rows(blocks: Sequence[Block] | SubgroupResult) -> list[dict[str, Any]]:
    """The table behind the forest plot: one dict per study row, in drawing order.

    Keys: ``block`` (heading or None), ``study_id``, ``label``, ``pooled`` (the block
    was pooled), ``weight`` (percent; None in a block that was not pooled), ``estimate``,
    ``ci_lower``, ``ci_upper`` (reporting scale: ratios for RR and OR), ``yi``, ``vi``,
    ``derived``, ``zero_cell_corrected`` and the per-arm inputs (``m1`` ... ``n2`` or
    ``e1`` ... ``t2``) as given.
    """
    normalised, _ = _normalise_blocks(blocks)
    rows: list[dict[str, Any]] = []
    for label, result in normalised:
        pooled = isinstance(result, PoolResult)
        level = result.level if isinstance(result, PoolResult) else 95.0
        for study in result.studies:
            ratio = result.measure in RATIO_MEASURES
            est, lo, hi = _study_interval(study, ratio, level)
            row: dict[str, Any] = {
                "block": label,
                "study_id": study.study_id,
                "label": study.label or study.study_id,
                "pooled": pooled,
                "weight": study.weight if pooled else None,
                "estimate": _to_report(est, ratio),
                "ci_lower": _to_report(lo, ratio),
                "ci_upper": _to_report(hi, ratio),
                "yi": study.yi,
                "vi": study.vi,
                "derived": study.derived,
                "zero_cell_corrected": study.zero_cell_corrected,
            }
            row.update(study.arm_data)
            rows.append(row)
    return rows


RowKind = Literal["header", "block", "study", "pooled", "events", "pi", "text", "reason", "blank"]


@dataclass
class _Row:
    kind: RowKind
    cells: dict[str, str] = field(default_factory=dict)
    span: str | None = None  # text spanning the text columns (headings, notes)
    est: float | None = None  # analysis scale
    lo: float | None = None
    hi: float | None = None
    weight: float | None = None
    pooled: bool = True
    bold: bool = False
    italic: bool = False
    small: bool = False
    colour: str = "black"
    indent: float = 0.0  # inches, for spanning text
    bullet: str = ""  # hanging bullet before a spanning text's first line


@dataclass
class _Column:
    key: str
    header: str
    align: Literal["left", "right", "center"]
    group: str | None = None
    width: float = 0.0
    left: float = 0.0

    @property
    def right(self) -> float:
        return self.left + self.width


def _arm_kind(measure: str) -> Literal["continuous", "dichotomous"]:
    return "continuous" if measure in _CONTINUOUS_MEASURES else "dichotomous"


def _effect_text(est: float, lo: float, hi: float, ratio: bool) -> str:
    e, a, b = (_to_report(v, ratio) for v in (est, lo, hi))
    return f"{fmt_num(e)} [{fmt_num(a)}, {fmt_num(b)}]"


def _sum_arm(studies: Sequence[StudyEffect], key: str) -> str:
    values = [s.arm_data.get(key) for s in studies if s.weight > 0]
    if not values or any(v is None for v in values):
        return ""
    return fmt_plain(sum(float(v) for v in values if v is not None))


def total_rows(
    label: str,
    *,
    estimate: float | None,
    ci_lower: float | None,
    ci_upper: float | None,
    ratio: bool,
    weight: str | None = None,
    sums: dict[str, str] | None = None,
    events: dict[str, str] | None = None,
    prediction: tuple[float | None, float | None] | None = None,
    lines: Sequence[str] = (),
    effect: str | None = None,
) -> list[_Row]:
    """The rows of a pooled total (a diamond): its line with the summed arm totals, the
    total events (``events``, for dichotomous data), the prediction interval and the text
    lines under it (heterogeneity, test for overall effect). Numbers on the reporting
    scale; ``effect`` replaces the estimate's text (e.g. "Not estimable")."""
    est = _to_analysis(estimate, ratio)
    lo = _to_analysis(ci_lower, ratio)
    hi = _to_analysis(ci_upper, ratio)
    rows: list[_Row] = []
    cells = {"study": label}
    if effect is not None:
        cells["effect"] = effect
    elif est is not None and lo is not None and hi is not None:
        cells["effect"] = _effect_text(est, lo, hi, ratio)
    if weight is not None:
        cells["weight"] = weight
    cells.update(sums or {})
    rows.append(_Row("pooled", cells=cells, est=est, lo=lo, hi=hi, bold=True))
    if events is not None:
        rows.append(_Row("events", cells={"study": "Total events", **events}))
    pi_lo, pi_hi = prediction or (None, None)
    a, b = _to_analysis(pi_lo, ratio), _to_analysis(pi_hi, ratio)
    if a is not None and b is not None:
        pi_text = f"[{fmt_num(pi_lo)}, {fmt_num(pi_hi)}]"
        rows.append(
            _Row(
                "pi",
                cells={"study": "Prediction interval", "effect": pi_text},
                lo=a,
                hi=b,
                italic=True,
            )
        )
    rows.extend(_Row("text", span=line, small=True) for line in lines)
    return rows


def _pooled_rows(
    result: PoolResult,
    label: str,
    arm_keys: list[str],
    kind: str,
    show_prediction: bool,
) -> list[_Row]:
    sums: dict[str, str] = {}
    events: dict[str, str] | None = None
    if arm_keys:
        for key in ("n1", "n2") if kind == "continuous" else ("t1", "t2"):
            if key in arm_keys:
                sums[key] = _sum_arm(result.studies, key)
    if arm_keys and kind == "dichotomous":
        events = {k: _sum_arm(result.studies, k) for k in ("e1", "e2") if k in arm_keys}
    het = heterogeneity_text(result)
    return total_rows(
        label,
        estimate=result.estimate,
        ci_lower=result.ci_lower,
        ci_upper=result.ci_upper,
        ratio=result.measure in RATIO_MEASURES,
        weight=f"{sum(s.weight for s in result.studies):.1f}%" if result.studies else None,
        sums=sums,
        events=events,
        prediction=(result.pi_lower, result.pi_upper) if show_prediction else None,
        lines=[*([het] if het else []), overall_effect_text(result)],
    )


def _arm_decimals(results: Sequence[PoolResult | NotPooled], keys: list[str]) -> dict[str, int]:
    """Decimals per arm column: the most any value in the column needs (at most 2)."""
    out: dict[str, int] = {}
    for key in keys:
        values = [
            float(v)
            for r in results
            for s in r.studies
            if (v := s.arm_data.get(key)) is not None and math.isfinite(float(v))
        ]
        out[key] = max((decimals_needed(v) for v in values), default=0)
    return out


def _fmt_arm(value: float | int | None, digits: int) -> str:
    if value is None or not math.isfinite(float(value)):
        return ""
    return fmt_num(float(value), digits)


def _study_row(
    study: StudyEffect,
    result: PoolResult | NotPooled,
    arm_keys: list[str],
    decimals: dict[str, int],
) -> _Row:
    level = result.level if isinstance(result, PoolResult) else 95.0
    ratio = result.measure in RATIO_MEASURES
    est, lo, hi = _study_interval(study, ratio, level)
    label = study.label or study.study_id
    marks = ""
    if study.derived:
        marks += DERIVED_MARK
    if study.zero_cell_corrected:
        marks += ZERO_CELL_MARK
    cells = {"study": label, "marks": marks}
    for key in arm_keys:
        cells[key] = _fmt_arm(study.arm_data.get(key), decimals.get(key, 2))
    pooled = isinstance(result, PoolResult)
    cells["weight"] = f"{study.weight:.1f}%" if pooled else "–"
    if math.isfinite(lo) and math.isfinite(hi):
        cells["effect"] = _effect_text(est, lo, hi, ratio)
    return _Row(
        "study",
        cells=cells,
        est=est,
        lo=lo if math.isfinite(lo) else None,
        hi=hi if math.isfinite(hi) else None,
        weight=study.weight if pooled else 0.0,
        pooled=pooled,
    )


def _build_rows(
    blocks: list[Block],
    *,
    arm_keys: list[str],
    kind: str,
    show_prediction: bool,
    overall: PoolResult | None,
    subgroup_test: SubgroupResult | None,
) -> list[_Row]:
    rows: list[_Row] = []
    several = len(blocks) > 1 or overall is not None
    results = [r for _, r in blocks] + ([overall] if overall is not None else [])
    decimals = _arm_decimals(results, arm_keys)
    for i, (label, result) in enumerate(blocks):
        if i > 0:
            rows.append(_Row("blank"))
        if label:
            rows.append(_Row("block", span=str(label), bold=True))
        for study in result.studies:
            rows.append(_study_row(study, result, arm_keys, decimals))
        if isinstance(result, PoolResult):
            pooled_label = "Subtotal" if several else "Total"
            pooled_label += f" ({result.level:g}% CI)"
            rows.extend(_pooled_rows(result, pooled_label, arm_keys, kind, show_prediction))
        else:
            reason = result.reason
            if "not pooled" not in reason.lower():
                reason = f"Not pooled: {reason}"
            rows.append(_Row("reason", span=reason, italic=True, colour=MUTED_TEXT))
            if result.missing:
                rows.append(
                    _Row("reason", span="Missing data:", italic=True, small=True, colour=MUTED_TEXT)
                )
                for item in result.missing:
                    rows.append(
                        _Row(
                            "reason",
                            span=item,
                            italic=True,
                            small=True,
                            colour=MUTED_TEXT,
                            indent=0.1,
                            bullet="– ",
                        )
                    )
    if overall is not None:
        rows.append(_Row("blank"))
        rows.extend(
            _pooled_rows(overall, f"Total ({overall.level:g}% CI)", arm_keys, kind, show_prediction)
        )
    if subgroup_test is not None:
        text = subgroup_test_text(subgroup_test)
        if text:
            rows.append(_Row("blank"))
            rows.append(_Row("text", span=text, small=True))
    return rows


# --------------------------------------------------------------------------- layout


def _columns(
    kind: str,
    arm_keys: list[str],
    favours: tuple[str, str],
    header: tuple[str, str],
    subgroups: bool,
    *,
    generic_label: str | None = None,
    weight: bool = True,
) -> list[_Column]:
    cols = [_Column("study", "Study or subgroup" if subgroups else "Study", "left")]
    g1, g2 = _cap(favours[0]), _cap(favours[1])
    if kind == "generic":  # generic inverse variance: the entered estimate and its SE
        names = {"est": generic_label or "Estimate", "se": "SE"}
        cols.extend(_Column(k, n, "right") for k, n in names.items() if k in arm_keys)
    else:
        names = (
            {"m1": "Mean", "sd1": "SD", "n1": "Total", "m2": "Mean", "sd2": "SD", "n2": "Total"}
            if kind == "continuous"
            else {"e1": "Events", "t1": "Total", "e2": "Events", "t2": "Total"}
        )
        for key, name in names.items():
            if key in arm_keys:
                cols.append(_Column(key, name, "right", group=g1 if key.endswith("1") else g2))
    if weight:
        cols.append(_Column("weight", "Weight", "right"))
    cols.append(_Column("effect", header[1], "right", group=header[0]))
    return cols


def _layout_columns(cols: list[_Column], rows: list[_Row]) -> None:
    for col in cols:
        widths = [text_width_in(col.header, BASE_FONTSIZE, "bold")]
        for row in rows:
            text = row.cells.get(col.key, "")
            if col.key == "study":
                text = text + (" " + row.cells["marks"] if row.cells.get("marks") else "")
            weight = "bold" if row.bold else "normal"
            widths.append(text_width_in(text, BASE_FONTSIZE, weight))
        col.width = max(widths) + _PAD
    study = cols[0]
    study.width = min(max(study.width, 1.1), _MAX_LABEL_W + _PAD)
    # group headers (e.g. "MSC" over Mean/SD/Total) must fit over their columns
    groups: dict[str, list[_Column]] = {}
    for col in cols:
        if col.group:
            groups.setdefault(col.group, []).append(col)
    for name, members in groups.items():
        need = text_width_in(name, BASE_FONTSIZE, "bold") + _PAD
        have = sum(c.width for c in members)
        if need > have:
            members[-1].width += need - have
    x = _LEFT_MARGIN
    for col in cols:
        col.left = x
        x += col.width


def _expand_spans(rows: list[_Row], width: float) -> list[_Row]:
    out: list[_Row] = []
    for row in rows:
        if row.span is None:
            out.append(row)
            continue
        if row.kind == "block":  # subgroup headings stay on one line
            row.span = truncate_to_width(row.span, width, BASE_FONTSIZE, "bold")
            out.append(row)
            continue
        size = SMALL_FONTSIZE if row.small else BASE_FONTSIZE
        hang = text_width_in(row.bullet, size) if row.bullet else 0.0
        lines = wrap_to_width(row.span, width - row.indent - hang, size)
        for i, line in enumerate(lines):
            out.append(
                _Row(
                    row.kind,
                    span=(row.bullet + line) if i == 0 else line,
                    bold=row.bold,
                    italic=row.italic,
                    small=row.small,
                    colour=row.colour,
                    indent=row.indent + (hang if i > 0 else 0.0),
                )
            )
    return out


def _axis_limits(
    rows: list[_Row], ratio: bool
) -> tuple[tuple[float, float], list[float], list[str]]:
    """Symmetric limits around the line of no effect, with RevMan-like ticks.

    The axis shows every point, diamond and prediction interval, and the CIs of the
    typical studies; a CI reaching more than three times as far as the median study's
    (or, on a ratio axis, a few percent past a round limit) does not stretch the axis
    and ends in an arrow instead.
    """
    core: list[float] = []
    extents: list[float] = []
    for row in rows:
        if row.kind == "study":
            if row.est is not None and math.isfinite(row.est):
                core.append(abs(row.est))
            bounds = [abs(v) for v in (row.lo, row.hi) if v is not None and math.isfinite(v)]
            if bounds:
                extents.append(max(bounds))
        elif row.kind in ("pooled", "pi"):
            core.extend(abs(v) for v in (row.lo, row.hi) if v is not None and math.isfinite(v))
    l_core = max(core, default=0.0)
    l_wide = 0.0
    if extents:
        median = sorted(extents)[(len(extents) - 1) // 2]
        typical = [e for e in extents if e <= 3 * median] or extents
        l_wide = max(typical)
    # ratio scales step coarsely (..., 100, 1000): a CI end up to 8% (on the log
    # scale) beyond a limit gets an arrow rather than a ten times wider axis
    half = max(1.05 * l_core, (0.92 if ratio else 1.0) * l_wide)
    if half <= 0:
        half = math.log(2) if ratio else 1.0
    if ratio:
        limit, ticks = ratio_limit_and_ticks(half)
        lim = math.log(limit)
        return (-lim, lim), [math.log(t) for t in ticks], [tick_label(t) for t in ticks]
    limit = nice_symmetric_limit(half)
    ticks = linear_ticks(limit)
    return (-limit, limit), ticks, [tick_label(t) for t in ticks]


# --------------------------------------------------------------------------- drawing


def _draw_interval(
    ax: Axes, lo: float, hi: float, y: float, xlim: tuple[float, float], colour: str, lw: float
) -> None:
    a, b = max(lo, xlim[0]), min(hi, xlim[1])
    if a < b:
        ax.plot([a, b], [y, y], color=colour, lw=lw, solid_capstyle="butt", zorder=2)
    if lo < xlim[0]:
        ax.plot([xlim[0]], [y], marker="<", ms=4.5, color=colour, clip_on=False, zorder=3)
    if hi > xlim[1]:
        ax.plot([xlim[1]], [y], marker=">", ms=4.5, color=colour, clip_on=False, zorder=3)


def forest_plot(
    blocks: Sequence[Block] | SubgroupResult,
    *,
    measure: str,
    outcome_label: str,
    unit: str | None = None,
    lower_is_better: bool | None,
    favours: tuple[str, str] = ("MSC", "control"),
    title: str | None = None,
    show_prediction: bool = True,
    subgroup_test: SubgroupResult | None = None,
    overall: PoolResult | None = None,
) -> Figure:
    """Draw a forest plot and return the Figure.

    Parameters
    ----------
    blocks
        ``[(heading or None, PoolResult | NotPooled), ...]``: one block for a simple
        analysis, several for subgroups. A :class:`SubgroupResult` is accepted too (its
        groups become the blocks and its Q test the "subgroup differences" line).
    measure
        MD, SMD, RR, OR or RD; must match every block's result.
    outcome_label, unit
        Shown in the default title, e.g. "MELD score (points)".
    lower_is_better
        True when effects below the line of no effect favour the first arm
        (``favours[0]``, the MSC arm): e.g. MELD (MD < 0) or death (RR < 1). None when
        the direction of benefit is unclear: the labels then say which arm is lower
        ("Lower in MSC" left of the line of no effect, "Lower in control" right of it).
    favours
        Names of the two arms: arm 1 (MSC) and arm 2 (control).
    title
        Overrides the default title.
    show_prediction
        Draw the prediction interval under each diamond when the result has one.
    subgroup_test
        A :class:`SubgroupResult` whose Q test is printed under the blocks.
    overall
        An optional pooled result over all blocks, drawn as "Total" after them.
    """
    normalised, implied_test = _normalise_blocks(blocks)
    if subgroup_test is None:
        subgroup_test = implied_test
    measure = measure.upper()
    if measure not in MEASURE_NAMES:
        raise ValueError(f"unknown measure {measure!r}; use one of {', '.join(MEASURE_NAMES)}")
    results: list[PoolResult | NotPooled] = [r for _, r in normalised]
    if overall is not None:
        results.append(overall)
    for result in results:
        if result.measure != measure:
            raise ValueError(
                f"forest_plot(measure={measure!r}) got a result with measure {result.measure!r}"
            )
    if not normalised:
        raise ValueError("forest_plot needs at least one block")
    ratio = measure in RATIO_MEASURES
    kind = _arm_kind(measure)
    wanted = (
        ["m1", "sd1", "n1", "m2", "sd2", "n2"] if kind == "continuous" else ["e1", "t1", "e2", "t2"]
    )
    present = {
        k for r in results for s in r.studies for k, v in s.arm_data.items() if v is not None
    }
    arm_keys = [k for k in wanted if k in present]
    first = next((r for r in results if isinstance(r, PoolResult)), results[0])
    level = first.level if isinstance(first, PoolResult) else 95.0
    header = (MEASURE_NAMES[measure], f"{_model_short(first)}, {level:g}% CI")
    subgroups = len(normalised) > 1 or any(label for label, _ in normalised)

    rows = _build_rows(
        normalised,
        arm_keys=arm_keys,
        kind=kind,
        show_prediction=show_prediction,
        overall=overall,
        subgroup_test=subgroup_test,
    )
    seen: set[str] = set()
    notes: list[str] = []
    for result in results:
        for note in getattr(result, "notes", []):
            if note not in seen:
                seen.add(note)
                notes.append(note)
    if lower_is_better is None:
        favours_text = (f"Lower in {favours[0]}", f"Lower in {favours[1]}")
    else:
        left_arm, right_arm = (
            (favours[0], favours[1]) if lower_is_better else (favours[1], favours[0])
        )
        favours_text = (f"Favours {left_arm}", f"Favours {right_arm}")
    title_text = (
        title if title is not None else (f"{outcome_label} ({unit})" if unit else outcome_label)
    )
    layout = ForestLayout(
        kind=kind,
        arm_keys=arm_keys,
        groups=favours,
        header=header,
        subgroups=subgroups,
        ratio=ratio,
        favours_text=favours_text,
        title=title_text,
        subtitle=f"{MEASURE_NAMES[measure]} ({measure}), {model_description(first)}",
        notes=notes,
    )
    return render_forest(rows, layout)


@dataclass
class ForestLayout:
    """What a forest plot draws besides its rows: the arm columns (``kind``: continuous,
    dichotomous or generic; ``arm_keys`` present), the arms' names over their columns
    (``groups``), the effect column's two header lines (measure, model), the log axis
    (``ratio``), the labels under the axis (left, right), title, subtitle and notes."""

    kind: str
    arm_keys: list[str]
    groups: tuple[str, str]
    header: tuple[str, str]
    subgroups: bool
    ratio: bool
    favours_text: tuple[str, str]
    title: str | None
    subtitle: str
    notes: list[str] = field(default_factory=list)
    generic_label: str | None = None  # header of a generic analysis's estimate column
    weight: bool = True  # draw the weight column
    #: size the figure to hold every text (title, labels under the axis), so that it can
    #: be saved without a tight crop (``save(..., tight=False)``: one drawing pass, faster)
    exact: bool = False


def render_forest(rows: list[_Row], layout: ForestLayout) -> Figure:
    """Lay out and draw the rows of a forest plot (shared by every kind of result)."""
    ratio, header = layout.ratio, layout.header
    cols = _columns(
        layout.kind,
        layout.arm_keys,
        layout.groups,
        header,
        layout.subgroups,
        generic_label=layout.generic_label,
        weight=layout.weight,
    )
    # truncate long study labels before measuring
    for row in rows:
        if row.kind == "study":
            mark_w = text_width_in(" " + row.cells["marks"]) if row.cells.get("marks") else 0
            row.cells["study"] = truncate_to_width(row.cells["study"], _MAX_LABEL_W - mark_w)
    _layout_columns(cols, rows)
    text_w = cols[-1].right - _LEFT_MARGIN
    # spanning lines (heterogeneity, tests, subgroup headings) get the text area: widen
    # the study column a little rather than wrap them; reasons and notes are wrapped
    span_need = (
        max(
            (
                text_width_in(
                    r.span,
                    SMALL_FONTSIZE if r.small else BASE_FONTSIZE,
                    "bold" if r.bold else "normal",
                )
                for r in rows
                if r.span and r.kind in ("text", "block")
            ),
            default=0.0,
        )
        + _PAD / 2
    )
    if span_need > text_w:
        extra = min(span_need - text_w, 1.5)
        cols[0].width += extra
        _layout_columns_shift(cols)
        text_w = cols[-1].right - _LEFT_MARGIN
    rows = _expand_spans(rows, text_w - _PAD / 2)

    # footnotes
    marks_used = {m for r in rows for m in r.cells.get("marks", "")}
    notes: list[str] = []
    if DERIVED_MARK in marks_used:
        notes.append(
            f"{DERIVED_MARK} Includes values derived by the data package maintainers "
            "(verification = derived; see the derivation column)."
        )
    if ZERO_CELL_MARK in marks_used:
        notes.append(f"{ZERO_CELL_MARK} Zero cell: 0.5 added to all four cells.")
    notes.extend(f"Note: {note}" for note in layout.notes)

    n_header = 2
    n_rows = n_header + len(rows)
    plot_left = cols[-1].right + _GAP_TEXT_PLOT
    width = plot_left + _PLOT_W + _RIGHT_MARGIN
    title_text = layout.title
    subtitle = layout.subtitle
    if layout.exact:  # everything inside the figure: it is saved without a tight crop
        right = _PLOT_W * 0.53 + text_width_in(layout.favours_text[1]) + 0.05
        width += max(0.0, right - _PLOT_W - _RIGHT_MARGIN)
        heads = [text_width_in(subtitle, SMALL_FONTSIZE)]
        if title_text:
            heads.append(text_width_in(title_text, TITLE_FONTSIZE, "bold"))
        width = max(width, max(heads) + 2 * _LEFT_MARGIN)
    note_lines: list[str] = []
    for note in notes:
        note_lines.extend(wrap_to_width(note, width - 2 * _LEFT_MARGIN, SMALL_FONTSIZE))
    top = 0.12 + (0.26 if title_text else 0) + 0.22
    body = n_rows * _ROW_H
    bottom_axis = 0.52
    bottom_notes = (0.04 + 0.16 * len(note_lines)) if note_lines else 0.0
    height = top + body + bottom_axis + bottom_notes

    with style_context():
        fig = new_figure(width, height)
        ax = fig.add_axes(
            (
                plot_left / width,
                (bottom_axis + bottom_notes) / height,
                _PLOT_W / width,
                body / height,
            )
        )
        _draw(ax, fig, rows, cols, n_header=n_header, ratio=ratio, header=header)
        xlim = ax.get_xlim()
        null = 0.0
        # favours labels under the tick labels, on the correct sides
        left_text, right_text = layout.favours_text
        below = transforms.blended_transform_factory(ax.transData, ax.transAxes)
        has_ticks = len(ax.get_xticks()) > 0
        offset = transforms.ScaledTranslation(0, -0.27 if has_ticks else -0.08, fig.dpi_scale_trans)
        dx = 0.03 * (xlim[1] - xlim[0])
        ax.text(
            null - dx,
            0,
            left_text,
            transform=below + offset,
            ha="right",
            va="top",
            fontsize=BASE_FONTSIZE,
            gid="favours-left",
            parse_math=False,
        )
        ax.text(
            null + dx,
            0,
            right_text,
            transform=below + offset,
            ha="left",
            va="top",
            fontsize=BASE_FONTSIZE,
            gid="favours-right",
            parse_math=False,
        )
        inches = fig_inches(fig)
        y = height - 0.12
        if title_text:
            fig.text(
                _LEFT_MARGIN,
                y,
                title_text,
                transform=inches,
                ha="left",
                va="top",
                fontsize=TITLE_FONTSIZE,
                fontweight="bold",
                parse_math=False,
            )
            y -= 0.26
        fig.text(
            _LEFT_MARGIN,
            y,
            subtitle,
            transform=inches,
            ha="left",
            va="top",
            fontsize=SMALL_FONTSIZE,
            color=MUTED_TEXT,
            parse_math=False,
        )
        y = bottom_notes - 0.02
        for line in note_lines:
            fig.text(
                _LEFT_MARGIN,
                y,
                line,
                transform=inches,
                ha="left",
                va="top",
                fontsize=SMALL_FONTSIZE,
                color=MUTED_TEXT,
                parse_math=False,
            )
            y -= 0.16
    return fig


def _layout_columns_shift(cols: list[_Column]) -> None:
    x = _LEFT_MARGIN
    for col in cols:
        col.left = x
        x += col.width


def _draw(
    ax: Axes,
    fig: Figure,
    rows: list[_Row],
    cols: list[_Column],
    *,
    n_header: int,
    ratio: bool,
    header: tuple[str, str],
) -> None:
    n_rows = n_header + len(rows)
    xlim, ticks, labels = _axis_limits(rows, ratio)
    ax.set_xlim(*xlim)
    ax.set_ylim(n_rows - 0.5, -0.5)
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.set_yticks([])
    if any(r.est is not None or r.lo is not None for r in rows):
        ax.set_xticks(ticks, labels)
    else:  # nothing to draw: an axis without numbers rather than an invented scale
        ax.set_xticks([])
    ax.tick_params(axis="x", direction="out")
    ax.patch.set_alpha(0)

    text_tf = transforms.blended_transform_factory(fig_inches(fig), ax.transData)

    def put(col: _Column, y: float, text: str, **kw: Any) -> None:
        if not text:
            return
        if col.align == "left":
            x, ha = col.left + _PAD / 4, "left"
        elif col.align == "right":
            x, ha = col.right - _PAD / 4, "right"
        else:
            x, ha = (col.left + col.right) / 2, "center"
        ax.text(
            x, y, text, transform=text_tf, ha=ha, va="center", clip_on=False, parse_math=False, **kw
        )

    # header rows 0 and 1
    groups: dict[str, list[_Column]] = {}
    for col in cols:
        put(col, 1, col.header, fontweight="bold")
        if col.group:
            groups.setdefault(col.group, []).append(col)
    for name, members in groups.items():
        x0, x1 = members[0].left + _PAD / 4, members[-1].right - _PAD / 4
        xm = (x0 + x1) / 2 if len(members) > 1 else x1
        ha = "center" if len(members) > 1 else "right"
        ax.text(
            xm,
            0,
            name,
            transform=text_tf,
            ha=ha,
            va="center",
            fontweight="bold",
            clip_on=False,
            parse_math=False,
        )
        if len(members) > 1:
            ax.plot([x0, x1], [0.45, 0.45], transform=text_tf, color="black", lw=0.6, clip_on=False)
    axis_tf = transforms.blended_transform_factory(ax.transAxes, ax.transData)
    for y, line in enumerate(header[:2]):
        ax.text(
            0.5,
            y,
            line,
            transform=axis_tf,
            ha="center",
            va="center",
            fontweight="bold",
            clip_on=False,
            parse_math=False,
        )
    full = transforms.blended_transform_factory(fig_inches(fig), ax.transData)
    x_end = fig.get_figwidth() - _RIGHT_MARGIN / 2
    ax.plot([_LEFT_MARGIN, x_end], [1.5, 1.5], transform=full, color="black", lw=0.8, clip_on=False)

    max_w = max((r.weight or 0.0 for r in rows if r.kind == "study"), default=0.0)
    side_max = _ROW_H * 72 * 0.82  # points
    for i, row in enumerate(rows):
        y = n_header + i
        size = SMALL_FONTSIZE if row.small else BASE_FONTSIZE
        style = {
            "fontsize": size,
            "fontweight": "bold" if row.bold else "normal",
            "fontstyle": "italic" if row.italic else "normal",
            "color": row.colour,
        }
        if row.span is not None:
            ax.text(
                cols[0].left + _PAD / 4 + row.indent,
                y,
                row.span,
                transform=text_tf,
                ha="left",
                va="center",
                clip_on=False,
                parse_math=False,
                **style,
            )
        for col in cols:
            text = row.cells.get(col.key, "")
            if col.key == "study" and row.cells.get("marks"):
                text = f"{text} {row.cells['marks']}"
            put(col, y, text, **style)
        if row.kind == "study" and row.est is not None:
            colour = STUDY_COLOUR if row.pooled else NOT_POOLED_COLOUR
            if row.lo is not None and row.hi is not None:
                _draw_interval(ax, row.lo, row.hi, y, xlim, colour, 0.9)
            w = row.weight or 0.0
            if row.pooled and w > 0 and max_w > 0:
                s = max(side_max**2 * w / max_w, 12.0)
                ax.scatter([row.est], [y], s=s, marker="s", color=colour, zorder=4, linewidths=0)
            elif row.pooled:  # zero weight in a pooled analysis: open square
                ax.scatter(
                    [row.est],
                    [y],
                    s=16,
                    marker="s",
                    facecolors="white",
                    edgecolors=colour,
                    linewidths=0.8,
                    zorder=4,
                )
            else:
                ax.scatter([row.est], [y], s=16, marker="s", color=colour, zorder=4, linewidths=0)
        elif row.kind == "pooled" and None not in (row.est, row.lo, row.hi):
            assert row.est is not None and row.lo is not None and row.hi is not None
            h = 0.36
            ax.add_patch(
                Polygon(
                    [(row.lo, y), (row.est, y - h), (row.hi, y), (row.est, y + h)],
                    closed=True,
                    facecolor=POOLED_COLOUR,
                    edgecolor=POOLED_COLOUR,
                    lw=0.6,
                    zorder=4,
                    gid="diamond",
                )
            )
        elif row.kind == "pi" and row.lo is not None and row.hi is not None:
            _draw_interval(ax, row.lo, row.hi, y, xlim, PI_COLOUR, 2.4)
            for x in (row.lo, row.hi):
                if xlim[0] <= x <= xlim[1]:
                    ax.plot([x, x], [y - 0.22, y + 0.22], color=PI_COLOUR, lw=1.0, zorder=3)
    # line of no effect through the body
    ax.plot(
        [0.0, 0.0], [1.5, n_rows - 0.5], color=NULL_LINE_COLOUR, lw=0.8, zorder=1, gid="null-line"
    )
