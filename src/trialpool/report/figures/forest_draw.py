"""Drawing a forest plot: :func:`render_forest` draws the rows of any kind of result
(metafor results from :mod:`.forest_metafor`, imported RevMan analyses from
:mod:`.forest_review`) in the columns :mod:`.forest_layout` lays out.

The figure is sized to its rows; the text columns are drawn in inches left of the plot,
and on the plot, on a shared axis (log for ratio measures), per study a square (area
proportional to weight) with its CI whiskers (an arrow where the CI leaves the axis), a
diamond per pooled total, the prediction interval under it, the line of no effect, the
labels under the axis, title, subtitle and footnotes.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from matplotlib import transforms
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Polygon

from trialpool.report.figures.forest_layout import (
    _GAP_TEXT_PLOT,
    _LEFT_MARGIN,
    _MAX_FAVOURS_W,
    _MAX_HEAD_W,
    _MAX_SPAN_LINES,
    _PAD,
    _PLOT_W,
    _RIGHT_MARGIN,
    _ROW_H,
    ForestLayout,
    _axis_limits,
    _cell_text,
    _Column,
    _column_groups,
    _Row,
    cap_studies,
    fit_columns,
    footnotes,
    studies_not_drawn,
)
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
    fig_inches,
    new_figure,
    one_line,
    style_context,
    text_width_in,
    truncate_to_width,
    wrap_to_width,
)


def render_forest(rows: list[_Row], layout: ForestLayout) -> Figure:
    """Lay out and draw the rows of a forest plot (shared by every kind of result)."""
    n_studies = sum(r.kind == "study" for r in rows)
    rows = cap_studies(rows)
    drawn = sum(r.kind == "study" for r in rows)
    if drawn < n_studies:
        layout = replace(layout, notes=[*layout.notes, studies_not_drawn(n_studies)])
    ratio = layout.ratio
    h0, h1 = (truncate_to_width(one_line(h), _PLOT_W + 0.6, weight="bold") for h in layout.header)
    header = (h0, h1)
    f0, f1 = (truncate_to_width(one_line(t), _MAX_FAVOURS_W) for t in layout.favours_text)
    favours_text = (f0, f1)
    cols, rows = fit_columns(rows, layout)
    notes = footnotes(rows, layout)

    n_header = 2
    n_rows = n_header + len(rows)
    plot_left = cols[-1].right + _GAP_TEXT_PLOT
    width = plot_left + _PLOT_W + _RIGHT_MARGIN
    head_w = max(width, _MAX_HEAD_W) - 2 * _LEFT_MARGIN
    title_text = (
        truncate_to_width(one_line(layout.title), head_w, TITLE_FONTSIZE, "bold")
        if layout.title
        else layout.title
    )
    subtitle = truncate_to_width(one_line(layout.subtitle), head_w, SMALL_FONTSIZE)
    if layout.exact:  # everything inside the figure: it is saved without a tight crop
        right = _PLOT_W * 0.53 + text_width_in(favours_text[1]) + 0.05
        width += max(0.0, right - _PLOT_W - _RIGHT_MARGIN)
        heads = [text_width_in(subtitle, SMALL_FONTSIZE)]
        if title_text:
            heads.append(text_width_in(title_text, TITLE_FONTSIZE, "bold"))
        width = max(width, max(heads) + 2 * _LEFT_MARGIN)
    note_lines: list[str] = []
    for note in notes:
        note_lines.extend(
            wrap_to_width(note, width - 2 * _LEFT_MARGIN, SMALL_FONTSIZE, max_lines=_MAX_SPAN_LINES)
        )
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
        left_text, right_text = favours_text
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
    """Draw the header rows, every row's texts and marks on the axis, and the line of
    no effect."""
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
    for col in cols:
        put(col, 1, col.header, fontweight="bold")
    for name, members in _column_groups(cols):
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
            put(col, y, _cell_text(row, col), **style)
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
