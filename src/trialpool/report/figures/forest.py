"""Forest plots laid out as reviewers know them from RevMan and R's ``meta``: the public API.

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

:func:`forest_plot` (metafor results) is here; its parts sit beside it, and every name
is importable from here: :mod:`.forest_text` (the heterogeneity line and the tests),
:mod:`.forest_layout` (rows, columns, widths, span wrapping, :class:`ForestLayout`),
:mod:`.forest_metafor` (the rows of metafor results, :func:`forest_rows`) and
:mod:`.forest_draw` (:func:`render_forest`, which also draws the rows
:mod:`.forest_review` builds for imported RevMan analyses).
"""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure

from trialpool.report.figures.forest_draw import render_forest
from trialpool.report.figures.forest_layout import DERIVED_MARK as DERIVED_MARK
from trialpool.report.figures.forest_layout import MAX_STUDY_ROWS as MAX_STUDY_ROWS
from trialpool.report.figures.forest_layout import ZERO_CELL_MARK as ZERO_CELL_MARK
from trialpool.report.figures.forest_layout import ForestLayout
from trialpool.report.figures.forest_layout import RowKind as RowKind
from trialpool.report.figures.forest_layout import _effect_text as _effect_text
from trialpool.report.figures.forest_layout import _fmt_arm as _fmt_arm
from trialpool.report.figures.forest_layout import _Row as _Row
from trialpool.report.figures.forest_layout import _to_analysis as _to_analysis
from trialpool.report.figures.forest_layout import studies_not_drawn as studies_not_drawn
from trialpool.report.figures.forest_layout import total_rows as total_rows
from trialpool.report.figures.forest_metafor import (
    Block,
    _arm_kind,
    _build_rows,
    _normalise_blocks,
    forest_rows,
    result_level,
    subgroup_blocks,
)
from trialpool.report.figures.forest_text import (
    MEASURE_NAMES,
    _model_short,
    heterogeneity_text,
    model_description,
    overall_effect_text,
    subgroup_test_text,
)
from trialpool.report.figures.forest_text import heterogeneity_line as heterogeneity_line
from trialpool.report.figures.forest_text import overall_effect_line as overall_effect_line
from trialpool.report.figures.forest_text import subgroup_test_line as subgroup_test_line
from trialpool.report.figures.style import save
from trialpool.stats.results import RATIO_MEASURES, NotPooled, PoolResult, SubgroupResult

__all__ = [
    "MAX_STUDY_ROWS",
    "Block",
    "forest_plot",
    "forest_rows",
    "heterogeneity_text",
    "overall_effect_text",
    "save",
    "subgroup_blocks",
    "subgroup_test_text",
]


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
    level = result_level(first)
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
