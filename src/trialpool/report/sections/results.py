"""The tables of one analysis: pooled results per block, and each block's per-study data."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

from trialpool.analysis.runs import Result, StudyInfo
from trialpool.report.document import Inlines, Muted, Table
from trialpool.report.format import effect, num, p_value, pct, small
from trialpool.stats.results import RATIO_MEASURES, PoolResult


def result_table(blocks: Sequence[tuple[str, Result]], measure: str) -> Table:
    """One row per block: k, estimate [CI], P, τ², I², Q, prediction interval, model."""
    ratio = measure in RATIO_MEASURES
    header = [
        "Block",
        "k",
        f"{measure} [95% CI]" if not ratio else f"{measure} [95% CI] (ratio scale)",
        "P",
        "τ²",
        "I²",
        "Q (df; P)",
        "95% prediction interval",
        "Model",
    ]
    rows: list[list[Inlines]] = []
    for label, r in blocks:
        if not isinstance(r, PoolResult):
            rows.append([label, str(r.k), Muted(f"not pooled: {r.reason}"), "", "", "", "", "", ""])
            continue
        header[2] = header[2].replace("95%", f"{r.level:g}%")
        q = "–" if r.q is None else f"{num(r.q)} ({r.q_df}; {p_value(r.q_p)})"
        pi = (
            "–"
            if r.pi_lower is None or r.pi_upper is None
            else f"[{num(r.pi_lower)}, {num(r.pi_upper)}]"
        )
        model = r.method + (" + HKSJ" if r.hksj else "")
        rows.append(
            [label, str(r.k), effect(r), p_value(r.p_value), small(r.tau2), pct(r.i2), q, pi, model]
        )
    return Table(header=header, rows=rows, numeric=frozenset({1, 3, 4, 5}))


def _arm_value(data: dict[str, Any], key: str) -> str:
    v = data.get(key)
    if v is None:
        return "?"
    return str(int(v)) if float(v).is_integer() else f"{float(v):.4g}"


def study_table(
    result: Result, info: StudyInfo, caption: str, arms: tuple[str, str] = ("MSC", "Control")
) -> Table:
    """One row per study: each arm's data, yi, vi, weight and flags (derived, zero cell)."""
    binary = result.measure in {"RR", "OR", "RD"}
    if binary:
        header = ["Study", f"{arms[0]} events/total", f"{arms[1]} events/total"]
    else:
        header = ["Study", f"{arms[0]} mean (SD), n", f"{arms[1]} mean (SD), n"]
    ratio = result.measure in RATIO_MEASURES
    header += ["yi" + (" (log)" if ratio else ""), "vi", "Weight", "Flags"]
    rows: list[list[Inlines]] = []
    for st in result.studies:
        g = partial(_arm_value, st.arm_data)
        if binary:
            arm1, arm2 = f"{g('e1')}/{g('t1')}", f"{g('e2')}/{g('t2')}"
        else:
            arm1 = f"{g('m1')} ({g('sd1')}), {g('n1')}"
            arm2 = f"{g('m2')} ({g('sd2')}), {g('n2')}"
        flags = []
        if st.derived:
            flags.append("† derived")
        if st.zero_cell_corrected:
            flags.append("‡ 0.5 added (zero cell)")
        weight = f"{st.weight:.1f}%" if isinstance(result, PoolResult) else "–"
        label = st.label or info.label(st.study_id)
        rows.append([label, arm1, arm2, num(st.yi, 3), num(st.vi, 4), weight, "; ".join(flags)])
    return Table(header=header, rows=rows, caption=caption, numeric=frozenset({3, 4, 5}))
