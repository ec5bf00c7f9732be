"""Forest plots of an imported review's analyses, laid out as RevMan draws them.

The rows come from a :class:`~trialpool.analysis.revman.ReviewPoolResult` (RevMan's
conventions) and are drawn by :func:`trialpool.report.figures.forest.render_forest`, the
same code as every other forest plot: per study the per-arm data (events and total; mean,
SD and total; or, for generic inverse variance, the entered estimate and its SE), weight,
effect and CI, "Not estimable" where RevMan estimates nothing; subgroup headings ("1.2.1
Norfloxacin") with their subtotals; the total; the heterogeneity line (Tau², Chi², df, P,
I²), the test for the overall effect and the test for subgroup differences. What is
pooled follows the review's "Totals" option: overall and subtotals, subtotals only, or
none (then no diamond and no weight column). The labels under the axis are the review's
own (``graph_labels``, left and right as RevMan prints them); without them each side says
which group is lower. Ratio measures, including generic ones entered as logs, are drawn on
a log axis.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from matplotlib.figure import Figure

from trialpool.analysis.plan import RevManAnalysis
from trialpool.analysis.revman import ReviewPoolResult, ReviewStudy, ReviewTotal, model_text
from trialpool.report.figures.forest import (
    ZERO_CELL_MARK,
    ForestLayout,
    _effect_text,
    _fmt_arm,
    _Row,
    _to_analysis,
    heterogeneity_line,
    overall_effect_line,
    render_forest,
    subgroup_test_line,
    total_rows,
)
from trialpool.report.figures.style import decimals_needed, fmt_plain

__all__ = ["MEASURE_LABELS", "METHOD_LABELS", "effect_header", "measure_label", "review_forest"]

#: RevMan's names of its effect measures (generic measures keep the review's own name)
MEASURE_LABELS: dict[str, str] = {
    "RR": "Risk Ratio",
    "OR": "Odds Ratio",
    "RD": "Risk Difference",
    "MD": "Mean Difference",
    "SMD": "Std. Mean Difference",
    "PETO_OR": "Peto Odds Ratio",
}
METHOD_LABELS: dict[str, str] = {"MH": "M-H", "IV": "IV", "PETO": "Peto"}

NOT_ESTIMABLE = "Not estimable"
NOT_APPLICABLE = "Not applicable"

#: the drawing's arm columns per data type, and the result's arm_data key of each
_ARM_KEYS: dict[str, dict[str, str]] = {
    "dichotomous": {"e1": "e1", "t1": "n1", "e2": "e2", "t2": "n2"},
    "continuous": {"m1": "m1", "sd1": "sd1", "n1": "n1", "m2": "m2", "sd2": "sd2", "n2": "n2"},
    "generic": {"est": "estimate", "se": "se"},
}
_SUMMED = {"dichotomous": ("t1", "t2"), "continuous": ("n1", "n2"), "generic": ()}


def measure_label(a: RevManAnalysis) -> str:
    """The effect measure as RevMan prints it ("Risk Ratio", "Peto Odds Ratio", or a
    generic measure's own name, e.g. "Hazard Ratio")."""
    if a.method == "PETO":
        return MEASURE_LABELS["PETO_OR"]
    return MEASURE_LABELS.get(a.measure, a.measure)


def effect_header(a: RevManAnalysis) -> str:
    """The model line of the effect column, e.g. "M-H, Random, 95% CI"."""
    level = a.study_level if a.study_level is not None else a.level
    model = "Random" if a.random else "Fixed"
    return f"{METHOD_LABELS[a.method]}, {model}, {level:g}% CI"


def _arm_value(study: ReviewStudy, key: str) -> float | int | None:
    return study.arm_data.get(key)


def _heterogeneity(a: RevManAnalysis, t: ReviewTotal) -> str:
    if t.k < 2:
        return f"Heterogeneity: {NOT_APPLICABLE}"
    line = heterogeneity_line(t.tau2 if a.random else None, t.q, t.q_df, t.q_p, t.i2)
    return line or f"Heterogeneity: {NOT_APPLICABLE}"


def _overall(a: RevManAnalysis, t: ReviewTotal) -> str:
    if t.zval is None:
        return f"Test for overall effect: {NOT_APPLICABLE}"
    hksj = a.random and a.ci_method == "HKSJ"
    return overall_effect_line(t.zval, t.p_value, max(t.k - 1, 1) if hksj else None)


class _Builder:
    """The rows of one analysis's plot."""

    def __init__(self, a: RevManAnalysis, result: ReviewPoolResult) -> None:
        self.a = a
        self.result = result
        self.ratio = result.ratio
        self.kind = a.data_type
        keys = _ARM_KEYS[self.kind]
        present = {k for s in result.studies for k, v in s.arm_data.items() if v is not None}
        self.arm_keys = [k for k, src in keys.items() if src in present]
        self.decimals = {k: self._decimals(k) for k in self.arm_keys}
        self.pooled = a.totals == "overall" or (a.totals == "subgroups" and bool(a.subgroups))

    def _decimals(self, key: str) -> int:
        if self.kind == "generic":
            return 4
        src = _ARM_KEYS[self.kind][key]
        values = [
            float(v)
            for s in self.result.studies
            if (v := _arm_value(s, src)) is not None and math.isfinite(float(v))
        ]
        return max((decimals_needed(v) for v in values), default=0)

    def study(self, s: ReviewStudy) -> _Row:
        cells = {"study": s.label, "marks": ZERO_CELL_MARK if s.zero_cell_corrected else ""}
        for key in self.arm_keys:
            cells[key] = _fmt_arm(_arm_value(s, _ARM_KEYS[self.kind][key]), self.decimals[key])
        if self.pooled:
            cells["weight"] = f"{s.weight:.1f}%"
        est = _to_analysis(s.estimate, self.ratio)
        lo = _to_analysis(s.ci_lower, self.ratio)
        hi = _to_analysis(s.ci_upper, self.ratio)
        drawn = s.estimable and est is not None
        if drawn and lo is not None and hi is not None:
            cells["effect"] = _effect_text(est, lo, hi, self.ratio)  # type: ignore[arg-type]
        elif not s.estimable:
            cells["effect"] = NOT_ESTIMABLE
        return _Row(
            "study",
            cells=cells,
            est=est if drawn else None,
            lo=lo if drawn else None,
            hi=hi if drawn else None,
            weight=s.weight,
            pooled=self.pooled,  # without totals: plain squares, nothing is weighted
        )

    def _sum(self, studies: Sequence[ReviewStudy], key: str) -> str:
        values = [_arm_value(s, _ARM_KEYS[self.kind][key]) for s in studies if s.arm_data]
        if not values or any(v is None for v in values):
            return ""
        return fmt_plain(sum(float(v) for v in values if v is not None))

    def total(self, label: str, t: ReviewTotal, studies: Sequence[ReviewStudy]) -> list[_Row]:
        sums = {k: self._sum(studies, k) for k in _SUMMED[self.kind] if k in self.arm_keys}
        events = None
        if self.kind == "dichotomous" and self.arm_keys:
            events = {k: self._sum(studies, k) for k in ("e1", "e2") if k in self.arm_keys}
        weight = None if t.weight is None else f"{t.weight:.1f}%"
        if not t.estimable:
            return total_rows(
                label,
                estimate=None,
                ci_lower=None,
                ci_upper=None,
                ratio=self.ratio,
                weight=weight,
                sums=sums,
                events=events,
                effect=NOT_ESTIMABLE,
                lines=[
                    f"Heterogeneity: {NOT_APPLICABLE}",
                    f"Test for overall effect: {NOT_APPLICABLE}",
                ],
            )
        return total_rows(
            label,
            estimate=t.estimate,
            ci_lower=t.ci_lower,
            ci_upper=t.ci_upper,
            ratio=self.ratio,
            weight=weight,
            sums=sums,
            events=events,
            prediction=(t.pi_lower, t.pi_upper) if self.a.prediction else None,
            lines=[_heterogeneity(self.a, t), _overall(self.a, t)],
        )

    def rows(self) -> list[_Row]:
        a, result = self.a, self.result
        level = f"({a.level:g}% CI)"
        rows: list[_Row] = []
        if a.subgroups:
            subtotals = {s.id: s for s in result.subgroups}
            for i, sg in enumerate(a.subgroups):
                if i:
                    rows.append(_Row("blank"))
                rows.append(_Row("block", span=f"{sg.id} {sg.label}", bold=True))
                members = [s for s in result.studies if s.subgroup == sg.id]
                rows.extend(self.study(s) for s in members)
                sub = subtotals.get(sg.id)
                if a.totals != "none" and sub is not None:
                    rows.extend(self.total(f"Subtotal {level}", sub, members))
        else:
            rows.extend(self.study(s) for s in result.studies)
        if a.totals == "overall":
            rows.append(_Row("blank"))
            rows.extend(self.total(f"Total {level}", result, result.studies))
        test = result.subgroup_test
        if a.subgroups and a.subgroup_test and a.totals != "none":
            rows.append(_Row("blank"))
            line = (
                f"Test for subgroup differences: {NOT_APPLICABLE}"
                if test is None
                else subgroup_test_line(test.q, test.df, test.p, test.i2)
            )
            rows.append(_Row("text", span=line, small=True))
        return rows

    def notes(self) -> list[str]:
        a = self.a
        notes = list(self.result.notes)
        if a.totals == "none":
            notes.append("no totals: the review's Totals option is 'none' (nothing is pooled).")
        elif a.totals == "subgroups":
            notes.append(
                "subtotals only (the review's Totals option): study weights are percentages "
                "of their subgroup, and no overall total is drawn."
                if a.subgroups
                else "the review's Totals option is 'subtotals only' and the analysis has no "
                "subgroups: nothing is pooled."
            )
        return notes


def review_forest(a: RevManAnalysis, result: ReviewPoolResult) -> Figure:
    """The forest plot of one analysis of an imported review, in RevMan's layout (sized
    to hold all its texts: save it with ``tight=False``)."""
    b = _Builder(a, result)
    label = measure_label(a)
    if a.graph_labels is not None:
        favours_text = (a.graph_labels[0], a.graph_labels[1])
    else:  # the review prints none: say which group is lower on each side
        favours_text = (f"Lower in {a.favours[0]}", f"Lower in {a.favours[1]}")
    layout = ForestLayout(
        kind=a.data_type,
        arm_keys=b.arm_keys,
        groups=a.favours,
        header=(label, effect_header(a)),
        subgroups=bool(a.subgroups),
        ratio=result.ratio,
        favours_text=favours_text,
        title=f"Analysis {a.id}: {a.title}",
        subtitle=f"{a.comparison} · {label}, {model_text(a)} (RevMan's conventions)",
        notes=b.notes(),
        generic_label=f"log[{label}]" if a.data_type == "generic" and a.log_data else label,
        weight=b.pooled,
        exact=True,
    )
    return render_forest(b.rows(), layout)
