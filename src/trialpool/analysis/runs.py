"""One analysis of a plan, run block by block: its settings, its studies, its pooled blocks.

A block is one pool: a time point of a time-point subgroup analysis, a subgroup of a
study characteristic, or the single pool of an analysis. Pooling here never raises: a
pool that cannot be made is a :class:`~trialpool.stats.results.NotPooled` that says why.
Used by the report; knows nothing about presentation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from trialpool.analysis import pooled as engine
from trialpool.analysis.plan import Analysis, AnalysisPlan, OutcomeInfo
from trialpool.errors import TrialpoolError
from trialpool.package.loader import Package
from trialpool.stats.results import NotPooled, PoolResult, SubgroupResult

Result = PoolResult | NotPooled

_STUDY_TABLES = frozenset(
    {"studies", "arms", "continuous_outcomes", "dichotomous_outcomes", "bias_judgements"}
)


_DIRECTIONS = frozenset({"higher_is_better", "lower_is_better", "not_applicable", "unclear"})


# --- the package, as the analyses read it ---------------------------------------------


def _text(value: Any) -> str | None:
    """A cell as stripped text (None when empty or missing)."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    text = str(value).strip()
    return text or None


def table_or_none(pkg: Package, name: str) -> pd.DataFrame | None:
    """The package's table ``name``, or None when the package has no such resource."""
    return pkg.table(name) if pkg.has(name) else None


def subset_package(pkg: Package, keep: set[str]) -> Package:
    """A view of the package holding only the studies in ``keep`` (for leave-out rules).

    Tables with a ``study_id`` column (studies, arms, outcomes, bias judgements) are
    filtered; the files on disk are not touched.
    """
    frames: dict[str, pd.DataFrame] = {}
    for name in pkg.resources:
        frame = pkg.table(name)
        if name in _STUDY_TABLES and "study_id" in frame.columns:
            frame = frame[frame["study_id"].astype("string").isin(keep).fillna(False)]
        frames[name] = frame
    return Package(
        root=pkg.root,
        descriptor_path=pkg.descriptor_path,
        descriptor=pkg.descriptor,
        resources=pkg.resources,
        _frames=frames,
    )


def outcome_infos(pkg: Package) -> dict[str, OutcomeInfo]:
    """The package's outcome vocabulary (``outcomes``): label, data type, unit and
    direction of each outcome code, in the table's order (empty without the resource)."""
    frame = table_or_none(pkg, "outcomes")
    if frame is None:
        return {}
    out: dict[str, OutcomeInfo] = {}
    for rec in frame.to_dict("records"):
        code = _text(rec.get("outcome_id"))
        data_type = _text(rec.get("data_type"))
        if code is None or data_type not in ("continuous", "dichotomous", "generic"):
            continue
        direction = _text(rec.get("direction"))
        out[code] = OutcomeInfo(
            label=_text(rec.get("label")) or code,
            data_type=data_type,  # type: ignore[arg-type]
            unit=_text(rec.get("unit")),
            direction=direction if direction in _DIRECTIONS else "unclear",  # type: ignore[arg-type]
        )
    return out


def outcome_label(pkg: Package, outcome: str) -> str:
    """The outcome's label in ``outcomes``, or its code."""
    info = outcome_infos(pkg).get(outcome)
    return info.label if info else outcome


def outcome_kind(pkg: Package, outcome: str) -> Literal["continuous", "dichotomous"] | None:
    """The outcome's per-arm table: its ``data_type`` in ``outcomes``, else the table
    holding its rows (None for a generic outcome or a code the package does not know)."""
    info = outcome_infos(pkg).get(outcome)
    if info is not None:
        return None if info.data_type == "generic" else info.data_type
    for name, kind in (
        ("continuous_outcomes", "continuous"),
        ("dichotomous_outcomes", "dichotomous"),
    ):
        frame = table_or_none(pkg, name)
        if frame is None or "outcome" not in frame.columns:
            continue
        if (frame["outcome"] == outcome).fillna(False).any():
            return kind  # type: ignore[return-value]
    return None


def outcome_rows(pkg: Package, outcome: str) -> pd.DataFrame:
    """Every per-arm row of ``outcome`` (empty frame when there is none)."""
    kind = outcome_kind(pkg, outcome)
    name = "continuous_outcomes" if kind == "continuous" else "dichotomous_outcomes"
    frame = table_or_none(pkg, name)
    if frame is None or "outcome" not in frame.columns:
        return pd.DataFrame(
            columns=["study_id", "arm_id", "outcome", "timepoint", "timepoint_weeks"]
        )
    return frame[(frame["outcome"] == outcome).fillna(False)]


@dataclass
class StudyInfo:
    """Each study's label and design, in the package's order (by year)."""

    labels: dict[str, str]
    designs: dict[str, str]
    order: list[str]

    def label(self, study_id: str) -> str:
        return self.labels.get(study_id, study_id)

    def names(self, ids: Sequence[str]) -> str:
        """The labels of ``ids`` in study order, comma-separated."""
        ordered = sorted(ids, key=lambda s: (self.order.index(s) if s in self.order else 10**6, s))
        return ", ".join(self.label(s) for s in ordered)

    def with_design(self, designs: Sequence[str] | None) -> list[str]:
        if designs is None:
            return list(self.order)
        return [s for s in self.order if self.designs.get(s) in set(designs)]


def study_info(pkg: Package) -> StudyInfo:
    """Labels, designs and order of the package's studies."""
    studies = table_or_none(pkg, "studies")
    if studies is None or studies.empty:
        return StudyInfo({}, {}, [])
    frame = studies.copy()
    if "year" in frame.columns:
        frame = frame.sort_values(["year", "study_id"], kind="stable", na_position="last")
    labels = {
        str(r.study_id): str(r.label)
        for r in frame.itertuples()
        if pd.notna(r.label) and str(r.label).strip()
    }
    designs = {str(r.study_id): str(r.design) for r in frame.itertuples()}
    return StudyInfo(labels, designs, [str(s) for s in frame["study_id"]])


# --- one pool ------------------------------------------------------------------------


def metafor_analyses(plan: AnalysisPlan) -> list[Analysis]:
    """The plan's analyses pooled here (metafor's conventions), in order; analyses of an
    imported review (engine "revman") are pooled by ``trialpool.analysis.revman``."""
    return [a for a in plan.analyses if isinstance(a, Analysis)]


@dataclass(frozen=True)
class Settings:
    """How one pooled block is computed."""

    measure: str
    method: str
    hksj: bool
    designs: tuple[str, ...] | None  # None: every design
    include_derived: bool
    convert_medians: bool
    exclude_high_rob: bool
    level: float
    comparison: str | None = None  # comparisons.label; None: each study's primary one

    def replace(self, **changes: Any) -> Settings:
        """A copy with some settings changed."""
        return dataclasses.replace(self, **changes)


def settings_for(plan: AnalysisPlan, analysis: Analysis) -> Settings:
    """The settings of an analysis's main blocks (the plan's defaults where it is silent)."""
    d = plan.defaults
    return Settings(
        measure=analysis.measure,
        method=plan.method_for(analysis),
        hksj=plan.hksj_for(analysis),
        designs=tuple(plan.designs_for(analysis)),
        include_derived=d.include_derived,
        convert_medians=d.convert_medians,
        exclude_high_rob=False,
        level=d.level,
        comparison=analysis.comparison,
    )


def _comparison(s: Settings) -> dict[str, str]:
    """The keyword that names the analysis's comparison label (none for the primary one)."""
    return {} if s.comparison is None else {"comparison": s.comparison}


def pool(pkg: Package, outcome: str, timepoint: float | None, s: Settings) -> Result:
    """One pooled block through ``pooled.pool_outcome`` (TrialpoolError -> NotPooled)."""
    try:
        return engine.pool_outcome(
            pkg,
            outcome,
            timepoint,
            measure=s.measure,
            method=s.method,
            hksj=s.hksj,
            designs=s.designs,
            include_derived=s.include_derived,
            convert_medians=s.convert_medians,
            exclude_high_rob=s.exclude_high_rob,
            level=s.level,
            **_comparison(s),
        )
    except TrialpoolError as exc:
        return NotPooled(k=0, measure=s.measure, method=s.method, reason=str(exc))  # type: ignore[arg-type]
    except ArithmeticError as exc:  # a number out of range that no check caught
        reason = (
            f"a number is out of range ({type(exc).__name__}: {exc}); check the package's values"
        )
        return NotPooled(k=0, measure=s.measure, method=s.method, reason=reason)  # type: ignore[arg-type]


def usable_studies(pkg: Package, outcome: str, timepoint: float | None, s: Settings) -> set[str]:
    """Studies with a usable experimental-vs-control pair for the outcome (the comparison
    of ``s.comparison``, or each study's primary one: ``pooled.arm_pairs``)."""
    try:
        pairs = engine.arm_pairs(
            pkg,
            outcome,
            timepoint,
            designs=s.designs,
            include_derived=s.include_derived,
            convert_medians=s.convert_medians,
            comparison=s.comparison,
        )
    except TrialpoolError:
        return set()
    if pairs is None or len(pairs) == 0 or "study_id" not in pairs.columns:
        return set()
    return {str(x) for x in pairs["study_id"].dropna()}


# --- the blocks of one analysis --------------------------------------------------------


@dataclass
class BlockRun:
    """One pooled block of an analysis (a time point, a subgroup, or the single block)."""

    label: str | None
    timepoint: float | None
    result: Result
    usable: set[str]


def timepoints(pkg: Package, info: StudyInfo, analysis: Analysis, s: Settings) -> list[float]:
    """The time points of a time-point subgroup analysis (the plan's, or every one with data)."""
    if analysis.subgroup_timepoints is not None:
        return list(analysis.subgroup_timepoints)
    rows = outcome_rows(pkg, analysis.outcome)
    if rows.empty:
        return []
    wanted = set(info.with_design(s.designs))
    rows = rows[rows["study_id"].astype("string").isin(wanted).fillna(False)]
    return sorted({float(t) for t in rows["timepoint_weeks"].dropna() if float(t) > 0})


def timepoint_codes(pkg: Package, info: StudyInfo, analysis: Analysis, s: Settings) -> list[str]:
    """The time point codes of the outcome's rows that state no weeks (e.g. as_reported)."""
    rows = outcome_rows(pkg, analysis.outcome)
    if rows.empty or "timepoint" not in rows.columns:
        return []
    wanted = set(info.with_design(s.designs))
    rows = rows[rows["study_id"].astype("string").isin(wanted).fillna(False)]
    rows = rows[rows["timepoint_weeks"].isna()]
    return sorted({str(c) for c in rows["timepoint"].dropna()})


def code_text(code: str) -> str:
    """A time point code in words: "as reported", "end of treatment"."""
    return code.replace("_", " ")


def _block(
    pkg: Package, label: str | None, outcome: str, tp: float | None, s: Settings
) -> BlockRun:
    return BlockRun(label, tp, pool(pkg, outcome, tp, s), usable_studies(pkg, outcome, tp, s))


def subgroup_blocks(
    pkg: Package, spec: Analysis, s: Settings
) -> tuple[list[BlockRun], SubgroupResult | None]:
    """Subgroups by a study characteristic, through ``pooled.pool_subgroups``."""
    try:
        sub = engine.pool_subgroups(
            pkg,
            spec.outcome,
            by=str(spec.subgroup_by),
            timepoint=spec.timepoint_weeks,
            measure=s.measure,
            method=s.method,
            hksj=s.hksj,
            designs=s.designs,
            include_derived=s.include_derived,
            convert_medians=s.convert_medians,
            level=s.level,
            **_comparison(s),
        )
    except TrialpoolError as exc:
        failed = NotPooled(k=0, measure=s.measure, method=s.method, reason=str(exc))  # type: ignore[arg-type]
        return [BlockRun(None, spec.timepoint_weeks, failed, set())], None
    blocks = [
        BlockRun(str(name), spec.timepoint_weeks, res, {st.study_id for st in res.studies})
        for name, res in sub.groups.items()
    ]
    return blocks, sub


def run_blocks(
    pkg: Package, info: StudyInfo, analysis: Analysis, s: Settings
) -> tuple[list[BlockRun], SubgroupResult | None]:
    """The main blocks of an analysis, and its subgroup test when it has subgroups."""
    if analysis.subgroup_by == "timepoint":
        tps = timepoints(pkg, info, analysis, s)
        codes = timepoint_codes(pkg, info, analysis, s)
        if not tps and codes and analysis.subgroup_timepoints is None:
            # no row states weeks: one block of the rows as the sources give them
            label = ", ".join(code_text(c) for c in codes)
            return [_block(pkg, label, analysis.outcome, None, s)], None
        return [_block(pkg, f"{tp:g} weeks", analysis.outcome, tp, s) for tp in tps], None
    if analysis.subgroup_by is not None:
        return subgroup_blocks(pkg, analysis, s)
    return [_block(pkg, None, analysis.outcome, analysis.timepoint_weeks, s)], None
