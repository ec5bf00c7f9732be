"""The review readers on the real files in tests/fixtures/revman and on small synthetic
files for format variants the real files do not show.

Counts are taken from the files independently of the readers (regular expressions on the
XML text, the csv module on the CSVs); spot values are compared with the files' text.
"""

from __future__ import annotations

import csv
import re
import shutil
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from trialpool.errors import ImportSourceError
from trialpool.imports import Review, read_review
from trialpool.imports.model import is_ratio_measure, normalise_measure

REVMAN = Path(__file__).resolve().parents[1] / "fixtures" / "revman"
PACKAGE = REVMAN / "cochrane-data-package" / "CD004366-SUP-06-dataPackage"
RM5_FILES = sorted(REVMAN.glob("*.rm5"))


def _csv_dicts(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def _attrs(tag_text: str) -> dict[str, str]:
    return dict(re.findall(r'(\w+)="([^"]*)"', tag_text))


def _study_ids_consistent(review: Review) -> None:
    ids = [study.study_id for study in review.studies]
    assert len(ids) == len(set(ids))
    known = set(ids)
    for analysis in review.analyses:
        for row in analysis.rows:
            assert row.study_id in known, row.locator
    for item in review.bias_items:
        assert item.study_id in known, item.locator
    domains = {domain.domain_id for domain in review.bias_domains}
    assert {item.domain_id for item in review.bias_items} <= domains


# ----------------------------------------------------------------------------- .rm5


@pytest.mark.parametrize("path", RM5_FILES, ids=lambda p: p.name)
def test_rm5_counts_match_the_file(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    review = read_review(path)
    assert review.format == "rm5"
    assert review.source_file == path.name
    outcomes = re.findall(r"<(DICH|CONT|IV|IPD)_OUTCOME ", text)
    assert len(review.analyses) == len(outcomes)
    assert Counter(a.data_type for a in review.analyses) == Counter(
        {"DICH": "dichotomous", "CONT": "continuous", "IV": "generic", "IPD": "o_e"}[kind]
        for kind in outcomes
    )
    assert sum(len(a.rows) for a in review.analyses) == len(
        re.findall(r"<(?:DICH|CONT|IV|IPD)_DATA ", text)
    )
    assert sum(len(a.subgroups) for a in review.analyses) == len(
        re.findall(r"<(?:DICH|CONT|IV|IPD)_SUBGROUP ", text)
    )
    for tag, status in (
        ("INCLUDED_STUDIES", "included"),
        ("EXCLUDED_STUDIES", "excluded"),
        ("AWAITING_STUDIES", "awaiting"),
        ("ONGOING_STUDIES", "ongoing"),
    ):
        block = re.search(rf"<{tag}>(.*?)</{tag}>", text, re.S)
        expected = len(re.findall(r"<STUDY[\s>]", block.group(1))) if block else 0
        assert sum(1 for s in review.studies if s.status == status) == expected
    assert review.bias_items == ()  # QUALITY_ITEMS is empty in these data-only files
    _study_ids_consistent(review)


def test_rm5_cd000023_spot_values() -> None:
    path = REVMAN / "CD000023StatsDataOnly.rm5"
    text = path.read_text(encoding="utf-8")
    review = read_review(path)
    assert review.title == "Antibiotics for sore throat"
    assert review.citation == "Cochrane Database of Systematic Reviews 2013, Issue 11"
    assert review.review_id == "CD000023"
    first = _attrs(re.search(r"<DICH_OUTCOME [^>]*>", text).group(0))
    analysis = review.analyses[0]
    assert analysis.number == "1.1"
    assert analysis.comparison_name.startswith("Antibiotics versus placebo")
    assert analysis.name == "Symptom of sore throat on day 3"
    assert (analysis.method, analysis.measure, analysis.random) == ("MH", "RR", True)
    assert first["METHOD"] == "MH" and first["RANDOM"] == "YES"
    assert analysis.tau2_method == "DL" and analysis.level == 0.95
    assert analysis.experimental_label == "Antibiotics"
    assert analysis.favours_right == "Favours placebo"
    assert analysis.result is not None
    assert analysis.result.estimate == float(first["EFFECT_SIZE"])
    assert analysis.result.ci_lower == float(first["CI_START"])
    assert analysis.result.tau2 == float(first["TAU2"])
    assert analysis.result.chi2 == float(first["CHI2"])
    assert analysis.result.k == int(first["STUDIES"])
    row = analysis.rows[0]
    data = _attrs(re.search(r'<DICH_DATA [^>]*STUDY_ID="STD-Brink-1951"[^>]*>', text).group(0))
    assert row.study_id == "STD-Brink-1951"
    assert (row.e1, row.n1, row.e2, row.n2) == (
        int(data["EVENTS_1"]),
        int(data["TOTAL_1"]),
        int(data["EVENTS_2"]),
        int(data["TOTAL_2"]),
    )
    assert row.stored.weight == float(data["WEIGHT"])
    assert row.stored.estimate == float(data["EFFECT_SIZE"])
    assert row.locator == "Analysis 1.1, STD-Brink-1951"
    study = next(s for s in review.studies if s.study_id == "STD-Brink-1951")
    assert (study.label, study.year, study.status) == ("Brink 1951", 1951, "included")
    with_subgroups = review.analyses[1]
    assert [s.number for s in with_subgroups.subgroups] == ["1.2.1", "1.2.2"]
    assert with_subgroups.subgroup_test is not None
    assert with_subgroups.subgroup_test.chi2 == pytest.approx(1.305011668361077)
    assert {row.subgroup for row in with_subgroups.rows} == {"1.2.1", "1.2.2"}


def test_rm5_cd008625_generic_and_measures() -> None:
    path = REVMAN / "CD008625StatsDataOnly.rm5"
    review = read_review(path)
    generic = [a for a in review.analyses if a.data_type == "generic"]
    assert len(generic) == 22
    first = generic[0]
    assert (first.number, first.measure, first.log_data, first.method) == (
        "1.2",
        "Ratio of means",
        True,
        "IV",
    )
    row = first.rows[0]
    assert (row.estimate, row.se) == (-0.59776, 0.197952)
    assert row.stored.estimate == pytest.approx(0.5500423520461402)
    measures = Counter((a.method, a.measure, a.random) for a in review.analyses)
    assert measures[("IV", "MD", True)] == 22
    assert any(m[:2] == ("MH", "RD") and not m[2] for m in measures)
    assert any(m[:2] == ("MH", "OR") for m in measures)
    footnoted = [r for a in review.analyses for r in a.rows if r.footnote]
    assert footnoted and footnoted[0].footnote.startswith("Saha 2006 BGD")


def test_rm5_cd007868_measures() -> None:
    review = read_review(REVMAN / "CD007868StatsDataOnly.rm5")
    counts = Counter(a.measure for a in review.analyses)
    assert counts == {"SMD": 25, "MD": 8, "RR": 8}


# ----------------------------------------------------------------------------- CSV export


def test_revman_csv_fleiss() -> None:
    path = REVMAN / "Fleiss1993_CR.csv"
    records = _csv_dicts(path)
    review = read_review(path)
    assert review.format == "revman5_csv"
    headers = [r for r in records if r["Outcome Number"] != "0" and r["Data Type"]]
    studies = [r for r in records if r["Outcome Number"] != "0" and not r["Data Type"]]
    assert len(review.analyses) == len(headers)
    assert sum(len(a.rows) for a in review.analyses) == len(studies)
    assert len(review.studies) == len({r["Name"] for r in studies})
    binary, continuous = review.analyses
    assert (binary.data_type, binary.method, binary.measure, binary.random) == (
        "dichotomous",
        "MH",
        "OR",
        False,
    )
    assert binary.comparison_name == "Examples from Fleiss (1993)"
    assert binary.result is not None
    assert binary.result.estimate == float(headers[0]["Effect Estimate"])
    assert binary.result.chi2 == float(headers[0]["Q"])
    assert binary.result.df == 6
    mrc = binary.rows[0]
    assert (mrc.study_id, mrc.e1, mrc.n1, mrc.e2, mrc.n2) == ("MRC-1", 49, 615, 67, 624)
    assert mrc.m1 is None  # the export's 0 in Mean/SD of a dichotomous row is not data
    assert mrc.stored.weight == float(studies[0]["Weight"])
    assert (continuous.data_type, continuous.measure) == ("continuous", "MD")
    davis = continuous.rows[0]
    assert (davis.m1, davis.sd1, davis.n1, davis.m2, davis.sd2, davis.n2) == (
        5,
        4.7,
        13,
        6.5,
        3.8,
        13,
    )
    assert davis.e1 is None
    assert next(s for s in review.studies if s.study_id == "ISIS-2").year == 1988
    _study_ids_consistent(review)


def test_revman_csv_with_subgroups_generic_and_thousands(tmp_path: Path) -> None:
    header = (
        "Comparison Number,Outcome Number,Subgroup Number,Name,Data Type,Statistical Method,"
        "Effect Measure,Analysis Model,Events 1,Total 1,Events 2,Total 2,Effect Estimate,SE,"
        "CI Start,CI End,Weight,Qint,P(Qint),I²(Qint),df,"
        "Entered data are on log scale (Generic Inverse Variance only),Year of study"
    )
    lines = [
        header,
        "1,0,0,Drug versus placebo,,,,,,,,,,,,,,,,,,,",
        '1,1,0,Death,DIC,MH,RR,Random,"2,100","4,000",30,60,0.9,,0.8,1.0,100,1.5,0.22,33.3,3,,',
        "1,1,1,Adults,DIC,MH,RR,Random,20,40,20,40,1,,0.5,2,50,,,,1,,",
        "1,1,1,Smith 2001,,,,,20,40,20,40,1,0.3,0.5,2,50,,,,,,2001",
        '1,1,2,Children,DIC,MH,RR,Random,"2,080","3,960",10,20,0.9,,0.5,2,50,,,,1,,',
        '1,1,2,Jones 2003,,,,,"2,080","3,960",10,20,0.9,0.3,0.5,2,50,,,,,,2003',
        "1,2,0,Hazard,IV,IV,Hazard Ratio,Fixed,,,,,0.8,,0.6,1.1,100,,,,0,YES,",
        "1,2,0,Smith 2001,,,,,,,,,0.8,0.15,0.6,1.1,100,,,,,,2001",
    ]
    path = tmp_path / "export.csv"
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    review = read_review(path)
    death, hazard = review.analyses
    assert death.result is not None and death.result.events1 == 2100
    assert [s.number for s in death.subgroups] == ["1.1.1", "1.1.2"]
    assert death.subgroups[0].name == "Adults"
    assert death.subgroup_test is not None and death.subgroup_test.chi2 == 1.5
    assert death.rows[1].e1 == 2080 and death.rows[1].subgroup == "1.1.2"
    assert (hazard.data_type, hazard.measure, hazard.log_data) == ("generic", "Hazard Ratio", True)
    assert hazard.rows[0].estimate == pytest.approx(-0.2231435513)  # ln(0.8)
    assert any("log scale" in note for note in review.notes)
    assert [s.study_id for s in review.studies] == ["Smith 2001", "Jones 2003"]


# ----------------------------------------------------------------------------- data package


def _package_rows(name: str) -> list[dict[str, str]]:
    return _csv_dicts(next(PACKAGE.rglob(f"*{name}")))


def _check_package(review: Review) -> None:
    assert review.format == "cochrane_data_package"
    assert review.review_id == "CD004366"
    settings = _package_rows("-overall-estimates-and-settings.csv")
    rows = _package_rows("-data-rows.csv")
    subgroups = _package_rows("-subgroup-estimates.csv")
    info = _package_rows("-study-information.csv")
    rob = _package_rows("-risk-of-bias.csv")
    assert len(review.analyses) == len(settings) == 27
    assert sum(len(a.rows) for a in review.analyses) == len(rows) == 660
    expected_subgroups = {
        (r["Analysis group"], r["Analysis number"], r["Subgroup number"])
        for r in rows + subgroups
        if r["Subgroup number"]
    }
    assert sum(len(a.subgroups) for a in review.analyses) == len(expected_subgroups)
    assert Counter(s.status for s in review.studies) == {"included": len(info)}
    judgements = sum(
        1 for r in rob for k, v in r.items() if k.startswith("Domain (judgement)") and v
    )
    assert len(review.bias_items) == judgements
    assert Counter(a.measure for a in review.analyses) == {"SMD": 20, "RR": 4, "MD": 3}
    first = review.analyses[0]
    assert (first.number, first.method, first.random, first.tau2_method, first.ci_method) == (
        "1.1",
        "IV",
        True,
        "DL",
        "Wald",
    )
    assert (first.level, first.prediction, first.data_type) == (0.95, False, "continuous")
    assert first.result is not None
    assert first.result.estimate == float(settings[0]["Mean"])
    assert first.result.tau2 == float(settings[0]["Heterogeneity Tau²"])
    assert first.result.total1 == int(settings[0]["Experimental N"])
    row = first.rows[0]
    assert (row.study_id, row.m1, row.sd1, row.n1, row.m2, row.sd2, row.n2) == (
        "Abdollahi 2017",
        9.68,
        2.91,
        25,
        14.48,
        2.16,
        29,
    )
    assert row.applicability == "SUBGROUP_AND_OVERALL"
    assert row.stored.weight == float(rows[0]["Weight"])
    assert row.locator == "CD004366-data-rows.csv row 2"
    fixed = [a for a in review.analyses if not a.random]
    assert len(fixed) == 3 and all(a.tau2_method is None for a in fixed)  # "#N/A"
    rr = next(a for a in review.analyses if a.measure == "RR")
    assert rr.rows[0].e1 is not None and rr.measure_label == "Risk Ratio"
    study = next(s for s in review.studies if s.study_id == "Abdelbasset 2019")
    assert study.identifiers == {"crs": "26698074"}
    assert study.characteristics["methods"] == "RCT"
    assert "<40%" in study.characteristics["participants"]  # &lt; unescaped
    assert "\n" in study.characteristics["interventions"]  # two paragraphs
    assert study.references and study.references[0].identifiers["doi"].startswith("10.1097/")
    blinding = next(d for d in review.bias_domains if d.label.startswith("Blinding"))
    assert blinding.by_outcome
    groups = {i.outcome_group for i in review.bias_items if i.domain_id == blinding.domain_id}
    assert "outcome assessors" in groups
    item = review.bias_items[0]
    assert (item.study_id, item.judgement) == ("Abdelbasset 2019", "unclear")
    assert item.support is not None and "<p>" not in item.support
    _study_ids_consistent(review)


def test_package_folder() -> None:
    _check_package(read_review(PACKAGE))


def _zip_folder(folder: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                archive.write(file, file.relative_to(folder.parent).as_posix())
    return target


def test_package_zip_and_nested_zip(tmp_path: Path) -> None:
    inner = _zip_folder(PACKAGE, tmp_path / "CD004366-dataPackage.zip")
    _check_package(read_review(inner))
    outer = tmp_path / "download.zip"
    with zipfile.ZipFile(outer, "w") as archive:
        archive.write(inner, "CD004366-files/CD004366-data.zip")
        archive.writestr("CD004366-files/readme.txt", "not part of the package")
    _check_package(read_review(outer))
    renamed = tmp_path / "no-extension"
    shutil.copy(outer, renamed)
    _check_package(read_review(renamed))  # detected from content, not the name


# ----------------------------------------------------------------------------- variants

SETTINGS_HEADER = (
    "Analysis group,Analysis number,Analysis name,Analysis group name,Data type,"
    "Log-scale data,Experimental group label,Control group label,Statistical method,"
    "Effect measure,Unit of effect measure,Analysis model,Heterogeneity estimator,"
    "Overall estimates,Test for subgroup differences,Prediction interval,"
    "Swap event and non-event,CI method,CI/PI level,Graph label (left),Graph label (right),"
    "Experimental cases,Experimental N,Control cases,Control N,Mean,CI start,CI end,"
    "PI start,PI end,Heterogeneity Tau²,Heterogeneity Chi²,Heterogeneity df,"
    "Heterogeneity P,Heterogeneity I²,Effect Z,Effect T,Effect P,Subgroup Chi²,"
    "Subgroup df,Subgroup P,Subgroup I²,ID"
)
ROWS_HEADER = (
    "Analysis group,Analysis number,Analysis name,Subgroup,Subgroup number,Applicability,"
    "Study,Study year,GIV Mean,GIV SE,Experimental mean,Experimental SD,Experimental cases,"
    "Experimental N,Control mean,Control SD,Control cases,Control N,O-E,Variance,Weight,Mean,"
    "CI start,CI end,Footnotes,"
    "Bias arising from the randomization process (judgement),"
    "Bias arising from the randomization process (support),"
    "Overall bias (judgement),Overall bias (support)"
)


def write_package(
    folder: Path,
    settings: list[str],
    rows: list[str],
    *,
    extra: dict[str, str] | None = None,
    bom: bool = False,
) -> Path:
    """A small data package: CSV lines joined with CRLF, optionally with a UTF-8 BOM."""
    analysis = folder / "CD999999-analysis-data"
    analysis.mkdir(parents=True)
    prefix = "\ufeff" if bom else ""
    files = {
        analysis / "CD999999-overall-estimates-and-settings.csv": [SETTINGS_HEADER, *settings],
        analysis / "CD999999-data-rows.csv": [ROWS_HEADER, *rows],
    }
    for path, lines in files.items():
        path.write_bytes((prefix + "\r\n".join(lines) + "\r\n").encode("utf-8"))
    for name, text in (extra or {}).items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((prefix + text).encode("utf-8"))
    return folder


def test_package_variants_bom_na_exponent_html_rob2_generic(tmp_path: Path) -> None:
    settings = [
        '1,1,"Preterm birth (&lt; 37 weeks)",Semaglutide versus placebo&nbsp;,Dichotomous,true,'
        "Sema,Placebo,MH,Odds Ratio,,Fixed effect,#N/A,true,true,false,false,Wald,95%,"
        "Favours sema,Favours placebo,5,50,12,50,0.35,0.12,1.05,,,,0.5,1,0.48,0,1.6,,1.0E-6,"
        ",,,,analysis:1",
        "1,2,Ferritin,Semaglutide versus placebo&nbsp;,Contrast level,true,Sema,Placebo,IV,"
        "Ratio of Geometric Means,ng/mL,Random effect,REML,true,true,true,false,HKSJ,90%,,,"
        ",20,,20,3.3,2.7,4.0,2.1,5.2,0.03,,,,,,2.5,0.04,0.68,1,0.41,0,analysis:2",
    ]
    rows = [
        "1,1,x,,,SUBGROUP_AND_OVERALL,Smith 2001,2001/3/4,,,,,5,50,,,12,50,,,100,0.35,0.12,"
        "1.05,<p>ITT</p>,Low risk,<p>Computer&nbsp;list</p>,Some concerns,<p>a</p><p>b</p>",
        "1,2,x,Women,1,SUBGROUP_AND_OVERALL,Smith 2001,2001,1.2,0.0929,,,,10,,,,10,,,60,3.32,"
        "2.7,3.9,,High risk,,High risk,",
        "1,2,x,Men,2,OVERALL_ONLY,Jones 2003,#N/A,1.4,0.2,,,,10,,,,10,,,40,4.05,2.5,6.0,,,,,",
    ]
    extra = {
        "CD999999-analysis-data/CD999999-subgroup-estimates.csv": (
            "Analysis group,Analysis number,Subgroup,Subgroup number,Weight,Mean,"
            "CI start,CI end\r\n"
            "1,2,Women,1,60,3.32,2.7,3.9\r\n"
        ),
        "CD999999-study-data/CD999999-study-information.csv": (
            "Study,Year,Data source,ID: CRS,ID: DOI,Char: Methods,Char: Notes\r\n"
            'Smith 2001,2001,PUB,123,10.1/x,"<p>RCT &amp; blinded</p><p>Two centres</p>",\r\n'
        ),
        "CD999999-study-data/CD999999-excluded-study-information.csv": (
            "Study,Year,Data source,ID: CRS,Char: Reason for exclusion\r\n"
            "Brown 1999,1999,PUB,9,<p>Not randomised</p>\r\n"
        ),
        "CD999999-study-data/CD999999-study-arms.csv": (
            "Study,Arm,Description,Intervention\r\nSmith 2001,Sema 1 mg,,Semaglutide\r\n"
        ),
    }
    folder = write_package(tmp_path / "pkg", settings, rows, extra=extra, bom=True)
    review = read_review(folder)
    first, second = review.analyses
    assert first.name == "Preterm birth (< 37 weeks)"
    assert first.comparison_name == "Semaglutide versus placebo"
    assert (first.measure, first.random, first.tau2_method) == ("OR", False, None)
    assert first.log_data is False  # "Log-scale data" only matters for generic data
    assert first.result is not None and first.result.p == 1e-6
    assert first.result.chi2 == 0.5 and first.result.t is None
    assert first.subgroups == () and first.subgroup_test is None
    assert (second.data_type, second.measure, second.log_data) == (
        "generic",
        "Ratio of Geometric Means",
        True,
    )
    assert (second.tau2_method, second.ci_method, second.level, second.prediction) == (
        "REML",
        "HKSJ",
        0.9,
        True,
    )
    assert second.units == "ng/mL"
    assert second.result is not None and second.result.pi_lower == 2.1
    assert second.subgroup_test is not None and second.subgroup_test.df == 1
    assert [(s.number, s.name, s.result is not None) for s in second.subgroups] == [
        ("1.2.1", "Women", True),
        ("1.2.2", "Men", False),
    ]
    women, men = second.rows
    assert (women.estimate, women.se, women.n1) == (1.2, 0.0929, 10)
    assert men.applicability == "OVERALL_ONLY"
    assert first.rows[0].footnote == "ITT"
    assert (first.rows[0].e1, first.rows[0].n1, first.rows[0].e2) == (5, 50, 12)
    smith = next(s for s in review.studies if s.study_id == "Smith 2001")
    assert smith.characteristics["methods"] == "RCT & blinded\nTwo centres"
    assert smith.identifiers == {"crs": "123", "doi": "10.1/x"}
    assert [arm.name for arm in smith.arms] == ["Sema 1 mg"]
    brown = next(s for s in review.studies if s.study_id == "Brown 1999")
    assert (brown.status, brown.exclusion_reason) == ("excluded", "Not randomised")
    jones = next(s for s in review.studies if s.study_id == "Jones 2003")
    assert jones.status == "included"  # in the data, not in study information: added
    assert any("Jones 2003" in note for note in review.notes)
    rob2 = {(i.study_id, i.domain_id, i.analysis): i for i in review.bias_items}
    randomisation = rob2[("Smith 2001", "Bias arising from the randomization process", "1.1")]
    assert (randomisation.judgement, randomisation.support) == ("low", "Computer list")
    overall = rob2[("Smith 2001", "Overall bias", "1.1")]
    assert (overall.judgement, overall.support) == ("some_concerns", "a\nb")
    assert overall.outcome_group == "Preterm birth (< 37 weeks)"
    assert rob2[("Smith 2001", "Overall bias", "1.2")].judgement == "high"
    assert all(d.by_outcome for d in review.bias_domains)
    _study_ids_consistent(review)


LATIN1_RM5 = """<?xml version="1.0" encoding="ISO-8859-1"?>
<COCHRANE_REVIEW TYPE="INTERVENTION" REVMAN_VERSION="5">
<COVER_SHEET><TITLE>Kaffee f\u00fcr M\u00fcde</TITLE></COVER_SHEET>
<STUDIES_AND_REFERENCES><STUDIES>
<INCLUDED_STUDIES>
<STUDY ID="STD-M\u00fcller-1999" NAME="M\u00fcller 1999" YEAR="1999." DATA_SOURCE="PUB">
<REFERENCE PRIMARY="YES" TYPE="JOURNAL_ARTICLE"><AU>M\u00fcller A, G\u00f3mez B</AU>
<TI>Caf\u00e9 trial</TI><SO>J Caf\u00e9</SO><YR>1999</YR>
<IDENTIFIERS><IDENTIFIER TYPE="DOI" VALUE="10.1/abc"/></IDENTIFIERS></REFERENCE>
<IDENTIFIERS><IDENTIFIER TYPE="PUBMED" VALUE="123"/></IDENTIFIERS>
</STUDY>
<STUDY ID="STD-Ong-2001" NAME="Ong 2001" YEAR="2001"/>
</INCLUDED_STUDIES>
<EXCLUDED_STUDIES><STUDY ID="STD-Ex-1980" NAME="Ex 1980" YEAR="1980"/></EXCLUDED_STUDIES>
<AWAITING_STUDIES/>
<ONGOING_STUDIES><STUDY ID="STD-On-2024" NAME="On 2024" YEAR=""/></ONGOING_STUDIES>
</STUDIES></STUDIES_AND_REFERENCES>
<CHARACTERISTICS_OF_STUDIES>
<CHARACTERISTICS_OF_INCLUDED_STUDIES>
<INCLUDED_CHAR STUDY_ID="STD-M\u00fcller-1999">
<CHAR_METHODS><P>Randomised, <I>double</I> blind</P><P>Two centres</P></CHAR_METHODS>
<CHAR_NOTES><P/></CHAR_NOTES>
</INCLUDED_CHAR>
</CHARACTERISTICS_OF_INCLUDED_STUDIES>
<CHARACTERISTICS_OF_EXCLUDED_STUDIES>
<EXCLUDED_CHAR STUDY_ID="STD-Ex-1980"><CHAR_REASON_FOR_EXCLUSION><P>Not an RCT</P>
</CHAR_REASON_FOR_EXCLUSION></EXCLUDED_CHAR>
</CHARACTERISTICS_OF_EXCLUDED_STUDIES>
</CHARACTERISTICS_OF_STUDIES>
<QUALITY_ITEMS>
<QUALITY_ITEM CORE_ITEM="YES" ID="QIT-01" LEVEL="STUDY" NO="1">
<NAME>Random sequence generation (selection bias)</NAME>
<DESCRIPTION><P>Was the allocation sequence adequately generated?</P></DESCRIPTION>
<QUALITY_ITEM_DATA>
<QUALITY_ITEM_DATA_ENTRY RESULT="YES" STUDY_ID="STD-M\u00fcller-1999">
<DESCRIPTION><P>Computer &amp; random list</P></DESCRIPTION></QUALITY_ITEM_DATA_ENTRY>
<QUALITY_ITEM_DATA_ENTRY RESULT="NO" STUDY_ID="STD-Ong-2001"><DESCRIPTION/>
</QUALITY_ITEM_DATA_ENTRY>
</QUALITY_ITEM_DATA>
</QUALITY_ITEM>
<QUALITY_ITEM CORE_ITEM="YES" ID="QIT-03" LEVEL="GROUP" NO="3">
<NAME>Blinding of outcome assessment (detection bias)</NAME>
<DESCRIPTION><P>Were assessors blinded?</P></DESCRIPTION>
<QUALITY_ITEM_DATA_ENTRY_GROUP ID="QIG-01" NO="1"><NAME>Mortality</NAME>
</QUALITY_ITEM_DATA_ENTRY_GROUP>
<QUALITY_ITEM_DATA_ENTRY_GROUP ID="QIG-02" NO="2"><NAME>Pain</NAME>
</QUALITY_ITEM_DATA_ENTRY_GROUP>
<QUALITY_ITEM_DATA>
<QUALITY_ITEM_DATA_ENTRY GROUP_ID="QIG-01" RESULT="YES" STUDY_ID="STD-Ong-2001"/>
<QUALITY_ITEM_DATA_ENTRY GROUP_ID="QIG-02" RESULT="UNKNOWN" STUDY_ID="STD-Ong-2001">
<DESCRIPTION><P>Not reported</P></DESCRIPTION></QUALITY_ITEM_DATA_ENTRY>
<QUALITY_ITEM_DATA_ENTRY RESULT="" STUDY_ID="STD-M\u00fcller-1999"/>
</QUALITY_ITEM_DATA>
</QUALITY_ITEM>
</QUALITY_ITEMS>
<ANALYSES_AND_DATA CALCULATED_DATA="YES">
<COMPARISON ID="CMP-001" NO="1"><NAME>Kaffee versus Tee</NAME>
<CONT_OUTCOME CI_STUDY="95" CI_TOTAL="90" EFFECT_MEASURE="SMD" EFFECT_SIZE="-0.2" NO="1"
 RANDOM="NO" STUDIES="2" SUBGROUPS="NO" TOTALS="SUB" UNITS="Punkte" TAU2="NaN">
<NAME>M\u00fcdigkeit</NAME><GROUP_LABEL_1>Kaffee</GROUP_LABEL_1><GROUP_LABEL_2>Tee</GROUP_LABEL_2>
<CONT_DATA MEAN_1="1.5" MEAN_2="2" SD_1="1" SD_2="1.2" STUDY_ID="STD-M\u00fcller-1999"
 TOTAL_1="20" TOTAL_2="21" ESTIMABLE="YES" EFFECT_SIZE="-0.44"/>
<CONT_DATA MEAN_1="3" MEAN_2="3.1" SD_1="0" SD_2="0" STUDY_ID="STD-Ong-2001"
 TOTAL_1="10" TOTAL_2="10" ESTIMABLE="NO"/>
</CONT_OUTCOME>
<IPD_OUTCOME NO="2" STUDIES="1" EFFECT_SIZE="0.8">
<NAME>Tod</NAME><EFFECT_MEASURE>Peto Odds Ratio</EFFECT_MEASURE>
<IPD_DATA O_E="-1.5" VAR="6.2" STUDY_ID="STD-Ong-2001" TOTAL_1="50" TOTAL_2="50"/>
</IPD_OUTCOME>
<OTHER_OUTCOME NO="3"><NAME>Kommentare</NAME></OTHER_OUTCOME>
</COMPARISON>
</ANALYSES_AND_DATA>
</COCHRANE_REVIEW>
"""


def test_rm5_iso_8859_1_quality_items_and_other_types(tmp_path: Path) -> None:
    path = tmp_path / "review.rm5"
    path.write_bytes(LATIN1_RM5.encode("iso-8859-1"))
    review = read_review(path)
    assert review.title == "Kaffee f\u00fcr M\u00fcde" and review.citation is None
    statuses = {s.study_id: s.status for s in review.studies}
    assert statuses == {
        "STD-M\u00fcller-1999": "included",
        "STD-Ong-2001": "included",
        "STD-Ex-1980": "excluded",
        "STD-On-2024": "ongoing",
    }
    mueller = review.studies[0]
    assert (mueller.label, mueller.year) == ("M\u00fcller 1999", 1999)
    assert mueller.identifiers == {"pmid": "123"}
    assert mueller.characteristics == {"methods": "Randomised, double blind\nTwo centres"}
    reference = mueller.references[0]
    assert reference.authors == ("M\u00fcller A", "G\u00f3mez B")
    assert (reference.title, reference.primary, reference.identifiers) == (
        "Caf\u00e9 trial",
        True,
        {"doi": "10.1/abc"},
    )
    assert review.studies[2].exclusion_reason == "Not an RCT"
    assert review.studies[3].year is None
    assert [(d.domain_id, d.by_outcome) for d in review.bias_domains] == [
        ("QIT-01", False),
        ("QIT-03", True),
    ]
    assert review.bias_domains[0].description == "Was the allocation sequence adequately generated?"
    items = [
        (i.study_id, i.domain_id, i.judgement, i.outcome_group, i.support)
        for i in review.bias_items
    ]
    assert items == [
        ("STD-M\u00fcller-1999", "QIT-01", "low", None, "Computer & random list"),
        ("STD-Ong-2001", "QIT-01", "high", None, None),
        ("STD-Ong-2001", "QIT-03", "low", "Mortality", None),
        ("STD-Ong-2001", "QIT-03", "unclear", "Pain", "Not reported"),
    ]
    continuous, oe = review.analyses
    assert (continuous.name, continuous.measure, continuous.method) == (
        "M\u00fcdigkeit",
        "SMD",
        "IV",
    )
    assert (continuous.level, continuous.study_level, continuous.overall_shown) == (
        0.9,
        0.95,
        False,
    )
    assert continuous.units == "Punkte" and continuous.result is not None
    assert continuous.result.tau2 is None  # "NaN" is no number
    assert continuous.rows[1].stored.estimable is False
    assert (oe.data_type, oe.method, oe.measure) == ("o_e", "PETO", "PETO_OR")
    assert (oe.rows[0].oe, oe.rows[0].variance, oe.rows[0].n1) == (-1.5, 6.2, 50)
    assert oe.unsupported is None  # O-E data are imported and pooled (Peto)
    assert any("3" in note and "Kommentare" in note for note in review.notes)
    _study_ids_consistent(review)


def test_zip_with_one_rm5(tmp_path: Path) -> None:
    path = tmp_path / "review.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x/review.rm5", LATIN1_RM5.encode("iso-8859-1"))
    review = read_review(path)
    assert review.format == "rm5" and review.source_file == "review.zip/x/review.rm5"


def test_measure_vocabulary() -> None:
    assert normalise_measure("Std. Mean Difference") == "SMD"
    assert normalise_measure("Peto Odds Ratio") == "PETO_OR"
    assert normalise_measure("OR", "PETO") == "PETO_OR"
    assert normalise_measure("Risk Difference") == "RD"
    assert normalise_measure(" Ratio  of means ") == "Ratio of means"
    assert is_ratio_measure("RR") and not is_ratio_measure("MD")
    assert is_ratio_measure("Hazard Ratio", log_data=True)


def test_reader_errors_are_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.rm5"
    path.write_bytes(LATIN1_RM5.replace('SD_1="1"', 'SD_1="-1"').encode("iso-8859-1"))
    with pytest.raises(ImportSourceError) as caught:
        read_review(path)
    assert str(caught.value) == (
        "bad.rm5: CONT_DATA STUDY_ID=STD-M\u00fcller-1999 in Analysis 1.1: SD_1='-1' is negative"
    )
    assert "\n" not in str(caught.value)
