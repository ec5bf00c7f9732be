"""Reads a RevMan 5 review file (``.rm5``, XML) into a :class:`~trialpool.imports.model.Review`.

Read: the cover-sheet title (and its "When citing this record quote ..." citation), the
studies by status with identifiers and references, the characteristics-of-studies
tables, the risk-of-bias items (``QUALITY_ITEMS``), and every analysis in
``ANALYSES_AND_DATA`` (dichotomous, continuous, generic inverse variance and O-E data)
with its settings, subgroups, per-study data and the numbers RevMan computed.

Lenient where RevMan is (see :mod:`trialpool.imports.log`): a risk-of-bias RESULT outside
YES/NO/UNKNOWN is mapped when a faithful mapping exists ("Not applicable") and kept
verbatim otherwise; an unknown METHOD or a missing EFFECT_MEASURE imports the analysis's
data and stored numbers but marks it ``unsupported`` (left out of the plan); a stored
number, flag or confidence level that does not parse is logged and read as missing or as
RevMan's default; a missing input value makes the study not estimable. Each case is one
line of the import log. Impossible input (a negative or fractional count, events above the
total, a negative SD, a non-numeric input) is refused.

Not read: review prose, people, summary-of-findings and additional tables, figures,
"other data" outcomes (text only, no numbers; listed in ``Review.notes``).
"""

from __future__ import annotations

import re
from typing import Literal
from xml.etree.ElementTree import Element

from trialpool.errors import ImportSourceError
from trialpool.imports.log import ImportLog
from trialpool.imports.model import (
    BiasDomain,
    BiasItem,
    DataType,
    Method,
    Review,
    ReviewAnalysis,
    ReviewReference,
    ReviewRow,
    ReviewStudy,
    ReviewSubgroup,
    RevManResult,
    StudyStatus,
    SubgroupTest,
    complete_studies,
    judgement_from_label,
    normalise_measure,
    normalise_method,
)
from trialpool.imports.safety import (
    element_text,
    fail,
    parse_count,
    parse_input,
    parse_stored_count,
    parse_xml,
    parse_year,
    snake,
)

_STATUS_CONTAINERS: tuple[tuple[str, StudyStatus], ...] = (
    ("INCLUDED_STUDIES", "included"),
    ("EXCLUDED_STUDIES", "excluded"),
    ("AWAITING_STUDIES", "awaiting"),
    ("ONGOING_STUDIES", "ongoing"),
)
_CHAR_CONTAINERS: tuple[tuple[str, str], ...] = (
    ("CHARACTERISTICS_OF_INCLUDED_STUDIES", "INCLUDED_CHAR"),
    ("CHARACTERISTICS_OF_EXCLUDED_STUDIES", "EXCLUDED_CHAR"),
    ("CHARACTERISTICS_OF_AWAITING_STUDIES", "AWAITING_CHAR"),
    ("CHARACTERISTICS_OF_ONGOING_STUDIES", "ONGOING_CHAR"),
)
_KINDS: dict[str, DataType] = {
    "DICH": "dichotomous",
    "CONT": "continuous",
    "IV": "generic",
    "IPD": "o_e",
}
_DEFAULT_METHOD: dict[str, Method] = {"DICH": "MH", "CONT": "IV", "IV": "IV", "IPD": "PETO"}
_IDENTIFIER_KEYS = {"pubmed": "pmid", "medline": "pmid", "clinicaltrials_gov": "ctg"}
_CITATION = re.compile(
    r"\s*\[[^\[\]]*?When citing this record quote\s*[\"“](?P<citation>[^\"”]+)[\"”][^\[\]]*\]\s*$",
    re.IGNORECASE,
)
_REVIEW_ID = re.compile(r"\b((?:CD|MR)\d{6})")

#: RevMan 5 TOTALS attribute -> which totals the analysis shows
_TOTALS = {"YES": "overall", "SUB": "subgroups", "NO": "none"}


def read_rm5(data: bytes, source: str) -> Review:
    """Read a RevMan 5 file's bytes; ``source`` is the file name used in messages."""
    log = ImportLog(source)
    return read_rm5_root(parse_xml(data, source, log=log), source, log=log)


def read_rm5_root(root: Element, source: str, *, log: ImportLog | None = None) -> Review:
    """Read an already (safely) parsed RevMan 5 document."""
    return _Rm5(source, log or ImportLog(source)).read(root)


class _Rm5:
    def __init__(self, source: str, log: ImportLog) -> None:
        self.source = source
        self.notes: list[str] = []
        self.used: dict[str, str] = {}
        self.log = log

    def error(self, where: str | None, problem: str) -> ImportSourceError:
        return fail(self.source, where, problem)

    # ------------------------------------------------------------------ review

    def read(self, root: Element) -> Review:
        if root.tag != "COCHRANE_REVIEW":
            raise self.error(
                None, f"XML root is <{root.tag}>, expected <COCHRANE_REVIEW> (a RevMan 5 file)"
            )
        review_type = (root.get("TYPE") or "").upper()
        if review_type in {"DIAGNOSTIC", "DTA"}:
            raise self.error(
                "COCHRANE_REVIEW", "diagnostic test accuracy reviews are not supported"
            )
        title, citation = self.title(root)
        studies = self.studies(root)
        domains, items = self.quality_items(root)
        analyses = self.analyses(root)
        all_studies = complete_studies(studies, self.used, self.notes)
        match = _REVIEW_ID.search(root.get("DOI") or "") or _REVIEW_ID.search(self.source)
        return Review(
            source_file=self.source,
            format="rm5",
            review_id=match.group(1) if match else None,
            title=title,
            citation=citation,
            studies=tuple(all_studies),
            analyses=tuple(analyses),
            bias_domains=tuple(domains),
            bias_items=tuple(items),
            notes=tuple(self.notes),
            log=tuple(self.log.entries),
        )

    def title(self, root: Element) -> tuple[str | None, str | None]:
        text = element_text(root.find("COVER_SHEET/TITLE")).replace("\n", " ")
        if not text:
            return None, None
        match = _CITATION.search(text)
        if match is None:
            return text, None
        return text[: match.start()].strip() or None, match.group("citation").strip()

    # ------------------------------------------------------------------ studies

    def studies(self, root: Element) -> list[ReviewStudy]:
        characteristics = self.characteristics(root)
        container = root.find("STUDIES_AND_REFERENCES/STUDIES")
        studies: list[ReviewStudy] = []
        seen: set[str] = set()
        if container is None:
            return studies
        for tag, status in _STATUS_CONTAINERS:
            for study in container.findall(f"{tag}/STUDY"):
                study_id = (study.get("ID") or "").strip()
                if not study_id:
                    raise self.error(f"STUDY in {tag}", "has no ID")
                if study_id in seen:
                    raise self.error(f"STUDY ID={study_id}", "appears twice")
                seen.add(study_id)
                chars = characteristics.pop(study_id, {})
                reason = chars.pop("reason_for_exclusion", None)
                label = " ".join((study.get("NAME") or "").split()) or study_id
                studies.append(
                    ReviewStudy(
                        study_id=study_id,
                        label=label,
                        year=parse_year(study.get("YEAR")),
                        status=status,
                        identifiers=self.identifiers(study.find("IDENTIFIERS")),
                        characteristics=chars,
                        exclusion_reason=reason,
                        data_source=(study.get("DATA_SOURCE") or "").strip() or None,
                        references=tuple(self.reference(ref) for ref in study.findall("REFERENCE")),
                        locator=f"STUDY ID={study_id} in {tag}",
                    )
                )
        if characteristics:
            names = ", ".join(sorted(characteristics)[:5])
            self.notes.append(
                f"characteristics of {len(characteristics)} studies not in the study list "
                f"were left out: {names}"
            )
        return studies

    def characteristics(self, root: Element) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        tables = root.find("CHARACTERISTICS_OF_STUDIES")
        if tables is None:
            return out
        for table_tag, row_tag in _CHAR_CONTAINERS:
            for row in tables.findall(f"{table_tag}/{row_tag}"):
                study_id = (row.get("STUDY_ID") or "").strip()
                if not study_id:
                    raise self.error(f"{row_tag} in {table_tag}", "has no STUDY_ID")
                values = out.setdefault(study_id, {})
                for child in row:
                    if not child.tag.startswith("CHAR_"):
                        continue
                    text = element_text(child)
                    if text:
                        values[snake(child.tag[len("CHAR_") :])] = text
        return out

    def identifiers(self, element: Element | None) -> dict[str, str]:
        out: dict[str, str] = {}
        if element is None:
            return out
        for identifier in element.findall("IDENTIFIER"):
            kind = snake(identifier.get("TYPE") or "")
            value = (identifier.get("VALUE") or "").strip()
            if kind and value:
                out.setdefault(_IDENTIFIER_KEYS.get(kind, kind), value)
        return out

    def reference(self, element: Element) -> ReviewReference:
        def text(tag: str) -> str | None:
            value = element_text(element.find(tag)).replace("\n", " ")
            return value or None

        authors = text("AU")
        return ReviewReference(
            title=text("TI"),
            authors=tuple(a.strip() for a in authors.split(",") if a.strip()) if authors else (),
            source=text("SO"),
            year=text("YR"),
            volume=text("VL"),
            issue=text("NO"),
            pages=text("PG"),
            identifiers=self.identifiers(element.find("IDENTIFIERS")),
            primary=(element.get("PRIMARY") or "").upper() == "YES",
            kind=(element.get("TYPE") or "").strip() or None,
        )

    # ------------------------------------------------------------------ risk of bias

    def quality_items(self, root: Element) -> tuple[list[BiasDomain], list[BiasItem]]:
        domains: list[BiasDomain] = []
        items: list[BiasItem] = []
        for item in root.findall("QUALITY_ITEMS/QUALITY_ITEM"):
            domain_id = (item.get("ID") or "").strip() or (
                f"QIT-{item.get('NO')}" if item.get("NO") else ""
            )
            if not domain_id:
                raise self.error("QUALITY_ITEM", "has no ID")
            where_item = f"QUALITY_ITEM ID={domain_id}"
            by_outcome = (item.get("LEVEL") or "STUDY").strip().upper() == "GROUP"
            domains.append(
                BiasDomain(
                    domain_id=domain_id,
                    label=element_text(item.find("NAME")).replace("\n", " ") or domain_id,
                    description=element_text(item.find("DESCRIPTION")) or None,
                    by_outcome=by_outcome,
                )
            )
            groups: dict[str, str] = {}
            for group in item.iter("QUALITY_ITEM_DATA_ENTRY_GROUP"):
                group_id = (group.get("ID") or "").strip()
                name = element_text(group.find("NAME")) or (group.get("NAME") or "").strip()
                if group_id:
                    groups[group_id] = name or group_id
            for entry in item.iter("QUALITY_ITEM_DATA_ENTRY"):
                study_id = (entry.get("STUDY_ID") or "").strip()
                if not study_id:
                    raise self.error(f"QUALITY_ITEM_DATA_ENTRY in {where_item}", "no STUDY_ID")
                where = f"QUALITY_ITEM_DATA_ENTRY STUDY_ID={study_id} in {where_item}"
                result = (entry.get("RESULT") or "").strip()
                if not result:
                    continue
                judgement = judgement_from_label(result)
                if judgement is None:
                    self.log.add(
                        where,
                        "RESULT",
                        result,
                        "not YES, NO or UNKNOWN and no faithful mapping: kept verbatim as a "
                        "claim, not as a judgement",
                    )
                elif result.strip().upper() not in {"YES", "NO", "UNKNOWN"}:
                    self.log.add(where, "RESULT", result, f"read as the judgement {judgement}")
                group_id = (entry.get("GROUP_ID") or "").strip()
                self.used.setdefault(study_id, where)
                items.append(
                    BiasItem(
                        study_id=study_id,
                        domain_id=domain_id,
                        judgement=judgement,
                        support=element_text(entry.find("DESCRIPTION")) or None,
                        outcome_group=groups.get(group_id, group_id) if group_id else None,
                        locator=where,
                        label=result,
                    )
                )
        return domains, items

    # ------------------------------------------------------------------ analyses

    def number(self, element: Element, where: str) -> int:
        raw = (element.get("NO") or "").strip()
        if not raw.isdigit():
            raise self.error(where, f"NO={raw!r} is not a number" if raw else "has no NO")
        return int(raw)

    def analyses(self, root: Element) -> list[ReviewAnalysis]:
        analyses: list[ReviewAnalysis] = []
        seen: set[str] = set()
        for comparison in root.findall("ANALYSES_AND_DATA/COMPARISON"):
            c = self.number(comparison, "COMPARISON")
            comparison_name = element_text(comparison.find("NAME")).replace("\n", " ")
            for outcome in comparison:
                kind = outcome.tag.removesuffix("_OUTCOME")
                if not outcome.tag.endswith("_OUTCOME"):
                    continue
                o = self.number(outcome, f"{outcome.tag} in COMPARISON NO={c}")
                number = f"{c}.{o}"
                if number in seen:
                    raise self.error(f"{outcome.tag} NO={o} in COMPARISON NO={c}", "appears twice")
                seen.add(number)
                if kind not in _KINDS:
                    name = element_text(outcome.find("NAME")).replace("\n", " ")
                    self.notes.append(
                        f"Analysis {number} ({name or outcome.tag}): {outcome.tag} holds no "
                        'numeric data ("other data"); not imported'
                    )
                    continue
                analyses.append(self.analysis(outcome, kind, c, o, comparison_name))
        return analyses

    def analysis(
        self, outcome: Element, kind: str, c: int, o: int, comparison_name: str
    ) -> ReviewAnalysis:
        number = f"{c}.{o}"
        where = f"{outcome.tag} Analysis {number}"
        unsupported: str | None = None
        method_raw = (outcome.get("METHOD") or "").strip()
        method = normalise_method(method_raw) if method_raw else _DEFAULT_METHOD[kind]
        if method is None:
            method = _DEFAULT_METHOD[kind]
            unsupported = f"its statistical method {method_raw!r} is not MH, IV or Peto"
            self.log.add(
                where,
                "METHOD",
                method_raw,
                "unknown method: data and RevMan's numbers "
                "imported, the analysis is left out of the plan",
            )
        measure_label = (outcome.get("EFFECT_MEASURE") or "").strip() or element_text(
            outcome.find("EFFECT_MEASURE")
        ).replace("\n", " ")
        if not measure_label:
            unsupported = unsupported or "it names no effect measure"
            self.log.add(
                where,
                "EFFECT_MEASURE",
                "",
                "no effect measure: data and RevMan's numbers "
                "imported, the analysis is left out of the plan",
            )
        data_type = _KINDS[kind]

        def flag(name: str, default: bool) -> bool:
            return self.log.flag(outcome.get(name), where, name, default)

        def level(name: str) -> float:
            value = self.log.stored_number(outcome.get(name), where, name)
            if value is None:
                return 0.95
            if not 0 < value < 100:
                self.log.add(where, name, outcome.get(name), "not a confidence level; 95% used")
                return 0.95
            return value / 100

        subgroups: list[ReviewSubgroup] = []
        rows: list[ReviewRow] = []
        data_tag = f"{kind}_DATA"
        for child in outcome:
            if child.tag == data_tag:
                rows.append(self.row(child, data_type, number, None))
            elif child.tag == f"{kind}_SUBGROUP":
                s = self.number(child, f"{child.tag} in Analysis {number}")
                sub_number = f"{number}.{s}"
                if any(known.number == sub_number for known in subgroups):
                    raise self.error(f"{child.tag} NO={s} in Analysis {number}", "appears twice")
                subgroups.append(
                    ReviewSubgroup(
                        number=sub_number,
                        name=element_text(child.find("NAME")).replace("\n", " "),
                        result=self.result(child, f"{child.tag} Subgroup {sub_number}"),
                        locator=f"Analysis {number}, subgroup {s}",
                    )
                )
                rows.extend(
                    self.row(data, data_type, number, sub_number)
                    for data in child.findall(data_tag)
                )
        has_subgroups = bool(subgroups) and flag("SUBGROUPS", True)
        subgroup_test = None
        if has_subgroups:
            chi2 = self.log.stored_number(outcome.get("Q"), where, "Q")
            p = self.log.stored_number(outcome.get("P_Q"), where, "P_Q")
            i2 = self.log.stored_number(outcome.get("I2_Q"), where, "I2_Q")
            if chi2 is not None or p is not None:
                subgroup_test = SubgroupTest(chi2=chi2, df=None, p=p, i2=i2)
        units = " ".join((outcome.get("UNITS") or "").split()) or None

        def child_text(tag: str) -> str | None:
            return element_text(outcome.find(tag)).replace("\n", " ") or None

        return ReviewAnalysis(
            number=number,
            comparison_number=c,
            comparison_name=comparison_name,
            outcome_number=o,
            name=element_text(outcome.find("NAME")).replace("\n", " "),
            data_type=data_type,
            method=method,
            measure=normalise_measure(measure_label, method),
            measure_label=measure_label,
            random=flag("RANDOM", False),
            tau2_method="DL",
            ci_method="Wald",
            level=level("CI_TOTAL"),
            study_level=level("CI_STUDY"),
            prediction=False,
            log_data=flag("LOG_DATA", False),
            swap_events=flag("SWAP_EVENTS", False),
            experimental_label=child_text("GROUP_LABEL_1"),
            control_label=child_text("GROUP_LABEL_2"),
            favours_left=child_text("GRAPH_LABEL_1"),
            favours_right=child_text("GRAPH_LABEL_2"),
            units=units,
            overall_shown=(outcome.get("TOTALS") or "YES").strip().upper() == "YES",
            subgroup_test_shown=has_subgroups and flag("SUBGROUP_TEST", True),
            subgroups=tuple(subgroups),
            rows=tuple(rows),
            result=self.result(outcome, where),
            subgroup_test=subgroup_test,
            locator=f"{outcome.tag} NO={o} in COMPARISON NO={c} (Analysis {number})",
            totals=self.totals(outcome.get("TOTALS"), where),
            unsupported=unsupported,
        )

    def totals(self, raw: str | None, where: str) -> Literal["overall", "subgroups", "none"]:
        key = (raw or "YES").strip().upper()
        totals = _TOTALS.get(key)
        if totals is None:
            self.log.add(where, "TOTALS", raw, "not YES, SUB or NO; RevMan's default (YES) used")
            return "overall"
        return totals

    def result(self, element: Element, where: str, *, totals: bool = True) -> RevManResult:
        def num(name: str) -> float | None:
            return self.log.stored_number(element.get(name), where, name)

        def count(name: str) -> int | None:
            if not totals:
                return None
            value = num(name)
            return int(value) if value is not None and value.is_integer() else None

        return RevManResult(
            estimate=num("EFFECT_SIZE"),
            ci_lower=num("CI_START"),
            ci_upper=num("CI_END"),
            se=num("SE"),
            var=num("VAR"),
            weight=num("WEIGHT"),
            z=num("Z"),
            p=num("P_Z"),
            tau2=num("TAU2"),
            chi2=num("CHI2"),
            df=num("DF"),
            p_chi2=num("P_CHI2"),
            i2=num("I2"),
            k=count("STUDIES"),
            estimable=self.estimable(element.get("ESTIMABLE"), where),
            events1=count("EVENTS_1"),
            total1=count("TOTAL_1"),
            events2=count("EVENTS_2"),
            total2=count("TOTAL_2"),
        )

    def estimable(self, raw: str | None, where: str) -> bool | None:
        if raw is None or not raw.strip():
            return None
        return self.log.flag(raw, where, "ESTIMABLE", True)

    def row(
        self, element: Element, data_type: DataType, number: str, subgroup: str | None
    ) -> ReviewRow:
        study_id = (element.get("STUDY_ID") or "").strip()
        if not study_id:
            raise self.error(f"{element.tag} in Analysis {number}", "has no STUDY_ID")
        where = f"{element.tag} STUDY_ID={study_id} in Analysis {number}"
        self.used.setdefault(study_id, where)

        def present(name: str, needed: bool) -> str | None:
            value = element.get(name)
            if needed and (value is None or not value.strip()):
                self.log.add(where, name, "", "missing; the study is not estimable here")
            return value

        def count(name: str, *, needed: bool = True) -> int | None:
            return parse_count(present(name, needed), self.source, where, name)

        def number_in(
            name: str, *, non_negative: bool = False, non_finite: bool = False
        ) -> float | None:
            # a study without a usable value is kept, not estimable (as RevMan shows it);
            # generic and O-E inputs may be stored as "NaN" for a study without an estimate
            raw = present(name, True)
            if non_finite and raw is not None and raw.strip().lower() in _NON_FINITE:
                self.log.add(where, name, raw, "not a finite number; the study is not estimable")
                return None
            value = parse_input(raw, self.source, where, name)
            if non_negative and value is not None and value < 0:
                raise self.error(where, f"{name}={element.get(name)!r} is negative")
            return value

        values: dict[str, float | int | None] = {}
        if data_type == "dichotomous":
            values = {"e1": count("EVENTS_1"), "n1": count("TOTAL_1")}
            values |= {"e2": count("EVENTS_2"), "n2": count("TOTAL_2")}
            for arm in ("1", "2"):
                events, total = values[f"e{arm}"], values[f"n{arm}"]
                if isinstance(events, int) and isinstance(total, int) and events > total:
                    raise self.error(where, f"EVENTS_{arm}={events} > TOTAL_{arm}={total}")
        elif data_type == "continuous":
            values = {
                "m1": number_in("MEAN_1"),
                "sd1": number_in("SD_1", non_negative=True),
                "n1": count("TOTAL_1"),
                "m2": number_in("MEAN_2"),
                "sd2": number_in("SD_2", non_negative=True),
                "n2": count("TOTAL_2"),
            }
        elif data_type == "generic":
            values = {
                "estimate": number_in("ESTIMATE", non_finite=True),
                "se": number_in("SE", non_negative=True, non_finite=True),
                "n1": count("TOTAL_1", needed=False),
                "n2": count("TOTAL_2", needed=False),
            }
        else:
            values = {
                "oe": number_in("O_E", non_finite=True),
                "variance": number_in("VAR", non_negative=True, non_finite=True),
                "n1": count("TOTAL_1", needed=False),
                "n2": count("TOTAL_2", needed=False),
            }
        footnotes = [element_text(note) for note in element.findall("FOOTNOTE")]
        footnote = "\n".join(text for text in footnotes if text) or None
        locator = f"Analysis {number}, {study_id}"
        if subgroup is not None:
            locator += f" (subgroup {subgroup})"
        return ReviewRow(
            study_id=study_id,
            subgroup=subgroup,
            applicability=None,
            stored=self.result(element, where, totals=False),
            footnote=footnote,
            order=parse_stored_count(element.get("ORDER"), self.source, where, "ORDER")
            if _is_count(element.get("ORDER"))
            else None,
            locator=locator,
            **values,  # type: ignore[arg-type]
        )


_NON_FINITE = frozenset({"nan", "inf", "-inf", "+inf", "infinity", "-infinity", "+infinity"})
_WHOLE = re.compile(r"^\s*\d+(?:\.0*)?\s*$")


def _is_count(raw: str | None) -> bool:
    return raw is not None and bool(_WHOLE.match(raw))
