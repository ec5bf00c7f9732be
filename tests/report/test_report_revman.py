"""trialpool report on imported Cochrane reviews (RevMan analyses): forest plots in
RevMan's layout, the totals and the test for subgroup differences, the audit of every
number RevMan stored, RevMan's conventions in the Methods, no RCT-only caveat, the
review's own risk-of-bias domains and a PRISMA diagram that says what it cannot know.

The reviews are the real files in tests/fixtures/revman (Fleiss 1993 as a RevMan 5 CSV
export, CD000023 as a RevMan 5 file), imported once per module.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text
from rich.console import Console

from conftest import FIXTURES
from trialpool.analysis.plan import RevManAnalysis, load_plan, parse_plan
from trialpool.analysis.reproduce import reproduction_checks
from trialpool.analysis.revman import (
    PackageIndex,
    ReviewPoolResult,
    ReviewStudy,
    pool_review_analysis,
)
from trialpool.imports.write import run_import
from trialpool.package.loader import load_package
from trialpool.report.exports import robvis_table, robvis_template
from trialpool.report.figures import prisma, rob
from trialpool.report.figures.forest_review import review_forest
from trialpool.report.sections.audit import REVMAN_CSV_HEADER
from trialpool.report.writer import MD_NAME, build_report

REVMAN = FIXTURES / "revman"


def _quiet() -> Console:
    return Console(file=io.StringIO(), width=120)


def _import(source: Path, out: Path) -> Path:
    assert run_import(source, out=out, force=False, console=_quiet()) == 0
    return out / "datapackage.json"


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """Fleiss 1993 and CD000023 imported and reported: name -> (descriptor, report)."""
    root = tmp_path_factory.mktemp("revman_reports")
    out: dict[str, tuple[Path, Path]] = {}
    for name, source in (
        ("fleiss", REVMAN / "Fleiss1993_CR.csv"),
        ("cd000023", REVMAN / "CD000023StatsDataOnly.rm5"),
    ):
        descriptor = _import(source, root / f"{name}_pkg")
        report = root / f"{name}_report"
        build_report(descriptor, descriptor.parent / "analysis" / "plan.json", report)
        out[name] = (descriptor, report)
    return out


def _plan(descriptor: Path) -> list[RevManAnalysis]:
    analyses = load_plan(descriptor.parent / "analysis" / "plan.json").analyses
    assert all(isinstance(a, RevManAnalysis) for a in analyses)
    return analyses  # type: ignore[return-value]


def _md(report: Path) -> str:
    return (report / MD_NAME).read_text(encoding="utf-8")


def _section(md: str, anchor: str) -> str:
    """The Markdown from ``<a id="anchor">`` to the next second-level heading."""
    start = md.index(f'<a id="{anchor}"></a>')
    nxt = re.search(r'\n<a id="[^"]+"></a>\n\n## ', md[start + 1 :])
    return md[start : start + 1 + nxt.start()] if nxt else md[start:]


# --- the report of an imported review ------------------------------------------------


@pytest.mark.parametrize("name", ["fleiss", "cd000023"])
def test_one_forest_plot_per_analysis(imported: dict[str, tuple[Path, Path]], name: str) -> None:
    descriptor, report = imported[name]
    analyses = _plan(descriptor)
    md = _md(report)
    forests = sorted(p.name for p in (report / "figures").glob("forest_*.png"))
    assert forests == sorted(f"forest_{a.id}.png" for a in analyses)
    for a in analyses:
        assert (report / "figures" / f"forest_{a.id}.svg").stat().st_size > 1000
        assert f"![Forest plot: {a.title}](figures/forest_{a.id}.png)" in md
        assert (report / "exports" / f"revman_{a.id}.csv").is_file()


def test_subgroups_and_the_test_for_subgroup_differences(
    imported: dict[str, tuple[Path, Path]],
) -> None:
    md = _md(imported["cd000023"][1])
    part = md[md.index("### Analysis 1.6:") : md.index("### Analysis 1.7:")]
    assert "| 1.6.1 Symptom of sore throat at 1 week (6 to 8 days): blinded studies | 8 |" in part
    assert "| 1.6.2 Symptom of sore throat at 1 week (6 to 8 days): unblinded studies | 4 |" in part
    assert "| Total | 12 | 0.57 \\[0.38, 0.86\\] |" in part
    assert "Test for subgroup differences: Chi² = 0.98, df = 1 (P = 0.321), I² = 0.0%." in part
    assert "Not estimable, as in RevMan: Landsman 1951 (no events in either group)." in part
    assert "**RevMan's 96 stored numbers:** 96 agree, 0 differ by a named RevMan" in part
    assert "**Totals:** overall total and subtotals" in part
    assert "Risk Ratio, M-H, Random, 95% CI" in part


def test_audit_csv_has_every_stored_number_and_none_differs(
    imported: dict[str, tuple[Path, Path]],
) -> None:
    for descriptor, report in imported.values():
        pkg = load_package(descriptor)
        index = PackageIndex.of(pkg)
        expected = []
        for a in _plan(descriptor):
            expected += reproduction_checks(pkg, a, pool_review_analysis(pkg, a, index), index)
        table = pd.read_csv(report / "tables" / "revman_audit.csv", dtype=str)
        assert list(table.columns) == REVMAN_CSV_HEADER
        assert len(table) == len(expected) > 0
        assert list(table["quantity"]) == [c.quantity for c in expected]
        assert set(table["status"]) <= {"agrees", "known"}
        known = table[table["status"] == "known"]
        assert known["known_reason"].notna().all()
        md = _md(report)
        audit = _section(md, "audit")
        assert "RevMan's stored numbers per analysis" in audit
        n_known = len(known)
        total = f"| **All analyses** | **{len(table)}** | **{len(table) - n_known}** | "
        assert total + f"**{n_known}** | **0** |" in audit
        if n_known:  # each one listed with its reason
            assert f"Numbers that do not agree ({n_known})" in audit
            assert audit.count("**known:** ") == n_known


def test_methods_name_revmans_conventions_not_metafors(
    imported: dict[str, tuple[Path, Path]],
) -> None:
    md = _md(imported["fleiss"][1])
    methods = _section(md, "methods")
    assert "Statistical algorithms in Review Manager 5" in methods
    assert "Odds Ratio, M-H, Fixed: 1.1; Mean Difference, IV, Fixed: 1.2" in methods
    assert "about the M-H estimate" in methods
    assert "incomplete gamma series" in methods  # P of Chi² as RevMan computes it
    assert "metafor" not in methods and "REML: restricted" not in methods
    assert "Funnel plot" not in md and "escalc" not in md
    assert not (imported["fleiss"][1] / "exports" / "reproduce.R").exists()


def test_no_rct_only_caveat_for_an_imported_review(
    imported: dict[str, tuple[Path, Path]],
) -> None:
    for _, report in imported.values():
        md = _md(report)
        assert "left out of RCT-only analyses" not in md
        assert "pool the study rows the review pooled" in _section(md, "caveats")


def test_status_table_and_anchors(imported: dict[str, tuple[Path, Path]]) -> None:
    md = _md(imported["cd000023"][1])
    status = _section(md, "status")
    assert "| [1.6 Symptom of sore throat at one week (6 to 8 days): blind" in status
    assert "(<#analysis-1-6>) | pooled | pooled, k = 12 of 13 study rows |" in status
    assert '<a id="analysis-1-6"></a>' in md
    assert "| [2.4 Symptom of fever at 1 week (6 to 8 days)](<#analysis-2-4>) | not pooled |" in (
        status
    )


def test_prisma_says_what_an_imported_review_does_not_record(
    imported: dict[str, tuple[Path, Path]],
) -> None:
    descriptor, report = imported["cd000023"]
    counts = prisma.prisma_counts(load_package(descriptor).table("screening"))
    assert counts.identified is None and counts.screened is None and counts.assessed is None
    assert counts.included_studies == 27
    assert "not its search" in _section(_md(report), "prisma")


# --- the forest plot -----------------------------------------------------------------


def _texts(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.findobj(Text) if t.get_text()]


def _diamonds(fig: Figure) -> int:
    return len([p for p in fig.axes[0].patches if p.get_gid() == "diamond"])


def _pooled(descriptor: Path, analysis_id: str) -> tuple[RevManAnalysis, ReviewPoolResult]:
    pkg = load_package(descriptor)
    a = next(a for a in _plan(descriptor) if a.id == analysis_id)
    return a, pool_review_analysis(pkg, a)


def _x(fig: Figure, text: str) -> float:
    fig.canvas.draw()
    (t,) = [t for t in fig.findobj(Text) if t.get_text() == text]
    box = t.get_window_extent(fig.canvas.get_renderer())  # type: ignore[attr-defined]
    return float((box.x0 + box.x1) / 2)


def _null_x(fig: Figure) -> float:
    fig.canvas.draw()
    ax = fig.axes[0]
    return float(ax.transData.transform((0.0, 0.0))[0])


def test_forest_with_subgroups_in_revmans_layout(imported: dict[str, tuple[Path, Path]]) -> None:
    a, r = _pooled(imported["cd000023"][0], "1.6")
    fig = review_forest(a, r)
    texts = _texts(fig)
    assert "Analysis 1.6: " + a.title in texts
    assert {"Risk Ratio", "M-H, Random, 95% CI", "Antibiotics", "Placebo"} <= set(texts)
    assert texts.count("Subtotal (95% CI)") == 2 and texts.count("Total (95% CI)") == 1
    assert "1.6.1 Symptom of sore throat at 1 week (6 to 8 days): blinded studies" in texts
    assert "Not estimable" in texts and "0.0%" in texts  # Landsman 1951
    assert any(t.startswith("Heterogeneity: Tau² = 0.24; Chi² = 33.28, df = 11") for t in texts)
    assert "Test for overall effect: Z = 2.71 (P = 0.007)" in texts
    assert "Test for subgroup differences: Chi² = 0.98, df = 1 (P = 0.321), I² = 0.0%" in texts
    assert _diamonds(fig) == 3
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    one = fig.axes[0].get_xticks()[ticks.index("1")]
    assert one == pytest.approx(0.0)  # log axis: 1 at log(1) = 0
    # the review's own labels, left and right as RevMan prints them
    assert _x(fig, "Favours antibiotics") < _null_x(fig) < _x(fig, "Favours placebo")


def test_forest_not_estimable_total(imported: dict[str, tuple[Path, Path]]) -> None:
    a, r = _pooled(imported["cd000023"][0], "2.4")
    fig = review_forest(a, r)
    texts = _texts(fig)
    assert texts.count("Not estimable") == len(r.studies) + 1
    assert "Heterogeneity: Not applicable" in texts
    assert "Test for overall effect: Not applicable" in texts
    assert _diamonds(fig) == 0


@pytest.mark.parametrize("totals", ["subgroups", "none"])
def test_forest_follows_the_totals_option(
    imported: dict[str, tuple[Path, Path]], totals: str
) -> None:
    descriptor = imported["cd000023"][0]
    a, _ = _pooled(descriptor, "1.6")
    a = a.model_copy(update={"totals": totals})
    r = pool_review_analysis(load_package(descriptor), a)
    texts = _texts(review_forest(a, r))
    assert "Total (95% CI)" not in texts
    if totals == "subgroups":
        assert texts.count("Subtotal (95% CI)") == 2 and "Weight" in texts
        assert any("subtotals only" in t for t in texts)
    else:
        assert "Subtotal (95% CI)" not in texts and "Weight" not in texts
        assert not any(t.startswith("Test for subgroup differences") for t in texts)


def test_forest_of_petos_odds_ratio(imported: dict[str, tuple[Path, Path]]) -> None:
    descriptor = imported["cd000023"][0]
    a, _ = _pooled(descriptor, "1.1")
    a = a.model_copy(update={"method": "PETO", "measure": "PETO_OR", "random": False})
    r = pool_review_analysis(load_package(descriptor), a)
    fig = review_forest(a, r)
    texts = _texts(fig)
    assert {"Peto Odds Ratio", "Peto, Fixed, 95% CI"} <= set(texts)
    assert any(t.startswith("Heterogeneity: Chi² = ") for t in texts)  # fixed: no Tau²
    assert "1" in [t.get_text() for t in fig.axes[0].get_xticklabels()]  # a log axis


def test_forest_of_generic_inverse_variance_on_a_log_axis() -> None:
    """A synthetic generic analysis (log hazard ratios, invented numbers)."""
    a = RevManAnalysis(
        id="9.1",
        title="Synthetic survival",
        comparison="Synthetic A versus B",
        outcome="os",
        outcome_label="Overall survival",
        data_type="generic",
        method="IV",
        measure="Hazard Ratio",
        random=False,
        log_data=True,
        favours=("A", "B"),
        graph_labels=("Favours A", "Favours B"),
        comparison_ids=["s1_c", "s2_c"],
    )
    studies = [
        ReviewStudy(
            study_id=sid, comparison_id=f"{sid}_c", label=f"Synthetic {sid}", estimable=True,
            yi=yi, vi=se**2, estimate=math.exp(yi), ci_lower=math.exp(yi - 1.96 * se),
            ci_upper=math.exp(yi + 1.96 * se), weight=w, arm_data={"estimate": yi, "se": se},
        )
        for sid, yi, se, w in (("s1", -0.3, 0.2, 60.0), ("s2", 0.1, 0.25, 40.0))
    ]  # fmt: skip
    r = ReviewPoolResult(
        analysis_id="9.1", measure="Hazard Ratio", method="IV", model="IV, Fixed", ratio=True,
        level=95.0, k=2, estimable=True, estimate=0.85, ci_lower=0.62, ci_upper=1.16,
        zval=1.02, p_value=0.31, q=1.56, q_df=1, q_p=0.21, i2=36.0, weight=100.0,
        studies=studies,
    )  # fmt: skip
    fig = review_forest(a, r)
    texts = _texts(fig)
    assert {"log[Hazard Ratio]", "SE", "Hazard Ratio", "IV, Fixed, 95% CI"} <= set(texts)
    assert "−0.3000" in texts and "0.2000" in texts
    assert "Heterogeneity: Chi² = 1.56, df = 1 (P = 0.210); I² = 36%" in texts  # no Tau²
    assert "0.74 [0.50, 1.10]" in texts
    assert "1" in [t.get_text() for t in fig.axes[0].get_xticklabels()]


# --- risk of bias with a review's own domains ----------------------------------------

_OWN_DOMAINS = [  # (domain, label, scope): a RevMan review's RoB 1 table, synthetic rows
    ("random_sequence_generation_selection_bias", "Random sequence generation (selection bias)",
     "all"),
    ("blinding_performance_and_detection", "Blinding (performance and detection bias)",
     "participants"),
    ("blinding_performance_and_detection", "Blinding (performance and detection bias)",
     "outcome assessors"),
    ("other_bias", "Other bias", "all"),
]  # fmt: skip


def _own_domain_judgements() -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    for i, study in enumerate(("s1", "s2", "s3")):
        for j, (domain, label, scope) in enumerate(_OWN_DOMAINS):
            rows.append(
                {"study_id": study, "tool": "rob1", "domain": domain, "domain_label": label,
                 "result_scope": scope, "judgement": ("low", "unclear", "high")[(i + j) % 3]}
            )  # fmt: skip
    return pd.DataFrame(rows)


def test_rob_figures_with_a_reviews_own_domains(tmp_path: Path) -> None:
    frame = _own_domain_judgements()
    columns = rob.rob_columns(frame, "rob1")
    assert [c.name for c in columns] == [
        "Random sequence generation (selection bias)",
        "Blinding (performance and detection bias): participants",
        "Blinding (performance and detection bias): outcome assessors",
        "Other bias",
    ]  # the source's order and names, even with a standard code (other_bias) among them
    assert [c.short for c in columns] == ["D1", "D2", "D3", "D4"]
    summary = rob.rob_summary(frame, {"s1": "Synthetic 1", "s2": "Synthetic 2"}, "rob1")
    texts = _texts(summary)
    assert "D2: Blinding (performance and detection bias): participants" in texts
    assert "Synthetic 1" in texts
    graph = rob.rob_graph(frame, "rob1")
    labels = [t.get_text() for t in graph.axes[0].get_yticklabels()]
    assert labels == [c.name for c in columns]
    rob.save(summary, tmp_path / "summary", formats=("png",))
    header, rows = robvis_table(frame, "rob1", {"s1": "Synthetic 1"})
    assert header == ["Study", *[c.name for c in columns], "Overall", "Weight"]
    assert rows[0][:3] == ["Synthetic 1", "Low", "Unclear"] and len(rows) == 3
    assert robvis_template(frame, "rob1") == "Generic"


@pytest.mark.slow
def test_report_of_a_cochrane_data_package(tmp_path: Path) -> None:
    """CD004366 (a Cochrane data package): its own RoB domains (584 judgements), the
    review's characteristics of included studies, an SMD analysis."""
    descriptor = _import(
        REVMAN / "cochrane-data-package" / "CD004366-SUP-06-dataPackage", tmp_path / "pkg"
    )
    report = tmp_path / "report"
    build_report(descriptor, descriptor.parent / "analysis" / "plan.json", report)
    md = _md(report)
    assert (report / "figures" / "rob_summary_rob1.png").is_file()
    assert (report / "figures" / "rob_graph_rob1.png").is_file()
    robvis = pd.read_csv(report / "exports" / "robvis_rob1.csv")
    assert "Blinding (performance bias and detection bias): participants" in robvis.columns
    assert robvis.iloc[:, 1:-2].notna().all().all()  # every domain column filled
    chars = _section(md, "characteristics")
    assert "| Study | Methods | Participants | Interventions | Outcomes | Notes |" in chars
    table = pd.read_csv(report / "tables" / "study_characteristics.csv", dtype=str)
    assert len(table) == 73 and table["participants"].str.len().max() > 240
    assert "Std. Mean Difference, IV, Random, 95% CI" in md
    audit = pd.read_csv(report / "tables" / "revman_audit.csv", dtype=str)
    assert "differs" not in set(audit["status"])


# --- a plan with both kinds of analyses ---------------------------------------------


MIXED_PLAN: dict[str, Any] = {
    "title": "Death (metafor and RevMan)",
    "defaults": {"all_designs_variant": False},
    "analyses": [
        {
            "id": "death-24w",
            "title": "Death at 24 weeks",
            "outcome": "death",
            "outcome_label": "Death",
            "timepoint_weeks": 24,
            "measure": "RR",
            "lower_is_better": True,
        },
        {
            "engine": "revman",
            "id": "1.1",
            "title": "Death (RevMan analysis 1.1)",
            "comparison": "MSC versus control",
            "outcome": "death",
            "outcome_label": "Death",
            "timepoint": "week_24",
            "data_type": "dichotomous",
            "method": "MH",
            "measure": "RR",
            "random": False,
            "comparison_ids": ["alpha2020_msc_vs_control"],
        },
    ],
}


def test_a_mixed_plan_gets_both_conventions(
    make_package: Callable[..., Path], tmp_path: Path
) -> None:
    out = tmp_path / "r"
    build_report(make_package(), parse_plan(MIXED_PLAN), out, console=_quiet())
    md = _md(out)
    methods = _section(md, "methods")
    assert "### Analyses pooled with metafor's conventions" in methods
    assert "### Analyses of the imported review (RevMan's conventions)" in methods
    assert "Conventions follow R's metafor" in methods
    assert "Statistical algorithms in Review Manager 5" in methods
    assert "left out of RCT-only analyses" in md  # beta2021 is not an RCT: metafor's caveat
    assert (out / "figures" / "forest_1.1.png").is_file()
    assert "are not refitted" in (out / "exports" / "reproduce.R").read_text(encoding="utf-8")
    assert (out / "tables" / "revman_audit.csv").is_file()
