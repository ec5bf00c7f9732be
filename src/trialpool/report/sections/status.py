"""Data status: the panel atop each analysis (pooled, not pooled, no data, and which
studies still need which data) and the section "Data status per analysis" that lists them.
"""

from __future__ import annotations

from collections.abc import Sequence

from trialpool.analysis import pooled as engine
from trialpool.analysis.plan import Analysis, RevManAnalysis
from trialpool.analysis.runs import (
    BlockRun,
    Settings,
    StudyInfo,
    code_text,
    outcome_kind,
    outcome_rows,
)
from trialpool.report.context import Context
from trialpool.report.document import (
    Heading,
    Inlines,
    Link,
    Muted,
    Node,
    Para,
    Status,
    Strong,
    Table,
)
from trialpool.report.format import anchor, designs_text, lc
from trialpool.stats.results import PoolResult


def _need_text(
    analysis: Analysis, kind: str | None, timepoint: float | None, label: str | None = None
) -> str:
    """What a study lacks, e.g. "per-arm counts of death at 24 weeks"; ``label`` names a
    time point without weeks (a block of rows "as reported")."""
    if timepoint is not None:
        when = f"at {timepoint:g} weeks"
    else:
        when = f"({label})" if label else "(any time point)"
    label = lc(analysis.outcome_label)
    if kind == "dichotomous":
        return f"per-arm counts of {label} {when}"
    return f"per-arm {label} {when} (mean and SD, or median with IQR or range)"


def _other_timepoints(ctx: Context, outcome: str, studies: list[str], tp: float | None) -> str:
    if tp is None:
        return ""
    rows = outcome_rows(ctx.pkg, outcome)
    parts: list[str] = []
    for sid in studies:
        mine = rows[(rows["study_id"] == sid).fillna(False)]
        times = sorted({float(t) for t in mine["timepoint_weeks"].dropna() if float(t) != tp})
        codes = sorted(
            {code_text(str(c)) for c in mine.loc[mine["timepoint_weeks"].isna(), "timepoint"]}
            if "timepoint" in mine.columns
            else set()
        )
        said = ([f"{', '.join(f'{t:g}' for t in times)} weeks"] if times else []) + codes
        if said:
            parts.append(f"{ctx.studies.label(sid)} ({'; '.join(said)})")
    return "; ".join(parts)


def _comparator_line(info: StudyInfo, studies: Sequence[str], left_out: dict[str, str]) -> str:
    """Which of ``studies`` the default comparator restriction leaves out, and why."""
    named = ", ".join(
        f"{info.label(sid)} (control: {engine.comparator_text(left_out[sid])})"
        for sid in studies
        if sid in left_out
    )
    if not named:
        return ""
    words = [engine.comparator_text(k) for k in engine.DEFAULT_COMPARATORS]
    allowed = ", ".join(words[:-1]) + f" or {words[-1]}" if len(words) > 1 else "".join(words)
    return f"Left out by the comparator restriction (controls that are {allowed} only): {named}."


def _excluded_by_design(
    ctx: Context, outcome: str, tp: float | None, designs: Sequence[str] | None
) -> str:
    rows = outcome_rows(ctx.pkg, outcome)
    if rows.empty or designs is None:
        return ""
    if tp is not None:
        rows = rows[(rows["timepoint_weeks"] == tp).fillna(False)]
    ids = sorted({str(s) for s in rows["study_id"].dropna()})
    out = [
        f"{ctx.studies.label(s)} ({ctx.studies.designs.get(s, '?').replace('_', ' ')})"
        for s in ids
        if ctx.studies.designs.get(s) not in set(designs)
    ]
    return ", ".join(out)


def _block_status(
    ctx: Context, analysis: Analysis, block: BlockRun, s: Settings
) -> tuple[str, str, list[Inlines], list[str]]:
    """(kind, headline, detail lines, studies lacking data) of one block."""
    info = ctx.studies
    by_design = info.with_design(s.designs)
    left_out = engine.comparator_left_out(ctx.pkg, comparison=analysis.comparison)
    candidates = [sid for sid in by_design if sid not in left_out]
    missing = [sid for sid in candidates if sid not in block.usable]
    r = block.result
    prefix = f"{block.label}: " if block.label else ""
    lines: list[Inlines] = []
    if isinstance(r, PoolResult):
        status_kind, headline = "pooled", f"{prefix}pooled, k = {r.k}"
    else:
        status_kind = "partial" if r.studies else "none"
        headline = f"{prefix}{r.reason}"
    if missing:
        code_block = analysis.subgroup_by == "timepoint" and block.timepoint is None
        need = _need_text(
            analysis,
            outcome_kind(ctx.pkg, analysis.outcome),
            block.timepoint,
            block.label if code_block else None,
        )
        lines.append(
            [
                Strong("Needs "),
                f"{need} from {info.names(missing)}",
                Muted(f" ({len(missing)} of {len(candidates)} studies of the design(s) analysed)"),
            ]
        )
        other_tp = _other_timepoints(ctx, analysis.outcome, missing, block.timepoint)
        if other_tp:
            lines.append(f"Data at other time points: {other_tp}.")
    elif not by_design:
        lines.append(f"No study in the package has design {designs_text(s.designs)}.")
    comparator_line = _comparator_line(info, by_design, left_out)
    if comparator_line:
        lines.append(comparator_line)
    excluded = _excluded_by_design(ctx, analysis.outcome, block.timepoint, s.designs)
    if excluded:
        lines.append(
            f"Left out by the design restriction ({designs_text(s.designs)} only), although they "
            f"have data: {excluded}; see the all-designs variant."
        )
    derived = [st for st in r.studies if st.derived]
    if derived:
        lines.append(
            [
                Strong("Derived values "),
                "(computed by the maintainers, not printed in a source) are used for "
                f"{info.names([st.study_id for st in derived])}; marked † in tables and plots.",
            ]
        )
    for note in getattr(r, "notes", []) or []:
        lines.append(Muted(note))
    return status_kind, headline, lines, missing


def _no_blocks_status(ctx: Context, analysis: Analysis, s: Settings) -> tuple[Status, str]:
    info = ctx.studies
    left_out = engine.comparator_left_out(ctx.pkg, comparison=analysis.comparison)
    by_design = info.with_design(s.designs)
    cands = [sid for sid in by_design if sid not in left_out]
    detail: list[Inlines] = []
    if cands:
        need = _need_text(analysis, outcome_kind(ctx.pkg, analysis.outcome), None)
        detail.append([Strong("Needs "), f"{need} from {info.names(cands)}"])
    elif not by_design:
        detail.append(f"No study in the package has design {designs_text(s.designs)}.")
    line = _comparator_line(info, by_design, left_out)
    if line:
        detail.append(line)
    return Status("none", "no extractable data yet", detail), info.names(cands)


def analysis_status(
    ctx: Context, analysis: Analysis, blocks: list[BlockRun], s: Settings
) -> Status:
    """The status panel of one analysis; recorded in ``ctx.statuses`` for the status table."""
    if not blocks:
        status, needs = _no_blocks_status(ctx, analysis, s)
    else:
        kinds, heads, lines, lacking = [], [], [], []
        for b in blocks:
            k_, h_, l_, m_ = _block_status(ctx, analysis, b, s)
            kinds.append(k_)
            heads.append(h_)
            lines.extend(l_)
            lacking.append((b.label, m_))
        kind = "pooled" if "pooled" in kinds else ("partial" if "partial" in kinds else "none")
        status = Status(kind, "; ".join(heads), lines)  # type: ignore[arg-type]
        if len({tuple(m) for _, m in lacking}) == 1:
            needs = ctx.studies.names(lacking[0][1])
        else:
            needs = "; ".join(f"{lab}: {ctx.studies.names(m) or 'none'}" for lab, m in lacking)
    ctx.statuses.append((analysis, status, needs))
    return status


_STATUS_WORDS = {
    "pooled": "pooled",
    "partial": "not pooled",
    "none": "no data",
    "info": "no total",
    "error": "error",
}


def section(ctx: Context) -> list[Node]:
    """The section "Data status per analysis" (after every analysis has run)."""
    rows: list[list[Inlines]] = [
        [
            Link(
                f"{analysis.id} {analysis.title}"
                if isinstance(analysis, RevManAnalysis)
                else analysis.title,
                "#" + anchor("analysis", analysis.id),
            ),
            _STATUS_WORDS.get(status.kind, status.kind),
            status.headline,
            needs or "–",
        ]
        for analysis, status, needs in ctx.statuses
    ]
    return [
        Heading(2, "Data status per analysis", "status"),
        Para(
            "What the package allows for each analysis of the plan. An analysis without "
            "enough data is listed with what it needs; none is dropped."
        ),
        Table(header=["Analysis", "Status", "Detail", "Still needs per-arm data from"], rows=rows),
    ]
