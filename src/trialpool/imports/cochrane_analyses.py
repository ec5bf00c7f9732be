"""The analysis files of a Cochrane data package (part of
:mod:`trialpool.imports.cochrane_package`).

Read here, by the methods of ``_AnalysisFiles``:

* ``*-overall-estimates-and-settings.csv``: one row per analysis, its settings and
  RevMan's overall results and test for subgroup differences;
* ``*-data-rows.csv``: one row per study and analysis, with the data, RevMan's per-study
  estimate, CI and weight, the "Applicability" of the row, footnotes, and (RoB 2 reviews)
  risk-of-bias judgements per analysis in "<domain> (judgement)"/"(support)" columns;
* ``*-subgroup-estimates.csv`` (optional): RevMan's results per subgroup.

Columns are found by normalised name with aliases (RevMan Web changed them between
years: "Study CI"/"Estimate CI" became "CI/PI level", the heterogeneity estimator, CI
method and prediction interval columns were added in 2024). ``#N/A`` and empty cells are
missing.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass, field

from trialpool.imports.cochrane_studies import _ROB_SUFFIX, _StudyFiles
from trialpool.imports.model import (
    DataType,
    ReviewAnalysis,
    ReviewRow,
    ReviewSubgroup,
    RevManResult,
    SubgroupTest,
    is_non_event_label,
    normalise_measure,
    normalise_method,
)
from trialpool.imports.safety import (
    CsvTable,
    cell,
    fail,
    normalise_header,
    optional_text,
    parse_count,
    parse_input,
    parse_number,
)

_SETTINGS: dict[str, tuple[str, ...]] = {
    "group": ("Analysis group", "Comparison number"),
    "number": ("Analysis number", "Outcome number"),
    "name": ("Analysis name", "Outcome name"),
    "group_name": ("Analysis group name", "Comparison name"),
    "data_type": ("Data type",),
    "log_data": ("Log-scale data", "Log scale data"),
    "label_e": ("Experimental group label", "Group label 1"),
    "label_c": ("Control group label", "Group label 2"),
    "method": ("Statistical method",),
    "measure": ("Effect measure",),
    "units": ("Unit of effect measure", "Units"),
    "model": ("Analysis model",),
    "tau2_method": ("Heterogeneity estimator", "Tau² estimator"),
    "overall": ("Overall estimates", "Totals"),
    "subgroup_test": ("Test for subgroup differences",),
    "subgroup_totals": ("Subgroup estimates",),
    "prediction": ("Prediction interval",),
    "swap": ("Swap event and non-event",),
    "ci_method": ("CI method",),
    "level": ("CI/PI level", "Estimate CI", "CI level"),
    "study_level": ("Study CI",),
    "left": ("Graph label (left)", "Left graph label"),
    "right": ("Graph label (right)", "Right graph label"),
    "sg_chi2": ("Subgroup Chi²",),
    "sg_df": ("Subgroup df",),
    "sg_p": ("Subgroup P",),
    "sg_i2": ("Subgroup I²",),
}
#: RevMan's results, in the settings and subgroup-estimates files
_RESULTS: dict[str, tuple[str, ...]] = {
    "e1": ("Experimental cases", "Experimental events"),
    "n1": ("Experimental N", "Experimental total"),
    "e2": ("Control cases", "Control events"),
    "n2": ("Control N", "Control total"),
    "weight": ("Weight",),
    "estimate": ("Mean", "Effect estimate", "Estimate"),
    "ci_lower": ("CI start", "CI lower"),
    "ci_upper": ("CI end", "CI upper"),
    "pi_lower": ("PI start",),
    "pi_upper": ("PI end",),
    "tau2": ("Heterogeneity Tau²", "Tau²"),
    "tau2_lower": ("Tau² CI start",),
    "tau2_upper": ("Tau² CI end",),
    "chi2": ("Heterogeneity Chi²", "Chi²"),
    "df": ("Heterogeneity df",),
    "p_chi2": ("Heterogeneity P",),
    "i2": ("Heterogeneity I²", "I²"),
    "z": ("Effect Z",),
    "t": ("Effect T",),
    "p": ("Effect P",),
}
_ROWS: dict[str, tuple[str, ...]] = {
    "group": ("Analysis group", "Comparison number"),
    "number": ("Analysis number", "Outcome number"),
    "subgroup": ("Subgroup",),
    "subgroup_number": ("Subgroup number",),
    "applicability": ("Applicability",),
    "study": ("Study",),
    "year": ("Study year", "Year"),
    "giv_estimate": ("GIV Mean", "GIV estimate", "GIV effect"),
    "giv_se": ("GIV SE",),
    "m1": ("Experimental mean",),
    "sd1": ("Experimental SD",),
    "e1": ("Experimental cases", "Experimental events"),
    "n1": ("Experimental N", "Experimental total"),
    "m2": ("Control mean",),
    "sd2": ("Control SD",),
    "e2": ("Control cases", "Control events"),
    "n2": ("Control N", "Control total"),
    "oe": ("O-E",),
    "variance": ("Variance",),
    "weight": ("Weight",),
    "estimate": ("Mean", "Effect estimate", "Estimate"),
    "ci_lower": ("CI start", "CI lower"),
    "ci_upper": ("CI end", "CI upper"),
    "footnotes": ("Footnotes", "Footnote"),
}
_DATA_TYPES: dict[str, DataType | None] = {
    "dichotomous": "dichotomous",
    "continuous": "continuous",
    "contrast level": "generic",
    "generic inverse variance": "generic",
    "generic": "generic",
    "giv": "generic",
    "o e and variance": "o_e",
    "o e": "o_e",
    "other data": None,
    "other": None,
}


@dataclass
class _Analysis:
    number: str
    comparison: int
    outcome: int
    name: str
    data_type: DataType
    log_data: bool
    settings: dict[str, object]
    subgroup_names: dict[str, str] = field(default_factory=dict)
    subgroups: dict[int, ReviewSubgroup] = field(default_factory=dict)
    rows: list[ReviewRow] = field(default_factory=list)


class _AnalysisFiles(_StudyFiles):
    """The analysis files (the risk-of-bias helpers come from ``_StudyFiles``)."""

    #: analyses (group, number) left out on purpose (other data, unknown data type) or
    #: already logged as missing from the settings file
    skipped: set[tuple[int, int]]

    # ------------------------------------------------------------------ analyses

    def analyses(self) -> list[ReviewAnalysis]:
        loaded = self.table("settings")
        if loaded is None:
            return []
        table, name = loaded
        analyses: dict[tuple[int, int], _Analysis] = {}
        for row, record in table.rows():
            analysis = self.analysis(table, name, row, record)
            if analysis is None:
                continue
            key = (analysis.comparison, analysis.outcome)
            if key in analyses:
                raise self.error(name, row, f"Analysis {analysis.number} appears twice")
            analyses[key] = analysis
        self.subgroup_estimates(analyses)
        self.data_rows(analyses)
        return [self.finish(analysis) for analysis in analyses.values()]

    def position(self, table: CsvTable, name: str, row: int, record: list[str]) -> tuple[int, int]:
        def whole(label: str, aliases: tuple[str, ...]) -> int:
            raw = cell(record, table.require(aliases[0], *aliases[1:]))
            number = parse_number(raw, self.source, f"{name} row {row}", label)
            if number is None or number != int(number) or number < 0:
                raise self.error(name, row, f"{label}={raw!r} is not a whole number")
            return int(number)

        return (
            whole("Analysis group", _SETTINGS["group"]),
            whole("Analysis number", _SETTINGS["number"]),
        )

    def analysis(self, table: CsvTable, name: str, row: int, record: list[str]) -> _Analysis | None:
        where = f"{name} row {row}"
        c, o = self.position(table, name, row, record)
        number = f"{c}.{o}"

        def value(key: str) -> str | None:
            return cell(record, table.column(*_SETTINGS[key]))

        def flag(key: str, default: bool) -> bool:
            return self.log.flag(value(key), f"row {row}", _SETTINGS[key][0], default, file=name)

        def unsupported(field: str, raw: str | None, why: str) -> str:
            self.logged(
                name,
                row,
                field,
                raw or "",
                f"{why}: the analysis's data and RevMan's numbers are imported, the analysis "
                "is left out of the plan",
            )
            return why

        title = optional_text(value("name")) or ""
        raw_type = value("data_type") or ""
        key = normalise_header(raw_type)
        if key not in _DATA_TYPES or _DATA_TYPES[key] is None:
            what = "other data (text only)" if key in _DATA_TYPES else "an unknown data type"
            self.logged(
                name,
                row,
                "Data type",
                raw_type,
                f"Analysis {number} ({title}) holds {what} that cannot be pooled; it and its "
                "data rows are not imported",
            )
            self.skipped.add((c, o))
            return None
        data_type = _DATA_TYPES[key]
        if data_type is None:  # pragma: no cover - handled above
            return None
        why: str | None = None
        raw_method = value("method") or ""
        method = normalise_method(raw_method)
        if method is None:
            method = (
                "PETO" if data_type == "o_e" else ("MH" if data_type == "dichotomous" else "IV")
            )
            if raw_method or data_type == "dichotomous":
                why = unsupported(
                    "Statistical method",
                    raw_method,
                    f"its statistical method {raw_method!r} is not MH, IV or Peto",
                )
        measure_label = optional_text(value("measure"))
        if measure_label is None:
            why = why or unsupported("Effect measure", "", "it names no effect measure")
            measure_label = ""
        model = normalise_header(value("model") or "")
        if not model.startswith(("random", "fixed", "common")):
            why = why or unsupported(
                "Analysis model",
                value("model"),
                f"its model {value('model')!r} is neither random nor fixed effect",
            )
        ci_method = normalise_header(value("ci_method") or "wald")
        if ci_method in {"hksj", "hartung knapp sidik jonkman", "hartung knapp"}:
            ci_method_name = "HKSJ"
        elif ci_method == "wald":
            ci_method_name = "Wald"
        else:
            ci_method_name = value("ci_method") or "Wald"
            self.logged(
                name,
                row,
                "CI method",
                ci_method_name,
                "a CI method trialpool does not implement: the plan uses Wald and says so",
            )
        level = self.log.level(value("level"), f"row {row}", _SETTINGS["level"][0], file=name)
        study_level = (
            self.log.level(value("study_level"), f"row {row}", "Study CI", file=name) or level
        )
        level = level or 0.95
        study_level = study_level or level
        log_data = flag("log_data", False) and data_type == "generic"
        sg = [
            self.log.stored_number(value(k), f"row {row}", _SETTINGS[k][0], file=name)
            for k in ("sg_chi2", "sg_df", "sg_p", "sg_i2")
        ]
        tau2_method = value("tau2_method")
        swap = flag("swap", False)
        if measure_label and is_non_event_label(measure_label) and not swap:
            swap = True
            self.logged(
                name,
                row,
                "Effect measure",
                measure_label,
                "a measure of non-events: events and non-events are swapped, as RevMan does",
            )
        settings: dict[str, object] = {
            "comparison_name": optional_text(value("group_name")) or "",
            "method": method,
            "measure": normalise_measure(measure_label, method),
            "measure_label": measure_label,
            "random": model.startswith("random"),
            "tau2_method": " ".join(tau2_method.split()) if tau2_method else None,
            "ci_method": ci_method_name,
            "level": level,
            "study_level": study_level,
            "prediction": flag("prediction", False),
            "swap_events": swap,
            "experimental_label": optional_text(value("label_e")),
            "control_label": optional_text(value("label_c")),
            "favours_left": optional_text(value("left")),
            "favours_right": optional_text(value("right")),
            "units": optional_text(value("units")),
            "overall_shown": flag("overall", True),
            "totals": "overall"
            if flag("overall", True)
            else ("subgroups" if flag("subgroup_totals", True) else "none"),
            "subgroup_test_shown": flag("subgroup_test", True),
            "result": _nonempty(self.result(table, name, row, record)),
            "subgroup_test": SubgroupTest(chi2=sg[0], df=sg[1], p=sg[2], i2=sg[3])
            if any(v is not None for v in sg)
            else None,
            "locator": where,
            "unsupported": why,
        }
        return _Analysis(
            number=number,
            comparison=c,
            outcome=o,
            name=title,
            data_type=data_type,
            log_data=log_data,
            settings=settings,
        )

    def result(self, table: CsvTable, name: str, row: int, record: list[str]) -> RevManResult:
        def num(key: str) -> float | None:
            aliases = _RESULTS[key]
            raw = cell(record, table.column(*aliases))
            return self.log.stored_number(raw, f"row {row}", aliases[0], file=name)

        def count(key: str) -> int | None:
            value = num(key)
            return int(value) if value is not None and value.is_integer() else None

        return RevManResult(
            estimate=num("estimate"),
            ci_lower=num("ci_lower"),
            ci_upper=num("ci_upper"),
            weight=num("weight"),
            z=num("z"),
            t=num("t"),
            p=num("p"),
            tau2=num("tau2"),
            tau2_ci_lower=num("tau2_lower"),
            tau2_ci_upper=num("tau2_upper"),
            chi2=num("chi2"),
            df=num("df"),
            p_chi2=num("p_chi2"),
            i2=num("i2"),
            pi_lower=num("pi_lower"),
            pi_upper=num("pi_upper"),
            events1=count("e1"),
            total1=count("n1"),
            events2=count("e2"),
            total2=count("n2"),
        )

    def subgroup_number(
        self,
        analysis: _Analysis,
        raw_number: str | None,
        subgroup_name: str | None,
        name: str,
        row: int,
    ) -> int | None:
        if raw_number is not None:
            number = parse_number(raw_number, self.source, f"{name} row {row}", "Subgroup number")
            if number is None or number != int(number) or number < 1:
                raise self.error(name, row, f"Subgroup number={raw_number!r} is not a whole number")
            if subgroup_name:
                analysis.subgroup_names.setdefault(subgroup_name, str(int(number)))
            return int(number)
        if not subgroup_name:
            return None
        known = analysis.subgroup_names.get(subgroup_name)
        if known is None:
            used = {int(v) for v in analysis.subgroup_names.values()} | set(analysis.subgroups)
            known = str(max(used, default=0) + 1)
            analysis.subgroup_names[subgroup_name] = known
        return int(known)

    def known_analysis(
        self, analyses: dict[tuple[int, int], _Analysis], c: int, o: int, name: str, row: int
    ) -> _Analysis | None:
        """The analysis a row belongs to; None (logged unless the analysis was left out on
        purpose) when the settings file does not have it."""
        analysis = analyses.get((c, o))
        if analysis is None and (c, o) not in self.skipped:
            self.skipped.add((c, o))
            self.logged(
                name,
                row,
                "Analysis number",
                f"{c}.{o}",
                "an analysis the settings file does not have: its rows are not imported",
            )
        return analysis

    def subgroup_estimates(self, analyses: dict[tuple[int, int], _Analysis]) -> None:
        loaded = self.table("subgroups")
        if loaded is None:
            return
        table, name = loaded
        subgroup_col = table.column("Subgroup")
        number_col = table.column("Subgroup number")
        for row, record in table.rows():
            c, o = self.position(table, name, row, record)
            analysis = self.known_analysis(analyses, c, o, name, row)
            if analysis is None:
                continue
            subgroup_name = optional_text(cell(record, subgroup_col))
            s = self.subgroup_number(analysis, cell(record, number_col), subgroup_name, name, row)
            if s is None:
                raise self.error(name, row, "no Subgroup name or number")
            if s in analysis.subgroups:
                self.logged(
                    name,
                    row,
                    "Subgroup",
                    subgroup_name or s,
                    f"subgroup {c}.{o}.{s} appears twice; the first row is kept",
                )
                continue
            analysis.subgroups[s] = ReviewSubgroup(
                number=f"{c}.{o}.{s}",
                name=subgroup_name or "",
                result=self.result(table, name, row, record),
                locator=f"{name} row {row}",
            )

    def data_rows(self, analyses: dict[tuple[int, int], _Analysis]) -> None:
        loaded = self.table("rows")
        if loaded is None:
            return
        table, name = loaded
        col = {key: table.column(*aliases) for key, aliases in _ROWS.items()}
        if col["study"] is None:
            raise fail(self.source, name, "missing column 'Study'")
        rob: dict[str, dict[str, int]] = defaultdict(dict)
        for position, header in enumerate(table.header):
            match = _ROB_SUFFIX.match(header)
            if match and not header.lower().startswith("domain"):
                rob[match.group(1).strip()][match.group(2).lower()] = position
        for domain in rob:
            self.add_domain(domain, True)
        for row, record in table.rows():
            c, o = self.position(table, name, row, record)
            analysis = self.known_analysis(analyses, c, o, name, row)
            if analysis is None:
                continue
            reviewed = self.data_row(table, name, row, record, col, analysis)
            analysis.rows.append(reviewed)
            for domain, where in rob.items():
                judged = self.judgement(
                    name, row, f"{domain} (judgement)", cell(record, where.get("judgement"))
                )
                if judged is None:
                    continue
                self.add_item(
                    reviewed.study_id,
                    domain,
                    analysis.name or f"Analysis {analysis.number}",
                    judged,
                    optional_text(cell(record, where.get("support"))),
                    f"{name} row {row}",
                    analysis=analysis.number,
                )

    def data_row(
        self,
        table: CsvTable,
        name: str,
        row: int,
        record: list[str],
        col: dict[str, int | None],
        analysis: _Analysis,
    ) -> ReviewRow:
        where = f"{name} row {row}"

        def raw(key: str) -> str | None:
            return cell(record, col[key])

        def count(key: str) -> int | None:
            return parse_count(raw(key), self.source, where, _ROWS[key][0])

        def number(key: str, *, non_negative: bool = False) -> float | None:
            value = parse_input(raw(key), self.source, where, _ROWS[key][0])
            if non_negative and value is not None and value < 0:
                raise self.error(name, row, f"{_ROWS[key][0]}={raw(key)!r} is negative")
            return value

        def stored(key: str) -> float | None:
            return self.log.stored_number(raw(key), f"row {row}", _ROWS[key][0], file=name)

        study = raw("study")
        if study is None:
            raise self.error(name, row, "no Study name")
        study_id = " ".join(study.split())
        self.used.setdefault(study_id, where)
        values: dict[str, float | int | None] = {"n1": count("n1"), "n2": count("n2")}
        if analysis.data_type == "dichotomous":
            values |= {"e1": count("e1"), "e2": count("e2")}
            for arm, group in (("1", "Experimental"), ("2", "Control")):
                events, total = values[f"e{arm}"], values[f"n{arm}"]
                if events is not None and total is not None and events > total:
                    raise self.error(name, row, f"{group} cases={events} > {group} N={total}")
        elif analysis.data_type == "continuous":
            values |= {
                "m1": number("m1"),
                "sd1": number("sd1", non_negative=True),
                "m2": number("m2"),
                "sd2": number("sd2", non_negative=True),
            }
        elif analysis.data_type == "generic":
            values |= {
                "estimate": number("giv_estimate"),
                "se": number("giv_se", non_negative=True),
            }
        else:
            values |= {"oe": number("oe"), "variance": number("variance", non_negative=True)}
        subgroup_name = optional_text(raw("subgroup"))
        s = self.subgroup_number(analysis, raw("subgroup_number"), subgroup_name, name, row)
        subgroup = None
        if s is not None:
            subgroup = f"{analysis.number}.{s}"
            if s not in analysis.subgroups:
                analysis.subgroups[s] = ReviewSubgroup(
                    number=subgroup, name=subgroup_name or "", result=None, locator=where
                )
        estimate = stored("estimate")
        return ReviewRow(
            study_id=study_id,
            subgroup=subgroup,
            applicability=raw("applicability"),
            stored=RevManResult(
                estimate=estimate,
                ci_lower=stored("ci_lower"),
                ci_upper=stored("ci_upper"),
                weight=stored("weight"),
                estimable=estimate is not None,
            ),
            footnote=optional_text(raw("footnotes")),
            locator=where,
            **values,  # type: ignore[arg-type]
        )

    def finish(self, analysis: _Analysis) -> ReviewAnalysis:
        s = dict(analysis.settings)
        if not analysis.subgroups:
            s["subgroup_test"] = None
            s["subgroup_test_shown"] = False
        return ReviewAnalysis(
            number=analysis.number,
            comparison_number=analysis.comparison,
            outcome_number=analysis.outcome,
            name=analysis.name,
            data_type=analysis.data_type,
            log_data=analysis.log_data,
            subgroups=tuple(analysis.subgroups[k] for k in sorted(analysis.subgroups)),
            rows=tuple(analysis.rows),
            **s,  # type: ignore[arg-type]
        )


def _nonempty(result: RevManResult) -> RevManResult | None:
    return result if any(v is not None for v in dataclasses.astuple(result)) else None
