"""PRISMA 2020 flow diagram from the ``screening`` resource.

Each screening row is one record; its ``stage`` is the last stage it reached
(identification, screening, eligibility, included) and ``decision`` what was decided
there (include, exclude, awaiting, ongoing). So:

* records identified = all rows (by ``identified_via`` and by ``record_kind``);
* removed before screening = rows whose last stage is ``identification``;
* screened = rows that reached ``screening`` or later;
* excluded at screening = stage ``screening`` and decision ``exclude``;
* assessed for eligibility = rows that reached ``eligibility`` or ``included``;
* excluded with reasons = stage ``eligibility`` and decision ``exclude``, grouped by
  reason text;
* awaiting classification and ongoing = decisions ``awaiting`` and ``ongoing``;
* included = decision ``include`` (studies = distinct ``study_id``, reports = rows).

Numbers the table cannot know (database hits before de-duplication, duplicates when no
row records them) are shown as "not reported", never guessed; callers who know them
pass them to :func:`prisma_counts`. A table that records no search (no row at the
identification or screening stage, none saying how it was identified or what kind of
record it is: the study lists of an imported review) cannot know the records identified,
screened and excluded at screening either, nor, without a row excluded at eligibility,
the reports assessed and excluded: those boxes say "not reported". The retrieval boxes
of the PRISMA 2020 template ("reports sought for retrieval", "not retrieved") are left
out because the schema does not record retrieval.

Each box lists at most :data:`MAX_REASONS` reasons (the most frequent; the others are
added up on one line) and each reason in at most a few lines, so that the diagram stays
bounded whatever the table holds.

Reference: Page MJ et al. The PRISMA 2020 statement. BMJ 2021;372:n71 (Fig 1).
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from trialpool.report.figures.style import (
    BASE_FONTSIZE,
    PRISMA_BOX_EDGE,
    PRISMA_HEADER_FILL,
    PRISMA_STAGE_FILL,
    TITLE_FONTSIZE,
    new_figure,
    one_line,
    save,
    style_context,
    text_width_in,
    truncate_to_width,
    wrap_to_width,
)

__all__ = ["PrismaCounts", "lead_phrase", "prisma_counts", "prisma_flow", "save"]

NOT_REPORTED = "not reported"

IDENTIFIED_VIA_NAMES: dict[str, str] = {
    "database_search": "Database searches",
    "registry_search": "Trial registries",
    "review_reference": "Reference lists of reviews",
    "citation_search": "Citation searching",
    "other": "Other sources",
}
RECORD_KIND_NAMES: dict[str, str] = {
    "journal_article": "Journal articles",
    "registry_record": "Registry records",
    "conference_abstract": "Conference abstracts",
    "preprint": "Preprints",
    "other": "Other records",
}
_STAGES = ("identification", "screening", "eligibility", "included")
_NO_REASON = "Reason not stated"


@dataclass(frozen=True)
class PrismaCounts:
    """Counts for the PRISMA 2020 flow diagram (None = not reported)."""

    identified: int | None
    identified_via: dict[str, int] = field(default_factory=dict)
    record_kind: dict[str, int] = field(default_factory=dict)
    database_hits: int | None = None
    register_hits: int | None = None
    removed_before_screening: int | None = None
    removed_reasons: dict[str, int] = field(default_factory=dict)
    screened: int | None = 0
    excluded_screening: int | None = 0
    excluded_screening_reasons: dict[str, int] = field(default_factory=dict)
    assessed: int | None = 0
    excluded_eligibility: int | None = 0
    excluded_reasons: dict[str, int] = field(default_factory=dict)
    awaiting: int = 0
    awaiting_reasons: dict[str, int] = field(default_factory=dict)
    ongoing: int = 0
    ongoing_reasons: dict[str, int] = field(default_factory=dict)
    included_studies: int = 0
    included_reports: int = 0


def _reasons(frame: pd.DataFrame) -> dict[str, int]:
    if frame.empty:
        return {}
    if "reason" in frame.columns:
        texts = [
            str(r).strip() if not pd.isna(r) and str(r).strip() else _NO_REASON
            for r in frame["reason"]
        ]
    else:
        texts = [_NO_REASON] * len(frame)
    counted = Counter(texts)
    return dict(sorted(counted.items(), key=lambda kv: (-kv[1], kv[0])))


def prisma_counts(
    screening: pd.DataFrame,
    *,
    database_hits: int | None = None,
    register_hits: int | None = None,
    duplicates_removed: int | None = None,
) -> PrismaCounts:
    """Count the PRISMA boxes from a ``screening`` frame (see the module docstring).

    ``database_hits`` and ``register_hits`` are the totals returned by the searches,
    ``duplicates_removed`` the duplicates removed before screening; they are reported
    only when given. Records whose last stage is "identification" are counted as removed
    before screening (grouped by reason); when there are none and ``duplicates_removed``
    is not given, the box says "not reported".
    """
    required = {"study_id", "record_kind", "identified_via", "stage", "decision"}
    missing = required - set(screening.columns)
    if missing:
        raise ValueError(f"screening frame lacks column(s): {', '.join(sorted(missing))}")
    df = screening.copy()
    for col in ("stage", "decision", "identified_via", "record_kind", "study_id"):
        df[col] = df[col].astype("string").str.strip()
    bad = sorted(set(df["stage"].dropna()) - set(_STAGES))
    if bad or df["stage"].isna().any():
        raise ValueError(f"unknown or missing stage value(s): {bad or ['<missing>']}")

    stage = df["stage"]
    decision = df["decision"]
    removed = df[stage == "identification"]
    screened = df[stage != "identification"]
    assessed = df[stage.isin(["eligibility", "included"])]
    excl_screen = df[(stage == "screening") & (decision == "exclude")]
    excl_elig = df[(stage == "eligibility") & (decision == "exclude")]
    awaiting = df[(stage != "identification") & (decision == "awaiting")]
    ongoing = df[(stage != "identification") & (decision == "ongoing")]
    included = df[decision == "include"]

    removed_reasons = _reasons(removed)
    if duplicates_removed is not None:
        removed_reasons = {"Duplicate records": duplicates_removed, **removed_reasons}
        removed_n: int | None = len(removed) + duplicates_removed
    else:
        removed_n = len(removed) if len(removed) else None

    def tally(col: str, order: dict[str, str]) -> dict[str, int]:
        counts = df[col].value_counts()
        out = {k: int(counts[k]) for k in order if k in counts.index}
        out.update({str(k): int(v) for k, v in counts.items() if k not in order})
        return out

    searched = bool(
        stage.isin(["identification", "screening"]).any()
        or df["identified_via"].notna().any()
        or df["record_kind"].notna().any()
        or database_hits is not None
        or register_hits is not None
        or duplicates_removed is not None
    )
    assessed_known = searched or bool((stage == "eligibility").any() and len(excl_elig))
    return PrismaCounts(
        identified=len(df) + (duplicates_removed or 0) if searched else None,
        identified_via=tally("identified_via", IDENTIFIED_VIA_NAMES),
        record_kind=tally("record_kind", RECORD_KIND_NAMES),
        database_hits=database_hits,
        register_hits=register_hits,
        removed_before_screening=removed_n,
        removed_reasons=removed_reasons,
        screened=len(screened) if searched else None,
        excluded_screening=len(excl_screen) if searched else None,
        excluded_screening_reasons=_reasons(excl_screen),
        assessed=len(assessed) if assessed_known else None,
        excluded_eligibility=len(excl_elig) if assessed_known else None,
        excluded_reasons=_reasons(excl_elig),
        awaiting=len(awaiting),
        awaiting_reasons=_reasons(awaiting),
        ongoing=len(ongoing),
        ongoing_reasons=_reasons(ongoing),
        included_studies=int(included["study_id"].nunique()),
        included_reports=len(included),
    )


def _n(value: int | None) -> str:
    """ "(n = 3)" or "(n = not reported)", with no-break spaces so it never splits."""
    shown = str(value) if value is not None else NOT_REPORTED
    return f"(n\u00a0=\u00a0{shown})"


# ----------------------------------------------------------------------------- drawing

_BOX_W = 3.0
_SIDE_W = 3.2
_STAGE_W = 0.32
_LINE_H = 0.165
_BOX_PAD = 0.1
_V_GAP = 0.38
_MARGIN = 0.15
#: reasons listed in one box at most (the others on one line)
MAX_REASONS = 15
_MAX_REASON_LINES = 4


def _box_lines(spec: list[tuple[str, bool]], width: float) -> list[tuple[str, bool]]:
    """Wrap (text, bold) lines; indented lines (leading spaces) keep a hanging indent."""
    out: list[tuple[str, bool]] = []
    for text, bold in spec:
        indent = len(text) - len(text.lstrip(" "))
        prefix = "    " if indent else ""
        wrapped = wrap_to_width(
            text.strip(),
            width - 0.2 - (0.2 if indent else 0.0),
            BASE_FONTSIZE,
            "bold" if bold else "normal",
            max_lines=_MAX_REASON_LINES,
        )
        out.extend((prefix + line, bold) for line in wrapped)
    return out


_LEAD_BREAK = re.compile(r": |; |\. | \(| - | – | — ")


def lead_phrase(reason: str, max_chars: int = 60) -> str:
    """The lead phrase of a reason, for a flow-diagram box.

    Reasons in the screening table are often full sentences ("Population: a liver
    cirrhosis trial, not ACLF; ..."). The box shows the text before the first colon,
    semicolon, full stop, opening parenthesis or dash ("Population"), shortened at a
    word boundary to ``max_chars`` with an ellipsis if still longer.
    """
    text = " ".join(str(reason).split())
    head = _LEAD_BREAK.split(text, maxsplit=1)[0].rstrip(" .,;:")
    if len(head) < 3:
        head = text
    if len(head) > max_chars:
        cut = head[: max_chars - 1].rsplit(" ", 1)[0]
        head = cut.rstrip(" ,;:") + "…"
    return head


def _grouped(reasons: dict[str, int], style: str) -> dict[str, int]:
    if style == "full":
        grouped = reasons
    else:
        out: Counter[str] = Counter()
        for reason, n in reasons.items():
            out[lead_phrase(reason)] += n
        grouped = dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))
    if len(grouped) <= MAX_REASONS:
        return grouped
    items = list(grouped.items())
    kept, rest = items[: MAX_REASONS - 1], items[MAX_REASONS - 1 :]
    return {**dict(kept), f"{len(rest)} other reasons": sum(n for _, n in rest)}


def prisma_flow(
    counts: PrismaCounts,
    *,
    title: str | None = None,
    reasons: Literal["short", "full"] = "short",
) -> Figure:
    """Draw the PRISMA 2020 flow diagram (Identification / Screening / Included).

    Exclusion reasons are listed with their counts: by default their lead phrases
    (:func:`lead_phrase`), with reasons sharing a lead phrase added up; ``reasons="full"``
    lists each reason text whole. Records awaiting classification and ongoing studies
    are counted in a box beside "included" (their reasons stay in the data).
    """
    if reasons not in ("short", "full"):
        raise ValueError("reasons must be 'short' or 'full'")
    main_w, side_w = _BOX_W, _SIDE_W
    x_stage = _MARGIN
    x_main = x_stage + _STAGE_W + 0.2
    x_side = x_main + main_w + 0.45
    width = x_side + side_w + _MARGIN

    # --- contents of each box
    ident: list[tuple[str, bool]] = [(f"Records identified {_n(counts.identified)}:", True)]
    for key, n in counts.identified_via.items():
        ident.append((f"  {IDENTIFIED_VIA_NAMES.get(key, key)} {_n(n)}", False))
    if counts.record_kind:
        kinds = "; ".join(
            f"{RECORD_KIND_NAMES.get(k, k).lower()} {n}" for k, n in counts.record_kind.items()
        )
        ident.append((f"Record types: {kinds}", False))
    ident.append((f"Database search hits {_n(counts.database_hits)}", False))
    ident.append((f"Register search hits {_n(counts.register_hits)}", False))

    removed: list[tuple[str, bool]] = [
        (f"Records removed before screening {_n(counts.removed_before_screening)}", True)
    ]
    for reason, n in _grouped(counts.removed_reasons, reasons).items():
        removed.append((f"  {reason} {_n(n)}", False))

    screened = [(f"Records screened {_n(counts.screened)}", True)]
    excl_screen: list[tuple[str, bool]] = [
        (f"Records excluded {_n(counts.excluded_screening)}", True)
    ]
    for reason, n in _grouped(counts.excluded_screening_reasons, reasons).items():
        excl_screen.append((f"  {reason} {_n(n)}", False))

    assessed = [(f"Reports assessed for eligibility {_n(counts.assessed)}", True)]
    excl_elig: list[tuple[str, bool]] = [
        (f"Reports excluded {_n(counts.excluded_eligibility)}", True)
    ]
    for reason, n in _grouped(counts.excluded_reasons, reasons).items():
        excl_elig.append((f"  {reason} {_n(n)}", False))

    included = [
        (f"Studies included in review {_n(counts.included_studies)}", True),
        (f"Reports of included studies {_n(counts.included_reports)}", False),
    ]
    pending: list[tuple[str, bool]] = []
    if counts.awaiting or counts.ongoing:
        pending.append((f"Awaiting classification {_n(counts.awaiting)}", True))
        pending.append((f"Ongoing studies {_n(counts.ongoing)}", True))

    rows_spec = [
        ("Identification", ident, removed),
        ("Screening", screened, excl_screen),
        ("Screening", assessed, excl_elig),
        ("Included", included, pending),
    ]
    laid: list[tuple[str, list[tuple[str, bool]], list[tuple[str, bool]], float]] = []
    for stage, main, side in rows_spec:
        m = _box_lines(main, main_w)
        s = _box_lines(side, side_w) if side else []
        h = max(len(m), len(s)) * _LINE_H + 2 * _BOX_PAD
        laid.append((stage, m, s, h))
    # each stage bar must be tall enough for its rotated name
    for stage in dict.fromkeys(st for st, *_ in laid):
        idx = [i for i, row in enumerate(laid) if row[0] == stage]
        span = sum(laid[i][3] for i in idx) + _V_GAP * (len(idx) - 1)
        need = text_width_in(stage, BASE_FONTSIZE, "bold") + 0.3
        if span < need:
            st, m, s, h = laid[idx[-1]]
            laid[idx[-1]] = (st, m, s, h + need - span)

    title_h = 0.4 if title else 0.05
    header_h = 0.34
    body_h = sum(h for *_, h in laid) + _V_GAP * (len(laid) - 1)
    height = title_h + header_h + 0.2 + body_h + _MARGIN

    with style_context():
        fig = new_figure(width, height)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_xlim(0, width)
        ax.set_ylim(0, height)
        ax.set_axis_off()
        if title:
            ax.text(
                _MARGIN,
                height - 0.12,
                truncate_to_width(one_line(title), width - 2 * _MARGIN, TITLE_FONTSIZE, "bold"),
                ha="left",
                va="top",
                fontsize=TITLE_FONTSIZE,
                fontweight="bold",
                parse_math=False,
            )
        y_top = height - title_h
        ax.add_patch(
            FancyBboxPatch(
                (x_main, y_top - header_h),
                x_side + side_w - x_main,
                header_h,
                boxstyle="round,pad=0,rounding_size=0.06",
                facecolor=PRISMA_HEADER_FILL,
                edgecolor=PRISMA_BOX_EDGE,
                lw=0.8,
            )
        )
        ax.text(
            (x_main + x_side + side_w) / 2,
            y_top - header_h / 2,
            "Identification of studies via databases, registers and other methods",
            ha="center",
            va="center",
            fontweight="bold",
            fontsize=BASE_FONTSIZE,
        )

        y = y_top - header_h - 0.2
        main_boxes: list[tuple[float, float]] = []  # (top, bottom) of each main box
        stage_spans: dict[str, list[float]] = {}
        for stage, m, s, row_h in laid:
            centre = y - row_h / 2
            m_h = len(m) * _LINE_H + 2 * _BOX_PAD
            _draw_box(ax, x_main, centre + m_h / 2, main_w, m_h, m)
            main_boxes.append((centre + m_h / 2, centre - m_h / 2))
            if s:
                s_h = len(s) * _LINE_H + 2 * _BOX_PAD
                _draw_box(ax, x_side, centre + s_h / 2, side_w, s_h, s)
                _arrow(ax, (x_main + main_w, centre), (x_side, centre))
            span = stage_spans.setdefault(stage, [y, y - row_h])
            span[0], span[1] = max(span[0], y), min(span[1], y - row_h)
            y -= row_h + _V_GAP
        for (_, bottom), (top, _) in itertools.pairwise(main_boxes):
            _arrow(ax, (x_main + main_w / 2, bottom), (x_main + main_w / 2, top))
        for stage, (top, bottom) in stage_spans.items():
            ax.add_patch(
                FancyBboxPatch(
                    (x_stage, bottom),
                    _STAGE_W,
                    top - bottom,
                    boxstyle="round,pad=0,rounding_size=0.08",
                    facecolor=PRISMA_STAGE_FILL,
                    edgecolor="none",
                    gid=f"stage-{stage.lower()}",
                )
            )
            ax.text(
                x_stage + _STAGE_W / 2,
                (top + bottom) / 2,
                stage,
                rotation=90,
                ha="center",
                va="center",
                fontweight="bold",
                fontsize=BASE_FONTSIZE,
            )
    return fig


def _draw_box(
    ax: Axes, x: float, top: float, w: float, h: float, lines: list[tuple[str, bool]]
) -> None:
    ax.add_patch(
        FancyBboxPatch(
            (x, top - h),
            w,
            h,
            boxstyle="square,pad=0",
            facecolor="white",
            edgecolor=PRISMA_BOX_EDGE,
            lw=0.9,
        )
    )
    for i, (text, bold) in enumerate(lines):
        ax.text(
            x + 0.1,
            top - _BOX_PAD - (i + 0.5) * _LINE_H,
            text,
            ha="left",
            va="center",
            fontsize=BASE_FONTSIZE,
            fontweight="bold" if bold else "normal",
            parse_math=False,
        )


def _arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float]) -> None:
    ax.add_patch(
        FancyArrowPatch(
            start,
            end,
            arrowstyle="-|>",
            mutation_scale=10,
            color=PRISMA_BOX_EDGE,
            lw=0.9,
            shrinkA=0,
            shrinkB=0,
        )
    )
