"""Shared look of every trialpool figure: fonts, colours, number formats, saving.

Figures are built without ``matplotlib.pyplot``: each plot function creates a
``matplotlib.figure.Figure`` and attaches an Agg canvas to it explicitly
(:func:`new_figure`), so no global figure registry, backend switch or ``rcParams``
change leaks between calls and nothing needs closing. Styling is applied with
:func:`style_context`, a ``matplotlib.rc_context`` that is entered around figure
construction and around saving only.

The font is DejaVu Sans (bundled with matplotlib), which has every glyph used here
("τ²", "≥", "−", "†", "‡", "×"), so no missing-glyph warnings are raised.

Texts from a review can be of any length: no text reaches matplotlib (measured or drawn)
longer than :data:`MAX_TEXT_CHARS` (:func:`bounded`); :func:`truncate_to_width` and
:func:`wrap_to_width` shorten a text to a width in inches (and a number of lines); and
:func:`save` never writes a figure wider than :data:`MAX_FIGURE_PX` (nor taller than
:data:`MAX_FIGURE_HEIGHT_PX`) pixels: a layout that would be is saved at a lower
resolution.

Risk-of-bias colours are robvis's "cochrane" palette (McGuinness & Higgins,
Res Synth Methods 2021;12:55-61; robvis R/helpers.R ``get_colour``).
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.transforms import Affine2D, Bbox, Transform

FONT_FAMILY = "DejaVu Sans"
BASE_FONTSIZE = 8.5
SMALL_FONTSIZE = 7.5
TITLE_FONTSIZE = 10.5
DEFAULT_DPI = 150

#: the widest figure written, in pixels (PNG) or points (SVG, PDF)
MAX_FIGURE_PX = 8000
#: the tallest figure written, in pixels or points
MAX_FIGURE_HEIGHT_PX = 30000
#: the widest figure laid out, in inches (MAX_FIGURE_PX at DEFAULT_DPI)
MAX_FIGURE_IN = MAX_FIGURE_PX / DEFAULT_DPI
#: the longest text (characters) measured or drawn; longer texts are cut with an ellipsis
MAX_TEXT_CHARS = 400
#: the longest text (characters) wrapped over several lines (notes, reasons)
MAX_WRAPPED_CHARS = 4000
ELLIPSIS = "…"

#: rcParams applied while a figure is built and saved (never set globally).
RC: dict[str, object] = {
    "font.family": "sans-serif",
    "font.sans-serif": [FONT_FAMILY],
    "font.size": BASE_FONTSIZE,
    "axes.unicode_minus": True,
    "axes.linewidth": 0.8,
    "xtick.labelsize": BASE_FONTSIZE,
    "ytick.labelsize": BASE_FONTSIZE,
    "xtick.major.width": 0.8,
    "xtick.major.size": 3.0,
    "svg.fonttype": "path",  # self-contained SVG: glyphs as paths
    "svg.hashsalt": "trialpool",  # deterministic SVG ids
    "path.simplify": True,
    "text.usetex": False,
}

# Forest and funnel colours
STUDY_COLOUR = "#1F4E79"  # squares and study CIs
POOLED_COLOUR = "#000000"  # diamonds
PI_COLOUR = "#B22222"  # prediction interval bar
NULL_LINE_COLOUR = "#404040"
MUTED_TEXT = "#505050"
NOT_POOLED_COLOUR = "#8A8A8A"

# Risk-of-bias colours (robvis "cochrane" palette)
ROB_LOW = "#02C100"
ROB_CONCERNS = "#E2DF07"
ROB_HIGH = "#BF0000"
ROB_CRITICAL = "#820000"
ROB_NO_INFORMATION = "#4EA1F7"
ROB_NOT_ASSESSED = "#CCCCCC"
#: "not applicable": white, with the symbol NA (robvis has no colour for it)
ROB_NOT_APPLICABLE = "#FFFFFF"

# PRISMA colours
PRISMA_STAGE_FILL = "#C5DDF0"
PRISMA_HEADER_FILL = "#FCE7A6"
PRISMA_BOX_EDGE = "#333333"

UNICODE_MINUS = "\u2212"


@contextlib.contextmanager
def style_context() -> Iterator[None]:
    """Apply :data:`RC` for the duration of the block (restored afterwards)."""
    with matplotlib.rc_context(RC):
        yield


def new_figure(width_in: float, height_in: float) -> Figure:
    """A Figure of the given size (inches) with an explicit Agg canvas, outside pyplot."""
    fig = Figure(figsize=(max(width_in, 1.0), max(height_in, 1.0)), dpi=100)
    FigureCanvasAgg(fig)
    fig.patch.set_facecolor("white")
    return fig


def fig_inches(fig: Figure) -> Transform:
    """Transform from inches (origin at the figure's lower left) to display.

    Built on ``fig.transFigure`` rather than ``fig.dpi_scale_trans`` so that artists
    placed with it move with the figure when ``savefig(bbox_inches="tight")`` crops it
    (``dpi_scale_trans`` is not shifted by the crop, which would misplace them).
    """
    width, height = fig.get_size_inches()
    return Affine2D().scale(1.0 / width, 1.0 / height) + fig.transFigure


def _layout_box(fig: Figure, tight: bool, pad: float) -> Bbox:
    """The part of ``fig`` that is written, in inches: the whole figure, or (``tight``) its
    content's bounding box with ``pad`` inches around it (computed once for every
    format, as ``savefig(bbox_inches="tight")`` would)."""
    if not tight:
        width, height = fig.get_size_inches()
        return Bbox.from_bounds(0, 0, width, height)
    with style_context():
        fig.draw_without_rendering()
        box = fig.get_tightbbox(fig.canvas.get_renderer())
    return box.padded(pad)


def bounded_dpi(box: Bbox, dpi: float) -> float:
    """``dpi``, lowered when needed so that ``box`` (inches) is at most
    :data:`MAX_FIGURE_PX` wide and :data:`MAX_FIGURE_HEIGHT_PX` tall."""
    width, height = max(box.width, 1e-9), max(box.height, 1e-9)
    return min(float(dpi), MAX_FIGURE_PX / width, MAX_FIGURE_HEIGHT_PX / height)


def save(
    fig: Figure,
    path_without_suffix: str | Path,
    formats: Sequence[str] = ("png", "svg"),
    *,
    dpi: int = DEFAULT_DPI,
    tight: bool = True,
) -> list[Path]:
    """Write ``fig`` once per format (``path.png``, ``path.svg``, ...) and return the paths.

    PNG is written at ``dpi`` (150 by default); SVG keeps text as paths so it renders
    the same everywhere. Metadata dates are left out so repeated runs give identical
    SVG files. Parent folders are created. ``tight`` crops the figure to its content (a
    second layout pass); a figure laid out to hold all its content exactly is saved
    faster with ``tight=False``. No PNG is wider than :data:`MAX_FIGURE_PX` pixels, nor
    an SVG that many points, nor taller than :data:`MAX_FIGURE_HEIGHT_PX`: a larger
    figure is written at a lower resolution (PNG) or its SVG scaled down.
    """
    base = Path(path_without_suffix)
    base.parent.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    pad = 0.08
    box = _layout_box(fig, tight, pad)
    vector_scale = min(1.0, bounded_dpi(box, 72) / 72)
    for fmt in formats:
        fmt = fmt.lower().lstrip(".")
        if fmt not in {"png", "svg", "pdf"}:
            raise ValueError(f"unsupported figure format {fmt!r} (use png, svg or pdf)")
        out = base.with_name(base.name + "." + fmt)
        metadata: dict[str, str | None] = {"Date": None} if fmt in {"svg", "pdf"} else {}
        if fmt == "pdf":
            metadata["CreationDate"] = None
            del metadata["Date"]
        with style_context():
            fig.savefig(
                out,
                format=fmt,
                dpi=bounded_dpi(box, dpi) if fmt == "png" else dpi,
                bbox_inches=box if tight else None,
                facecolor="white",
                metadata=metadata,
            )
        if fmt == "svg" and vector_scale < 1.0:
            _bound_svg(out, vector_scale)
        written.append(out)
    return written


_SVG_SIZE = re.compile(rb'<svg([^>]*?) width="([0-9.]+)pt" height="([0-9.]+)pt"')


def _bound_svg(path: Path, scale: float) -> None:
    """Scale an SVG larger than the bounds down: its width and height (points) times
    ``scale``, its viewBox (the drawing) unchanged."""
    data = path.read_bytes()

    def smaller(match: re.Match[bytes]) -> bytes:
        width, height = (float(match.group(i)) * scale for i in (2, 3))
        return b'<svg%s width="%.2fpt" height="%.2fpt"' % (match.group(1), width, height)

    path.write_bytes(_SVG_SIZE.sub(smaller, data, count=1))


_SPACES = re.compile(r"[^\S\u00a0]+")


def bounded(text: object, limit: int = MAX_TEXT_CHARS) -> str:
    """``text`` as a string of at most ``limit`` characters (cut with an ellipsis): what
    may be handed to matplotlib, whose text measurement and drawing are native code."""
    text = str(text)
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)].rstrip() + ELLIPSIS


def one_line(text: object, limit: int = MAX_TEXT_CHARS) -> str:
    """``text`` on one line (runs of white space as one space; no-break spaces kept), at
    most ``limit`` characters: a label from the data as a figure shows it."""
    text = _SPACES.sub(" ", str(text)[: 4 * limit]).strip()
    return bounded(text, limit)


@lru_cache(maxsize=1)
def _measuring_renderer() -> RendererAgg:
    return RendererAgg(10, 10, 72)


@lru_cache(maxsize=4096)
def text_width_in(text: str, fontsize: float = BASE_FONTSIZE, weight: str = "normal") -> float:
    """Width in inches of ``text`` set in DejaVu Sans (widest line if multi-line); a text
    longer than :data:`MAX_TEXT_CHARS` is measured as :func:`bounded` cuts it."""
    if not text:
        return 0.0
    prop = FontProperties(family=FONT_FAMILY, size=fontsize, weight=weight)
    renderer = _measuring_renderer()
    widest = 0.0
    for line in bounded(text).split("\n"):
        if not line:
            continue
        w, _h, _d = renderer.get_text_width_height_descent(bounded(line), prop, ismath=False)
        widest = max(widest, w)
    return widest / 72.0


def wrap_to_width(
    text: str,
    width_in: float,
    fontsize: float = BASE_FONTSIZE,
    weight: str = "normal",
    *,
    max_lines: int | None = None,
) -> list[str]:
    """Greedy word wrap of ``text`` so that each line fits ``width_in`` inches.

    Lines break at ordinary spaces only, so a no-break space (U+00A0) keeps "n = 3"
    together. A single word wider than the width is cut to it with an ellipsis. A text
    longer than :data:`MAX_WRAPPED_CHARS` is cut first, and with ``max_lines`` the last
    line kept ends with an ellipsis when more would follow.
    """
    lines: list[str] = []
    for paragraph in bounded(text, MAX_WRAPPED_CHARS).split("\n"):
        words = [
            truncate_to_width(w, width_in, fontsize, weight) for w in paragraph.split(" ") if w
        ]
        if not words:
            lines.append("")
            continue
        current = words[0]
        for word in words[1:]:
            candidate = f"{current} {word}"
            if text_width_in(candidate, fontsize, weight) <= width_in:
                current = candidate
            else:
                lines.append(current)
                current = word
        lines.append(current)
    if max_lines is not None and len(lines) > max_lines:
        last = truncate_to_width(lines[max_lines - 1] + " " + ELLIPSIS, width_in, fontsize, weight)
        lines = [*lines[: max_lines - 1], last if last.endswith(ELLIPSIS) else last + ELLIPSIS]
    return lines


def truncate_to_width(
    text: str, width_in: float, fontsize: float = BASE_FONTSIZE, weight: str = "normal"
) -> str:
    """``text`` shortened with an ellipsis so that it fits ``width_in`` inches (first to
    :data:`MAX_TEXT_CHARS` characters)."""
    text = bounded(text)
    if text_width_in(text, fontsize, weight) <= width_in:
        return text
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if text_width_in(text[:mid].rstrip() + ELLIPSIS, fontsize, weight) <= width_in:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo].rstrip() + ELLIPSIS


#: numbers this large or larger are written in scientific notation ("1.2e+20")
SCIENTIFIC_FROM = 1e15


def fmt_num(value: float | None, digits: int = 2) -> str:
    """A number with ``digits`` decimals and a typographic minus; "" for None/NaN; from
    :data:`SCIENTIFIC_FROM` on, three significant digits in scientific notation."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if abs(value) >= SCIENTIFIC_FROM:
        return f"{value:.3g}".replace("-", UNICODE_MINUS)
    text = f"{value:.{digits}f}"
    if text.startswith("-"):
        # "-0.00" -> "0.00"; otherwise a typographic minus
        text = text[1:] if float(text) == 0 else UNICODE_MINUS + text[1:]
    return text


def fmt_plain(value: float | int | None) -> str:
    """An input value as entered-looking text: integers bare, others up to 2 decimals."""
    if value is None:
        return ""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(v):
        return ""
    if v.is_integer() and abs(v) < SCIENTIFIC_FROM:
        text = str(int(v))
    elif abs(v) >= SCIENTIFIC_FROM:
        text = f"{v:.3g}"
    else:
        text = f"{v:.2f}".rstrip("0").rstrip(".")
    return text.replace("-", UNICODE_MINUS)


def decimals_needed(value: float, max_digits: int = 2) -> int:
    """Fewest decimals (up to ``max_digits``) that show ``value`` without rounding it."""
    for digits in range(max_digits + 1):
        if abs(round(value, digits) - value) < 1e-9 * max(1.0, abs(value)):
            return digits
    return max_digits


def fmt_p(p: float | None) -> str:
    """A P value as reviewers read it: "P < 0.001" or "P = 0.034" (3 decimals)."""
    if p is None or not math.isfinite(p):
        return "P not available"
    if p < 0.001:
        return "P < 0.001"
    return f"P = {p:.3f}"


def fmt_small(value: float, digits: int = 2) -> str:
    """Like :func:`fmt_num`, but small non-zero values keep two significant digits."""
    if value != 0 and abs(value) < 10 ** (-digits):
        return f"{value:.2g}".replace("-", UNICODE_MINUS)
    return fmt_num(value, digits)


#: Tick sets for ratio axes, keyed by the largest ratio shown (symmetric on the log scale).
RATIO_TICKS: dict[float, list[float]] = {
    1.5: [0.67, 0.8, 1, 1.25, 1.5],
    2: [0.5, 0.7, 1, 1.5, 2],
    5: [0.2, 0.5, 1, 2, 5],
    10: [0.1, 0.2, 0.5, 1, 2, 5, 10],
    20: [0.05, 0.2, 1, 5, 20],
    50: [0.02, 0.1, 1, 10, 50],
    100: [0.01, 0.1, 1, 10, 100],
    1000: [0.001, 0.01, 0.1, 1, 10, 100, 1000],
}


def nice_symmetric_limit(half_width: float) -> float:
    """The smallest "nice" number (1, 2, 3, 4, 5, 6, 8 × 10^n) at least ``half_width``.

    Every choice has a round half (the ±limit/2 ticks of :func:`linear_ticks`).
    """
    if not math.isfinite(half_width) or half_width <= 0:
        return 1.0
    exponent = math.floor(math.log10(half_width))
    for mantissa in (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0):
        candidate = mantissa * 10.0**exponent
        if candidate >= half_width * (1 - 1e-9):
            return candidate
    return 10.0 ** (exponent + 1)


def linear_ticks(limit: float) -> list[float]:
    """Five ticks from −limit to +limit (RevMan style)."""
    return [-limit, -limit / 2, 0.0, limit / 2, limit]


def ratio_limit_and_ticks(log_half_width: float) -> tuple[float, list[float]]:
    """For a half-width on the log scale, the ratio limit and its tick values."""
    for limit, ticks in RATIO_TICKS.items():
        if math.log(limit) >= log_half_width * (1 - 1e-9):
            return limit, ticks
    limit = 10.0 ** math.ceil(log_half_width / math.log(10))
    exps = range(-round(math.log10(limit)), round(math.log10(limit)) + 1)
    return limit, [10.0**e for e in exps]


def tick_label(value: float) -> str:
    """Tick text: ``%g`` with a typographic minus."""
    text = f"{value:g}"
    return text.replace("-", UNICODE_MINUS)
