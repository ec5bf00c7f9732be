"""The neutral, typed in-memory model of one Cochrane review, as read from any source format.

Every reader (RevMan 5 ``.rm5``, RevMan 5 CSV export, Cochrane data package) produces one
:class:`Review`; nothing here knows which format it came from except the ``format`` field
and the ``locator`` strings that say where in the source each piece was found.

Conventions
-----------
* Analysis numbers are ``"C.O"`` (comparison.outcome), subgroup numbers ``"C.O.S"``.
* Study ids are the source's own (``"STD-Brink-1951"`` in ``.rm5``, ``"Abdollahi 2017"``
  in a data package); ``rows``, ``bias_items`` and ``studies`` use the same ids.
* :class:`RevManResult` holds the numbers RevMan itself computed, unchanged: ratio
  measures (RR, OR, Peto OR, and generic data entered on the log scale) on the ratio
  scale as RevMan prints them, weights in percent, ``se``/``var`` of the log ratio.
* Counts are ``int``; everything else numeric is ``float``; ``None`` means not given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

SourceFormat = Literal["rm5", "revman5_csv", "cochrane_data_package"]
StudyStatus = Literal["included", "excluded", "awaiting", "ongoing"]
#: risk-of-bias judgement in the tool's own vocabulary: RoB 1 low/high/unclear risk,
#: RoB 2 low/high risk and "some concerns" (never merged with "unclear"), ROBINS-I's
#: moderate/serious/critical/no information, and "not applicable" (any tool)
Judgement = Literal[
    "low",
    "high",
    "unclear",
    "some_concerns",
    "moderate",
    "serious",
    "critical",
    "no_information",
    "not_applicable",
]
#: "o_e" is RevMan's "O-E and variance" data (Peto's log effect (O-E)/V with SE 1/sqrt(V))
DataType = Literal["dichotomous", "continuous", "generic", "o_e"]
Method = Literal["MH", "IV", "PETO"]

#: effect measures with a normalised code; any other (generic inverse variance) measure
#: keeps its label as printed, e.g. "Ratio of means", "Hazard Ratio"
MEASURE_CODES: frozenset[str] = frozenset({"RR", "OR", "RD", "MD", "SMD", "PETO_OR"})


#: longest value written verbatim into the import log (longer ones are cut, with "…")
LOG_VALUE_CHARS = 300


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One case of the import log: input that is legal in its source format but outside
    trialpool's vocabulary or ranges, and what was done with it (mapped, clamped, kept
    verbatim elsewhere, or left out of the plan). Written to ``import-log.csv``.
    """

    #: the file, or the data-package member, the value was read from
    file: str
    #: where in it: "row 12", an element such as "QUALITY_ITEM_DATA_ENTRY STUDY_ID=...",
    #: or an analysis ("Analysis 1.2")
    row: str
    #: the column or attribute (empty when the case is about a whole row or analysis)
    field: str
    #: the value as read (shortened to LOG_VALUE_CHARS)
    value: str
    #: what was done, in words
    action: str

    @classmethod
    def of(cls, file: str, row: str, field: str, value: object, action: str) -> LogEntry:
        text = "" if value is None else str(value)
        if len(text) > LOG_VALUE_CHARS:
            text = text[: LOG_VALUE_CHARS - 1] + "…"
        return cls(file=file, row=row, field=field, value=text, action=" ".join(action.split()))


@dataclass(frozen=True, slots=True)
class RevManResult:
    """Numbers RevMan stored for one study row, one subgroup or one whole analysis."""

    estimate: float | None = None
    ci_lower: float | None = None
    ci_upper: float | None = None
    se: float | None = None
    var: float | None = None
    #: percent of the total weight
    weight: float | None = None
    z: float | None = None
    t: float | None = None
    #: p-value of the test for overall effect (Z or t)
    p: float | None = None
    tau2: float | None = None
    tau2_ci_lower: float | None = None
    tau2_ci_upper: float | None = None
    #: Cochran's Q (RevMan's "Chi²") for heterogeneity, its df and p-value
    chi2: float | None = None
    df: float | None = None
    p_chi2: float | None = None
    #: I² in percent
    i2: float | None = None
    pi_lower: float | None = None
    pi_upper: float | None = None
    #: number of studies, where RevMan stored it (``STUDIES`` in .rm5)
    k: int | None = None
    estimable: bool | None = None
    #: summed events and participants per arm, where RevMan stored them
    events1: int | None = None
    total1: int | None = None
    events2: int | None = None
    total2: int | None = None


@dataclass(frozen=True, slots=True)
class SubgroupTest:
    """RevMan's test for subgroup differences (``Q``/``P_Q``/``I2_Q`` or "Subgroup Chi²")."""

    chi2: float | None
    df: float | None
    p: float | None
    i2: float | None


@dataclass(frozen=True, slots=True)
class ReviewReference:
    """One bibliographic record of a study (``REFERENCE`` in .rm5, a record of the RIS)."""

    title: str | None
    authors: tuple[str, ...]
    source: str | None
    year: str | None
    volume: str | None = None
    issue: str | None = None
    pages: str | None = None
    #: lower-case identifier type -> value, e.g. {"doi": ..., "pmid": ..., "crs": ...}
    identifiers: dict[str, str] = field(default_factory=dict)
    primary: bool = False
    kind: str | None = None


@dataclass(frozen=True, slots=True)
class ReviewArm:
    """One arm of a study as listed in a data package's ``*-study-arms.csv``."""

    name: str
    description: str | None
    intervention: str | None


@dataclass(frozen=True, slots=True)
class ReviewStudy:
    study_id: str
    label: str
    year: int | None
    status: StudyStatus
    #: lower-case identifier type -> value: "doi", "pmid", "ctg" (ClinicalTrials.gov), "crs", ...
    identifiers: dict[str, str] = field(default_factory=dict)
    #: characteristic name (snake case: "methods", "participants", "interventions",
    #: "outcomes", "notes", "study_name", "starting_date", ...) -> plain text
    characteristics: dict[str, str] = field(default_factory=dict)
    exclusion_reason: str | None = None
    #: "PUB", "UNPUB", "MIX", ... as the source says
    data_source: str | None = None
    references: tuple[ReviewReference, ...] = ()
    arms: tuple[ReviewArm, ...] = ()
    locator: str = ""


@dataclass(frozen=True, slots=True)
class BiasDomain:
    domain_id: str
    label: str
    description: str | None
    #: judged per outcome (RevMan 5 ``LEVEL="GROUP"``, "…: All outcomes", RoB 2 per analysis)
    by_outcome: bool


@dataclass(frozen=True, slots=True)
class BiasItem:
    study_id: str
    domain_id: str
    #: None when the source's label has no faithful mapping (``label`` keeps it)
    judgement: Judgement | None
    #: the reviewers' support for the judgement, plain text
    support: str | None
    #: outcome (group) the judgement is for: a RevMan 5 group name such as "All outcomes",
    #: or for RoB 2 judged per analysis the analysis name
    outcome_group: str | None
    locator: str
    #: analysis number "C.O" when the judgement belongs to one analysis (RoB 2 in data rows)
    analysis: str | None = None
    #: the judgement as the source wrote it ("YES", "Low risk", "Not applicable", ...)
    label: str | None = None


@dataclass(frozen=True, slots=True)
class ReviewSubgroup:
    number: str
    name: str
    result: RevManResult | None
    locator: str = ""


@dataclass(frozen=True, slots=True)
class ReviewRow:
    """One study's data in one analysis (a study may have several rows in one analysis)."""

    study_id: str
    #: subgroup number "C.O.S", or None when the analysis has no subgroups
    subgroup: str | None
    #: data package "Applicability" (e.g. "SUBGROUP_AND_OVERALL"), None where not given
    applicability: str | None
    e1: int | None = None
    n1: int | None = None
    e2: int | None = None
    n2: int | None = None
    m1: float | None = None
    sd1: float | None = None
    m2: float | None = None
    sd2: float | None = None
    #: generic inverse variance input (on the log scale when ``log_data``)
    estimate: float | None = None
    se: float | None = None
    #: "O-E and variance" input
    oe: float | None = None
    variance: float | None = None
    stored: RevManResult = field(default_factory=RevManResult)
    footnote: str | None = None
    #: RevMan's display order, where given
    order: int | None = None
    locator: str = ""


@dataclass(frozen=True, slots=True)
class ReviewAnalysis:
    number: str
    comparison_number: int
    comparison_name: str
    outcome_number: int
    name: str
    data_type: DataType
    method: Method
    #: normalised code (see MEASURE_CODES) or the generic measure's label
    measure: str
    #: the measure as the source wrote it ("RR", "Std. Mean Difference", ...)
    measure_label: str
    random: bool
    #: heterogeneity (tau²) estimator as RevMan names it: "DL", "REML", ...; RevMan 5 is
    #: always "DL"; None where the source says "#N/A" (fixed effect in RevMan Web)
    tau2_method: str | None
    #: "Wald" or "HKSJ"
    ci_method: str
    #: confidence level of the pooled estimates (0.95)
    level: float
    #: confidence level of the study CIs
    study_level: float
    prediction: bool
    log_data: bool
    swap_events: bool
    experimental_label: str | None
    control_label: str | None
    favours_left: str | None
    favours_right: str | None
    units: str | None
    #: RevMan shows the overall (total) estimate ("TOTALS"/"Overall estimates")
    overall_shown: bool
    #: RevMan shows the test for subgroup differences
    subgroup_test_shown: bool
    subgroups: tuple[ReviewSubgroup, ...]
    rows: tuple[ReviewRow, ...]
    result: RevManResult | None
    subgroup_test: SubgroupTest | None
    locator: str
    #: RevMan's "Totals" option: "overall" (totals and subtotals), "subgroups" (subtotals
    #: only) or "none" (no pooled estimate shown)
    totals: Literal["overall", "subgroups", "none"] = "overall"
    #: why trialpool cannot re-run this analysis as RevMan did (an unknown method, model or
    #: measure); its data and RevMan's numbers are imported, the plan leaves it out
    unsupported: str | None = None


@dataclass(frozen=True, slots=True)
class Review:
    #: file (or folder) name only, never a full path
    source_file: str
    format: SourceFormat
    #: Cochrane review number such as "CD004366", where the source or its name gives one
    review_id: str | None
    title: str | None
    #: how the source asks to be cited, e.g. the .rm5 title's "When citing this record
    #: quote ..." text
    citation: str | None
    studies: tuple[ReviewStudy, ...]
    analyses: tuple[ReviewAnalysis, ...]
    bias_domains: tuple[BiasDomain, ...]
    bias_items: tuple[BiasItem, ...]
    #: what was read but is not fully supported, and what was left out, one line each
    notes: tuple[str, ...] = ()
    #: the cases of the import log found while reading (see :class:`LogEntry`)
    log: tuple[LogEntry, ...] = ()


# ----------------------------------------------------------------- shared vocabulary

_MEASURES: dict[str, str] = {
    "rr": "RR",
    "risk ratio": "RR",
    "relative risk": "RR",
    "or": "OR",
    "odds ratio": "OR",
    "rd": "RD",
    "risk difference": "RD",
    "md": "MD",
    "mean difference": "MD",
    "wmd": "MD",
    "weighted mean difference": "MD",
    "smd": "SMD",
    "std mean difference": "SMD",
    "standardized mean difference": "SMD",
    "standardised mean difference": "SMD",
    "peto or": "PETO_OR",
    "peto odds ratio": "PETO_OR",
}


def _measure_key(label: str) -> str:
    return " ".join("".join(ch if ch.isalnum() else " " for ch in label.lower()).split())


def is_non_event_label(label: str) -> bool:
    """RevMan names a measure of swapped events "Risk Ratio (Non-event)"."""
    return _measure_key(label).endswith("non event")


def normalise_measure(label: str, method: Method | None = None) -> str:
    """The effect measure's code ("RR", "OR", "RD", "MD", "SMD", "PETO_OR"), or the
    label itself (white space tidied) for a generic measure such as "Ratio of means".

    An odds ratio pooled with the Peto method is "PETO_OR"; "(Non-event)" (RevMan's label
    when events and non-events are swapped) does not change the measure.
    """
    key = _measure_key(label)
    if is_non_event_label(label):
        key = key.removesuffix("non event").strip()
    code = _MEASURES.get(key)
    if code is None:
        return " ".join(label.split())
    if code == "OR" and method == "PETO":
        return "PETO_OR"
    return code


def is_ratio_measure(measure: str, log_data: bool = False) -> bool:
    """RevMan prints this measure on the ratio scale (RR, OR, Peto OR, log-scale generic)."""
    return measure in {"RR", "OR", "PETO_OR"} or (measure not in MEASURE_CODES and log_data)


_METHODS: dict[str, Method] = {
    "mh": "MH",
    "m h": "MH",
    "mantel haenszel": "MH",
    "iv": "IV",
    "inverse variance": "IV",
    "peto": "PETO",
    "exp o e var": "PETO",
}


def normalise_method(label: str) -> Method | None:
    return _METHODS.get(_measure_key(label))


_JUDGEMENTS: dict[str, Judgement] = {
    "low": "low",
    "low risk": "low",
    "low risk of bias": "low",
    "yes": "low",
    "high": "high",
    "high risk": "high",
    "high risk of bias": "high",
    "no": "high",
    "unclear": "unclear",
    "unclear risk": "unclear",
    "unclear risk of bias": "unclear",
    "unknown": "unclear",
    "some concerns": "some_concerns",
    "moderate": "moderate",
    "moderate risk": "moderate",
    "moderate risk of bias": "moderate",
    "serious": "serious",
    "serious risk": "serious",
    "serious risk of bias": "serious",
    "critical": "critical",
    "critical risk": "critical",
    "critical risk of bias": "critical",
    "no information": "no_information",
    "not applicable": "not_applicable",
    "n a": "not_applicable",
}


def judgement_from_label(label: str) -> Judgement | None:
    """ "Low risk"/"YES" -> "low", "High risk"/"NO" -> "high", "Unclear risk"/"UNKNOWN"
    -> "unclear", "Some concerns" -> "some_concerns", ROBINS-I's "Moderate", "Serious",
    "Critical", "No information", and "Not applicable"/"N/A" -> "not_applicable"; None for
    anything else (kept verbatim by the caller, never guessed)."""
    return _JUDGEMENTS.get(_measure_key(label))


def complete_studies(
    studies: list[ReviewStudy], used: dict[str, str], notes: list[str]
) -> list[ReviewStudy]:
    """Add an included study for every id used (in rows or bias items) but not listed.

    ``used`` maps study id -> where it was first seen; each addition is noted.
    """
    known = {study.study_id for study in studies}
    added = [
        ReviewStudy(
            study_id=study_id,
            label=study_id,
            year=None,
            status="included",
            locator=where,
        )
        for study_id, where in used.items()
        if study_id not in known
    ]
    if added:
        names = ", ".join(study.study_id for study in added[:5])
        more = f" and {len(added) - 5} more" if len(added) > 5 else ""
        notes.append(
            f"{len(added)} studies used in the data but not listed among the studies were "
            f"added as included studies: {names}{more}"
        )
    return studies + added
