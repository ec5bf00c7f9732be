"""From a review (the neutral model) to the rows of a core package and its analysis plan.

One job: map every piece of a :class:`~trialpool.imports.model.Review` onto the core
resources, lossless where the core has a place for it, and say what has none:

* each included study -> ``studies``; each study's characteristics -> ``claims`` (one
  claim per characteristic, status secondary); every study list (included, excluded,
  awaiting, ongoing) -> ``screening`` (the PRISMA counts);
* each RevMan comparison -> one experimental and one control arm per study, and one
  ``comparisons`` row per study (a study that appears more than once in one analysis
  gets one arm pair per appearance, so every data row keeps its own arms);
* each analysis -> an ``outcomes`` row (outcome ``a<C>_<O>``, time point ``as_reported``:
  a RevMan analysis names its outcome and time together), its per-arm rows
  (``dichotomous_outcomes``, ``continuous_outcomes``) or study-level estimates
  (``effect_estimates``), and an analysis of the plan with the review's own settings;
* RevMan's stored numbers (overall, per subgroup, per study, the test for subgroup
  differences) -> ``published_results``, for the reproduction audit;
* risk-of-bias judgements -> ``bias_judgements`` (the tool whose levels the review's
  judgements of that scope use: RoB 1, RoB 2 where it judges "some concerns", ROBINS-I
  where it judges "moderate", "serious", "critical" or "no information", ``other`` when
  they mix levels of several tools); a judgement with no faithful mapping -> a claim
  (``risk_of_bias_<domain>``) that keeps it verbatim;
* O-E and variance data -> ``effect_estimates`` (Peto: log effect (O-E)/V, SE 1/sqrt(V),
  ``verification = derived``), pooled by inverse variance as RevMan does.

Every row cites the review (``source_id``) and a locator (e.g. ``Analysis 1.1,
STD-Brink-1951``); every value is ``verification = secondary`` (taken from a review).
Values the core cannot hold (an arm with no participants, an SD of 0, a generic estimate
without an SE) are left out with a note: the analysis then shows that study as not
estimable, as RevMan does. Every such case, and every case the reader logged, is one line
of the import log (``Tables.log``); an analysis trialpool cannot re-run (``unsupported``)
or that has no study rows keeps its data and RevMan's numbers but is left out of the plan.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trialpool.analysis.reproduce import NOT_ESTIMABLE
from trialpool.imports.model import (
    LogEntry,
    Review,
    ReviewAnalysis,
    ReviewRow,
    ReviewStudy,
    RevManResult,
)
from trialpool.package.core import core_resources
from trialpool.package.loader import Resource
from trialpool.validate.rules import tool_vocabulary

AS_REPORTED = "as_reported"
Row = dict[str, Any]

#: RevMan's methods in words, for the ``model`` of published results
_METHOD_WORDS = {"MH": "M-H", "IV": "IV", "PETO": "Peto"}


def slug(text: str, *, prefix: str = "s") -> str:
    """A lower-case identifier (``^[a-z][a-z0-9_]*$``) made from ``text``."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    out = re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_")
    if not out or not out[0].isalpha():
        out = f"{prefix}_{out}" if out else prefix
    return out


class _Ids:
    """Unique slugs: the same key always gets the same id, two keys never share one."""

    def __init__(self) -> None:
        self.by_key: dict[Any, str] = {}
        self.used: set[str] = set()

    def get(self, key: Any, text: str, *, prefix: str = "s") -> str:
        if key in self.by_key:
            return self.by_key[key]
        base = slug(text, prefix=prefix)[:60]
        candidate, n = base, 2
        while candidate in self.used:
            candidate, n = f"{base}_{n}", n + 1
        self.used.add(candidate)
        self.by_key[key] = candidate
        return candidate


def _decimals(value: float) -> int:
    text = repr(float(value))
    if "e" in text or "E" in text:
        return 99
    return len(text.split(".", 1)[1]) if "." in text else 0


def stored_decimals(review: Review) -> int | None:
    """Decimals the source rounded RevMan's results to (the most any stored number has),
    or None when it stores full doubles (12 decimals or more somewhere)."""
    most = 0
    for a in review.analyses:
        results = [a.result, *(s.result for s in a.subgroups), *(r.stored for r in a.rows)]
        for result in results:
            if result is None:
                continue
            for name in ("estimate", "ci_lower", "ci_upper", "weight", "tau2", "chi2", "i2"):
                value = getattr(result, name)
                if value is not None and math.isfinite(value):
                    most = max(most, _decimals(value))
    return None if most >= 12 else most


def number_text(value: float | None) -> str:
    """A number as Table Schema reads it back exactly (the shortest round-trip repr);
    empty for a missing or non-finite value."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return repr(value)


@dataclass
class Tables:
    """The rows of every resource, the plan's analyses, and what could not be kept."""

    rows: dict[str, list[Row]] = field(default_factory=dict)
    analyses: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: the import log: the reader's cases, then the mapping's (see imports.log)
    log: list[LogEntry] = field(default_factory=list)

    def add(self, resource: str, row: Row) -> None:
        self.rows.setdefault(resource, []).append(row)


@dataclass(frozen=True)
class _Pair:
    comparison_id: str
    experimental: str
    control: str


class _Builder:
    def __init__(self, review: Review, source_id: str) -> None:
        self.review = review
        self.source_id = source_id
        self.t = Tables()
        self.study_ids = _Ids()
        self.arm_ids: dict[str, _Ids] = {}
        self.comparison_ids = _Ids()
        self.result_ids = _Ids()
        self.pairs: dict[tuple[str, int, str | None], _Pair] = {}
        self.studies: dict[str, ReviewStudy] = {s.study_id: s for s in review.studies}
        self.claim_numbers: dict[str, int] = {}
        self.decimals = stored_decimals(review)
        self.t.log.extend(review.log)
        for text in review.notes:
            self.t.notes.append(text)
            self.t.log.append(LogEntry.of(review.source_file, "", "", "", text))

    def note(self, where: str, field: str, value: object, action: str) -> None:
        """A case of the mapping: a note for the README and plan, a line of the log."""
        self.t.notes.append(f"{where}: {action}")
        self.t.log.append(LogEntry.of(self.review.source_file, where, field, value, action))

    # -- studies, screening, claims -------------------------------------------------

    def study_id(self, source_study: str) -> str:
        study = self.studies.get(source_study)
        label = study.label if study is not None else source_study
        return self.study_ids.get(source_study, label)

    def add_studies(self) -> None:
        for n, study in enumerate(self.review.studies, start=1):
            sid = self.study_id(study.study_id)
            if study.status == "included":
                self.t.add("studies", self._study_row(sid, study))
                for key, text in study.characteristics.items():
                    if text and text.strip():
                        self._claim(sid, f"characteristics_{slug(key)}", text, key)
            decision = {"included": "include", "excluded": "exclude"}.get(
                study.status, study.status
            )
            reason = study.exclusion_reason
            if decision != "include" and not (reason and reason.strip()):
                reason = f"study listed as {study.status} by the review; no reason given"
            self.t.add(
                "screening",
                {
                    "record_id": f"r{n:04d}",
                    "study_id": sid,
                    "label": study.label,
                    "record_kind": "",
                    "identified_via": "",
                    "stage": "included" if study.status == "included" else "eligibility",
                    "decision": decision,
                    "reason": "" if decision == "include" else reason,
                    "source_id": self.source_id,
                    "notes": f"{study.status} studies of the review ({study.locator})",
                },
            )

    def _study_row(self, sid: str, study: ReviewStudy) -> Row:
        ids = study.identifiers
        doi = ids.get("doi", "")
        pmid = ids.get("pmid", "")
        registration = ids.get("ctg") or ids.get("registration") or ""
        notes = [f"Imported from {self.review.source_file} ({study.locator})."]
        if study.data_source:
            notes.append(f"Data source as the review codes it: {study.data_source}.")
        other = {k: v for k, v in ids.items() if k not in {"doi", "pmid", "ctg", "registration"}}
        if other:
            notes.append(
                "Other identifiers: "
                + "; ".join(f"{k} {v}" for k, v in sorted(other.items()))
                + "."
            )
        if not re.fullmatch(r"10\.[0-9]{4,9}/\S+", doi):
            doi = ""
        if not re.fullmatch(r"[0-9]{1,9}", pmid):
            pmid = ""
        if registration and not re.fullmatch(r"[A-Za-z0-9-]+", registration):
            notes.append(f"Registration as printed: {registration}.")
            registration = ""
        year = study.year if study.year is not None and 1700 <= study.year <= 2100 else None
        return {
            "study_id": sid,
            "label": study.label,
            "first_author": "",
            "year": "" if year is None else str(year),
            "title": "",
            "journal": "",
            "doi": doi,
            "pmid": pmid,
            "registration": registration,
            "registration_link": "",
            "country": "",
            "centres": "",
            "design": "unclear",
            "blinding": "",
            "etiology": "",
            "population": "",
            "enrolment_period": "",
            "follow_up_weeks": "",
            "source_id": self.source_id,
            "notes": " ".join(notes)
            + " Design is 'unclear' because the review states it only in prose "
            "(see the claims characteristics_methods).",
        }

    def _claim(
        self,
        sid: str,
        fieldname: str,
        value: str,
        key: str,
        *,
        locator: str | None = None,
        note: str = "",
    ) -> None:
        n = self.claim_numbers.get(sid, 0) + 1
        self.claim_numbers[sid] = n
        self.t.add(
            "claims",
            {
                "claim_id": f"{sid}-{n:03d}",
                "study_id": sid,
                "field": fieldname,
                "value": value,
                "source_id": self.source_id,
                "locator": locator or f"Characteristics of included studies, {key}",
                "status": "secondary",
                "resolution": "",
                "note": note,
            },
        )

    # -- comparisons and arms -------------------------------------------------------

    def pair(self, analysis: ReviewAnalysis, row: ReviewRow, occurrence: int | None) -> _Pair:
        """The arm pair of ``row``: one per study per comparison; when the study appears
        more than once in the analysis, one per subgroup and appearance (``occurrence``
        counts the study's rows within the subgroup), so each row keeps its own arms."""
        sid = self.study_id(row.study_id)
        repeated = occurrence is not None
        key = (
            row.study_id,
            analysis.comparison_number,
            row.subgroup if repeated else None,
            occurrence,
        )
        if key in self.pairs:
            return self.pairs[key]
        arms = self.arm_ids.setdefault(sid, _Ids())
        tag = f"c{analysis.comparison_number}"
        if repeated and row.subgroup:
            tag += "_s" + row.subgroup.rsplit(".", 1)[-1]
        if occurrence:
            tag += f"_{occurrence + 1}"
        exp = arms.get((key, "e"), f"{tag}_experimental")
        ctl = arms.get((key, "c"), f"{tag}_control")
        cid = self.comparison_ids.get(key, f"{sid}_{tag}")
        where = f"comparison {analysis.comparison_number} ({analysis.comparison_name})"
        if repeated and row.subgroup:
            where += f", subgroup {row.subgroup}"
        for arm_id, label, group in (
            (exp, analysis.experimental_label, 1),
            (ctl, analysis.control_label, 2),
        ):
            name = label or ("experimental" if group == 1 else "control")
            self.t.add(
                "arms",
                {
                    "study_id": sid,
                    "arm_id": arm_id,
                    "label": name,
                    "description": f"{name}: group {group} of the review's {where}.",
                    "comparator_type": "unclear" if group == 2 else "",
                    "co_intervention": "",
                    "n_randomised": "",
                    "n_analysed": "",
                    "source_id": self.source_id,
                    "notes": "comparator_type unclear: the review's data do not say what the "
                    "control received (see the study's characteristics)."
                    if group == 2
                    else "",
                },
            )
        self.t.add(
            "comparisons",
            {
                "comparison_id": cid,
                "study_id": sid,
                "experimental_arm_id": exp,
                "control_arm_id": ctl,
                "label": analysis.comparison_name,
                "primary": "",
                "source_id": self.source_id,
                "notes": f"Study {row.study_id} in the review's {where}.",
            },
        )
        pair = _Pair(cid, exp, ctl)
        self.pairs[key] = pair
        return pair

    # -- analyses -------------------------------------------------------------------

    def add_analysis(self, analysis: ReviewAnalysis) -> None:
        where = f"Analysis {analysis.number}"
        outcome = "a" + analysis.number.replace(".", "_")
        self.t.add(
            "outcomes",
            {
                "outcome_id": outcome,
                "label": analysis.name,
                "data_type": "generic" if analysis.data_type == "o_e" else analysis.data_type,
                "unit": analysis.units or "",
                "direction": "unclear",
                "description": f"{analysis.comparison_name}: {analysis.name}",
                "source_id": self.source_id,
                "locator": where,
                "notes": "Direction of benefit is not stated as data by the review; its forest "
                f"plot labels are: {analysis.favours_left or '?'} | "
                f"{analysis.favours_right or '?'}.",
            },
        )
        counts: dict[str, int] = {}
        for row in analysis.rows:
            counts[row.study_id] = counts.get(row.study_id, 0) + 1
        comparison_ids: list[str] = []
        by_subgroup: dict[str, list[str]] = {}
        seen: dict[tuple[str, str | None], int] = {}
        for row in analysis.rows:
            occurrence = None
            if counts[row.study_id] > 1:
                occurrence = seen.get((row.study_id, row.subgroup), 0)
                seen[(row.study_id, row.subgroup)] = occurrence + 1
            pair = self.pair(analysis, row, occurrence)
            comparison_ids.append(pair.comparison_id)
            if row.subgroup:
                by_subgroup.setdefault(row.subgroup, []).append(pair.comparison_id)
            self._data_rows(analysis, outcome, row, pair)
            if row.applicability not in (None, "SUBGROUP_AND_OVERALL"):
                self.note(
                    row.locator or where,
                    "Applicability",
                    row.applicability,
                    f"{row.study_id} is pooled in its subgroup and in the total alike",
                )
        self._published(analysis, outcome)
        names = {s.number: s.name for s in analysis.subgroups}
        plan: dict[str, Any] = {
            "engine": "revman",
            "id": analysis.number,
            "title": analysis.name,
            "comparison": analysis.comparison_name,
            "outcome": outcome,
            "outcome_label": analysis.name,
            "timepoint": AS_REPORTED,
            "unit": analysis.units,
            "data_type": "generic" if analysis.data_type == "o_e" else analysis.data_type,
            "method": "IV" if analysis.data_type == "o_e" else analysis.method,
            "measure": analysis.measure,
            "random": analysis.random,
            "tau2_method": "REML" if (analysis.tau2_method or "").upper() == "REML" else "DL",
            "ci_method": "HKSJ" if analysis.ci_method.upper() == "HKSJ" else "Wald",
            "level": round(analysis.level * 100, 10),
            "study_level": round(analysis.study_level * 100, 10),
            "prediction": analysis.prediction,
            "log_data": analysis.log_data or analysis.data_type == "o_e",
            "swap_events": analysis.swap_events,
            "totals": analysis.totals,
            "subgroup_test": analysis.subgroup_test_shown,
            "favours": (
                analysis.experimental_label or "experimental",
                analysis.control_label or "control",
            ),
            "graph_labels": (analysis.favours_left, analysis.favours_right)
            if analysis.favours_left and analysis.favours_right
            else None,
            "comparison_ids": comparison_ids,
            "subgroups": [
                {"id": number, "label": names.get(number, number), "comparison_ids": ids}
                for number, ids in by_subgroup.items()
            ],
            "software": "revman_web"
            if self.review.format == "cochrane_data_package"
            else "revman5",
            "published_source_id": self.source_id,
            "published_decimals": self.decimals,
            "reproduces": f"{self.review.review_id or self.review.source_file}, {where}",
        }
        notes: list[str] = []
        if analysis.random and (analysis.tau2_method or "DL").upper() not in ("DL", "REML"):
            notes.append(
                f"The review's heterogeneity estimator {analysis.tau2_method} is not "
                "implemented; DerSimonian-Laird is used."
            )
            self.note(where, "Heterogeneity estimator", analysis.tau2_method, notes[-1])
        if analysis.ci_method.upper() not in ("WALD", "HKSJ"):
            notes.append(
                f"The review's CI method {analysis.ci_method} is not implemented; Wald "
                "intervals are used."
            )
        if analysis.data_type == "o_e":
            notes.append(
                "O-E and variance data: each study's log effect is (O-E)/V with SE 1/sqrt(V) "
                "(Peto), pooled by inverse variance, as RevMan does."
            )
        if notes:
            plan["notes"] = " ".join(notes)
        if analysis.unsupported:
            self.note(
                where,
                "",
                analysis.name,
                f"not in the plan: {analysis.unsupported} (its data and RevMan's numbers are "
                "in the package)",
            )
            return
        if not comparison_ids:
            self.note(where, "", analysis.name, "no study rows; not in the plan")
            return
        self.t.analyses.append(plan)

    def _data_rows(self, a: ReviewAnalysis, outcome: str, row: ReviewRow, pair: _Pair) -> None:
        sid = self.study_id(row.study_id)
        locator = f"Analysis {a.number}, {row.study_id}"
        common = {
            "outcome": outcome,
            "timepoint": AS_REPORTED,
            "timepoint_weeks": "",
            "source_id": self.source_id,
            "locator": locator,
            "verification": "secondary",
            "derivation": "",
        }
        if a.data_type == "dichotomous":
            for arm, e, n in ((pair.experimental, row.e1, row.n1), (pair.control, row.e2, row.n2)):
                if e is None or n is None or n < 1:
                    self.note(
                        locator,
                        "events/total",
                        f"{e}/{n}",
                        f"arm {arm} has no participants; not kept (not estimable, as in RevMan)",
                    )
                    continue
                self.t.add(
                    "dichotomous_outcomes",
                    {
                        "study_id": sid,
                        "arm_id": arm,
                        **common,
                        "events": str(e),
                        "total": str(n),
                        "notes": row.footnote or "",
                    },
                )
        elif a.data_type == "continuous":
            arms = (
                (pair.experimental, row.m1, row.sd1, row.n1),
                (pair.control, row.m2, row.sd2, row.n2),
            )
            for arm, m, sd, n in arms:
                if m is None or sd is None or n is None or n < 1 or not sd > 0:
                    self.note(
                        locator,
                        "mean/SD/N",
                        f"{m}/{sd}/{n}",
                        f"arm {arm} has no usable mean, "
                        "SD > 0 and N; not kept (not estimable, as in RevMan)",
                    )
                    continue
                self.t.add(
                    "continuous_outcomes",
                    {
                        "study_id": sid,
                        "arm_id": arm,
                        **common,
                        "statistic": "mean_sd",
                        "n": str(n),
                        "mean": number_text(m),
                        "sd": number_text(sd),
                        "se": "",
                        "median": "",
                        "q1": "",
                        "q3": "",
                        "min": "",
                        "max": "",
                        "unit": a.units or "",
                        "notes": row.footnote or "",
                    },
                )
        else:
            estimate, se, derivation, verification = row.estimate, row.se, "", "secondary"
            notes = row.footnote or ""
            if a.data_type == "o_e":
                if row.oe is None or row.variance is None or not row.variance > 0:
                    self.note(
                        locator,
                        "O-E/Var",
                        f"{row.oe}/{row.variance}",
                        "no O-E with a variance > 0; not kept (not estimable, as in RevMan)",
                    )
                    return
                estimate, se = row.oe / row.variance, 1 / math.sqrt(row.variance)
                verification = "derived"
                derivation = (
                    "Peto's method for O-E and variance data (Deeks & Higgins, Statistical "
                    "algorithms in RevMan 5): log effect = (O-E)/V, SE = 1/sqrt(V)"
                )
                given = f"O-E = {number_text(row.oe)}, V = {number_text(row.variance)}"
                notes = f"{given} (as the review gives them). {notes}".strip()
            elif estimate is None or se is None or not se > 0:
                self.note(
                    locator,
                    "estimate/SE",
                    f"{estimate}/{se}",
                    "no estimate with an SE > 0; not kept (not estimable, as in RevMan)",
                )
                return
            self.t.add(
                "effect_estimates",
                {
                    "comparison_id": pair.comparison_id,
                    "outcome": outcome,
                    "timepoint": AS_REPORTED,
                    "timepoint_weeks": "",
                    "measure": a.measure_label,
                    "log_scale": "true" if a.log_data or a.data_type == "o_e" else "false",
                    "estimate": number_text(estimate),
                    "se": number_text(se),
                    "n_experimental": "" if row.n1 is None else str(row.n1),
                    "n_control": "" if row.n2 is None else str(row.n2),
                    "source_id": self.source_id,
                    "locator": locator,
                    "verification": verification,
                    "derivation": derivation,
                    "notes": notes,
                },
            )

    # -- RevMan's own numbers ------------------------------------------------------

    def _result_row(
        self,
        a: ReviewAnalysis,
        outcome: str,
        scope: str,
        result: RevManResult,
        *,
        key: Any,
        subgroup: str | None = None,
        study: str | None = None,
        locator: str,
    ) -> Row:
        rid = self.result_ids.get(key, "r_" + "_".join(str(k) for k in key if k), prefix="r")
        estimable = result.estimable
        model = f"{_METHOD_WORDS.get(a.method, a.method)}, {'Random' if a.random else 'Fixed'}"
        if a.random:
            model += f" ({a.tau2_method or 'DL'}, {a.ci_method})"
        n = None
        if result.total1 is not None and result.total2 is not None:
            n = result.total1 + result.total2
        if result.estimable is False:  # RevMan stores placeholders (0) for these
            result = RevManResult(k=result.k, total1=result.total1, total2=result.total2)
        return {
            "result_id": rid,
            "source_id": self.source_id,
            "outcome": a.name,
            "outcome_code": outcome,
            "analysis_id": a.number,
            "scope": scope,
            "subgroup_id": subgroup or "",
            "study_id": study or "",
            "timepoint_weeks": "",
            "timepoint_label": "",
            "measure": a.measure,
            "estimate": number_text(result.estimate),
            "ci_lower": number_text(result.ci_lower),
            "ci_upper": number_text(result.ci_upper),
            "se": number_text(result.se),
            "weight": number_text(result.weight),
            "z": number_text(result.t if result.t is not None else result.z),
            "p_value": "" if result.p is None else repr(float(result.p)),
            "i2": number_text(result.i2),
            "tau2": number_text(result.tau2),
            "q": number_text(result.chi2),
            "q_df": "" if result.df is None else str(int(result.df)),
            "q_p": number_text(result.p_chi2),
            "pi_lower": number_text(result.pi_lower),
            "pi_upper": number_text(result.pi_upper),
            "model": model,
            "k_studies": "" if result.k is None else str(result.k),
            "n_patients": "" if n is None else str(n),
            "locator": locator,
            "note": NOT_ESTIMABLE if estimable is False else "",
        }

    def _published(self, a: ReviewAnalysis, outcome: str) -> None:
        where = f"Analysis {a.number}"
        if a.result is not None:
            self.t.add(
                "published_results",
                self._result_row(
                    a, outcome, "overall", a.result, key=(a.number,), locator=f"{where}, total"
                ),
            )
        for sub in a.subgroups:
            if sub.result is not None:
                self.t.add(
                    "published_results",
                    self._result_row(
                        a,
                        outcome,
                        "subgroup",
                        sub.result,
                        key=(sub.number,),
                        subgroup=sub.number,
                        locator=f"{where}, subgroup {sub.number}",
                    ),
                )
        estimable_subgroups = sum(
            1
            for s in a.subgroups
            if s.result is not None
            and (
                s.result.estimable or (s.result.estimable is None and s.result.estimate is not None)
            )
        )
        # with fewer than two estimable subgroups RevMan stores a placeholder test (Q = 0)
        if (
            a.subgroup_test is not None
            and a.subgroup_test.chi2 is not None
            and (estimable_subgroups >= 2)
        ):
            test = a.subgroup_test
            self.t.add(
                "published_results",
                self._result_row(
                    a,
                    outcome,
                    "subgroup_difference",
                    RevManResult(chi2=test.chi2, df=test.df, p_chi2=test.p, i2=test.i2),
                    key=(a.number, "test"),
                    locator=f"{where}, test for subgroup differences",
                ),
            )
        for i, row in enumerate(a.rows, start=1):
            sid = self.study_id(row.study_id)
            self.t.add(
                "published_results",
                self._result_row(
                    a,
                    outcome,
                    "study",
                    row.stored,
                    key=(a.number, i, sid),
                    subgroup=row.subgroup,
                    study=sid,
                    locator=row.locator,
                ),
            )

    # -- risk of bias ------------------------------------------------------------

    def add_bias(self) -> None:
        domains = {d.domain_id: d for d in self.review.bias_domains}
        seen: set[tuple[str, str, str, str]] = set()
        tools = _scope_tools(self.review)
        for item in self.review.bias_items:
            scope = item.analysis or item.outcome_group or "all"
            tool = tools[scope]
            domain = domains.get(item.domain_id)
            label = domain.label if domain is not None else item.domain_id
            sid = self.study_id(item.study_id)
            code = slug(label, prefix="d")[:60]
            scope_text = "all" if scope in ("", "All outcomes") else scope
            if item.judgement is None:
                support = f" The review's support: {item.support}" if item.support else ""
                self._claim(
                    sid,
                    f"risk_of_bias_{code}"[:60],
                    item.label or "",
                    label,
                    locator=item.locator,
                    note=f"Risk-of-bias judgement for {label} ({scope_text}) as the review "
                    f"gives it; it has no faithful mapping to trialpool's judgements.{support}",
                )
                continue
            key = (sid, tool, code, scope_text)
            if key in seen:
                self.note(
                    item.locator,
                    "judgement",
                    item.label or item.judgement,
                    f"a second judgement for {sid}, {label}, {scope_text}; the first is kept",
                )
                continue
            seen.add(key)
            self.t.add(
                "bias_judgements",
                {
                    "study_id": sid,
                    "tool": tool,
                    "domain": code,
                    "domain_label": label,
                    "result_scope": scope_text,
                    "judgement": item.judgement,
                    "support": item.support or "",
                    "assessor": f"review authors ({self.review.review_id or 'the review'})",
                    "source_id": self.source_id,
                    "notes": item.locator,
                },
            )
        for scope, tool in tools.items():
            if tool == "other":
                self.note(
                    f"risk of bias ({scope})",
                    "tool",
                    ", ".join(sorted(_scope_judgements(self.review)[scope])),
                    "the judgements mix levels of several tools: kept under tool 'other'",
                )


def _scope_judgements(review: Review) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for item in review.bias_items:
        scope = item.analysis or item.outcome_group or "all"
        out.setdefault(scope, set())
        if item.judgement is not None:
            out[scope].add(item.judgement)
    return out


def _tool_levels() -> dict[str, set[str]]:
    """Each tool's judgements, as the bias_judgements schema documents them."""
    spec = next(r for r in core_resources() if r.name == "bias_judgements")
    vocab = tool_vocabulary(Resource(spec.name, Path(), spec.schema()), "judgement")
    if vocab is None:  # pragma: no cover - the core schema documents every tool
        raise RuntimeError("the bias_judgements schema does not document its tools' levels")
    return vocab


def _scope_tools(review: Review) -> dict[str, str]:
    """The tool of each scope: the first whose levels hold every judgement of the scope
    (RoB 2 first for judgements per analysis, RoB 1 first otherwise), else ``other``."""
    levels = _tool_levels()
    by_analysis = {item.analysis for item in review.bias_items if item.analysis is not None}
    out: dict[str, str] = {}
    for scope, judged in _scope_judgements(review).items():
        order = ["rob2", "rob1"] if scope in by_analysis else ["rob1", "rob2"]
        order += [t for t in sorted(levels) if t not in order and t != "other"] + ["other"]
        out[scope] = next((t for t in order if t in levels and judged <= levels[t]), "other")
    return out


def review_tables(review: Review, source_id: str) -> Tables:
    """Every row of the package (by resource) and the plan's analyses for ``review``."""
    b = _Builder(review, source_id)
    b.add_studies()
    for analysis in review.analyses:
        b.add_analysis(analysis)
    b.add_bias()
    return b.t


__all__ = ["AS_REPORTED", "Tables", "review_tables", "slug"]
