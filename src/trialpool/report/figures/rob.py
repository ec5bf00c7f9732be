"""Risk-of-bias figures: traffic-light summary and stacked-bar graph (as robvis draws them).

Input is the long-form ``bias_judgements`` table (columns ``study_id``, ``tool``,
``domain``, ``result_scope``, ``judgement``, ``support``): one row per study, tool,
domain and result scope. Works for Cochrane RoB 1 (``rob1``), RoB 2 (``rob2``),
ROBINS-I (``robins_i``) and ``other`` (a tool trialpool does not know, or judgements that
mix several tools' levels: drawn with the review's own domains and every level).

Colours are robvis's "cochrane" palette and symbols follow robvis and RevMan:

========================  =========  ======  =========================================
judgement                 colour     symbol  tools
========================  =========  ======  =========================================
low                       #02C100    +       all
unclear                   #E2DF07    ?       rob1
some_concerns             #E2DF07    −       rob2
moderate                  #E2DF07    −       robins_i
high                      #BF0000    −/×     rob1 (−, as RevMan) / rob2 (×)
serious                   #BF0000    ×       robins_i
critical                  #820000    !       robins_i
no_information            #4EA1F7    ?       rob2, robins_i
not_applicable            #FFFFFF    NA      all (the source judged the domain not applicable)
(no judgement recorded)   #CCCCCC            blank grey cell
========================  =========  ======  =========================================

A judgement that applies to one outcome only (``result_scope`` other than "all") gets
its own column or bar, labelled with the scope, e.g. "Blinding of outcome assessment
(detection bias): death".

Both figures are bounded: labels and domain names are cut to a width, and the
traffic-light plot draws at most :data:`MAX_ROB_STUDIES` studies and both at most
:data:`MAX_ROB_COLUMNS` domains (a line under the plot says how many are left out).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
from matplotlib import transforms
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from trialpool.report.figures.style import (
    BASE_FONTSIZE,
    ROB_CONCERNS,
    ROB_CRITICAL,
    ROB_HIGH,
    ROB_LOW,
    ROB_NO_INFORMATION,
    ROB_NOT_APPLICABLE,
    ROB_NOT_ASSESSED,
    SMALL_FONTSIZE,
    TITLE_FONTSIZE,
    fig_inches,
    new_figure,
    one_line,
    save,
    style_context,
    text_width_in,
    truncate_to_width,
)

#: the most studies (rows) a traffic-light plot draws: the first ones
MAX_ROB_STUDIES = 150
#: the most domains (columns, bars) a risk-of-bias figure draws: the first ones and "overall"
MAX_ROB_COLUMNS = 30
_MAX_NAME_W = 6.0  # a domain's name beside its bar
_MAX_KEY_W = 9.0  # a line of the key under the grid
_MAX_TITLE_W = 9.0


def _fit(text: str, width: float, size: float = BASE_FONTSIZE, weight: str = "normal") -> str:
    """A label from the data on one line, cut to ``width`` inches."""
    return truncate_to_width(one_line(text), width, size, weight)


def _kept_columns(columns: list[RobColumn]) -> list[int]:
    """Indexes of the columns drawn: all, or the first ones and the last (overall)."""
    if len(columns) <= MAX_ROB_COLUMNS:
        return list(range(len(columns)))
    return [*range(MAX_ROB_COLUMNS - 1), len(columns) - 1]


def _left_out(kept: int, total: int, what: str) -> str:
    return f"Showing the first {kept} of {total} {what}; every judgement is in the data."


__all__ = [
    "DOMAIN_NAMES",
    "JUDGEMENT_COLOURS",
    "TOOL_JUDGEMENTS",
    "judgement_symbol",
    "rob_columns",
    "rob_graph",
    "rob_summary",
    "save",
]

TOOLS = ("rob1", "rob2", "robins_i", "other")
TOOL_NAMES: dict[str, str] = {
    "rob1": "Cochrane risk-of-bias tool (RoB 1)",
    "rob2": "Cochrane RoB 2",
    "robins_i": "ROBINS-I",
    "other": "Risk-of-bias judgements of another tool",
}

#: Readable domain names per tool, in the tool's order.
DOMAIN_NAMES: dict[str, dict[str, str]] = {
    "rob1": {
        "random_sequence_generation": "Random sequence generation (selection bias)",
        "allocation_concealment": "Allocation concealment (selection bias)",
        "blinding_participants_personnel": (
            "Blinding of participants and personnel (performance bias)"
        ),
        "blinding_outcome_assessment": "Blinding of outcome assessment (detection bias)",
        "incomplete_outcome_data": "Incomplete outcome data (attrition bias)",
        "selective_reporting": "Selective reporting (reporting bias)",
        "other_bias": "Other bias",
        "overall": "Overall risk of bias",
    },
    "rob2": {
        "randomisation_process": "Bias arising from the randomisation process",
        "deviations_from_intended_interventions": (
            "Bias due to deviations from intended interventions"
        ),
        "missing_outcome_data": "Bias due to missing outcome data",
        "measurement_of_outcome": "Bias in measurement of the outcome",
        "selection_of_reported_result": "Bias in selection of the reported result",
        "overall": "Overall risk of bias",
    },
    "robins_i": {
        "confounding": "Bias due to confounding",
        "selection_of_participants": "Bias in selection of participants into the study",
        "classification_of_interventions": "Bias in classification of interventions",
        "deviations_from_intended_interventions": (
            "Bias due to deviations from intended interventions"
        ),
        "missing_data": "Bias due to missing data",
        "measurement_of_outcomes": "Bias in measurement of outcomes",
        "selection_of_reported_result": "Bias in selection of the reported result",
        "overall": "Overall risk of bias",
    },
    "other": {},
}

#: Judgements of each tool, from best to worst (legend and bar order); "not applicable"
#: (any tool, core 1.1) last.
TOOL_JUDGEMENTS: dict[str, list[str]] = {
    "rob1": ["low", "unclear", "high", "not_applicable"],
    "rob2": ["low", "some_concerns", "high", "no_information", "not_applicable"],
    "robins_i": ["low", "moderate", "serious", "critical", "no_information", "not_applicable"],
    "other": [
        "low", "unclear", "some_concerns", "moderate", "high", "serious", "critical",
        "no_information", "not_applicable",
    ],
}  # fmt: skip

JUDGEMENT_COLOURS: dict[str, str] = {
    "low": ROB_LOW,
    "unclear": ROB_CONCERNS,
    "some_concerns": ROB_CONCERNS,
    "moderate": ROB_CONCERNS,
    "high": ROB_HIGH,
    "serious": ROB_HIGH,
    "critical": ROB_CRITICAL,
    "no_information": ROB_NO_INFORMATION,
    "not_applicable": ROB_NOT_APPLICABLE,
}

JUDGEMENT_LABELS: dict[str, str] = {
    "low": "Low",
    "unclear": "Unclear",
    "some_concerns": "Some concerns",
    "moderate": "Moderate",
    "high": "High",
    "serious": "Serious",
    "critical": "Critical",
    "no_information": "No information",
    "not_applicable": "Not applicable",
}

_SYMBOLS: dict[str, str] = {
    "low": "+",
    "unclear": "?",
    "some_concerns": "−",
    "moderate": "−",
    "high": "×",
    "serious": "×",
    "critical": "!",
    "no_information": "?",
    "not_applicable": "NA",
}


def judgement_symbol(judgement: str, tool: str) -> str:
    """The symbol drawn in a traffic light: RoB 1 marks "high" with "−" as RevMan does."""
    if tool == "rob1" and judgement == "high":
        return "−"
    return _SYMBOLS[judgement]


def _judgement_label(judgement: str, tool: str) -> str:
    label = JUDGEMENT_LABELS[judgement]
    if tool in ("rob1", "rob2") and judgement in ("low", "high", "unclear"):
        return f"{label} risk of bias" if judgement != "unclear" else "Unclear risk of bias"
    return label


@dataclass(frozen=True)
class RobColumn:
    """One column of the traffic-light plot (a domain, possibly for one result scope)."""

    domain: str
    scope: str
    name: str  # readable name, e.g. "Allocation concealment (selection bias)"
    short: str  # header, e.g. "D2"


def _clean(df: pd.DataFrame, tool: str) -> pd.DataFrame:
    if tool not in TOOLS:
        raise ValueError(f"unknown tool {tool!r}; use one of {', '.join(TOOLS)}")
    missing = {"study_id", "tool", "domain", "result_scope", "judgement"} - set(df.columns)
    if missing:
        raise ValueError(f"judgements frame lacks column(s): {', '.join(sorted(missing))}")
    keep = ["study_id", "domain", "result_scope", "judgement"]
    if "domain_label" in df.columns:
        keep.append("domain_label")
    sub = df.loc[df["tool"].astype("string") == tool, keep].copy()
    for col in sub.columns:
        sub[col] = sub[col].astype("string").str.strip()
    sub["result_scope"] = sub["result_scope"].fillna("all")
    unknown = sorted(set(sub["judgement"].dropna()) - set(JUDGEMENT_COLOURS))
    if unknown:
        raise ValueError(f"unknown judgement(s) for {tool}: {', '.join(unknown)}")
    sub = sub.dropna(subset=["study_id", "domain", "judgement"])
    return sub.reset_index(drop=True)


#: Readable names of result scopes that are outcome codes of the package.
SCOPE_NAMES: dict[str, str] = {
    "meld": "MELD",
    "alb": "albumin",
    "tbil": "total bilirubin",
    "alt": "ALT",
    "ast": "AST",
    "inr": "INR",
    "pt": "prothrombin time",
    "pta": "prothrombin activity",
    "che": "cholinesterase",
    "crp": "CRP",
    "death": "death",
    "adverse_event": "adverse events",
    "serious_adverse_event": "serious adverse events",
    "severe_infection": "severe infection",
    "fever": "fever",
    "hcc": "HCC",
}


def _scope_name(scope: str) -> str:
    return SCOPE_NAMES.get(scope, scope.replace("_", " "))


def _domain_labels(sub: pd.DataFrame) -> dict[str, str]:
    """Each domain's name as the source prints it (``domain_label``), where given."""
    if "domain_label" not in sub.columns:
        return {}
    labels: dict[str, str] = {}
    for domain, label in zip(sub["domain"], sub["domain_label"], strict=True):
        if domain not in labels and isinstance(label, str) and label.strip():
            labels[str(domain)] = label.strip()
    return labels


def _columns_of(sub: pd.DataFrame, tool: str) -> list[RobColumn]:
    """The columns: the tool's standard domains in the tool's order; when the source
    uses domains of its own (a review's own codes, named by ``domain_label``), every
    domain in the order of the judgements' table. "overall" is last either way."""
    order = list(DOMAIN_NAMES[tool])
    pairs = list(dict.fromkeys(zip(sub["domain"], sub["result_scope"], strict=True)))
    own = any(domain not in order for domain, _ in pairs)
    domains = list(dict.fromkeys(domain for domain, _ in pairs))

    def key(pair: tuple[str, str]) -> tuple[int, int, int, str]:
        domain, scope = pair
        if own:  # the source's order
            d_rank = len(domains) + 1 if domain == "overall" else domains.index(domain)
            return (d_rank, 0 if scope == "all" else 1, pairs.index(pair), "")
        d_rank = order.index(domain) if domain in order else len(order) - 1
        if domain == "overall":
            d_rank = len(order) + 1
        return (
            d_rank,
            pairs.index(pair) if domain not in order else 0,
            0 if scope == "all" else 1,
            scope,
        )

    labels = _domain_labels(sub)
    columns: list[RobColumn] = []
    counter = 0
    for domain, scope in sorted(pairs, key=key):
        base = labels.get(domain) or DOMAIN_NAMES[tool].get(
            domain, domain.replace("_", " ").capitalize()
        )
        name = base if scope == "all" else f"{base}: {_scope_name(scope)}"
        if domain == "overall":
            short = "Overall" if scope == "all" else f"Overall ({_scope_name(scope)})"
        else:
            counter += 1
            short = f"D{counter}"
        columns.append(RobColumn(domain, scope, name, short))
    return columns


def _for_scope(sub: pd.DataFrame, result_scope: str) -> pd.DataFrame:
    """One judgement per study and domain for one result: its own, else the "all" one."""
    specific = sub[sub["result_scope"] == result_scope]
    general = sub[sub["result_scope"] == "all"]
    have = set(zip(specific["study_id"], specific["domain"], strict=True))
    keep = [
        (sid, dom) not in have
        for sid, dom in zip(general["study_id"], general["domain"], strict=True)
    ]
    out = pd.concat([specific, general[keep]], ignore_index=True)
    out["result_scope"] = "all"
    return out


@dataclass
class _Grid:
    sub: pd.DataFrame
    columns: list[RobColumn]
    studies: list[str]
    cells: dict[tuple[str, int], str]  # (study_id, column index) -> judgement
    inherited: set[tuple[str, int]]  # cells filled from the study's "all" judgement


def _grid(
    df: pd.DataFrame,
    tool: str,
    labels: Mapping[str, str] | None = None,
    result_scope: str | None = None,
) -> _Grid:
    sub = _clean(df, tool)
    dup = sub.duplicated(["study_id", "domain", "result_scope"], keep=False)
    if dup.any():
        first = sub.loc[dup].iloc[0]
        raise ValueError(
            f"more than one {tool} judgement for study {first['study_id']!r}, domain "
            f"{first['domain']!r}, scope {first['result_scope']!r}"
        )
    if result_scope is not None and result_scope != "all":
        sub = _for_scope(sub, result_scope)
    if sub.empty:
        raise ValueError(f"no {tool} judgements to plot")
    columns = _columns_of(sub, tool)
    studies = _study_order(sub, labels)
    given = {(r.study_id, r.domain, r.result_scope): r.judgement for r in sub.itertuples()}
    cells: dict[tuple[str, int], str] = {}
    inherited: set[tuple[str, int]] = set()
    for j, col in enumerate(columns):
        for study in studies:
            if (study, col.domain, col.scope) in given:
                cells[(study, j)] = str(given[(study, col.domain, col.scope)])
            elif col.scope != "all" and (study, col.domain, "all") in given:
                cells[(study, j)] = str(given[(study, col.domain, "all")])
                inherited.add((study, j))
    return _Grid(sub, columns, studies, cells, inherited)


def rob_columns(
    df: pd.DataFrame, tool: str = "rob1", result_scope: str | None = None
) -> list[RobColumn]:
    """The (domain, result scope) columns drawn for ``tool``, in the tool's order.

    Domains outside the tool's list follow, in order of appearance; "overall" is last.
    With ``result_scope`` (an outcome, e.g. "death"), there is one column per domain.
    """
    return _grid(df, tool, result_scope=result_scope).columns


_INHERIT_NOTE = (
    "Outcome-specific columns show a study's judgement for all outcomes where it has no "
    "outcome-specific judgement."
)


def _study_order(sub: pd.DataFrame, labels: Mapping[str, str] | None) -> list[str]:
    present = list(dict.fromkeys(sub["study_id"]))
    if labels:
        ordered = [s for s in labels if s in present]
        return ordered + sorted(s for s in present if s not in labels)
    return sorted(present)


def rob_summary(
    df: pd.DataFrame,
    labels: Mapping[str, str] | None = None,
    tool: str = "rob1",
    *,
    title: str | None = None,
    result_scope: str | None = None,
) -> Figure:
    """Traffic-light plot: one row per study, one coloured circle per domain.

    ``labels`` maps ``study_id`` to the label shown (and sets the row order); studies
    not in it follow, sorted by id. Domains are numbered D1, D2, ... with their names in
    a key under the grid; "overall" (when judged) is the last column, shaded.
    Cells with no judgement are grey and blank.

    Outcome-specific judgements (``result_scope`` other than "all") get their own
    columns, where a study without one shows its all-outcomes judgement for the domain
    (a note under the key says so). With ``result_scope="death"`` (say), the plot is
    for that outcome: one column per domain, the outcome's own judgement where there is
    one, else the all-outcomes one.
    """
    grid = _grid(df, tool, labels, result_scope)
    keep = _kept_columns(grid.columns)
    columns = [grid.columns[j] for j in keep]
    studies = grid.studies[:MAX_ROB_STUDIES]
    cells = {
        (study, k): grid.cells[(study, j)]
        for k, j in enumerate(keep)
        for study in studies
        if (study, j) in grid.cells
    }
    names = {s: (labels or {}).get(s, s) for s in studies}
    names = {s: _fit(str(n), 2.6) for s, n in names.items()}
    shorts = [_fit(c.short, 1.2, SMALL_FONTSIZE, "bold") for c in columns]
    present = set(cells.values())
    used = [j for j in TOOL_JUDGEMENTS[tool] if j in present]
    used += sorted(present - set(used))
    any_missing = len(cells) < len(studies) * len(columns)

    cell = 0.36  # inches per cell
    label_w = max(text_width_in(n) for n in names.values()) + 0.25
    label_w = max(label_w, 0.9)
    header_h = 0.55
    legend_items = [(j, _judgement_label(j, tool)) for j in used]
    if any_missing:
        legend_items.append(("", "No judgement recorded"))
    legend_w = max(text_width_in(t, SMALL_FONTSIZE) for _, t in legend_items) + 0.55
    legend_w = max(legend_w, text_width_in("Judgement", SMALL_FONTSIZE, "bold") + 0.3)
    grid_w = cell * len(columns)
    key_lines = [
        _fit(f"{c.short}: {c.name}", _MAX_KEY_W, SMALL_FONTSIZE)
        for c in columns
        if c.domain != "overall"
    ]
    if grid.inherited:
        key_lines.append(_INHERIT_NOTE)
    if result_scope is not None and result_scope != "all":
        key_lines.append(_fit(f"Judgements for {_scope_name(result_scope)}.", _MAX_KEY_W))
    if len(studies) < len(grid.studies):
        key_lines.append(_left_out(len(studies), len(grid.studies), "studies"))
    if len(columns) < len(grid.columns):
        key_lines.append(_left_out(len(columns), len(grid.columns), "domains"))
    key_h = 0.17 * len(key_lines) + 0.15
    title = _fit(title, _MAX_TITLE_W, TITLE_FONTSIZE, "bold") if title else title
    title_h = 0.35 if title else 0.1
    grid_h = cell * len(studies)
    key_w = max((text_width_in(k, SMALL_FONTSIZE) for k in key_lines), default=0.0)
    width = max(0.15 + label_w + grid_w + 0.25 + legend_w + 0.15, key_w + 0.4)
    legend_h = 0.3 + 0.22 * len(legend_items)
    height = title_h + header_h + max(grid_h, legend_h) + key_h + 0.1

    with style_context():
        fig = new_figure(width, height)
        x0 = 0.15 + label_w
        y_grid_top = height - title_h - header_h
        ax = fig.add_axes(
            (x0 / width, (y_grid_top - grid_h) / height, grid_w / width, grid_h / height)
        )
        ax.set_xlim(-0.5, len(columns) - 0.5)
        ax.set_ylim(len(studies) - 0.5, -0.5)
        ax.set_axis_off()
        # shaded overall column and cell grid
        for j, col in enumerate(columns):
            if col.domain == "overall":
                ax.add_patch(
                    Rectangle(
                        (j - 0.5, -0.5),
                        1,
                        len(studies),
                        facecolor="#E6E6E6",
                        edgecolor="none",
                        zorder=0,
                    )
                )
        for j in range(len(columns) + 1):
            ax.plot(
                [j - 0.5, j - 0.5], [-0.5, len(studies) - 0.5], color="#B0B0B0", lw=0.6, zorder=1
            )
        for i in range(len(studies) + 1):
            ax.plot(
                [-0.5, len(columns) - 0.5], [i - 0.5, i - 0.5], color="#B0B0B0", lw=0.6, zorder=1
            )
        marker_s = (cell * 72 * 0.78) ** 2
        for judgement in [*used, None]:
            xs: list[int] = []
            ys: list[int] = []
            for i, study in enumerate(studies):
                for j in range(len(columns)):
                    if cells.get((study, j)) == judgement:
                        xs.append(j)
                        ys.append(i)
            if not xs:
                continue
            colour = JUDGEMENT_COLOURS[judgement] if judgement else ROB_NOT_ASSESSED
            ax.scatter(
                xs,
                ys,
                s=marker_s,
                color=colour,
                edgecolors="#333333",
                linewidths=0.6 if judgement else 0.0,
                zorder=3,
                label=judgement or "not_assessed",
                gid=f"rob-{judgement or 'none'}",
            )
            if judgement:
                sym = judgement_symbol(judgement, tool)
                for x, y in zip(xs, ys, strict=True):
                    ax.text(
                        x,
                        y,
                        sym,
                        ha="center",
                        va="center_baseline",
                        fontsize=11,
                        fontweight="bold",
                        color="black",
                        zorder=4,
                        parse_math=False,
                    )
        # study labels and column headers
        inches_y = transforms.blended_transform_factory(fig_inches(fig), ax.transData)
        for i, study in enumerate(studies):
            ax.text(
                x0 - 0.12,
                i,
                names[study],
                transform=inches_y,
                ha="right",
                va="center",
                fontsize=BASE_FONTSIZE,
                clip_on=False,
                parse_math=False,
            )
        x_top = transforms.blended_transform_factory(ax.transData, fig_inches(fig))
        for j, short in enumerate(shorts):
            ax.text(
                j,
                y_grid_top + 0.06,
                short,
                transform=x_top,
                ha="center",
                va="bottom",
                fontsize=SMALL_FONTSIZE if len(short) > 3 else BASE_FONTSIZE,
                fontweight="bold",
                clip_on=False,
                parse_math=False,
                rotation=0,
            )
        inches = fig_inches(fig)
        fig.text(
            x0 + grid_w / 2,
            y_grid_top + 0.32,
            "Risk of bias domains",
            transform=inches,
            ha="center",
            va="bottom",
            fontsize=BASE_FONTSIZE,
            fontweight="bold",
        )
        fig.text(
            x0 - 0.12,
            y_grid_top + 0.06,
            "Study",
            transform=inches,
            ha="right",
            va="bottom",
            fontsize=BASE_FONTSIZE,
            fontweight="bold",
        )
        if title:
            fig.text(
                0.15,
                height - 0.1,
                title,
                transform=inches,
                ha="left",
                va="top",
                fontsize=TITLE_FONTSIZE,
                fontweight="bold",
                parse_math=False,
            )
        # legend to the right of the grid
        lx = x0 + grid_w + 0.3
        ly = y_grid_top
        fig.text(
            lx,
            ly,
            "Judgement",
            transform=inches,
            ha="left",
            va="top",
            fontsize=SMALL_FONTSIZE,
            fontweight="bold",
        )
        for k, (judgement, text) in enumerate(legend_items):
            yy = ly - 0.32 - 0.22 * k
            colour = JUDGEMENT_COLOURS[judgement] if judgement else ROB_NOT_ASSESSED
            fig.add_artist(
                Line2D(
                    [lx + 0.08],
                    [yy],
                    transform=inches,
                    marker="o",
                    ms=10,
                    color=colour,
                    markeredgecolor="#333333",
                    markeredgewidth=0.5 if judgement else 0.0,
                    ls="none",
                )
            )
            if judgement:
                fig.text(
                    lx + 0.08,
                    yy,
                    judgement_symbol(judgement, tool),
                    transform=inches,
                    ha="center",
                    va="center",
                    fontsize=8,
                    fontweight="bold",
                )
            fig.text(
                lx + 0.25,
                yy,
                text,
                transform=inches,
                ha="left",
                va="center",
                fontsize=SMALL_FONTSIZE,
            )
        # domain key under the grid
        ky = min(y_grid_top - grid_h, ly - legend_h + 0.1) - 0.15
        for k, line in enumerate(key_lines):
            fig.text(
                0.15,
                ky - 0.17 * k,
                line,
                transform=inches,
                ha="left",
                va="top",
                fontsize=SMALL_FONTSIZE,
                parse_math=False,
            )
    return fig


def rob_graph(
    df: pd.DataFrame,
    tool: str = "rob1",
    *,
    title: str | None = None,
    judgements: Sequence[str] | None = None,
    result_scope: str | None = None,
) -> Figure:
    """Risk-of-bias graph: per domain, a bar split into the % of studies per judgement.

    Percentages are of the studies judged in that domain (and scope), whose number is
    written at the end of each bar ("n = 5"). Bars are in the tool's domain order from
    top to bottom, "overall" last in bold; the judgement order (left to right) is the
    tool's, best first (``judgements`` overrides it). Outcome-specific bars and
    ``result_scope`` work as in :func:`rob_summary`.
    """
    grid = _grid(df, tool, None, result_scope)
    keep = _kept_columns(grid.columns)
    columns = [grid.columns[j] for j in keep]
    order = list(judgements) if judgements else TOOL_JUDGEMENTS[tool]
    present = set(grid.cells.values())
    order = [j for j in order if j in present] + sorted(present - set(order))
    shares: list[dict[str, float]] = []
    counts: list[int] = []
    for j in keep:
        values = [grid.cells[(s, j)] for s in grid.studies if (s, j) in grid.cells]
        n = len(values)
        counts.append(n)
        shares.append({x: 100.0 * values.count(x) / n if n else 0.0 for x in order})

    weights = ["bold" if c.domain == "overall" else "normal" for c in columns]
    names = [
        _fit(c.name, _MAX_NAME_W, BASE_FONTSIZE, w) for c, w in zip(columns, weights, strict=True)
    ]
    label_w = (
        max(text_width_in(n, BASE_FONTSIZE, w) for n, w in zip(names, weights, strict=True)) + 0.2
    )
    bar_w = 4.2
    bar_h = 0.3
    title_h = 0.35 if title else 0.1
    legend_h = 0.3
    n_w = max(text_width_in(f"n = {n}", SMALL_FONTSIZE) for n in counts) + 0.15
    notes = []
    if grid.inherited:
        notes.append(_INHERIT_NOTE.replace("columns show", "bars count"))
    if result_scope is not None and result_scope != "all":
        notes.append(_fit(f"Judgements for {_scope_name(result_scope)}.", _MAX_KEY_W))
    if len(columns) < len(grid.columns):
        notes.append(_left_out(len(columns), len(grid.columns), "domains"))
    title = _fit(title, _MAX_TITLE_W, TITLE_FONTSIZE, "bold") if title else title
    notes_h = 0.17 * len(notes)
    height = title_h + bar_h * len(columns) + 0.32 + legend_h + notes_h
    width = 0.1 + label_w + bar_w + n_w + 0.15
    width = max(width, max((text_width_in(n, SMALL_FONTSIZE) for n in notes), default=0) + 0.3)

    with style_context():
        fig = new_figure(width, height)
        ax = fig.add_axes(
            (
                (0.1 + label_w) / width,
                (0.32 + legend_h + notes_h) / height,
                bar_w / width,
                bar_h * len(columns) / height,
            )
        )
        y = list(range(len(columns)))
        left = [0.0] * len(columns)
        for judgement in order:
            vals = [s[judgement] for s in shares]
            ax.barh(
                y,
                vals,
                left=left,
                height=0.7,
                color=JUDGEMENT_COLOURS[judgement],
                edgecolor="black",
                linewidth=0.5,
                label=_judgement_label(judgement, tool),
                gid=f"rob-{judgement}",
            )
            left = [a + b for a, b in zip(left, vals, strict=True)]
        for yy, n in zip(y, counts, strict=True):
            ax.text(
                101.5,
                yy,
                f"n = {n}",
                ha="left",
                va="center",
                fontsize=SMALL_FONTSIZE,
                clip_on=False,
                gid="rob-n",
            )
        ax.set_ylim(len(columns) - 0.5, -0.5)
        ax.set_xlim(0, 100)
        ax.set_yticks(y, names, parse_math=False)
        for tick, col in zip(ax.get_yticklabels(), columns, strict=True):
            if col.domain == "overall":
                tick.set_fontweight("bold")
        ax.set_xticks([0, 25, 50, 75, 100], ["0%", "25%", "50%", "75%", "100%"])
        ax.tick_params(axis="y", length=0, pad=6)
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
        handles = [
            Patch(
                facecolor=JUDGEMENT_COLOURS[j],
                edgecolor="black",
                linewidth=0.5,
                label=_judgement_label(j, tool),
            )
            for j in order
        ]
        fig.legend(
            handles=handles,
            loc="lower center",
            ncol=len(handles),
            frameon=True,
            fontsize=SMALL_FONTSIZE,
            handlelength=1.2,
            columnspacing=1.2,
            edgecolor="black",
            fancybox=False,
            bbox_to_anchor=((0.1 + label_w + bar_w / 2) / width, (0.02 + notes_h) / height),
        )
        for k, note in enumerate(notes):
            fig.text(
                0.1,
                notes_h - 0.03 - 0.17 * k,
                note,
                transform=fig_inches(fig),
                ha="left",
                va="top",
                fontsize=SMALL_FONTSIZE,
                parse_math=False,
            )
        if title:
            fig.text(
                0.1,
                height - 0.1,
                title,
                transform=fig_inches(fig),
                ha="left",
                va="top",
                fontsize=TITLE_FONTSIZE,
                fontweight="bold",
                parse_math=False,
            )
    return fig
