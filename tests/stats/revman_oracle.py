"""Test-side oracle: each analysis's inputs, settings and RevMan's own stored numbers.

Reads the real files in ``tests/fixtures/revman`` directly (``.rm5`` XML with defusedxml,
the RevMan 5 CSV export and the RevMan Web data package with :mod:`csv`) and keeps every
stored result as the *string* RevMan wrote, so the tests can judge agreement at the
precision each file carries (full doubles in ``.rm5``; 8 significant digits in the CSV
export; 6 decimals in the data package). Deliberately minimal and independent of any
importer in the package: it is the oracle the RevMan engine is tested against.

Names of stored numbers (``stored`` dicts): ``estimate``, ``ci_lower``, ``ci_upper``
(display scale: ratios for RR/OR and log generic data), ``se``, ``z``, ``t``, ``p``,
``tau2``, ``chi2``, ``df``, ``p_chi2``, ``i2``, ``weight``, ``pi_lower``, ``pi_upper``;
the test for subgroup differences is ``test_chi2``, ``test_df``, ``test_p``, ``test_i2``.
Only keys present in the file are set.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

from defusedxml.ElementTree import parse

FIXTURES = Path(__file__).parents[1] / "fixtures" / "revman"
RM5_FILES = ("CD000023StatsDataOnly.rm5", "CD007868StatsDataOnly.rm5", "CD008625StatsDataOnly.rm5")
CSV_EXPORT = "Fleiss1993_CR.csv"
DATA_PACKAGE = "cochrane-data-package/CD004366-SUP-06-dataPackage/CD004366-analysis-data"

Stored = dict[str, str]


@dataclass(frozen=True)
class OracleStudy:
    study_id: str
    subgroup: str | None
    inputs: dict[str, float]
    estimable: bool
    stored: Stored


@dataclass(frozen=True)
class OracleGroup:
    label: str
    estimable: bool | None  # None: RevMan did not report this total (a display option)
    stored: Stored


@dataclass(frozen=True)
class OracleAnalysis:
    id: str
    source: str  # "rm5", "csv" or "package" (decides the comparison precision)
    data_type: str  # "dichotomous", "continuous", "generic"
    method: str  # "MH", "IV", "PETO"
    measure: str
    random: bool
    log_data: bool
    totals: str  # "overall", "subgroups", "none"
    has_subgroups: bool
    studies: tuple[OracleStudy, ...]
    subgroups: tuple[OracleGroup, ...]
    overall: OracleGroup
    tau2_method: str = "DL"
    ci_method: str = "Wald"
    prediction: bool = False
    level: float = 0.95
    test: Stored = field(default_factory=dict)


# --- .rm5 (RevMan 5 XML) ----------------------------------------------------------------

_RM5_DATA = {"DICH": "dichotomous", "CONT": "continuous", "IV": "generic"}
_RM5_INPUTS = {
    "dichotomous": {"e1": "EVENTS_1", "n1": "TOTAL_1", "e2": "EVENTS_2", "n2": "TOTAL_2"},
    "continuous": {
        "m1": "MEAN_1", "sd1": "SD_1", "n1": "TOTAL_1",
        "m2": "MEAN_2", "sd2": "SD_2", "n2": "TOTAL_2",
    },
    "generic": {"estimate": "ESTIMATE", "se": "SE"},
}  # fmt: skip
_RM5_RESULTS = {
    "estimate": "EFFECT_SIZE", "ci_lower": "CI_START", "ci_upper": "CI_END", "z": "Z",
    "p": "P_Z", "tau2": "TAU2", "chi2": "CHI2", "df": "DF", "p_chi2": "P_CHI2", "i2": "I2",
    "weight": "WEIGHT",
}  # fmt: skip
_RM5_STUDY = {
    "estimate": "EFFECT_SIZE", "ci_lower": "CI_START", "ci_upper": "CI_END",
    "weight": "WEIGHT", "se": "SE", "var": "VAR",
}  # fmt: skip
_RM5_TOTALS = {"YES": "overall", "SUB": "subgroups", "NO": "none"}


def _pick(attrib: dict[str, str], names: dict[str, str]) -> Stored:
    return {key: attrib[name] for key, name in names.items() if name in attrib}


def _rm5_rows(parent, kind: str, data_type: str, subgroup: str | None) -> list[OracleStudy]:
    out = []
    for row in parent.findall(f"{kind}_DATA"):
        r = row.attrib
        inputs = {k: float(r[v]) for k, v in _RM5_INPUTS[data_type].items()}
        estimable = r["ESTIMABLE"] == "YES"
        out.append(OracleStudy(r["STUDY_ID"], subgroup, inputs, estimable, _pick(r, _RM5_STUDY)))
    return out


def load_rm5(name: str) -> list[OracleAnalysis]:
    root = parse(FIXTURES / name).getroot()
    review = name.split("StatsDataOnly")[0]
    out: list[OracleAnalysis] = []
    for comparison in root.find("ANALYSES_AND_DATA").findall("COMPARISON"):
        for outcome in comparison:
            kind = outcome.tag.removesuffix("_OUTCOME")
            if kind == outcome.tag or kind not in _RM5_DATA:
                continue
            data_type = _RM5_DATA[kind]
            a = outcome.attrib
            method = a.get("METHOD", "IV")
            studies = _rm5_rows(outcome, kind, data_type, None)
            subgroups: list[OracleGroup] = []
            for sub in outcome.findall(f"{kind}_SUBGROUP"):
                s = sub.attrib
                subgroups.append(
                    OracleGroup(s["NO"], s["ESTIMABLE"] == "YES", _pick(s, _RM5_RESULTS))
                )
                studies += _rm5_rows(sub, kind, data_type, s["NO"])
            measure = a.get("EFFECT_MEASURE", "generic")
            if method == "PETO":
                measure = "OR"
            test: Stored = {}
            if a.get("SUBGROUPS") == "YES":
                test = {"test_chi2": a["Q"], "test_p": a["P_Q"], "test_i2": a["I2_Q"]}
            out.append(
                OracleAnalysis(
                    id=f"{review}-{comparison.get('NO')}.{a['NO']}",
                    source="rm5",
                    data_type=data_type,
                    method=method,
                    measure=measure,
                    random=a.get("RANDOM") == "YES",
                    log_data=a.get("LOG_DATA") == "YES",
                    totals=_RM5_TOTALS[a.get("TOTALS", "YES")],
                    has_subgroups=a.get("SUBGROUPS") == "YES",
                    studies=tuple(studies),
                    subgroups=tuple(subgroups),
                    overall=OracleGroup("overall", a["ESTIMABLE"] == "YES", _pick(a, _RM5_RESULTS)),
                    level=float(a.get("CI_TOTAL", "95")) / 100,
                    test=test,
                )
            )
    return out


# --- RevMan 5 CSV analysis export -------------------------------------------------------

_CSV_DATA = {"DIC": "dichotomous", "CON": "continuous", "IV": "generic"}
_CSV_RESULTS = {
    "estimate": "Effect Estimate", "ci_lower": "CI Start", "ci_upper": "CI End",
    "weight": "Weight", "chi2": "Q", "p_chi2": "P(Q)", "i2": "I²(Q)", "tau2": "Tau²",
    "z": "Z", "p": "P(Z)", "df": "df",
}  # fmt: skip
_CSV_STUDY = {
    "estimate": "Effect Estimate", "se": "SE", "ci_lower": "CI Start", "ci_upper": "CI End",
    "weight": "Weight",
}  # fmt: skip


def _present(row: dict[str, str], names: dict[str, str]) -> Stored:
    return {key: row[name] for key, name in names.items() if row.get(name, "") != ""}


def load_revman_csv(name: str = CSV_EXPORT) -> list[OracleAnalysis]:
    with open(FIXTURES / name, newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    out: list[OracleAnalysis] = []
    current: dict | None = None

    def flush() -> None:
        if current is None:
            return
        head = current["head"]
        data_type = _CSV_DATA[head["Data Type"]]
        test: Stored = {}
        if current["subgroups"]:
            test = {
                "test_chi2": head["Qint"], "test_p": head["P(Qint)"], "test_i2": head["I²(Qint)"],
            }  # fmt: skip
        out.append(
            OracleAnalysis(
                id=f"Fleiss1993-{head['Comparison Number']}.{head['Outcome Number']}",
                source="csv",
                data_type=data_type,
                method=head["Statistical Method"].upper(),
                measure=head["Effect Measure"],
                random=head["Analysis Model"] == "Random",
                log_data=False,
                totals="overall",
                has_subgroups=bool(current["subgroups"]),
                studies=tuple(current["studies"]),
                subgroups=tuple(current["subgroups"]),
                overall=OracleGroup("overall", True, _present(head, _CSV_RESULTS)),
                test=test,
            )
        )

    keys = {
        "dichotomous": {"e1": "Events 1", "n1": "Total 1", "e2": "Events 2", "n2": "Total 2"},
        "continuous": {
            "m1": "Mean 1", "sd1": "SD 1", "n1": "Total 1",
            "m2": "Mean 2", "sd2": "SD 2", "n2": "Total 2",
        },
        "generic": {"estimate": "Effect Estimate", "se": "SE"},
    }  # fmt: skip
    for row in rows:
        if row["Outcome Number"] in ("", "0"):
            continue
        if row["Data Type"]:
            flush()
            current = {"head": row, "studies": [], "subgroups": []}
            continue
        assert current is not None
        data_type = _CSV_DATA[current["head"]["Data Type"]]
        subgroup = row["Subgroup Number"] if row["Subgroup Number"] not in ("", "0") else None
        if subgroup is not None and row["Q"] != "":
            current["subgroups"].append(OracleGroup(subgroup, True, _present(row, _CSV_RESULTS)))
            continue
        inputs = {k: float(row[v]) for k, v in keys[data_type].items()}
        current["studies"].append(
            OracleStudy(row["Name"], subgroup, inputs, True, _present(row, _CSV_STUDY))
        )
    flush()
    return out


# --- RevMan Web data package (CSV) ------------------------------------------------------

_PKG_MEASURES = {
    "Risk Ratio": "RR", "Odds Ratio": "OR", "Risk Difference": "RD", "Peto Odds Ratio": "OR",
    "Mean Difference": "MD", "Std. Mean Difference": "SMD",
}  # fmt: skip
_PKG_RESULTS = {
    "estimate": "Mean", "ci_lower": "CI start", "ci_upper": "CI end", "pi_lower": "PI start",
    "pi_upper": "PI end", "tau2": "Heterogeneity Tau²", "chi2": "Heterogeneity Chi²",
    "df": "Heterogeneity df", "p_chi2": "Heterogeneity P", "i2": "Heterogeneity I²",
    "z": "Effect Z", "t": "Effect T", "p": "Effect P", "weight": "Weight",
}  # fmt: skip
_PKG_TEST = {
    "test_chi2": "Subgroup Chi²", "test_df": "Subgroup df", "test_p": "Subgroup P",
    "test_i2": "Subgroup I²",
}  # fmt: skip
_PKG_STUDY = {"estimate": "Mean", "ci_lower": "CI start", "ci_upper": "CI end", "weight": "Weight"}


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


def _num(text: str) -> float:
    return float(text) if text != "" else math.nan


def load_data_package(directory: str = DATA_PACKAGE) -> list[OracleAnalysis]:
    base = FIXTURES / directory
    review = base.name.split("-")[0]
    (settings_file,) = base.glob("*-overall-estimates-and-settings.csv")
    (rows_file,) = base.glob("*-data-rows.csv")
    (subgroups_file,) = base.glob("*-subgroup-estimates.csv")
    data_rows = _read_csv(rows_file)
    subgroup_rows = _read_csv(subgroups_file)
    out: list[OracleAnalysis] = []
    for a in _read_csv(settings_file):
        key = (a["Analysis group"], a["Analysis number"])
        data_type = {"Dichotomous": "dichotomous", "Continuous": "continuous"}.get(
            a["Data type"], "generic"
        )
        studies = []
        for r in data_rows:
            if (r["Analysis group"], r["Analysis number"]) != key:
                continue
            if data_type == "dichotomous":
                inputs = {
                    "e1": _num(r["Experimental cases"]), "n1": _num(r["Experimental N"]),
                    "e2": _num(r["Control cases"]), "n2": _num(r["Control N"]),
                }  # fmt: skip
            elif data_type == "continuous":
                inputs = {
                    "m1": _num(r["Experimental mean"]), "sd1": _num(r["Experimental SD"]),
                    "n1": _num(r["Experimental N"]), "m2": _num(r["Control mean"]),
                    "sd2": _num(r["Control SD"]), "n2": _num(r["Control N"]),
                }  # fmt: skip
            else:
                inputs = {"estimate": _num(r["GIV Mean"]), "se": _num(r["GIV SE"])}
            subgroup = r["Subgroup number"] or None
            if subgroup is not None:
                subgroup = str(int(float(subgroup)))
            studies.append(
                OracleStudy(r["Study"], subgroup, inputs, r["Mean"] != "", _present(r, _PKG_STUDY))
            )
        subgroups = tuple(
            OracleGroup(s["Subgroup number"], s["Mean"] != "", _present(s, _PKG_RESULTS))
            for s in subgroup_rows
            if (s["Analysis group"], s["Analysis number"]) == key
        )
        overall = a["Overall estimates"] == "true"
        totals = (
            "overall" if overall else "subgroups" if a["Subgroup estimates"] == "true" else "none"
        )
        method = {"Peto": "PETO"}.get(a["Statistical method"], a["Statistical method"])
        level = a["CI/PI level"].rstrip("%")
        random = a["Analysis model"] == "Random effect"
        out.append(
            OracleAnalysis(
                id=f"{review}-{key[0]}.{key[1]}",
                source="package",
                data_type=data_type,
                method=method,
                measure=_PKG_MEASURES.get(a["Effect measure"], a["Effect measure"]),
                random=random,
                log_data=a["Log-scale data"] == "true" and data_type == "generic",
                totals=totals,
                has_subgroups=bool(subgroups),
                studies=tuple(studies),
                subgroups=subgroups,
                overall=OracleGroup(
                    "overall", (a["Mean"] != "") if overall else None, _present(a, _PKG_RESULTS)
                ),
                # fixed-effect analyses have "#N/A" here (no tau² estimator)
                tau2_method=a["Heterogeneity estimator"] if random else "DL",
                ci_method=a["CI method"] if random else "Wald",
                prediction=a["Prediction interval"] == "true",
                level=float(level) / 100 if level else 0.95,
                test=_present(a, _PKG_TEST) if a["Test for subgroup differences"] == "true" else {},
            )
        )
    return out


def all_analyses() -> list[OracleAnalysis]:
    out: list[OracleAnalysis] = []
    for name in RM5_FILES:
        out.extend(load_rm5(name))
    out.extend(load_revman_csv())
    out.extend(load_data_package())
    return out
