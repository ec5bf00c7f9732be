"""Input that is legal in its source format but outside trialpool's vocabulary or ranges is
imported, kept faithfully and logged (issue 15): one odd cell never costs a whole review.

Each class of the policy has a synthetic variant here, written from the formats (RevMan 5
``.rm5``, Cochrane data packages of RevMan Web, version 1 and current), or an edit of the
real data package CD004366 in ``tests/fixtures/revman``. Every imported package must
validate, and every case must be a line of the import log. Impossible input stays refused
(``test_import_safety.py``).
"""

from __future__ import annotations

import csv
import io
import math
import zipfile
from pathlib import Path

import pytest
from scipy import stats

from trialpool import cli
from trialpool.analysis.plan import RevManAnalysis, load_plan
from trialpool.analysis.reproduce import reproduction_checks
from trialpool.analysis.revman import PackageIndex, pool_review_analysis
from trialpool.errors import ImportSourceError
from trialpool.imports import read_review
from trialpool.imports import write as import_write
from trialpool.imports.log import LOG_FIELDS, LOG_FILE
from trialpool.imports.model import LogEntry
from trialpool.imports.write import write_valid_package
from trialpool.package.loader import load_package

REVMAN = Path(__file__).resolve().parents[1] / "fixtures" / "revman"
PACKAGE = REVMAN / "cochrane-data-package" / "CD004366-SUP-06-dataPackage"


# ----------------------------------------------------------------------------- helpers


def rm5(body: str, *, encoding: str = "UTF-8", studies: tuple[str, ...] = ("A", "B", "C")) -> str:
    listed = "".join(f'<STUDY ID="STD-{s}" NAME="{s} 2000" YEAR="2000"/>' for s in studies)
    return (
        f'<?xml version="1.0" encoding="{encoding}"?>\n'
        '<COCHRANE_REVIEW TYPE="INTERVENTION"><COVER_SHEET><TITLE>Test review</TITLE>'
        "</COVER_SHEET><STUDIES_AND_REFERENCES><STUDIES><INCLUDED_STUDIES>"
        f"{listed}</INCLUDED_STUDIES></STUDIES></STUDIES_AND_REFERENCES>{body}"
        "</COCHRANE_REVIEW>\n"
    )


def dich_outcome(attrs: str = "", rows: str | None = None, no: int = 1) -> str:
    if rows is None:
        rows = (
            '<DICH_DATA EVENTS_1="4" TOTAL_1="20" EVENTS_2="8" TOTAL_2="21" STUDY_ID="STD-A"/>'
            '<DICH_DATA EVENTS_1="6" TOTAL_1="30" EVENTS_2="9" TOTAL_2="29" STUDY_ID="STD-B"/>'
        )
    head = f'NO="{no}" METHOD="MH" EFFECT_MEASURE="RR" RANDOM="NO"'
    return f"<DICH_OUTCOME {head} {attrs}><NAME>Death {no}</NAME>{rows}</DICH_OUTCOME>"


def analyses(*outcomes: str) -> str:
    return (
        '<ANALYSES_AND_DATA><COMPARISON NO="1"><NAME>Drug vs placebo</NAME>'
        + "".join(outcomes)
        + "</COMPARISON></ANALYSES_AND_DATA>"
    )


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def imported(tmp_path: Path, source: Path) -> tuple[Path, list[LogEntry]]:
    """Import ``source`` into ``tmp_path/pkg``; assert it validates; (folder, log)."""
    folder = tmp_path / "pkg"
    folder.mkdir()
    tables, report = write_valid_package(read_review(source), folder)
    assert report.valid, [i.line() for i in report.issues[:5]]
    return folder, tables.log


def rows_of(folder: Path, resource: str) -> list[dict[str, str]]:
    text = (folder / "data" / f"{resource}.csv").read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def logged(log: list[LogEntry], field: str, *words: str) -> LogEntry:
    """The one log entry for ``field`` whose action holds every word."""
    found = [e for e in log if e.field == field and all(w in e.action for w in words)]
    assert len(found) == 1, (field, words, log)
    return found[0]


def checks(folder: Path) -> dict[str, int]:
    pkg = load_package(folder / "datapackage.json")
    plan = load_plan(folder / "analysis" / "plan.json")
    index = PackageIndex.of(pkg)
    counts = {"agrees": 0, "known": 0, "differs": 0}
    for a in plan.analyses:
        assert isinstance(a, RevManAnalysis)
        for c in reproduction_checks(pkg, a, pool_review_analysis(pkg, a, index), index):
            counts[c.status] += 1
    return counts


# ----------------------------------------------------------------------------- RevMan 5


QUALITY = (
    '<QUALITY_ITEMS><QUALITY_ITEM ID="QIT-01" LEVEL="STUDY" NO="1"><NAME>Random sequence '
    "generation</NAME><QUALITY_ITEM_DATA>"
    '<QUALITY_ITEM_DATA_ENTRY RESULT="YES" STUDY_ID="STD-A"/>'
    '<QUALITY_ITEM_DATA_ENTRY RESULT="Not applicable" STUDY_ID="STD-B"/>'
    '<QUALITY_ITEM_DATA_ENTRY RESULT="MAYBE" STUDY_ID="STD-C"><DESCRIPTION><P>Says "random"'
    "</P></DESCRIPTION></QUALITY_ITEM_DATA_ENTRY>"
    "</QUALITY_ITEM_DATA></QUALITY_ITEM></QUALITY_ITEMS>"
)


def test_rm5_rob_results_outside_the_vocabulary(tmp_path: Path) -> None:
    path = write(tmp_path, "rob.rm5", rm5(QUALITY + analyses(dich_outcome())))
    folder, log = imported(tmp_path, path)
    judged = {
        r["study_id"]: (r["tool"], r["judgement"]) for r in rows_of(folder, "bias_judgements")
    }
    assert judged == {"a_2000": ("rob1", "low"), "b_2000": ("rob1", "not_applicable")}
    claim = next(c for c in rows_of(folder, "claims") if c["study_id"] == "c_2000")
    assert (claim["field"], claim["value"]) == ("risk_of_bias_random_sequence_generation", "MAYBE")
    assert 'Says "random"' in claim["note"]
    entry = logged(log, "RESULT", "verbatim")
    assert (entry.value, entry.file) == ("MAYBE", "rob.rm5")
    assert "STD-C" in entry.row
    assert logged(log, "RESULT", "not_applicable").value == "Not applicable"


def test_rm5_rob_levels_of_several_tools_are_tool_other(tmp_path: Path) -> None:
    quality = QUALITY.replace('RESULT="MAYBE"', 'RESULT="Some concerns"').replace(
        'RESULT="YES"', 'RESULT="Unclear"'
    )
    path = write(tmp_path, "mixed.rm5", rm5(quality + analyses(dich_outcome())))
    folder, log = imported(tmp_path, path)
    assert {r["tool"] for r in rows_of(folder, "bias_judgements")} == {"other"}
    assert logged(log, "tool", "mix levels").value == "not_applicable, some_concerns, unclear"


def test_rm5_stored_statistics_over_their_range_by_rounding(tmp_path: Path) -> None:
    sub = (
        '<DICH_SUBGROUP NO="1" I2="150.0" P_Z="-1.0E-10"><NAME>Adults</NAME>'
        '<DICH_DATA EVENTS_1="1" TOTAL_1="20" EVENTS_2="15" TOTAL_2="21" STUDY_ID="STD-A"/>'
        '<DICH_DATA EVENTS_1="18" TOTAL_1="30" EVENTS_2="2" TOTAL_2="29" STUDY_ID="STD-B"/>'
        "</DICH_SUBGROUP>"
    )
    outcome = dich_outcome('I2="100.00000000000001" TAU2="-1.0E-17"', sub)
    path = write(tmp_path, "round.rm5", rm5(analyses(outcome)))
    folder, log = imported(tmp_path, path)
    published = rows_of(folder, "published_results")
    total = next(r for r in published if r["scope"] == "overall")
    assert (total["i2"], total["tau2"]) == ("100.0", "0.0")
    assert "i2 as the source gives it: 100.00000000000001" in total["note"]
    assert "only by rounding" in logged(log, "i2", "rounding").action
    assert logged(log, "tau2").value == "-1e-17"
    subgroup = next(r for r in published if r["scope"] == "subgroup")
    assert (subgroup["i2"], subgroup["p_value"]) == ("", "")
    assert "i2 as the source gives it: 150.0 (is outside the range 0..100" in subgroup["note"]
    assert "kept verbatim in note" in logged(log, "i2", "outside").action
    assert logged(log, "p_value").value == "-1e-10"


@pytest.mark.parametrize(
    ("encoding", "raw", "text"),
    [("UTF-8", b"\x93Smith\x94 \x96 M\xfcller", "“Smith” – Müller"),
     ("ISO-8859-1", b"\x93Smith\x94 \x96 M\xfcller", "“Smith” – Müller"),
     ("windows-1252", b"\x93Smith\x94 \x96 M\xfcller", "“Smith” – Müller")],
)  # fmt: skip
def test_rm5_windows_1252_bytes(tmp_path: Path, encoding: str, raw: bytes, text: str) -> None:
    body = rm5(analyses(dich_outcome()), encoding=encoding).encode("latin-1")
    body = body.replace(b'NAME="A 2000"', b'NAME="' + raw + b'"')
    review = read_review(write(tmp_path, "enc.rm5", body))
    assert review.studies[0].label == text
    notes = [e for e in review.log if e.field == "encoding"]
    if encoding == "windows-1252":
        assert notes == []  # declared as it is: nothing to log
    else:
        assert len(notes) == 1 and "Windows-1252" in notes[0].action


def test_rm5_footnotes_inside_data_rows(tmp_path: Path) -> None:
    rows = (
        '<DICH_DATA EVENTS_1="4" TOTAL_1="20" EVENTS_2="8" TOTAL_2="21" STUDY_ID="STD-A">'
        "<FOOTNOTE><P>ITT analysis</P></FOOTNOTE><FOOTNOTE>Data from the author</FOOTNOTE>"
        "</DICH_DATA>"
        '<DICH_DATA EVENTS_1="6" TOTAL_1="30" EVENTS_2="9" TOTAL_2="29" STUDY_ID="STD-B"/>'
    )
    path = write(tmp_path, "foot.rm5", rm5(analyses(dich_outcome("", rows))))
    folder, _ = imported(tmp_path, path)
    notes = {r["study_id"]: r["notes"] for r in rows_of(folder, "dichotomous_outcomes")}
    assert notes["a_2000"] == "ITT analysis\nData from the author"
    assert notes["b_2000"] == ""


def _peto(oe: list[float], var: list[float]) -> dict[str, float]:
    """RevMan's O-E and variance results by the formulas of Deeks & Higgins (Statistical
    algorithms in RevMan 5, §'O-E and variance'): log effect Σ(O-E)/ΣV, SE 1/sqrt(ΣV);
    Q = Σ(O-E)²/V - (Σ(O-E))²/ΣV."""
    log_effect = sum(oe) / sum(var)
    se = 1 / math.sqrt(sum(var))
    q = sum(o * o / v for o, v in zip(oe, var, strict=True)) - sum(oe) ** 2 / sum(var)
    z = abs(log_effect) / se
    return {
        "EFFECT_SIZE": math.exp(log_effect),
        "CI_START": math.exp(log_effect - float(stats.norm.ppf(0.975)) * se),
        "CI_END": math.exp(log_effect + float(stats.norm.ppf(0.975)) * se),
        "Z": z,
        "P_Z": float(2 * stats.norm.sf(z)),
        "CHI2": q,
        "DF": len(oe) - 1,
        "P_CHI2": float(stats.chi2.sf(q, len(oe) - 1)),
        "I2": max(0.0, 100 * (q - (len(oe) - 1)) / q),
    }


def test_rm5_o_e_and_variance_pooled_as_revman(tmp_path: Path) -> None:
    oe, var = [-3.2, -1.1, 0.8], [6.5, 4.0, 9.1]
    total = _peto(oe, var)
    attrs = " ".join(f'{k}="{v!r}"' for k, v in total.items())
    data = ""
    for study, o, v in zip("ABC", oe, var, strict=True):
        y = o / v
        half = float(stats.norm.ppf(0.975)) / math.sqrt(v)
        data += (
            f'<IPD_DATA O_E="{o}" VAR="{v}" STUDY_ID="STD-{study}" TOTAL_1="50" TOTAL_2="50" '
            f'EFFECT_SIZE="{math.exp(y)!r}" CI_START="{math.exp(y - half)!r}" '
            f'CI_END="{math.exp(y + half)!r}" WEIGHT="{100 * v / sum(var)!r}" ESTIMABLE="YES"/>'
        )
    outcome = (
        f'<IPD_OUTCOME NO="1" {attrs} RANDOM="NO" STUDIES="3"><NAME>Time to relapse</NAME>'
        f"<EFFECT_MEASURE>Peto Odds Ratio</EFFECT_MEASURE>{data}</IPD_OUTCOME>"
    )
    folder, _ = imported(tmp_path, write(tmp_path, "oe.rm5", rm5(analyses(outcome))))
    estimates = rows_of(folder, "effect_estimates")
    assert [float(r["estimate"]) for r in estimates] == [
        o / v for o, v in zip(oe, var, strict=True)
    ]
    assert [float(r["se"]) for r in estimates] == [1 / math.sqrt(v) for v in var]
    assert {(r["verification"], r["log_scale"]) for r in estimates} == {("derived", "true")}
    assert "O-E = -3.2, V = 6.5" in estimates[0]["notes"]
    assert "(O-E)/V" in estimates[0]["derivation"]
    counts = checks(folder)  # 9 totals (no tau² in a fixed-effect analysis), 4 per study
    assert counts == {"agrees": 9 + 3 * 4, "known": 0, "differs": 0}
    plan = load_plan(folder / "analysis" / "plan.json")
    assert [a.id for a in plan.analyses] == ["1.1"]


def test_rm5_analysis_without_data_and_unknown_settings(tmp_path: Path) -> None:
    empty = dich_outcome("", rows="", no=2)
    unknown = dich_outcome('TOTALS="MAYBE" SWAP_EVENTS="sometimes"', no=3).replace(
        'METHOD="MH"', 'METHOD="BAYES"'
    )
    garbage = dich_outcome('P_Z="&lt;0.00001" CI_TOTAL="120"', no=4)
    path = write(tmp_path, "odd.rm5", rm5(analyses(dich_outcome(), empty, unknown, garbage)))
    folder, log = imported(tmp_path, path)
    plan = load_plan(folder / "analysis" / "plan.json")
    assert [a.id for a in plan.analyses] == ["1.1", "1.4"]
    assert {r["outcome_id"] for r in rows_of(folder, "outcomes")} == {
        "a1_1",
        "a1_2",
        "a1_3",
        "a1_4",
    }
    assert logged(log, "", "no study rows").row == "Analysis 1.2"
    assert logged(log, "METHOD", "left out of the plan").value == "BAYES"
    assert logged(log, "", "not in the plan", "BAYES").row == "Analysis 1.3"
    assert {r["analysis_id"] for r in rows_of(folder, "published_results")} >= {"1.3"}
    assert logged(log, "TOTALS", "default").value == "MAYBE"
    assert logged(log, "SWAP_EVENTS", "default").value == "sometimes"
    assert logged(log, "P_Z", "missing").value == "<0.00001"
    assert logged(log, "CI_TOTAL", "95%").value == "120"
    assert plan.analyses[1].level == 95


def test_rm5_missing_input_makes_the_study_not_estimable(tmp_path: Path) -> None:
    rows = (
        '<DICH_DATA EVENTS_1="4" TOTAL_1="20" TOTAL_2="21" STUDY_ID="STD-A"/>'
        '<DICH_DATA EVENTS_1="6" TOTAL_1="30" EVENTS_2="9" TOTAL_2="29" STUDY_ID="STD-B"/>'
    )
    path = write(tmp_path, "miss.rm5", rm5(analyses(dich_outcome("", rows))))
    folder, log = imported(tmp_path, path)
    assert logged(log, "EVENTS_2", "not estimable").row.startswith("DICH_DATA STUDY_ID=STD-A")
    kept = {(r["study_id"], r["arm_id"]) for r in rows_of(folder, "dichotomous_outcomes")}
    assert ("a_2000", "c1_control") not in kept and ("a_2000", "c1_experimental") in kept


def test_rm5_diagnostic_review_is_refused_in_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, "dta.rm5", '<?xml version="1.0"?><COCHRANE_REVIEW TYPE="DIAGNOSTIC"/>')
    with pytest.raises(ImportSourceError, match="diagnostic test accuracy"):
        read_review(path)


# ----------------------------------------------------------------------------- data packages


def copy_package(target: Path) -> Path:
    for file in PACKAGE.rglob("*"):
        if file.is_file():
            out = target / file.relative_to(PACKAGE)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(file.read_bytes())
    return target


def edit(folder: Path, suffix: str, old: str, new: str) -> None:
    path = next(folder.rglob(f"*{suffix}"))
    text = path.read_bytes().decode("utf-8")
    assert old in text, old
    path.write_bytes(text.replace(old, new, 1).encode("utf-8"))


def test_package_odd_values_are_imported_and_logged(tmp_path: Path) -> None:
    folder = copy_package(tmp_path / "src")
    edit(
        folder,
        "-risk-of-bias.csv",
        "Abdelbasset 2019,Unclear risk,",
        "Abdelbasset 2019,Probably fine,",
    )
    edit(
        folder,
        "-risk-of-bias.csv",
        "<p>Not described</p>,High risk",
        "<p>Not described</p>,Not applicable",
    )
    edit(
        folder, "-overall-estimates-and-settings.csv", "-0.668561,-0.817306", "minus one,-0.817306"
    )
    edit(folder, "-data-rows.csv", "1,1,Reduction", "9,9,Reduction")
    edit(folder, "-subgroup-estimates.csv", "1,4,Mental", "9,8,Mental")
    path = next(folder.rglob("*-study-information.csv"))
    path.write_bytes(path.read_bytes().replace(b"Abdollahi 2017", b"Abdoll\xe4hi 2017", 1))
    out, log = imported(tmp_path, folder)
    assert logged(log, "Domain (judgement): Random sequence generation (selection bias)",
                  "verbatim").value == "Probably fine"  # fmt: skip
    judgements = {r["judgement"] for r in rows_of(out, "bias_judgements")}
    assert "not_applicable" in judgements
    assert any(c["value"] == "Probably fine" for c in rows_of(out, "claims"))
    assert logged(log, "Mean", "missing").value == "minus one"
    unknown = {(e.file, e.value) for e in log if e.field == "Analysis number"}
    assert unknown == {
        ("CD004366-data-rows.csv", "9.9"),
        ("CD004366-subgroup-estimates.csv", "9.8"),
    }
    assert logged(log, "encoding", "Windows-1252").file == "CD004366-study-information.csv"
    labels = {r["label"] for r in rows_of(out, "studies")}
    assert "Abdollähi 2017" in labels


def test_package_unknown_data_type_method_and_model(tmp_path: Path) -> None:
    folder = copy_package(tmp_path / "src")
    settings = next(folder.rglob("*-overall-estimates-and-settings.csv"))
    lines = settings.read_bytes().decode("utf-8").split("\r\n")
    header = next(csv.reader([lines[0]]))
    table = [next(csv.reader([line])) for line in lines[1:] if line]
    col = {
        name: header.index(name) for name in ("Data type", "Statistical method", "Analysis model")
    }
    table[0][col["Data type"]] = "Time to event"
    table[1][col["Statistical method"]] = "Bayesian"
    table[2][col["Analysis model"]] = "Common effect"
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows([header, *table])
    settings.write_bytes(buffer.getvalue().encode("utf-8"))
    out, log = imported(tmp_path, folder)
    plan_ids = [a.id for a in load_plan(out / "analysis" / "plan.json").analyses]
    first, second, third = (f"{r[0]}.{r[1]}" for r in table[:3])
    assert first not in plan_ids and second not in plan_ids and third in plan_ids
    assert logged(log, "Data type", "cannot be pooled").value == "Time to event"
    assert logged(log, "Statistical method", "left out of the plan").value == "Bayesian"
    plan = {a.id: a for a in load_plan(out / "analysis" / "plan.json").analyses}
    assert plan[third].random is False  # "Common effect" is the fixed-effect model
    outcomes = {r["outcome_id"] for r in rows_of(out, "outcomes")}
    assert "a" + second.replace(".", "_") in outcomes  # its data are kept


def _v1(folder: Path) -> None:
    """Rewrite a current data package's settings into the version 1 layout (before
    September 2024, per R meta's read.cdir and Cochrane's "Previous version: version 1
    data package"): "Study CI" and "Estimate CI" instead of "CI/PI level"; no
    heterogeneity estimator, CI method, prediction interval, graph labels, Tau² CI,
    PI or T columns."""
    settings = next(folder.rglob("*-overall-estimates-and-settings.csv"))
    lines = settings.read_bytes().decode("utf-8").split("\r\n")
    rows = list(csv.reader(line for line in lines if line))
    header = rows[0]
    dropped = {
        "Heterogeneity estimator", "Tau² CI", "Prediction interval", "CI method",
        "Graph label (left)", "Graph label (right)", "Graph scale", "Show risk of bias",
        "Sort studies by", "PI start", "PI end", "Tau² CI start", "Tau² CI end", "Effect T",
    }  # fmt: skip
    keep = [i for i, name in enumerate(header) if name not in dropped]
    level = header.index("CI/PI level")
    out = []
    for n, row in enumerate(rows):
        cells = [row[i] for i in keep]
        position = keep.index(level)
        if n == 0:
            cells[position : position + 1] = ["Study CI", "Estimate CI"]
        else:
            cells[position : position + 1] = [row[level], row[level]]
        out.append(cells)
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(out)
    settings.write_bytes(buffer.getvalue().encode("utf-8"))
    assert "Heterogeneity estimator" not in settings.read_text(encoding="utf-8")


def test_package_version_1_layout_reproduces_revman(tmp_path: Path) -> None:
    folder = copy_package(tmp_path / "src")
    _v1(folder)
    out, _ = imported(tmp_path, folder)
    plan = load_plan(out / "analysis" / "plan.json")
    assert len(plan.analyses) == 27
    assert {(a.tau2_method, a.ci_method) for a in plan.analyses if a.random} == {("DL", "Wald")}
    counts = checks(out)
    assert counts["differs"] == 0 and counts["agrees"] > 2000, counts


def test_package_version_1_nested_zip(tmp_path: Path) -> None:
    """Version 1 downloads: CD…-files/CD…-data.zip inside the outer zip (read.cdir)."""
    folder = copy_package(tmp_path / "src")
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                archive.write(file, file.relative_to(folder).as_posix())
    outer = tmp_path / "CD004366.zip"
    with zipfile.ZipFile(outer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("CD004366-files/CD004366-data.zip", inner.getvalue())
    review = read_review(outer)
    assert review.review_id == "CD004366" and len(review.analyses) == 27


def test_package_with_study_data_only(tmp_path: Path) -> None:
    folder = copy_package(tmp_path / "src")
    for file in (folder / "CD004366-analysis-data").iterdir():
        file.unlink()
    out, _ = imported(tmp_path, folder)
    assert load_plan(out / "analysis" / "plan.json").analyses == []
    assert len(rows_of(out, "studies")) == 73
    assert len(rows_of(out, "bias_judgements")) == 584
    assert {r["decision"] for r in rows_of(out, "screening")} >= {"include"}


def test_package_settings_without_data_rows(tmp_path: Path) -> None:
    folder = copy_package(tmp_path / "src")
    next(folder.rglob("*-data-rows.csv")).unlink()
    out, log = imported(tmp_path, folder)
    assert logged(log, "", "missing").value == "no *-data-rows.csv"
    assert load_plan(out / "analysis" / "plan.json").analyses == []
    assert len(rows_of(out, "outcomes")) == 27


def test_package_diagnostic_test_accuracy_is_refused_in_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "CD000000-dta"
    (folder / "CD000000-analysis-data").mkdir(parents=True)
    (folder / "CD000000-analysis-data" / "CD000000-parameters.csv").write_text("Test,Parameter\n")
    (folder / "CD000000-analysis-data" / "CD000000-study-test-data.csv").write_text(
        "Study,Test,TP,FP,FN,TN\nA 2000,T1,10,2,3,40\n"
    )
    with pytest.raises(ImportSourceError) as caught:
        read_review(folder)
    message = str(caught.value)
    assert "diagnostic test accuracy" in message and "\n" not in message


def test_package_non_event_measure_swaps_events(tmp_path: Path) -> None:
    folder = copy_package(tmp_path / "src")
    edit(folder, "-overall-estimates-and-settings.csv", "Risk Ratio,", "Risk Ratio (Non-event),")
    review = read_review(folder)
    swapped = [a for a in review.analyses if a.measure_label == "Risk Ratio (Non-event)"]
    assert len(swapped) == 1 and swapped[0].measure == "RR" and swapped[0].swap_events
    assert any(e.field == "Effect measure" and "swapped" in e.action for e in review.log)


# ----------------------------------------------------------------------------- the package


def test_import_writes_and_counts_the_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write(tmp_path, "rob.rm5", rm5(QUALITY + analyses(dich_outcome())))
    assert cli.main(["import", str(source), "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    text = (tmp_path / "out" / LOG_FILE).read_text(encoding="utf-8")
    lines = list(csv.reader(io.StringIO(text)))
    assert tuple(lines[0]) == LOG_FIELDS and len(lines) == 3
    assert f"Import log: {len(lines) - 1} line(s)" in printed
    assert f"`{LOG_FILE}` has 2 line(s)" in (tmp_path / "out" / "README.md").read_text()


def test_readme_escapes_the_review_text(tmp_path: Path) -> None:
    body = rm5(analyses(dich_outcome())).replace(
        "<TITLE>Test review</TITLE>", "<TITLE>&lt;script&gt;alert(1)&lt;/script&gt; *x*</TITLE>"
    )
    out, _ = imported(tmp_path, write(tmp_path, "x.rm5", body))
    readme = (out / "README.md").read_text(encoding="utf-8")
    assert "<script>" not in readme
    assert "# &lt;script&gt;alert(1)&lt;/script&gt; \\*x\\*" in readme


def test_a_row_that_still_breaks_a_rule_is_left_out_and_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = import_write.review_tables

    def with_a_bad_arm(review, source_id):  # type: ignore[no-untyped-def]
        tables = original(review, source_id)
        arm = dict(tables.rows["arms"][0])
        arm.update(arm_id="extra", n_randomised="10", n_analysed="12")
        tables.rows["arms"].append(arm)
        return tables

    monkeypatch.setattr(import_write, "review_tables", with_a_bad_arm)
    folder, log = imported(tmp_path, write(tmp_path, "x.rm5", rm5(analyses(dich_outcome()))))
    assert "extra" not in {r["arm_id"] for r in rows_of(folder, "arms")}
    entry = next(e for e in log if "breaks a rule" in e.action)
    assert "n_analysed" in entry.value


# ----------------------------------------------------------------------------- RevMan 5 CSV

CSV_HEADER = (
    "Comparison Number,Outcome Number,Subgroup Number,Name,Data Type,Statistical Method,"
    "Effect Measure,Analysis Model,Events 1,Mean 1,SD 1,Total 1,Events 2,Mean 2,SD 2,Total 2,"
    "Effect Estimate,P(Z)\n"
)


def test_csv_export_odd_settings_are_imported_and_logged(tmp_path: Path) -> None:
    text = CSV_HEADER + (
        "1,0,0,A vs B,,,,,,,,,,,,,,\n"
        "1,1,0,Death,DIC,MH,RR,Fixed,,,,,,,,,0.5,<0.001\n"
        "1,1,0,X 2000,,,,,3,,,20,6,,,20,0.5,\n"
        "1,1,0,Y 2001,,,,,4,,,30,8,,,31,0.5,\n"
        "1,2,0,Relapse,XYZ,MH,RR,Fixed,,,,,,,,,,\n"
        "1,2,0,X 2000,,,,,3,,,20,6,,,20,,\n"
        "1,3,0,Pain,CON,Bayes,MD,Fixed,,,,,,,,,,\n"
        "1,3,0,X 2000,,,,,,1,2,20,,1.5,2,20,,\n"
    )
    folder, log = imported(tmp_path, write(tmp_path, "odd.csv", text))
    plan = load_plan(folder / "analysis" / "plan.json")
    assert [a.id for a in plan.analyses] == ["1.1"]
    assert logged(log, "Data Type", "cannot be pooled").value == "XYZ"
    assert logged(log, "Statistical Method", "left out of the plan").value == "Bayes"
    assert logged(log, "P(Z)", "missing").value == "<0.001"
    assert {r["outcome_id"] for r in rows_of(folder, "outcomes")} == {"a1_1", "a1_3"}
