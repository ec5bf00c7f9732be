"""Shared look of every trialpool figure: fonts, colours, number formats, saving.

Figures are built without ``matplotlib.pyplot``: each plot function creates a
``matplotlib.figure.Figure`` and attaches an Agg canvas to it explicitly
(:func:`new_figure`), so no global figure registry, backend switch or ``rcParams``
change leaks between calls and nothing needs closing. Styling is applied with
:func:`style_context`, a ``matplotlib.rc_context`` that is entered around figure
construction and around saving only.

The font is DejaVu Sans (bundled with matplotlib), which has every glyph used here
("τ²", "≥", "−", "†", "‡", "×"), so no missing-glyph warnings are raised.

Risk-of-bias colours are robvis's "cochrane" palette (McGuinness & Higgins,
Res Synth Methods 2021;12:55-61; robvis R/helpers.R ``get_colour``).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.transforms import Affine2D, Transform

FONT_FAMILY = "DejaVu Sans"
BASE_FONTSIZE = 8.5
SMALL_FONTSIZE = 7.5
TITLE_FONTSIZE = 10.5
DEFAULT_DPI = 150

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
    faster with ``tight=False``.
    """
    base = Path(path_without_suffix)
    base.parent.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
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
                dpi=dpi,
                bbox_inches="tight" if tight else None,
                pad_inches=0.08,
                facecolor="white",
                metadata=metadata,
            )
        written.append(out)
    return written


@lru_cache(maxsize=1)
def _measuring_renderer() -> RendererAgg:
    return RendererAgg(10, 10, 72)


@lru_cache(maxsize=4096)
def text_width_in(text: str, fontsize: float = BASE_FONTSIZE, weight: str = "normal") -> float:
    """Width in inches of ``text`` set in DejaVu Sans (widest line if multi-line)."""
    if not text:
        return 0.0
    prop = FontProperties(family=FONT_FAMILY, size=fontsize, weight=weight)
    renderer = _measuring_renderer()
    widest = 0.0
    for line in text.split("\n"):
        if not line:
            continue
        w, _h, _d = renderer.get_text_width_height_descent(line, prop, ismath=False)
        widest = max(widest, w)
    return widest / 72.0


def wrap_to_width(
    text: str, width_in: float, fontsize: float = BASE_FONTSIZE, weight: str = "normal"
) -> list[str]:
    """Greedy word wrap of ``text`` so that each line fits ``width_in`` inches.

    Lines break at ordinary spaces only, so a no-break space (U+00A0) keeps "n = 3"
    together. A single word wider than the width is kept whole on its own line.
    """
    lines: list[str] = []
    for paragraph in str(text).split("\n"):
        words = [w for w in paragraph.split(" ") if w]
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
    return lines


def truncate_to_width(
    text: str, width_in: float, fontsize: float = BASE_FONTSIZE, weight: str = "normal"
) -> str:
    """``text`` shortened with an ellipsis so that it fits ``width_in`` inches."""
    if text_width_in(text, fontsize, weight) <= width_in:
        return text
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if text_width_in(text[:mid].rstrip() + "…", fontsize, weight) <= width_in:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo].rstrip() + "…"


def fmt_num(value: float | None, digits: int = 2) -> str:
    """A number with ``digits`` decimals and a typographic minus; "" for None/NaN."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
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
    if v.is_integer() and abs(v) < 1e15:
        text = str(int(v))
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
