"""trialpool report: sections, figures, numbers, safety of the output folder.

Real data: a package built at test time from metadat's ``dat.bcg`` (Colditz et al.
JAMA 1994; BCG vaccine and tuberculosis, 13 trials), whose pooled numbers are compared
with the metafor golden values in tests/golden/pooling.json; and, when present, the
``tests/fixtures/metadat_*`` packages. The bundled package is reported too.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from rich.console import Console

from conftest import REPO, add_row, build_package, set_cell
from trialpool.analysis import pooled as analysis
from trialpool.analysis.plan import parse_plan
from trialpool.errors import ValidationFailedError
from trialpool.package.loader import load_package
from trialpool.report.writer import (
    HTML_NAME,
    MARKER_NAME,
    MD_NAME,
    ReportError,
    build_report,
    run_report,
)
from trialpool.stats.results import PoolResult

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

SECTIONS = [
    "package",
    "status",
    "methods",
    "caveats",
    "characteristics",
    "discrepancies",
    "rob",
    "prisma",
    "analyses",
    "audit",
    "exports",
    "sources",
]


def _quiet() -> Console:
    return Console(file=io.StringIO(), width=120)


def _csv(rows: list[dict[str, Any]], header: list[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return out.getvalue()


def _header(resource: str) -> list[str]:
    schema = json.loads((REPO / "schemas" / f"{resource}.schema.json").read_text("utf-8"))
    return [f["name"] for f in schema["fields"]]


def _core_only(descriptor: dict[str, Any]) -> None:
    """Edit: declare no extension (the template's msc_arms resource is dropped)."""
    descriptor.pop("extensions", None)
    descriptor["resources"] = [r for r in descriptor["resources"] if r["name"] != "msc_arms"]


def bcg_package(dest: Path) -> Path:
    """A conforming core 1.0 package (no extension) holding metadat's dat.bcg (real data;
    see module docstring).

    The tuberculosis counts are the outcome ``tuberculosis`` at a fixture time point of
    52 weeks (dat.bcg states none); each trial's vaccine arm is compared with its
    control arm (its primary comparison); trials allocated at random are ``rct``, the
    others (alternate, systematic) ``non_randomised_controlled``.
    """
    bcg = pd.read_csv(GOLDEN / "data" / "dat.bcg.csv")
    data = dest / "_src"
    data.mkdir(parents=True)
    src = "colditz1994"
    tables: dict[str, list[dict[str, Any]]] = {
        "sources": [
            {
                "source_id": src,
                "kind": "meta_analysis",
                "citation": "Colditz GA et al. Efficacy of BCG vaccine in the prevention of "
                "tuberculosis. JAMA 1994;271:698-702 (via R package metadat, dat.bcg).",
                "doi": "10.1001/jama.1994.03510330076038",
            }
        ],
        "studies": [],
        "arms": [],
        "comparisons": [],
        "outcomes": [
            {
                "outcome_id": "tuberculosis",
                "label": "Tuberculosis",
                "data_type": "dichotomous",
                "direction": "lower_is_better",
                "description": "TB positive cases (test fixture row)",
                "source_id": src,
                "locator": "metadat dat.bcg (tpos, tneg, cpos, cneg)",
            }
        ],
        "dichotomous_outcomes": [],
        "screening": [],
        "published_results": [
            {
                "result_id": "bcg_published",
                "source_id": src,
                "outcome": "tuberculosis (test fixture row)",
                "outcome_code": "tuberculosis",
                "timepoint_weeks": 52,
                "measure": "RR",
                "estimate": 0.49,
                "ci_lower": 0.34,
                "ci_upper": 0.70,
                "model": "REML",
                "k_studies": 13,
                "locator": "metafor documentation example (rounded)",
                "note": "test fixture row",
            }
        ],
    }
    for r in bcg.itertuples():
        sid = f"bcg{int(r.trial):02d}"
        design = "rct" if r.alloc == "random" else "non_randomised_controlled"
        tables["studies"].append(
            {"study_id": sid, "label": f"{r.author} {r.year}", "first_author": r.author,
             "year": r.year, "country": "not reported", "design": design,
             "blinding": "unclear", "source_id": src}
        )  # fmt: skip
        tables["comparisons"].append(
            {"comparison_id": f"{sid}_vaccine_vs_control", "study_id": sid,
             "experimental_arm_id": "vaccine", "control_arm_id": "control",
             "label": "BCG vaccine versus no vaccine", "primary": "true", "source_id": src}
        )  # fmt: skip
        for arm, events, total in (
            ("vaccine", r.tpos, r.tpos + r.tneg),
            ("control", r.cpos, r.cpos + r.cneg),
        ):
            tables["arms"].append(
                {"study_id": sid, "arm_id": arm,
                 "comparator_type": "untreated" if arm == "control" else "not_applicable",
                 "description": "BCG vaccine" if arm == "vaccine" else "no vaccine",
                 "n_randomised": total, "source_id": src}
            )  # fmt: skip
            tables["dichotomous_outcomes"].append(
                {"study_id": sid, "arm_id": arm, "outcome": "tuberculosis",
                 "timepoint": "week_52", "timepoint_weeks": 52, "events": events,
                 "total": total, "source_id": src, "locator": f"dat.bcg row {int(r.trial)}",
                 "verification": "secondary"}
            )  # fmt: skip
        tables["screening"].append(
            {"record_id": f"s{int(r.trial):02d}", "study_id": sid, "label": f"{r.author} {r.year}",
             "record_kind": "journal_article", "identified_via": "review_reference",
             "stage": "included", "decision": "include", "source_id": src}
        )  # fmt: skip
    for name, rows in tables.items():
        (data / f"{name}.csv").write_text(_csv(rows, _header(name)), encoding="utf-8")
    return build_package(dest / "pkg", data_dir=data, edit_descriptor=_core_only)


BCG_PLAN = {
    "title": "BCG (test plan)",
    "defaults": {"designs": ["rct", "non_randomised_controlled"], "all_designs_variant": False},
    "analyses": [
        {
            "id": "tb-52w",
            "title": "Tuberculosis at 52 weeks",
            "outcome": "tuberculosis",
            "outcome_label": "Tuberculosis",
            "timepoint_weeks": 52,
            "measure": "RR",
            "lower_is_better": True,
            "favours": ["BCG", "control"],
            "sensitivity": [
                {"rule": "hksj"},
                {"rule": "method", "method": "DL"},
                {"rule": "leave_out_heterogeneous", "i2_threshold": 50},
                {"rule": "leave_out_heterogeneous", "i2_threshold": 90},
                {"rule": "outliers", "z": 1.96},
                {"rule": "outliers", "z": 1.4},
                {"rule": "leave_one_out"},
            ],
        },
        {
            "id": "tb-rct",
            "title": "Tuberculosis at 52 weeks, randomised trials",
            "outcome": "tuberculosis",
            "outcome_label": "Tuberculosis",
            "timepoint_weeks": 52,
            "measure": "RR",
            "lower_is_better": True,
            "designs": ["rct"],
            "all_designs_variant": True,
        },
    ],
}


@pytest.fixture(scope="module")
def bcg_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("bcg")
    descriptor = bcg_package(root)
    out = root / "report"
    plan = parse_plan(BCG_PLAN)
    build_report(descriptor, plan, out, console=_quiet())
    return descriptor, out


@pytest.fixture(scope="module")
def bundled_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundled") / "report"
    code = run_report(REPO / "datapackage.json", plan=REPO / "analysis" / "plan.json", out=out,
                      console=_quiet())  # fmt: skip
    assert code == 0
    return out


# --- the bundled package ---------------------------------------------------------------


@pytest.mark.slow
def test_bundled_report_has_every_section(bundled_report: Path) -> None:
    text = (bundled_report / HTML_NAME).read_text(encoding="utf-8")
    for anchor in SECTIONS:
        assert f'id="{anchor}"' in text, anchor
    md = (bundled_report / MD_NAME).read_text(encoding="utf-8")
    for heading in ("## Methods", "## Reproduction audit", "## Risk of bias"):
        assert heading in md
    assert (bundled_report / MARKER_NAME).is_file()


@pytest.mark.slow
def test_bundled_report_states_the_data_status_of_every_analysis(bundled_report: Path) -> None:
    text = (bundled_report / HTML_NAME).read_text(encoding="utf-8")
    plan = json.loads((REPO / "analysis" / "plan.json").read_text(encoding="utf-8"))
    for entry in plan["analyses"]:
        assert f'id="analysis-{entry["id"]}"' in text, entry["id"]
    assert "no extractable data yet" in text
    assert "k = 1: not pooled (only Lin 2017)" in text
    assert "Needs</strong> per-arm MELD score at 24 weeks" in text
    assert "funnel plot and Egger's test not shown (need k ≥ 10)" in text
    assert "msc-aclf-trials" in text and "trialpool" in text
    assert "Known limits of the sources" in text  # the plan's caveats
    assert "Derived: Lin 2017, msc, death at 24 weeks" in text  # derived rows listed


@pytest.mark.slow
def test_bundled_report_figures_and_files(bundled_report: Path) -> None:
    figures = bundled_report / "figures"
    for stem in ("prisma_flow", "rob_graph_rob1", "rob_summary_rob1", "forest_death-by-time"):
        for suffix in (".png", ".svg"):
            path = figures / f"{stem}{suffix}"
            assert path.is_file() and path.stat().st_size > 1000, path
        assert (figures / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert b"<svg" in (figures / f"{stem}.svg").read_bytes()[:2000]
    md = (bundled_report / MD_NAME).read_text(encoding="utf-8")
    for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md):
        assert (bundled_report / link).is_file(), link
    for name in ("study_characteristics", "discrepancies", "reproduction_audit"):
        assert (bundled_report / "tables" / f"{name}.csv").is_file()
    robvis = pd.read_csv(bundled_report / "exports" / "robvis_rob1.csv")
    columns = list(robvis.columns)
    assert columns[0] == "Study" and columns[-2:] == ["Overall", "Weight"]
    assert (bundled_report / "exports" / "reproduce.R").is_file()


@pytest.mark.slow
def test_bundled_discrepancies_and_audit(bundled_report: Path) -> None:
    disc = pd.read_csv(bundled_report / "tables" / "discrepancies.csv")
    assert (disc["audited_source_id"] == "lu2025").all()
    lin = disc[(disc["study_id"] == "lin2017") & (disc["field"] == "cell_source")]
    assert not lin.empty and lin["primary_source_id"].eq("lin2017").any()
    audit = pd.read_csv(bundled_report / "tables" / "reproduction_audit.csv")
    published = pd.read_csv(REPO / "data" / "published_results.csv")
    assert len(audit) == len(published)
    pr01 = audit.set_index("result_id").loc["pr01", "status"]
    assert "death at 12 weeks" in pr01 and "Shi 2012" in pr01
    # a time point printed without weeks: its label is shown and carried into the CSV
    labels = audit.set_index("result_id")["timepoint_label"]
    assert labels["pr16"] == "1 month" and labels["pr02"] == "final follow-up"
    assert pd.isna(labels["pr01"])
    assert "'final follow-up', not in weeks" in audit.set_index("result_id").loc["pr02", "status"]
    md = (bundled_report / MD_NAME).read_text(encoding="utf-8")
    assert "Total bilirubin at “1 month” (as printed; weeks not stated)" in md


@pytest.mark.slow
def test_bundled_characteristics_read_comparisons_and_msc_arms(bundled_report: Path) -> None:
    """One row per comparison: Xu 2019 (four arms) has its primary comparison and UC-MSC +
    PE versus PE; MSC fields come from msc_arms; Jia 2020's comparison is named."""
    table = pd.read_csv(bundled_report / "tables" / "study_characteristics.csv", dtype=str)
    comparisons = pd.read_csv(REPO / "data" / "comparisons.csv", dtype=str)
    assert sorted(table["comparison_id"]) == sorted(comparisons["comparison_id"])
    xu = table[table["study_id"] == "xu2019"]
    assert list(xu["comparison_id"]) == ["xu2019_ucmsc_vs_control", "xu2019_ucmsc_pe_vs_pe"]
    assert list(xu["msc_arm"].str.split(":").str[0]) == ["ucmsc", "ucmsc_pe"]
    assert list(xu["control_arm"].str.split(":").str[0]) == ["control", "pe"]
    assert list(zip(xu["n_msc"], xu["n_control"], strict=True)) == [("30", "30"), ("20", "30")]
    lin = table.set_index("study_id").loc["lin2017"]
    assert lin["msc_arm"] == "bone marrow, allogeneic, 1×10^5–1×10^6 cells/kg × 4, peripheral vein"
    md = (bundled_report / MD_NAME).read_text(encoding="utf-8")
    assert "| Comparison | MSC arm | Control arm | n randomised (MSC / control) |" in md
    assert (
        "MSC plus plasma exchange versus plasma exchange <sub>(not the primary comparison)</sub>"
        in md
    )
    assert "| Longer versus shorter MSC treatment |" in md


class _Tags(HTMLParser):
    """Collect every start tag and its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def assert_self_contained(text: str) -> None:
    """No script, no external resource: images are data: URIs, links are text links."""
    parser = _Tags()
    parser.feed(text)
    names = {tag for tag, _ in parser.tags}
    assert not names & {"script", "link", "iframe", "object", "embed", "base", "audio", "video"}
    for tag, attrs in parser.tags:
        for key, value in attrs.items():
            if key in {"src", "srcset", "poster", "data", "action", "formaction"}:
                assert (
                    tag == "img"
                    and key == "src"
                    and (value or "").startswith("data:image/png;base64,")
                ), (tag, key, (value or "")[:40])
            if key == "href":
                assert tag == "a", tag
                assert re.match(r"^(https?://|#)", value or ""), value
            assert not key.startswith("on"), (tag, key)
    assert "@import" not in text and "url(" not in text
    assert "Content-Security-Policy" in text


@pytest.mark.slow
def test_html_is_self_contained(bundled_report: Path) -> None:
    text = (bundled_report / HTML_NAME).read_text(encoding="utf-8")
    assert_self_contained(text)
    assert 'href="https://doi.org/10.1002/hep.29189"' in text  # a text link is fine


# --- real data: dat.bcg ----------------------------------------------------------------


def _golden_fit(method: str, test: str) -> dict[str, Any]:
    golden = json.loads((GOLDEN / "pooling.json").read_text(encoding="utf-8"))
    entry = next(u for u in golden["uni"] if u["name"] == "bcg_RR")
    return next(f for f in entry["fits"] if f["method"] == method and f["test"] == test)


@pytest.mark.slow
def test_bcg_numbers_equal_engine_and_metafor(bcg_report: tuple[Path, Path]) -> None:
    descriptor, out = bcg_report
    pkg = load_package(descriptor)
    engine = analysis.pool_outcome(
        pkg,
        "tuberculosis",
        52,
        measure="RR",
        method="REML",
        designs=("rct", "non_randomised_controlled"),
    )
    assert isinstance(engine, PoolResult) and engine.k == 13
    gold = _golden_fit("REML", "z")
    assert engine.tau2 == pytest.approx(gold["tau2"], rel=1e-6)
    text = (out / HTML_NAME).read_text(encoding="utf-8")
    shown = f"{engine.estimate:.2f} [{engine.ci_lower:.2f}, {engine.ci_upper:.2f}]"
    assert shown in text
    assert f"{engine.i2:.0f}%" in text
    # the exported CSV holds the engine's yi and vi at full precision
    csv_rows = pd.read_csv(out / "exports" / "escalc_tb-52w.csv")
    assert len(csv_rows) == 13
    assert csv_rows["yi"].tolist() == pytest.approx([s.yi for s in engine.studies], abs=1e-15)
    # HKSJ variant equals metafor's knha fit
    gold_knha = _golden_fit("REML", "knha")
    import math

    lo, hi = math.exp(gold_knha["ci_lb"]), math.exp(gold_knha["ci_ub"])
    assert f"[{lo:.2f}, {hi:.2f}]" in text


@pytest.mark.slow
def test_bcg_every_figure_type(bcg_report: tuple[Path, Path]) -> None:
    _, out = bcg_report
    figures = out / "figures"
    names = {p.name for p in figures.iterdir()}
    assert "forest_tb-52w.png" in names and "funnel_tb-52w.png" in names
    assert "forest_tb-52w__leave-out-i2-90.png" in names
    assert "forest_tb-52w__outliers-z-1-4.png" in names
    assert "prisma_flow.png" in names
    for png in figures.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (figures / (png.stem + ".svg")).is_file()
    text = (out / HTML_NAME).read_text(encoding="utf-8")
    assert "Egger's regression test" in text
    assert text.count("data:image/png;base64,") == len(list(figures.glob("*.png")))
    assert "Leave-one-out" in text and "Studentized residual" in text


@pytest.mark.slow
def test_bcg_stated_leave_out_rules(bcg_report: tuple[Path, Path]) -> None:
    """The rules pick studies from numbers, as metafor would: rstudent(rma(...)) on
    dat.bcg gives -1.451 (Hart & Sutherland 1977) and 1.450 (TPT Madras 1980), the only
    values beyond 1.4 and none beyond 1.96; leave1out I² is 87% without TPT Madras and
    at least 90% without any other trial (I² = 92% with all 13)."""
    _, out = bcg_report
    text = (out / HTML_NAME).read_text(encoding="utf-8")
    assert "left out: TPT Madras 1980<" in text  # I² rule at 90%
    assert "left out: Hart &amp; Sutherland 1977, TPT Madras 1980" in text  # |z| > 1.4
    assert text.count("no study meets the rule: nothing left out") == 2  # 50%, 1.96


@pytest.mark.slow
def test_bcg_rct_restriction_and_all_designs_variant(bcg_report: tuple[Path, Path]) -> None:
    _, out = bcg_report
    text = (out / HTML_NAME).read_text(encoding="utf-8")
    section = text[text.index('id="analysis-tb-rct"') :]
    assert "pooled, k = 7" in section[:3000]
    assert "adds Frimodt-Moller" in section or "adds " in section


@pytest.mark.live_r
@pytest.mark.slow
def test_bcg_reproduce_r_agrees_with_metafor(bcg_report: tuple[Path, Path]) -> None:
    if shutil.which("Rscript") is None:
        pytest.skip("Rscript is not installed")
    if subprocess.run(["Rscript", "-e", "library(metafor)"], capture_output=True).returncode:
        pytest.skip("the R package metafor is not installed")
    _, out = bcg_report
    done = subprocess.run(
        ["Rscript", str(out / "exports" / "reproduce.R")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "comparisons agree within" in done.stdout


# --- fixtures built from metadat by the fixtures helper --------------------------------

_METADAT = sorted(FIXTURES.glob("metadat_*/datapackage.json"))


@pytest.mark.skipif(
    not _METADAT, reason="no tests/fixtures/metadat_*/ packages yet (added by the fixtures issue)"
)
@pytest.mark.parametrize("descriptor", _METADAT, ids=lambda p: p.parent.name)
@pytest.mark.slow
def test_metadat_fixture_report_equals_engine(descriptor: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    assert run_report(descriptor, plan=None, out=out, console=_quiet()) == 0
    text = (out / HTML_NAME).read_text(encoding="utf-8")
    pkg = load_package(descriptor)
    from trialpool.analysis.runs import pool
    from trialpool.analysis.runs import settings_for as _settings
    from trialpool.report.format import effect as _effect
    from trialpool.report.writer import resolve_plan as _resolve_plan

    plan, _ = _resolve_plan(None, pkg)
    pooled = 0
    for a in plan.analyses:
        if a.subgroup_by is not None:
            continue
        result = pool(pkg, a.outcome, a.timepoint_weeks, _settings(plan, a))
        if isinstance(result, PoolResult):
            pooled += 1
            assert _effect(result) in text  # the engine's numbers, as the report prints them
    assert pooled >= 1


def _at_weeks(code: str, weeks: str) -> Callable[[str], str]:
    """Edit: every outcome row at time point ``code`` of ``weeks`` weeks."""

    def edit(text: str) -> str:
        rows = list(csv.reader(io.StringIO(text)))
        tp, tw = rows[0].index("timepoint"), rows[0].index("timepoint_weeks")
        for row in rows[1:]:
            row[tp], row[tw] = code, weeks
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(rows)
        return out.getvalue()

    return edit


COMPARATOR_PLAN = {
    "title": "Catheters (test plan)",
    "analyses": [
        {
            "id": "infection",
            "title": "Catheter-related bloodstream infection",
            "outcome": "crbsi",
            "outcome_label": "Bloodstream infection",
            "timepoint_weeks": 1,
            "measure": "OR",
            "lower_is_better": True,
            "all_designs_variant": False,
        },
        {
            "id": "meld",
            "title": "MELD (no data)",
            "outcome": "meld",
            "outcome_label": "MELD score",
            "timepoint_weeks": 4,
            "measure": "MD",
            "lower_is_better": True,
            "all_designs_variant": False,
        },
    ],
}


@pytest.mark.slow
def test_report_names_controls_left_out_by_the_comparator_restriction(tmp_path: Path) -> None:
    """nielweise2007 with Bach 1996's control marked as a shorter exposure: the pool
    leaves it out with a note, and no analysis lists it as lacking data. (The fixture's
    rows are as reported, without weeks; here they are put at 1 week, and MELD is added
    to the outcomes as an outcome without data.)"""
    descriptor = build_package(
        tmp_path / "pkg",
        data_dir=FIXTURES / "metadat_nielweise2007" / "data",
        edits={
            "arms": set_cell(3, "comparator_type", "shorter_exposure"),
            "dichotomous_outcomes": _at_weeks("week_1", "1"),
            "outcomes": add_row(
                {
                    "outcome_id": "meld",
                    "label": "MELD score",
                    "data_type": "continuous",
                    "unit": "points",
                    "description": "test fixture row",
                }
            ),
        },
    )
    out = tmp_path / "report"
    build_report(descriptor, parse_plan(COMPARATOR_PLAN), out, console=_quiet())
    text = (out / HTML_NAME).read_text(encoding="utf-8")
    assert "left out: control is shorter exposure to MSC (Bach 1996)" in text
    line = (
        "Left out by the comparator restriction (controls that are untreated, standard care, "
        "placebo or unclear only): Bach 1996 (control: shorter exposure to MSC)."
    )
    assert text.count(line) == 2  # the pooled analysis and the one without data
    needs = re.findall(r"Needs</strong>[^<]*", text)
    assert needs and not any("Bach 1996" in n for n in needs)


# --- safety ----------------------------------------------------------------------------


EVIL_LABEL = '<script>alert("x")</script>'
FORMULA_LABEL = "=cmd|' /C calc'!A0"


@pytest.fixture(scope="module")
def planted_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A report on a copy of the minimal package whose study labels carry a script tag
    and a spreadsheet formula."""
    root = tmp_path_factory.mktemp("planted")
    descriptor = build_package(
        root / "pkg",
        edits={
            "studies": lambda text: set_cell(3, "label", FORMULA_LABEL)(
                set_cell(2, "label", EVIL_LABEL)(text)
            )
        },
    )
    out = root / "r"
    assert run_report(descriptor, plan=None, out=out, console=_quiet()) == 0
    return out


@pytest.mark.slow
def test_script_in_a_label_is_escaped(planted_report: Path) -> None:
    html_text = (planted_report / HTML_NAME).read_text(encoding="utf-8")
    assert "<script" not in html_text
    assert_self_contained(html_text)
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html_text
    md = (planted_report / MD_NAME).read_text(encoding="utf-8")
    assert "<script" not in md and "&lt;script&gt;" in md


@pytest.mark.slow
def test_formula_in_a_label_is_neutralised(planted_report: Path) -> None:
    seen = False
    for path in planted_report.rglob("*.csv"):
        for row in csv.reader(io.StringIO(path.read_text(encoding="utf-8"))):
            for cell in row:
                assert not cell.startswith(("=", "@", "\t", "\r")), (path.name, cell)
                seen = seen or cell == "'" + FORMULA_LABEL
    assert seen, "the planted formula label should appear, neutralised, in an export"


@pytest.mark.slow
def test_forced_failure_leaves_no_folder(
    make_package: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import trialpool.report.writer as report

    descriptor = make_package()
    real = report.run_analysis
    calls: list[str] = []

    def fail_on_second(ctx: Any, analysis: Any) -> Any:
        calls.append(analysis.id)
        if len(calls) == 2:
            raise RuntimeError("forced failure in the middle of the report")
        return real(ctx, analysis)

    monkeypatch.setattr(report, "run_analysis", fail_on_second)
    parent = tmp_path / "outdir"
    out = parent / "deeper" / "report"
    with pytest.raises(RuntimeError, match="forced failure"):
        build_report(descriptor, None, out, console=_quiet())
    assert len(calls) == 2
    assert not out.exists() and not parent.exists()  # created parents are removed too


@pytest.mark.slow
def test_previous_report_kept_on_failure_and_replaced_on_success(
    make_package: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import trialpool.report.writer as report

    descriptor = make_package()
    parent = tmp_path / "o"
    parent.mkdir()
    out = parent / "report"
    build_report(descriptor, None, out, console=_quiet())
    (out / "stale.txt").write_text("old", encoding="utf-8")
    before = (out / HTML_NAME).read_bytes()
    with monkeypatch.context() as patch:
        patch.setattr(report, "run_analysis", lambda ctx, analysis: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            build_report(descriptor, None, out, console=_quiet())
    assert (out / HTML_NAME).read_bytes() == before and (out / "stale.txt").is_file()
    assert [p.name for p in parent.iterdir()] == ["report"]  # no temporary folders left
    build_report(descriptor, None, out, console=_quiet())
    assert not (out / "stale.txt").exists() and (out / HTML_NAME).is_file()
    assert [p.name for p in parent.iterdir()] == ["report"]


@pytest.mark.parametrize("where", ["data", "data/sub", "root", "parent"])
def test_unsafe_out_refused(
    make_package: Callable[..., Path], where: str, capsys: pytest.CaptureFixture[str]
) -> None:
    descriptor = make_package()
    root = descriptor.parent
    out = {"data": root / "data", "data/sub": root / "data" / "sub", "root": root,
           "parent": root.parent}[where]  # fmt: skip
    before = sorted(p.name for p in (root / "data").iterdir())
    assert run_report(descriptor, plan=None, out=out, console=_quiet()) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("trialpool: error: --out") and "\n" not in err
    assert sorted(p.name for p in (root / "data").iterdir()) == before
    with pytest.raises(ReportError):
        build_report(descriptor, None, out, console=_quiet())


def test_user_folder_is_not_replaced(make_package: Callable[..., Path], tmp_path: Path) -> None:
    descriptor = make_package()
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.docx").write_text("precious", encoding="utf-8")
    with pytest.raises(ReportError, match="not a trialpool report"):
        build_report(descriptor, None, out, console=_quiet())
    assert (out / "thesis.docx").read_text(encoding="utf-8") == "precious"
    afile = tmp_path / "file.txt"
    afile.write_text("x", encoding="utf-8")
    with pytest.raises(ReportError, match="not a folder"):
        build_report(descriptor, None, afile, console=_quiet())


def test_invalid_package_refused(
    make_package: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    descriptor = make_package(edits={"dichotomous_outcomes": set_cell(2, "events", "99")})
    out = tmp_path / "r"
    console = Console(file=io.StringIO(), width=200)
    assert run_report(descriptor, plan=None, out=out, console=console) == 1
    printed = console.file.getvalue()  # type: ignore[attr-defined]
    assert "events" in printed and "report not written" in printed
    assert not out.exists()
    with pytest.raises(ValidationFailedError):
        build_report(descriptor, None, out, console=_quiet())


def test_invalid_plan_refused(
    make_package: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    descriptor = make_package()
    plan = tmp_path / "plan.json"
    plan.write_text('{"title": "x"}', encoding="utf-8")  # no analyses at all
    assert run_report(descriptor, plan=plan, out=tmp_path / "r", console=_quiet()) == 1
    err = capsys.readouterr().err
    assert "invalid analysis plan" in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_cli_report_runs(tmp_path: Path) -> None:
    from trialpool.cli import main

    descriptor = build_package(tmp_path / "pkg")
    out = tmp_path / "r"
    assert main(["report", str(descriptor), "--out", str(out)]) == 0
    assert (out / HTML_NAME).is_file()
