"""Typed results of the pooling engine (pydantic models).

The JSON printed by ``trialpool pool --json`` is ``PoolResult.model_dump(mode="json")``;
its keys are the interface contract of ../shared/design.md (extra keys are allowed,
contract keys are never renamed). Conventions follow metafor: for RR and OR,
``estimate``, ``ci_*`` and ``pi_*`` are on the ratio scale, while ``se`` and each study's
``yi``/``vi`` are on the log scale; for the other measures all are on the raw scale.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MeasureName = Literal["MD", "SMD", "RR", "OR", "RD"]
MethodName = Literal["FE", "MH", "DL", "REML", "PM", "ML"]
RATIO_MEASURES: frozenset[str] = frozenset({"RR", "OR"})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StudyEffect(_Model):
    """One study's contribution to a pooled analysis."""

    study_id: str
    label: str | None = None
    yi: float = Field(description="Effect size (log scale for RR and OR).")
    vi: float = Field(description="Sampling variance of yi.")
    ci_lower: float | None = Field(None, description="Study CI, reporting scale.")
    ci_upper: float | None = Field(None, description="Study CI, reporting scale.")
    weight: float = Field(description="Weight in percent of the total (0 when not pooled).")
    zero_cell_corrected: bool = False
    derived: bool = Field(False, description="Arm data include rows marked derived.")
    arm_data: dict[str, float | int | None] = Field(
        default_factory=dict,
        description="Per-arm inputs: m1, sd1, n1, m2, sd2, n2 or e1, t1, e2, t2 (1 = MSC).",
    )


class PoolResult(_Model):
    """A pooled estimate with heterogeneity statistics (one outcome, one model)."""

    k: int
    measure: MeasureName
    method: MethodName
    hksj: bool = False
    level: float = 95.0
    estimate: float
    ci_lower: float
    ci_upper: float
    se: float
    zval: float = Field(description="Test statistic (t when hksj is true).")
    p_value: float
    tau2: float
    tau2_ci_lower: float | None = None
    tau2_ci_upper: float | None = None
    i2: float | None = Field(None, description="I² in percent, from the model's tau².")
    h2: float | None = None
    q: float | None = None
    q_df: int | None = None
    q_p: float | None = None
    pi_lower: float | None = None
    pi_upper: float | None = None
    studies: list[StudyEffect] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list, description="Plain-language caveats.")


class NotPooled(_Model):
    """An analysis that could not be pooled, and why (k = 0, k = 1, no data, ...)."""

    k: int
    measure: MeasureName
    method: MethodName
    reason: str
    studies: list[StudyEffect] = Field(default_factory=list)
    missing: list[str] = Field(
        default_factory=list, description="What data would make the analysis possible."
    )


class SubgroupResult(_Model):
    """Pooled estimates per subgroup and the test for subgroup differences."""

    variable: str
    groups: dict[str, PoolResult | NotPooled]
    q_between: float | None = None
    q_between_df: int | None = None
    q_between_p: float | None = None


class LeaveOneOut(_Model):
    """Pooled estimate with each study left out in turn (as metafor's leave1out)."""

    omitted: list[str]
    results: list[PoolResult | NotPooled]
