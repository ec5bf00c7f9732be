"""The table of a forest plot: its rows and columns, laid out before anything is drawn.

The row model (:class:`_Row`: a study, a pooled total, a prediction interval, a text
spanning the text columns, ...) that both row builders produce (:mod:`.forest_metafor`
for metafor results, :mod:`.forest_review` for imported RevMan analyses), with the
pieces they share (a pooled total's rows, effect and arm cells, the scale conversions,
the footnote marks); :class:`ForestLayout` (what is drawn besides the rows); the
columns, their widths and places, the wrapping of spanning texts, and the limits and
ticks of the axis. Sizes are in inches.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from trialpool.report.figures.style import (
    BASE_FONTSIZE,
    MUTED_TEXT,
    SMALL_FONTSIZE,
    fmt_num,
    linear_ticks,
    nice_symmetric_limit,
    one_line,
    ratio_limit_and_ticks,
    text_width_in,
    tick_label,
    truncate_to_width,
    wrap_to_width,
)

#: marks after a study's label, explained in a footnote
DERIVED_MARK = "†"
ZERO_CELL_MARK = "‡"

# geometry, inches
_ROW_H = 0.2
_PAD = 0.16
_PLOT_W = 3.0
_LEFT_MARGIN = 0.12
_GAP_TEXT_PLOT = 0.18
_RIGHT_MARGIN = 0.35
_MAX_LABEL_W = 2.8
#: the widest cell, column header or arm name (inches)
_MAX_CELL_W = 2.4
#: the widest title or subtitle (inches) when the columns are narrower
_MAX_HEAD_W = 10.0
#: the widest label under the axis (inches)
_MAX_FAVOURS_W = 2.6
#: lines of one spanning text (a reason, a note) at most
_MAX_SPAN_LINES = 6
#: notes under a plot at most
_MAX_NOTES = 12

#: the most study rows a forest plot draws (the first ones, in order)
MAX_STUDY_ROWS = 150
#: the most rows of any kind a forest plot draws (its final total is kept)
MAX_ROWS = 420
#: the final rows kept when a plot is cut at MAX_ROWS (the total and its lines)
_MAX_TAIL = 16
#: the longest spanning text or note (characters) before it is wrapped
MAX_WRAPPED_SPAN = 1200


# --------------------------------------------------------------------------- model

RowKind = Literal["header", "block", "study", "pooled", "events", "pi", "text", "reason", "blank"]


@dataclass
class _Row:
    """One line of the table: its cells by column key, or a text spanning the text
    columns; what is drawn on the axis (analysis scale) and how the text looks."""

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
    """One text column: the key of its cells, its header, and its place once laid out."""

    key: str
    header: str
    align: Literal["left", "right", "center"]
    group: str | None = None
    width: float = 0.0
    left: float = 0.0

    @property
    def right(self) -> float:
        return self.left + self.width


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
    #: further text columns right of the study column: (cell key, header), right-aligned
    extra: tuple[tuple[str, str], ...] = ()


# --------------------------------------------------------------------------- shared rows


def _to_report(value: float, ratio: bool) -> float:
    return math.exp(value) if ratio else value


def _to_analysis(value: float | None, ratio: bool) -> float | None:
    if value is None:
        return None
    if ratio:
        return math.log(value) if value > 0 else None
    return value


def _effect_text(est: float, lo: float, hi: float, ratio: bool) -> str:
    e, a, b = (_to_report(v, ratio) for v in (est, lo, hi))
    return f"{fmt_num(e)} [{fmt_num(a)}, {fmt_num(b)}]"


def _fmt_arm(value: float | int | None, digits: int) -> str:
    if value is None or not math.isfinite(float(value)):
        return ""
    return fmt_num(float(value), digits)


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


# --------------------------------------------------------------------------- columns


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _columns(
    kind: str,
    arm_keys: list[str],
    favours: tuple[str, str],
    header: tuple[str, str],
    subgroups: bool,
    *,
    generic_label: str | None = None,
    weight: bool = True,
    extra: tuple[tuple[str, str], ...] = (),
) -> list[_Column]:
    cols = [_Column("study", "Study or subgroup" if subgroups else "Study", "left")]
    cols.extend(_Column(key, name, "right") for key, name in extra)
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


def _cell_text(row: _Row, col: _Column) -> str:
    """The text of a row in a column as drawn (and measured): a study's label is
    followed by its marks."""
    text = row.cells.get(col.key, "")
    if col.key == "study" and row.cells.get("marks"):
        text = f"{text} {row.cells['marks']}"
    return text


def _column_groups(cols: list[_Column]) -> list[tuple[str, list[_Column]]]:
    """The columns under each group header (e.g. "MSC" over Mean, SD and Total): runs of
    neighbouring columns with the same group (two arms' names cut to the same text stay
    two groups)."""
    groups: list[tuple[str, list[_Column]]] = []
    for i, col in enumerate(cols):
        if not col.group:
            continue
        if i and groups and cols[i - 1].group == col.group and groups[-1][1][-1] is cols[i - 1]:
            groups[-1][1].append(col)
        else:
            groups.append((col.group, [col]))
    return groups


def _place_columns(cols: list[_Column]) -> None:
    """Set each column's left edge: side by side from the left margin."""
    x = _LEFT_MARGIN
    for col in cols:
        col.left = x
        x += col.width


def _layout_columns(cols: list[_Column], rows: list[_Row]) -> None:
    """Size each column to its widest text (the study column within limits) and place
    them."""
    for col in cols:
        widths = [text_width_in(col.header, BASE_FONTSIZE, "bold")]
        for row in rows:
            weight = "bold" if row.bold else "normal"
            widths.append(text_width_in(_cell_text(row, col), BASE_FONTSIZE, weight))
        col.width = max(widths) + _PAD
    study = cols[0]
    study.width = min(max(study.width, 1.1), _MAX_LABEL_W + _PAD)
    # group headers (e.g. "MSC" over Mean/SD/Total) must fit over their columns
    for name, members in _column_groups(cols):
        need = text_width_in(name, BASE_FONTSIZE, "bold") + _PAD
        have = sum(c.width for c in members)
        if need > have:
            members[-1].width += need - have
    _place_columns(cols)


def fit_columns(rows: list[_Row], layout: ForestLayout) -> tuple[list[_Column], list[_Row]]:
    """The laid-out columns of a plot, and its rows with long study labels truncated
    (in place) and spanning texts wrapped to the text area (one row per line)."""
    cols = _columns(
        layout.kind,
        layout.arm_keys,
        layout.groups,
        layout.header,
        layout.subgroups,
        generic_label=layout.generic_label,
        weight=layout.weight,
        extra=layout.extra,
    )
    for col in cols:
        col.header = truncate_to_width(one_line(col.header), _MAX_CELL_W, weight="bold")
        if col.group:
            col.group = truncate_to_width(one_line(col.group), _MAX_CELL_W, weight="bold")
    # cut long labels and cells before measuring
    for row in rows:
        bold = "bold" if row.bold else "normal"
        for key, text in row.cells.items():
            if key in ("study", "marks"):
                continue
            row.cells[key] = truncate_to_width(one_line(text), _MAX_CELL_W, weight=bold)
        if "study" in row.cells:
            marks = row.cells.get("marks", "")
            mark_w = text_width_in(" " + marks) if marks else 0
            label_w = (_MAX_LABEL_W if row.kind == "study" else _MAX_CELL_W) - mark_w
            row.cells["study"] = truncate_to_width(
                one_line(row.cells["study"]), label_w, weight=bold
            )
        if row.span is not None:
            row.span = one_line(row.span, MAX_WRAPPED_SPAN)
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
        _place_columns(cols)
        text_w = cols[-1].right - _LEFT_MARGIN
    return cols, cap_rows(_expand_spans(rows, text_w - _PAD / 2))


def footnotes(rows: list[_Row], layout: ForestLayout) -> list[str]:
    """The notes under the plot: what each mark used in the rows means, then the
    layout's own notes."""
    marks_used = {m for r in rows for m in r.cells.get("marks", "")}
    notes: list[str] = []
    if DERIVED_MARK in marks_used:
        notes.append(
            f"{DERIVED_MARK} Includes values derived by the data package maintainers "
            "(verification = derived; see the derivation column)."
        )
    if ZERO_CELL_MARK in marks_used:
        notes.append(f"{ZERO_CELL_MARK} Zero cell: 0.5 added to all four cells.")
    notes.extend(f"Note: {one_line(note, MAX_WRAPPED_SPAN)}" for note in layout.notes)
    if len(notes) > _MAX_NOTES:
        more = len(notes) - _MAX_NOTES + 1
        notes = [*notes[: _MAX_NOTES - 1], f"Note: {more} more notes, in the report's text."]
    return notes


def _omitted(n: int) -> _Row:
    return _Row(
        "text",
        span=f"… {n:,} more study row{'s' if n != 1 else ''} not drawn",
        italic=True,
        small=True,
        colour=MUTED_TEXT,
    )


def studies_not_drawn(total: int) -> str:
    """The note of a plot that leaves study rows out (also said in the report's text)."""
    return (
        f"the plot draws at most {MAX_STUDY_ROWS} of its {total:,} study rows (the first "
        "ones); every row is in the exported per-study CSV."
    )


def cap_studies(rows: list[_Row], max_studies: int = MAX_STUDY_ROWS) -> list[_Row]:
    """The rows with at most ``max_studies`` study rows (the first ones): the study rows
    after them are left out, each run of them replaced by one line saying how many."""
    out: list[_Row] = []
    drawn = hidden = 0
    for row in rows:
        if row.kind == "study":
            if drawn < max_studies:
                out.append(row)
                drawn += 1
            else:
                hidden += 1
            continue
        if hidden:
            out.append(_omitted(hidden))
            hidden = 0
        out.append(row)
    if hidden:
        out.append(_omitted(hidden))
    return out


def cap_rows(rows: list[_Row], max_rows: int = MAX_ROWS) -> list[_Row]:
    """At most ``max_rows`` rows: the first ones, a line saying how many are left out,
    and the final total when short (from the blank row before the last pooled row to the
    end: the total, its lines, the test for subgroup differences)."""
    if len(rows) <= max_rows:
        return rows
    pooled = [i for i, r in enumerate(rows) if r.kind == "pooled"]
    blanks = [i for i, r in enumerate(rows) if r.kind == "blank" and pooled and i < pooled[-1]]
    start = blanks[-1] if blanks else len(rows)
    tail = rows[start:] if len(rows) - start <= _MAX_TAIL else []
    head = rows[: max_rows - len(tail) - 1]
    left_out = len(rows) - len(head) - len(tail)
    note = _Row(
        "text",
        span=f"… {left_out:,} more rows not drawn (a forest plot draws at most {max_rows})",
        italic=True,
        small=True,
        colour=MUTED_TEXT,
    )
    return [*head, note, *tail]


def _expand_spans(rows: list[_Row], width: float) -> list[_Row]:
    """Wrap each spanning text to ``width`` (subgroup headings are truncated instead)."""
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
        lines = wrap_to_width(row.span, width - row.indent - hang, size, max_lines=_MAX_SPAN_LINES)
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


# --------------------------------------------------------------------------- axis

#: the widest half-axis drawn: larger values (of a package whose numbers are absurd but
#: finite) end in an arrow rather than overflow the axis's arithmetic
_MAX_HALF_WIDTH = 1e300


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
    half = min(max(1.05 * l_core, (0.92 if ratio else 1.0) * l_wide), _MAX_HALF_WIDTH)
    if half <= 0:
        half = math.log(2) if ratio else 1.0
    if ratio:
        limit, ticks = ratio_limit_and_ticks(half)
        lim = math.log(limit)
        return (-lim, lim), [math.log(t) for t in ticks], [tick_label(t) for t in ticks]
    limit = nice_symmetric_limit(half)
    ticks = linear_ticks(limit)
    return (-limit, limit), ticks, [tick_label(t) for t in ticks]
