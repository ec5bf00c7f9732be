"""The rows of a forest plot of metafor results (:class:`PoolResult`, :class:`NotPooled`).

Blocks of results (one, or one per subgroup) become rows: a subgroup heading, one row
per study (label and marks, per-arm data, weight, effect and CI), the block's pooled
total (a diamond with summed arm totals, prediction interval, heterogeneity and the
test for the overall effect) or the reason it was not pooled, an optional overall total
and the test for subgroup differences. :func:`forest_rows` gives the same studies as
a table. Study CIs missing from a result are computed on the normal approximation at
the analysis's level.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist
from typing import Any, Literal

from trialpool.report.figures.forest_layout import (
    DERIVED_MARK,
    ZERO_CELL_MARK,
    _effect_text,
    _fmt_arm,
    _Row,
    _to_report,
    total_rows,
)
from trialpool.report.figures.forest_text import (
    heterogeneity_text,
    overall_effect_text,
    subgroup_test_text,
)
from trialpool.report.figures.style import MUTED_TEXT, decimals_needed, fmt_plain
from trialpool.stats.results import (
    RATIO_MEASURES,
    NotPooled,
    PoolResult,
    StudyEffect,
    SubgroupResult,
)

#: One block of a forest plot: an optional heading and its result.
Block = tuple[str | None, PoolResult | NotPooled]

_CONTINUOUS_MEASURES = frozenset({"MD", "SMD"})


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


def result_level(result: PoolResult | NotPooled) -> float:
    """The confidence level of a result's intervals (95 for a result not pooled)."""
    return result.level if isinstance(result, PoolResult) else 95.0


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
        level = result_level(result)
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


def _arm_kind(measure: str) -> Literal["continuous", "dichotomous"]:
    return "continuous" if measure in _CONTINUOUS_MEASURES else "dichotomous"


def _sum_arm(studies: Sequence[StudyEffect], key: str) -> str:
    values = [s.arm_data.get(key) for s in studies if s.weight > 0]
    if not values or any(v is None for v in values):
        return ""
    return fmt_plain(sum(float(v) for v in values if v is not None))


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


def _study_row(
    study: StudyEffect,
    result: PoolResult | NotPooled,
    arm_keys: list[str],
    decimals: dict[str, int],
) -> _Row:
    level = result_level(result)
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
