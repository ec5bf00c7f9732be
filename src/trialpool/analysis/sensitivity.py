"""The stated sensitivity rules of an analysis, applied to one pooled block.

Each rule of the plan becomes a :class:`VariantRun` (changed settings, or studies left
out by a rule computed from the numbers: I² without each study, externally studentized
residuals from leave-one-out fits, as metafor's ``leave1out`` and ``rstudent``); the
all-designs variant is added when the plan asks for it. Knows nothing about presentation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from trialpool.analysis.plan import (
    ALL_DESIGNS,
    Analysis,
    ExcludeDerived,
    ExcludeHighRob,
    Hksj,
    LeaveOneOutRule,
    LeaveOutHeterogeneous,
    OtherMethod,
    Outliers,
    SensitivityRule,
)
from trialpool.analysis.runs import BlockRun, Result, Settings, pool, subset_package
from trialpool.package.loader import Package
from trialpool.stats.results import RATIO_MEASURES, PoolResult

Skipped = Literal["too_few", "below_threshold", "none_met"]


@dataclass
class VariantRun:
    """One sensitivity variant of one block.

    ``rule`` is None for the all-designs variant. ``result`` is None when the rule was
    not run (``skipped`` says why: k < 3, the main I² below the threshold, no study
    meeting the rule).
    """

    rule: SensitivityRule | None
    result: Result | None
    left_out: list[str] = field(default_factory=list)  # studies the rule left out
    added: list[str] = field(default_factory=list)  # studies another design adds
    skipped: Skipped | None = None


def studentized(main: PoolResult, loo: dict[str, Result]) -> dict[str, float]:
    """Externally studentized residuals (metafor ``rstudent.rma.uni``) from LOO fits."""
    out: dict[str, float] = {}
    ratio = main.measure in RATIO_MEASURES
    for st in main.studies:
        fit = loo.get(st.study_id)
        if not isinstance(fit, PoolResult):
            continue
        mu = math.log(fit.estimate) if ratio else fit.estimate
        denom = st.vi + fit.tau2 + fit.se**2
        if denom > 0:
            out[st.study_id] = (st.yi - mu) / math.sqrt(denom)
    return out


def leave_one_out(
    pkg: Package, outcome: str, tp: float | None, s: Settings, main: PoolResult
) -> dict[str, Result]:
    """The block pooled again without each of its studies in turn."""
    ids = [st.study_id for st in main.studies]
    return {sid: pool(subset_package(pkg, set(ids) - {sid}), outcome, tp, s) for sid in ids}


def _changed_settings(rule: SensitivityRule, s: Settings) -> Settings | None:
    """The settings of a rule that changes how the block is pooled (None: a leave-out rule)."""
    if isinstance(rule, Hksj):
        return s.replace(hksj=True)
    if isinstance(rule, ExcludeDerived):
        return s.replace(include_derived=False)
    if isinstance(rule, ExcludeHighRob):
        return s.replace(exclude_high_rob=True)
    if isinstance(rule, OtherMethod):
        return s.replace(method=rule.method)
    return None


def run_variants(
    pkg: Package, analysis: Analysis, block: BlockRun, s: Settings, *, all_designs: bool
) -> tuple[list[VariantRun], dict[str, Result] | None]:
    """Every sensitivity rule of the analysis applied to one block; the LOO fits if made."""
    tp, main = block.timepoint, block.result
    runs: list[VariantRun] = []
    loo: dict[str, Result] | None = None

    def need_loo() -> dict[str, Result]:
        nonlocal loo
        if loo is None and isinstance(main, PoolResult):
            loo = leave_one_out(pkg, analysis.outcome, tp, s, main)
        return loo or {}

    for rule in analysis.sensitivity:
        if isinstance(rule, LeaveOneOutRule):
            if isinstance(main, PoolResult) and main.k >= 3:
                need_loo()
            continue
        changed = _changed_settings(rule, s)
        if changed is not None:
            runs.append(VariantRun(rule, pool(pkg, analysis.outcome, tp, changed)))
            continue
        # leave-out rules need a pooled main analysis with k >= 3
        assert isinstance(rule, (LeaveOutHeterogeneous, Outliers))
        if not isinstance(main, PoolResult) or main.k < 3:
            runs.append(VariantRun(rule, None, skipped="too_few"))
            continue
        fits = need_loo()
        if isinstance(rule, LeaveOutHeterogeneous):
            if main.i2 is None or main.i2 < rule.i2_threshold:
                runs.append(VariantRun(rule, None, skipped="below_threshold"))
                continue
            drop = [
                sid
                for sid, fit in fits.items()
                if isinstance(fit, PoolResult) and fit.i2 is not None and fit.i2 < rule.i2_threshold
            ]
        else:
            drop = [sid for sid, r in studentized(main, fits).items() if abs(r) > rule.z]
        if not drop:
            runs.append(VariantRun(rule, None, skipped="none_met"))
            continue
        keep = {st.study_id for st in main.studies} - set(drop)
        res = pool(subset_package(pkg, keep), analysis.outcome, tp, s)
        runs.append(VariantRun(rule, res, left_out=drop))
    restricted = s.designs is not None and set(s.designs) != set(ALL_DESIGNS)
    if all_designs and restricted:
        res = pool(pkg, analysis.outcome, tp, s.replace(designs=None))
        main_ids = {st.study_id for st in main.studies}
        added = [st.study_id for st in res.studies if st.study_id not in main_ids]
        runs.append(VariantRun(None, res, added=added))
    return runs, loo
