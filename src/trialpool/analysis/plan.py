"""The analysis plan: which analyses a report runs, and how (pydantic models).

A plan is a JSON file (``analysis/plan.json`` for the bundled package) validated by
these models; ``schemas/analysis-plan.schema.json`` is generated from them by
``scripts/make_plan_schema.py`` (a test fails when it is stale).

Defaults, and why:

* ``method = "REML"``: metafor's default tau² estimator, with good properties for
  small k (Viechtbauer 2005; Langan et al. 2019).
* ``hksj = false``: the Wald-type (z) confidence interval, as metafor's ``rma`` and
  RevMan print by default. The software and options used by Lu 2025 are not known
  (its methods section was not available), so the plan reproduces the conventional
  analysis and adds the Hartung-Knapp-Sidik-Jonkman adjustment as a sensitivity rule
  (``{"rule": "hksj"}``): with k < 10 the z interval is known to be too narrow
  (IntHout et al. 2014), and the report shows both.
* ``designs = ["rct"]``: the review is restricted to randomised trials; every analysis
  also runs a variant with all designs (``all_designs_variant``), reported separately.
* ``include_derived = true``: rows computed by us (``verification = derived``) are used
  and marked in every table and figure; ``{"rule": "exclude_derived"}`` drops them.

Sensitivity rules are stated rules, never a hand-picked list of studies:

* ``leave_out_heterogeneous``: when I² of the main analysis is at least
  ``i2_threshold``, leave out every study whose removal alone (leave-one-out) brings I²
  below the threshold, then pool the rest;
* ``outliers``: leave out every study whose externally studentized residual (metafor's
  ``rstudent``) exceeds ``z`` in absolute value, then pool the rest;
* ``exclude_high_rob``: leave out studies with any domain judged at high risk of bias
  (RoB 1, RoB 2) or at serious or critical risk (ROBINS-I);
* ``exclude_derived``: use only values read in a source (no derived rows);
* ``hksj``: the Hartung-Knapp-Sidik-Jonkman adjustment;
* ``method``: another estimator (e.g. DerSimonian-Laird, as RevMan uses);
* ``leave_one_out``: the pooled estimate with each study left out in turn (a table).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from trialpool.errors import PackageError, TrialpoolError
from trialpool.package.loader import read_json
from trialpool.stats.results import MeasureName, MethodName

PLAN_VERSION = 1

Design = Literal["rct", "non_randomised_controlled", "case_control", "cohort", "single_arm"]
ALL_DESIGNS: tuple[str, ...] = (
    "rct",
    "non_randomised_controlled",
    "case_control",
    "cohort",
    "single_arm",
)
SubgroupVariable = Literal["timepoint", "design", "cell_source", "origin", "route"]

_ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"


class PlanError(TrialpoolError):
    """The analysis plan cannot be read or does not conform (one line, exit 1)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- outcome facts used for plans built from the data -----------------------------

Direction = Literal["higher_is_better", "lower_is_better", "not_applicable", "unclear"]


class OutcomeInfo(_Model):
    """One row of a package's ``outcomes`` resource, as a plan built from the data uses
    it: label, data type, default unit and direction of benefit."""

    label: str
    data_type: Literal["continuous", "dichotomous", "generic"]
    unit: str | None = None
    direction: Direction = "unclear"

    @property
    def lower_is_better(self) -> bool | None:
        """True or False when the direction of benefit is stated; None when it is
        unclear or not applicable."""
        if self.direction == "lower_is_better":
            return True
        if self.direction == "higher_is_better":
            return False
        return None


# --- sensitivity rules ---------------------------------------------------------------


class LeaveOutHeterogeneous(_Model):
    """Leave out every study whose removal alone brings I² below the threshold."""

    rule: Literal["leave_out_heterogeneous"]
    i2_threshold: float = Field(50.0, ge=0, le=100, description="I² threshold in percent.")


class Outliers(_Model):
    """Leave out studies with |externally studentized residual| > z (metafor rstudent)."""

    rule: Literal["outliers"]
    z: float = Field(1.96, gt=0, description="Cut-off for the absolute studentized residual.")


class ExcludeHighRob(_Model):
    """Leave out studies with any domain at high (serious, critical) risk of bias."""

    rule: Literal["exclude_high_rob"]


class ExcludeDerived(_Model):
    """Use only values read in a source: no rows with verification = derived."""

    rule: Literal["exclude_derived"]


class Hksj(_Model):
    """Hartung-Knapp-Sidik-Jonkman adjustment (t distribution on k - 1 df)."""

    rule: Literal["hksj"]


class OtherMethod(_Model):
    """Another model or tau² estimator, e.g. DL as RevMan uses."""

    rule: Literal["method"]
    method: MethodName


class LeaveOneOutRule(_Model):
    """The pooled estimate with each study left out in turn (metafor's leave1out)."""

    rule: Literal["leave_one_out"]


SensitivityRule = Annotated[
    LeaveOutHeterogeneous
    | Outliers
    | ExcludeHighRob
    | ExcludeDerived
    | Hksj
    | OtherMethod
    | LeaveOneOutRule,
    Field(discriminator="rule"),
]


def describe_rule(rule: SensitivityRule) -> str:
    """One plain sentence stating a sensitivity rule (for the report's methods)."""
    if isinstance(rule, LeaveOutHeterogeneous):
        return (
            f"when I² ≥ {rule.i2_threshold:g}%, leave out every study whose removal alone "
            f"(leave-one-out) brings I² below {rule.i2_threshold:g}%, then pool the rest"
        )
    if isinstance(rule, Outliers):
        return (
            f"leave out every study whose externally studentized residual exceeds "
            f"{rule.z:g} in absolute value, then pool the rest"
        )
    if isinstance(rule, ExcludeHighRob):
        return (
            "leave out studies with any domain at high risk of bias (RoB 1, RoB 2) or at "
            "serious or critical risk (ROBINS-I)"
        )
    if isinstance(rule, ExcludeDerived):
        return "use only values read in a source (leave out rows marked derived)"
    if isinstance(rule, Hksj):
        return "Hartung-Knapp-Sidik-Jonkman confidence interval (t on k − 1 df)"
    if isinstance(rule, OtherMethod):
        return f"estimator {rule.method} instead of the main one"
    return "pooled estimate with each study left out in turn"


def rule_id(rule: SensitivityRule) -> str:
    """A short identifier of a rule, safe in file names."""
    if isinstance(rule, LeaveOutHeterogeneous):
        return f"leave-out-i2-{rule.i2_threshold:g}"
    if isinstance(rule, Outliers):
        return f"outliers-z-{rule.z:g}"
    if isinstance(rule, OtherMethod):
        return f"method-{rule.method.lower()}"
    return rule.rule.replace("_", "-")


# --- the plan ----------------------------------------------------------------------


class PlanDefaults(_Model):
    """Settings every analysis inherits unless it overrides them."""

    level: float = Field(95.0, gt=50, lt=100, description="Confidence level in percent.")
    method: MethodName = Field("REML", description="Model / tau² estimator (metafor names).")
    hksj: bool = Field(False, description="Hartung-Knapp-Sidik-Jonkman adjustment.")
    designs: list[Design] = Field(
        default_factory=lambda: ["rct"], min_length=1, description="Designs analysed."
    )
    include_derived: bool = Field(True, description="Use rows marked verification=derived.")
    convert_medians: bool = Field(
        True, description="Convert median/IQR or range to mean/SD (marked derived)."
    )
    all_designs_variant: bool = Field(
        True, description="Also run every analysis with all designs (a sensitivity variant)."
    )
    funnel_min_k: int = Field(
        10, ge=3, description="Smallest k for a funnel plot and Egger's test (Cochrane: 10)."
    )
    cumulative: bool = Field(
        False,
        description=(
            "Draw a cumulative forest plot of every analysis: studies added in order of "
            "year, each step refitted with the analysis's settings."
        ),
    )


class Analysis(_Model):
    """One analysis: one outcome (at one time point, or by time point subgroup), pooled
    with metafor's conventions."""

    engine: Literal["metafor"] = "metafor"
    id: str = Field(pattern=_ID_PATTERN, description="Identifier, used in file names.")
    title: str = Field(min_length=1)
    outcome: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="Outcome code.")
    outcome_label: str = Field(min_length=1, description="Label on plots and tables.")
    unit: str | None = Field(None, description="Unit shown on the forest plot axis.")
    timepoint_weeks: float | None = Field(
        None, ge=0, description="Time point in weeks (null: every time point, or subgroups)."
    )
    measure: MeasureName
    method: MethodName | None = Field(None, description="Overrides the plan's method.")
    hksj: bool | None = Field(None, description="Overrides the plan's hksj.")
    lower_is_better: bool
    comparison: str | None = Field(
        None,
        description=(
            "Label of the comparisons pooled (comparisons.label); null: each study's "
            "primary comparison."
        ),
    )
    favours: tuple[str, str] = Field(
        ("MSC", "control"), description="Labels of the two arms (intervention, control)."
    )
    subgroup_by: SubgroupVariable | None = Field(
        None, description="Subgroup variable for a subgroup forest plot."
    )
    subgroup_timepoints: list[float] | None = Field(
        None, description="With subgroup_by = timepoint: the time points shown, in order."
    )
    designs: list[Design] | None = Field(
        None, min_length=1, description="Overrides the plan's designs."
    )
    sensitivity: list[SensitivityRule] = Field(default_factory=list)
    all_designs_variant: bool | None = Field(None, description="Overrides the plan default.")
    cumulative: bool | None = Field(
        None, description="Draw a cumulative forest plot (overrides the plan default)."
    )
    reproduces: str | None = Field(
        None, description="Which published figure or result this analysis reproduces."
    )
    notes: str | None = None

    @model_validator(mode="after")
    def _check(self) -> Analysis:
        if self.subgroup_timepoints is not None and self.subgroup_by != "timepoint":
            raise ValueError("subgroup_timepoints needs subgroup_by = 'timepoint'")
        if self.subgroup_by == "timepoint" and self.timepoint_weeks is not None:
            raise ValueError("subgroup_by = 'timepoint' needs timepoint_weeks = null")
        return self


class RevManSubgroup(_Model):
    """One subgroup of a review's analysis: its number, its name and its studies."""

    id: str = Field(pattern=_ID_PATTERN, description="Subgroup number, e.g. 1.1.2.")
    label: str = Field(min_length=1)
    comparison_ids: list[str] = Field(
        min_length=1, description="The comparisons (study rows) in this subgroup, in order."
    )


class RevManAnalysis(_Model):
    """One analysis of an imported review, pooled with RevMan's conventions.

    The settings are the review's own (RevMan 5 or RevMan Web): statistical method,
    effect measure, fixed or random effects, heterogeneity estimator, CI method, level,
    prediction interval and which totals are shown. ``comparison_ids`` lists the study
    rows in RevMan's order; each names a ``comparisons`` row, whose arms' rows for
    ``outcome`` at ``timepoint`` (or whose ``effect_estimates`` row, for generic inverse
    variance) are the data.
    """

    engine: Literal["revman"] = "revman"
    id: str = Field(pattern=_ID_PATTERN, description="The review's analysis number, e.g. 1.1.")
    title: str = Field(min_length=1)
    comparison: str = Field(min_length=1, description="The review's comparison (its name).")
    outcome: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="Outcome code.")
    outcome_label: str = Field(min_length=1, description="Label on plots and tables.")
    timepoint: str = Field("as_reported", description="Time point code of the rows.")
    unit: str | None = None
    data_type: Literal["dichotomous", "continuous", "generic"]
    method: Literal["MH", "IV", "PETO"]
    measure: str = Field(
        min_length=1, description="RR, OR, RD, MD, SMD, PETO_OR, or a generic measure's name."
    )
    random: bool
    tau2_method: Literal["DL", "REML"] = "DL"
    ci_method: Literal["Wald", "HKSJ"] = "Wald"
    level: float = Field(95.0, gt=50, lt=100, description="Confidence level in percent.")
    study_level: float | None = Field(None, gt=50, lt=100, description="Study CI level.")
    prediction: bool = False
    log_data: bool = Field(False, description="Generic data are natural logs (ratio measure).")
    swap_events: bool = Field(False, description="Pool non-events instead of events.")
    totals: Literal["overall", "subgroups", "none"] = "overall"
    subgroup_test: bool = Field(True, description="Show the test for subgroup differences.")
    favours: tuple[str, str] = Field(
        ("experimental", "control"), description="Labels of the two groups (1, 2)."
    )
    graph_labels: tuple[str, str] | None = Field(
        None, description="The forest plot's axis labels (left, right) as the review prints them."
    )
    comparison_ids: list[str] = Field(min_length=1)
    subgroups: list[RevManSubgroup] = Field(default_factory=list)
    published_source_id: str | None = Field(
        None, description="source_id whose published_results hold the review's own numbers."
    )
    software: Literal["revman5", "revman_web"] = Field(
        "revman5",
        description=(
            "The program whose stored results are reproduced: RevMan 5 (.rm5 files, RevMan 5 "
            "CSV exports) or RevMan Web (Cochrane data packages); they compute P of Chi² "
            "with different gamma functions."
        ),
    )
    cumulative: bool | None = Field(
        None, description="Draw a cumulative forest plot (overrides the plan default)."
    )
    published_decimals: int | None = Field(
        None,
        ge=0,
        le=20,
        description=(
            "Decimals the source rounded its stored results to (a Cochrane data package: 6; "
            "a RevMan 5 CSV export: 8); null when it stores full doubles (RevMan 5 files)."
        ),
    )
    reproduces: str | None = None
    notes: str | None = None

    @model_validator(mode="after")
    def _check(self) -> RevManAnalysis:
        if self.subgroups:
            members = [c for s in self.subgroups for c in s.comparison_ids]
            if sorted(members) != sorted(self.comparison_ids):
                raise ValueError("subgroups must hold exactly the analysis's comparison_ids")
        return self


AnyAnalysis = Annotated[Analysis | RevManAnalysis, Field(union_mode="left_to_right")]


class AnalysisPlan(_Model):
    """A list of analyses with shared defaults."""

    schema_ref: str | None = Field(
        None, alias="$schema", description="Path or URL of this JSON Schema (for editors)."
    )
    plan_version: Literal[1] = 1
    title: str = Field(min_length=1)
    description: str | None = None
    audited_source_id: str | None = Field(
        None,
        description=(
            "source_id of the review whose claims are compared with primary sources "
            "(the discrepancy table)."
        ),
    )
    caveats: list[str] = Field(
        default_factory=list,
        description=(
            "Known limits of the data behind the analyses (what no source read states, "
            "what the audited review does not report); printed in the report."
        ),
    )
    defaults: PlanDefaults = Field(default_factory=PlanDefaults)
    analyses: list[AnyAnalysis] = Field(
        description="The analyses; empty for a review that holds study data only."
    )

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _unique_ids(self) -> AnalysisPlan:
        seen: set[str] = set()
        for analysis in self.analyses:
            if analysis.id in seen:
                raise ValueError(f"analysis id {analysis.id!r} is used twice")
            seen.add(analysis.id)
        return self

    # resolved settings ---------------------------------------------------------------

    def method_for(self, analysis: Analysis) -> str:
        """The analysis's method, or the plan default."""
        return analysis.method or self.defaults.method

    def hksj_for(self, analysis: Analysis) -> bool:
        """The analysis's HKSJ setting, or the plan default."""
        return self.defaults.hksj if analysis.hksj is None else analysis.hksj

    def designs_for(self, analysis: Analysis) -> list[str]:
        """The analysis's designs, or the plan default."""
        return list(analysis.designs or self.defaults.designs)

    def cumulative_for(self, analysis: Analysis | RevManAnalysis) -> bool:
        """Whether the report draws the analysis's cumulative forest plot."""
        if analysis.cumulative is None:
            return self.defaults.cumulative
        return analysis.cumulative

    def all_designs_for(self, analysis: Analysis) -> bool:
        """Whether the all-designs variant runs for this analysis."""
        if analysis.all_designs_variant is None:
            return self.defaults.all_designs_variant
        return analysis.all_designs_variant


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "(top level)"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {err['msg']}{more}"


def parse_plan(data: Any, *, origin: str = "plan") -> AnalysisPlan:
    """Validate plan data (already parsed JSON) or raise a one-line PlanError."""
    try:
        return AnalysisPlan.model_validate(data)
    except ValidationError as exc:
        raise PlanError(f"{origin}: invalid analysis plan: {_first_error(exc)}") from None


def load_plan(path: Path | str) -> AnalysisPlan:
    """Read and validate an analysis plan JSON file (one-line PlanError on any problem)."""
    path = Path(path)
    try:
        data = read_json(path)
    except PackageError as exc:
        raise PlanError(str(exc)) from None
    return parse_plan(data, origin=str(path))


def plan_json_schema() -> dict[str, Any]:
    """The JSON Schema of an analysis plan (written to schemas/analysis-plan.schema.json)."""
    schema = AnalysisPlan.model_json_schema(by_alias=True, mode="validation")
    out: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "analysis-plan.schema.json",
    }
    out.update(schema)
    out["title"] = "trialpool analysis plan"
    out["description"] = (
        "Which analyses `trialpool report` runs and how. Generated from "
        "src/trialpool/plan.py by scripts/make_plan_schema.py; do not edit by hand."
    )
    return out


def _when(timepoint: float | str) -> tuple[str, str]:
    """(id suffix, title suffix) of a time point in weeks or a time point code."""
    if isinstance(timepoint, str):
        if timepoint == "as_reported":
            return f"-{timepoint}".replace("_", "-"), " (time point as reported)"
        return f"-{timepoint}".replace("_", "-"), f" at {timepoint.replace('_', ' ')}"
    return f"-{timepoint:g}w".replace(".", "p"), f" at {timepoint:g} weeks"


def _direction_note(info: OutcomeInfo | None) -> str | None:
    if info is not None and info.lower_is_better is not None:
        return None
    said = (
        f"is {info.direction.replace('_', ' ')} in the package's outcomes"
        if info is not None
        else "is not stated (the outcome is not in the package's outcomes)"
    )
    return (
        f"The direction of benefit {said}: the forest plot says which arm has the lower "
        "values, not which arm is favoured."
    )


def auto_plan(
    available: list[tuple[str, float | str | None, str, bool]],
    *,
    title: str,
    outcomes: Mapping[str, OutcomeInfo] | None = None,
    favours: tuple[str, str] | None = None,
) -> AnalysisPlan:
    """A plan with one analysis per outcome and time point found in a package.

    ``available`` holds ``(outcome, timepoint, kind, same_unit)`` tuples. ``timepoint``
    is the time in weeks, or the code of rows that state no weeks (``as_reported``,
    ``end_of_treatment``): every code of one outcome becomes one analysis without a time
    point (each study contributes its latest follow-up in weeks, or its rows of its one
    code). Continuous outcomes are pooled as MD when every row shares one unit, else
    SMD; dichotomous outcomes as RR.

    Label, unit (MD only) and direction come from ``outcomes`` (the package's
    ``outcomes`` resource; an outcome it does not describe keeps its code as label).
    ``direction`` lower_is_better or higher_is_better sets ``lower_is_better``; for
    ``unclear`` and ``not_applicable`` the analysis keeps the model's required
    ``lower_is_better = true`` only as a placeholder and its notes say the direction is
    unclear: the report then draws neutral labels (which arm is lower) instead of
    "Favours ...". ``favours`` names the arms (default: the plan's "MSC", "control").
    Used when no plan is given and the package has no ``analysis/plan.json``.
    """
    outcomes = outcomes or {}
    analyses: list[Analysis] = []
    codes: dict[str, list[str]] = {}
    entries: list[tuple[str, float | str | None, str, bool]] = []
    for outcome, timepoint, kind, same_unit in available:
        if isinstance(timepoint, str):
            if outcome not in codes:
                entries.append((outcome, timepoint, kind, same_unit))
                codes[outcome] = []
            codes[outcome].append(timepoint)
        else:
            entries.append((outcome, timepoint, kind, same_unit))
    for outcome, timepoint, kind, same_unit in entries:
        info = outcomes.get(outcome)
        label = info.label if info else outcome
        measure = "RR" if kind == "dichotomous" else ("MD" if same_unit else "SMD")
        notes = []
        if isinstance(timepoint, str) and len(codes[outcome]) > 1:
            tp, when = "-no-weeks", " (time points without weeks)"
        elif timepoint is None:
            tp, when = "", ""
        else:
            tp, when = _when(timepoint)
        if isinstance(timepoint, str):
            shown = ", ".join(codes[outcome])
            notes.append(
                f"Rows without weeks (time point {shown}): pooled without a time point, so a "
                "study with rows in weeks contributes its latest follow-up instead."
            )
        direction = _direction_note(info)
        if direction:
            notes.append(direction)
        analyses.append(
            Analysis(
                id=f"{outcome.replace('_', '-')}{tp}",
                title=f"{label}{when}",
                outcome=outcome,
                outcome_label=label,
                unit=info.unit if info is not None and measure == "MD" else None,
                timepoint_weeks=None if isinstance(timepoint, str) else timepoint,
                measure=measure,  # type: ignore[arg-type]
                lower_is_better=info is None or info.lower_is_better is not False,
                **({"favours": favours} if favours else {}),
                sensitivity=[Hksj(rule="hksj")],
                notes=" ".join(notes) or None,
            )
        )
    if not analyses:
        raise PlanError("the package has no outcome rows, and no analysis plan was given")
    return AnalysisPlan(
        title=title,
        description="Built from the outcomes present in the package (no plan was given).",
        analyses=analyses,
    )
