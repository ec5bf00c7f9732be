"""The summary of findings (report section and exports/summary_of_findings.csv).

Absolute effects are recomputed here from the data with the textbook formulas, not with
trialpool's code: the assumed control risk is the median control-group risk of the
studies; the corresponding risk is ACR × RR, ACR·OR / (1 − ACR + ACR·OR) or ACR + RD
(Cochrane Handbook 5.1, sections 11.5.5 and 12.5.4.3, whose worked example is checked).
Data: the bundled package (Lin 2017, k = 1, with the maintainers' GRADE ratings),
metadat's dat.bcg (13 trials, pooled), the valid fixture (a continuous outcome) and a
real Cochrane review imported from RevMan (Fleiss 1993).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import statistics
from pathlib import Path
from statistics import NormalDist

import pandas as pd
import pytest
from rich.console import Console
from test_report import BCG_PLAN, GOLDEN, bcg_package

from conftest import REPO, build_package
from trialpool.analysis import pooled as analysis
from trialpool.analysis.plan import load_plan, parse_plan
from trialpool.analysis.revman import pool_review_analysis
from trialpool.imports.write import run_import
from trialpool.package.loader import load_package
from trialpool.report.sections.summary_of_findings import (
    CSV_HEADER,
    CSV_NAME,
    NOT_ASSESSED,
    corresponding_risk,
    per_1000,
)
from trialpool.report.writer import HTML_NAME, MD_NAME, build_report

Z = NormalDist().inv_cdf(0.975)
CERTAINTY_COLUMNS = [
    f["name"]
    for f in json.loads((REPO / "schemas" / "certainty.schema.json").read_text("utf-8"))["fields"]
]


def _quiet() -> Console:
    return Console(file=io.StringIO(), width=120)


def read_sof(report: Path) -> list[dict[str, str]]:
    with open(report / CSV_NAME, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == CSV_HEADER
        return list(reader)


def section(md: str) -> str:
    start = md.index("## Summary of findings")
    return md[start : md.index("\n## ", start + 5)]


def close(value: str, expected: float) -> bool:
    return math.isclose(float(value), expected, rel_tol=1e-9, abs_tol=1e-9)


def write_certainty(descriptor: Path, rows: list[dict[str, str]]) -> None:
    """Replace the package's certainty.csv and refresh the descriptor's bytes and hash."""
    path = descriptor.parent / "data" / "certainty.csv"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CERTAINTY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: row.get(c, "") for c in CERTAINTY_COLUMNS})
    path.write_text(out.getvalue(), encoding="utf-8")
    data = json.loads(descriptor.read_text("utf-8"))
    for res in data["resources"]:
        if res["name"] == "certainty":
            blob = path.read_bytes()
            res["bytes"] = len(blob)
            res["hash"] = "sha256:" + hashlib.sha256(blob).hexdigest()
    descriptor.write_text(json.dumps(data, indent=2), encoding="utf-8")


# --------------------------------------------------------------- the formulas


def test_cochrane_handbook_worked_example() -> None:
    """Cochrane Handbook 5.1, 12.5.4.3: OR 0.73 with an assumed control risk of 0.3 is
    62 fewer per 1,000; 11.5.5: RR 0.75 takes 80% to 60% and 20% to 15%."""
    assert per_1000(0.3) - per_1000(corresponding_risk("OR", 0.3, 0.73)) == 62
    assert math.isclose(corresponding_risk("RR", 0.8, 0.75), 0.6)
    assert math.isclose(corresponding_risk("RR", 0.2, 0.75), 0.15)
    assert math.isclose(corresponding_risk("RD", 0.3, -0.05), 0.25)
    assert corresponding_risk("PETO_OR", 0.3, 0.73) == corresponding_risk("OR", 0.3, 0.73)
    with pytest.raises(ValueError):
        corresponding_risk("MD", 0.3, 1.0)


# --------------------------------------------------------------- the bundled package


@pytest.fixture(scope="module")
def bundled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sof_bundled") / "report"
    build_report(REPO / "datapackage.json", REPO / "analysis" / "plan.json", out, console=_quiet())
    return out


def _bundled_counts() -> dict[str, tuple[int, int, int, int]]:
    """outcome -> (e1, t1, e2, t2) at 24 weeks, read from the data (MSC arm first)."""
    frame = pd.read_csv(REPO / "data" / "dichotomous_outcomes.csv")
    out: dict[str, tuple[int, int, int, int]] = {}
    for outcome, rows in frame[frame["timepoint_weeks"] == 24].groupby("outcome"):
        msc = rows[rows["arm_id"] == "msc"].iloc[0]
        ctl = rows[rows["arm_id"] == "control"].iloc[0]
        out[str(outcome)] = (int(msc.events), int(msc.total), int(ctl.events), int(ctl.total))
    return out


@pytest.mark.slow
def test_bundled_numbers_follow_the_formulas(bundled: Path) -> None:
    rows = read_sof(bundled)
    plan_ids = [a.id for a in load_plan(REPO / "analysis" / "plan.json").analyses]
    assert [r["analysis_id"] for r in rows if r["analysis_id"] in plan_ids] == [
        r["analysis_id"] for r in rows
    ]
    assert set(plan_ids) == {r["analysis_id"] for r in rows}  # every analysis has a row
    counts = _bundled_counts()
    with_data = {
        "death-by-time": "death",
        "death-mof-or-infection-24w": "death_mof_or_infection",
        "severe-infection-24w": "severe_infection",
    }
    for row in rows:
        if row["analysis_id"] not in with_data:
            # no invented numbers: no data, no estimate, no rating
            assert row["result"] == "no_data", row
            assert row["k"] == "0" and row["estimate"] == "" and row["assumed_risk_per_1000"] == ""
            assert row["certainty_text"] == NOT_ASSESSED and row["certainty"] == ""
            assert "No extractable data yet." in row["comments"]
            continue
        e1, t1, e2, t2 = counts[with_data[row["analysis_id"]]]
        rr = (e1 / t1) / (e2 / t2)
        se = math.sqrt(1 / e1 - 1 / t1 + 1 / e2 - 1 / t2)
        lo, hi = math.exp(math.log(rr) - Z * se), math.exp(math.log(rr) + Z * se)
        acr = e2 / t2  # the median of one study's control risk
        assert row["result"] == "single_study" and row["k"] == "1"
        assert row["participants"] == str(t1 + t2) and row["studies"] == "Lin 2017"
        assert row["timepoint"] == "week_24" and row["measure"] == "RR"
        assert close(row["estimate"], rr) and close(row["ci_lower"], lo)
        assert close(row["ci_upper"], hi)
        assert close(row["assumed_risk_per_1000"], 1000 * acr)
        assert close(row["corresponding_risk_per_1000"], 1000 * acr * rr)
        assert close(row["corresponding_ci_lower_per_1000"], 1000 * acr * lo)
        assert close(row["corresponding_ci_upper_per_1000"], 1000 * acr * hi)
        assert close(row["risk_difference_per_1000"], 1000 * acr * (rr - 1))
        assert row["assumed_risk_basis"] == "median control-group risk of the studies"
        assert row["certainty"] == "very_low" and row["certainty_text"] == "⊕◯◯◯ Very low"
        assert row["assessor"] == "package maintainers"
        assert "One study (k = 1), not pooled: the effect is Lin 2017's own." in row["comments"]
        # the absolute effect as printed, rounded per 1,000
        cor, acr_n = round(1000 * acr * rr), round(1000 * acr)
        assert f"{cor} per 1,000" in row["absolute_effect"]
        assert f"{acr_n - cor} fewer per 1,000" in row["absolute_effect"]


@pytest.mark.slow
def test_bundled_section_in_the_report(bundled: Path) -> None:
    md = (bundled / MD_NAME).read_text(encoding="utf-8")
    assert md.index("## What the data can and cannot show") < md.index("## Summary of findings")
    assert md.index("## Summary of findings") < md.index("## Study characteristics")
    sof = section(md)
    assert sof.count("⊕◯◯◯ Very low") == 3
    assert sof.count(NOT_ASSESSED) == len(read_sof(bundled)) - 3
    assert "rated by package maintainers" in sof
    assert "median control-group risk of the studies" in sof
    # the reasons are the data's, as footnotes (Markdown-escaped, so compare a plain part)
    with open(REPO / "data" / "certainty.csv", encoding="utf-8", newline="") as handle:
        ratings = list(csv.DictReader(handle))
    for row in ratings:
        assert row["imprecision_reason"].split(":")[0] in sof
    assert "Lu 2025 gives no certainty rating" in sof
    assert "| 444 per 1,000 | 268 per 1,000 (158 to 453)" in sof  # 24/54; RR 0.60 [0.36, 1.02]
    exports = md[md.index("## Exports") :]
    assert f"`{CSV_NAME}`" in exports
    html = (bundled / HTML_NAME).read_text(encoding="utf-8")
    assert 'id="summary-of-findings"' in html
    start = html.index('id="summary-of-findings"')
    table = html[start : html.index("</table>", start)]
    assert table.count("<tr>") == len(read_sof(bundled)) + 1  # header + one per result
    assert "⊕◯◯◯ Very low" in table and "| --- |" not in table


# --------------------------------------------------------------- pooled results (dat.bcg)

#: a rating with no domain rated down or up (randomised trials: high); tests change keys
NO_CONCERNS = {
    "study_design": "randomised",
    "risk_of_bias": "not_serious",
    "inconsistency": "not_serious",
    "indirectness": "not_serious",
    "imprecision": "not_serious",
    "publication_bias": "not_serious",
    "large_effect": "none",
    "dose_response": "none",
    "plausible_confounding": "none",
    "certainty": "high",
    "assessor": "test assessor",
}


def rating(**changes: str) -> dict[str, str]:
    return {**NO_CONCERNS, **changes}


BCG_RATINGS = [
    rating(
        analysis_id="tb-52w",
        timepoint="week_52",
        outcome="tuberculosis",
        study_design="non_randomised",
        inconsistency="serious",
        inconsistency_reason="Test fixture: I² is large.",
        large_effect="large",
        large_effect_reason="Test fixture: RR about 0.5.",
        certainty="low",
        comment="Test fixture rating, not a real judgement.",
        source_id="colditz1994",
    ),
    rating(
        analysis_id="tb-52w", timepoint="week_26", outcome="tuberculosis", source_id="colditz1994"
    ),
    rating(
        analysis_id="tb-rct",
        timepoint="week_52",
        outcome="tuberculosis",
        study_design="non_randomised",
        certainty="low",
        source_id="colditz1994",
    ),
]


@pytest.fixture(scope="module")
def bcg(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("sof_bcg")
    descriptor = bcg_package(root)
    write_certainty(descriptor, BCG_RATINGS)
    plan = dict(BCG_PLAN)
    plan["analyses"] = [
        {**{k: v for k, v in a.items() if k != "sensitivity"}, "favours": ["BCG", "control"]}
        for a in BCG_PLAN["analyses"]
    ] + [
        {
            "id": f"tb-{m.lower()}",
            "title": f"Tuberculosis at 52 weeks ({m})",
            "outcome": "tuberculosis",
            "outcome_label": "Tuberculosis",
            "timepoint_weeks": 52,
            "measure": m,
            "lower_is_better": True,
            "favours": ["BCG", "control"],
        }
        for m in ("OR", "RD")
    ]
    out = root / "report"
    build_report(descriptor, parse_plan(plan), out, console=_quiet())
    return descriptor, out


@pytest.mark.slow
def test_pooled_absolute_effects(bcg: tuple[Path, Path]) -> None:
    descriptor, report = bcg
    dat = pd.read_csv(GOLDEN / "data" / "dat.bcg.csv")
    risks = (dat.cpos / (dat.cpos + dat.cneg)).tolist()
    rows = {r["analysis_id"]: r for r in read_sof(report)}
    pkg = load_package(descriptor)
    designs = ["rct", "non_randomised_controlled"]
    for aid, measure in (("tb-52w", "RR"), ("tb-or", "OR"), ("tb-rd", "RD")):
        row = rows[aid]
        pooled = analysis.pool_outcome(
            pkg, "tuberculosis", 52, measure=measure, method="REML", designs=designs
        )
        acr = statistics.median(risks)
        if measure == "RR":
            expect = [acr * x for x in (pooled.estimate, pooled.ci_lower, pooled.ci_upper)]
        elif measure == "OR":
            expect = [
                acr * x / (1 - acr + acr * x)
                for x in (pooled.estimate, pooled.ci_lower, pooled.ci_upper)
            ]
        else:
            expect = [acr + x for x in (pooled.estimate, pooled.ci_lower, pooled.ci_upper)]
        assert row["result"] == "pooled" and row["k"] == "13"
        assert row["participants"] == str(int((dat.tpos + dat.tneg + dat.cpos + dat.cneg).sum()))
        assert close(row["estimate"], pooled.estimate)
        assert close(row["assumed_risk_per_1000"], 1000 * acr)
        assert close(row["corresponding_risk_per_1000"], 1000 * expect[0])
        assert close(row["corresponding_ci_lower_per_1000"], 1000 * min(expect[1:]))
        assert close(row["corresponding_ci_upper_per_1000"], 1000 * max(expect[1:]))
    # the rating: matched on analysis and time point; low follows from its domains
    assert rows["tb-52w"]["certainty"] == "low"
    assert rows["tb-52w"]["certainty_derivation"] == (
        "start low (non_randomised); inconsistency serious -1; large_effect large +1; = low"
    )
    assert "Test fixture rating" in rows["tb-52w"]["comments"]
    assert "The rating starts" not in rows["tb-52w"]["comments"]  # mixed designs: no remark
    assert rows["tb-or"]["certainty_text"] == NOT_ASSESSED
    # a start that does not fit the designs pooled is remarked on
    assert rows["tb-rct"]["certainty_text"] == "⊕⊕◯◯ Low"
    assert (
        "The rating starts from non-randomised studies, but every study in the result is "
        "randomised." in rows["tb-rct"]["comments"]
    )
    md = section((report / MD_NAME).read_text(encoding="utf-8"))
    assert "⊕⊕◯◯ Low ¹ ²" in md
    assert "Inconsistency (serious, rated down one level): Test fixture: I² is large." in md
    assert "Large effect (large, rated up one level): Test fixture: RR about 0.5." in md
    assert "Risk with BCG (95% CI)" in md
    # a rating that matches no result is listed, not dropped
    assert "match no result of this plan" in md and "tb-52w (week\\_26)" in md


def _without_certainty(descriptor: dict[str, object]) -> None:
    """Edit: no certainty resource; no extension (the msc_arms resource dropped too)."""
    resources = descriptor["resources"]
    assert isinstance(resources, list)
    descriptor["resources"] = [r for r in resources if r["name"] not in ("certainty", "msc_arms")]
    descriptor.pop("extensions", None)


def test_no_certainty_resource(tmp_path: Path) -> None:
    """A package without ``certainty``: every row says "certainty not assessed"."""
    descriptor = build_package(
        tmp_path / "pkg",
        edit_descriptor=_without_certainty,
    )
    plan = parse_plan(
        {
            "title": "continuous (test plan)",
            "defaults": {"all_designs_variant": False},
            "analyses": [
                {
                    "id": "meld-4w",
                    "title": "MELD at 4 weeks",
                    "outcome": "meld",
                    "outcome_label": "MELD score",
                    "unit": "points",
                    "timepoint_weeks": 4,
                    "measure": "MD",
                    "lower_is_better": True,
                }
            ],
        }
    )
    out = tmp_path / "report"
    build_report(descriptor, plan, out, console=_quiet())
    (row,) = read_sof(out)
    # alpha2020 only: 20.5 (4.2), n 28 vs 22.1 (5), n 30 (tests/fixtures/valid_minimal)
    md_ = 20.5 - 22.1
    se = math.sqrt(4.2**2 / 28 + 5**2 / 30)
    assert row["result"] == "single_study" and row["data_type"] == "continuous"
    assert close(row["estimate"], md_)
    assert close(row["ci_lower"], md_ - Z * se) and close(row["ci_upper"], md_ + Z * se)
    assert row["participants"] == "58" and row["assumed_risk_per_1000"] == ""
    low, high = md_ - Z * se, md_ + Z * se
    assert row["absolute_effect"] == (
        f"MD {abs(md_):.2f} points lower ({abs(low):.2f} lower to {high:.2f} higher)"
    )
    assert row["certainty_text"] == NOT_ASSESSED
    md = section((out / MD_NAME).read_text(encoding="utf-8"))
    assert "No result of this plan has a certainty rating" in md


def test_rating_of_another_outcome(tmp_path: Path) -> None:
    """Certainty rows matched by analysis and time point (one per time point): one names
    another outcome, one starts from randomised trials for a non-randomised study."""
    death24 = rating(
        analysis_id="death-24w", timepoint="week_24", outcome="meld", source_id="test_a"
    )
    descriptor = build_package(tmp_path / "pkg")
    week12 = {**death24, "timepoint": "week_12", "outcome": "death"}
    write_certainty(descriptor, [death24, week12])
    plan = parse_plan(
        {
            "title": "death (test plan)",
            "defaults": {"designs": ["rct", "non_randomised_controlled"]},
            "analyses": [
                {
                    "id": "death-24w",
                    "title": "Death",
                    "outcome": "death",
                    "outcome_label": "Death",
                    "subgroup_by": "timepoint",
                    "measure": "RR",
                    "lower_is_better": True,
                }
            ],
        }
    )
    out = tmp_path / "report"
    build_report(descriptor, plan, out, console=_quiet())
    rows = {r["timepoint"]: r for r in read_sof(out)}
    assert set(rows) == {"week_12", "week_24"}  # one row per time point
    assert rows["week_12"]["certainty_text"] == "⊕⊕⊕⊕ High"
    assert (
        "The rating starts from randomised trials, but the result includes other designs "
        "(non randomised controlled)." in rows["week_12"]["comments"]
    )
    assert "names outcome" not in rows["week_12"]["comments"]
    week24 = rows["week_24"]
    assert week24["certainty"] == "high"
    assert "The certainty row names outcome meld; this result is death." in week24["comments"]
    # alpha2020 (rct) alone at 24 weeks: no remark on the design
    assert "The rating starts" not in week24["comments"]


# --------------------------------------------------------------- an imported review


@pytest.mark.slow
def test_imported_revman_review(tmp_path: Path) -> None:
    source = Path(__file__).resolve().parents[1] / "fixtures" / "revman" / "Fleiss1993_CR.csv"
    pkg_dir = tmp_path / "fleiss"
    assert run_import(source, out=pkg_dir, force=False, console=_quiet()) == 0
    descriptor = pkg_dir / "datapackage.json"
    plan = load_plan(pkg_dir / "analysis" / "plan.json")
    first = plan.analyses[0]
    write_certainty(
        descriptor,
        [
            rating(
                analysis_id=first.id,
                timepoint=first.timepoint,  # type: ignore[union-attr]
                outcome=first.outcome,  # type: ignore[union-attr]
                risk_of_bias="serious",
                risk_of_bias_reason="Test fixture reason.",
                certainty="moderate",
                source_id=load_package(descriptor).table("sources")["source_id"].iloc[0],
            )
        ],
    )
    out = tmp_path / "report"
    build_report(descriptor, pkg_dir / "analysis" / "plan.json", out, console=_quiet())
    rows = read_sof(out)
    assert [r["analysis_id"] for r in rows] == [a.id for a in plan.analyses]
    pkg = load_package(descriptor)
    for a, row in zip(plan.analyses, rows, strict=True):
        result = pool_review_analysis(pkg, a)  # type: ignore[arg-type]
        used = [s for s in result.studies if s.estimable and not s.no_data]
        assert row["k"] == str(result.k)
        assert close(row["estimate"], result.estimate)  # type: ignore[arg-type]
        assert row["participants"] == str(
            sum(int(s.arm_data["n1"]) + int(s.arm_data["n2"]) for s in used)  # type: ignore[arg-type]
        )
        if a.data_type == "dichotomous" and a.measure in ("RR", "OR", "RD", "PETO_OR"):  # type: ignore[union-attr]
            acr = statistics.median(
                float(s.arm_data["e2"]) / float(s.arm_data["n2"])  # type: ignore[arg-type]
                for s in used
            )
            assert close(row["assumed_risk_per_1000"], 1000 * acr)
            assert close(
                row["corresponding_risk_per_1000"],
                1000 * corresponding_risk(a.measure, acr, result.estimate),  # type: ignore[union-attr, arg-type]
            )
    assert rows[0]["certainty"] == "moderate"
    assert "The rating starts" not in rows[0]["comments"]  # designs unclear: no remark
    assert all(r["certainty_text"] == NOT_ASSESSED for r in rows[1:])
