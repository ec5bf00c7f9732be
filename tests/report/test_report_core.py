"""trialpool report on core 1.0 packages: arms through comparisons, the msc extension,
outcomes as data (labels, units, direction), time points without weeks, and the hooks
left for the RevMan engine's analyses and audit rows.

Packages are the minimal fixture (tests/fixtures/valid_minimal, msc extension declared)
with small edits; the bundled package's multi-arm trial is checked in test_report.py.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from rich.console import Console

from conftest import add_row, set_cell
from trialpool.analysis.plan import parse_plan
from trialpool.analysis.runs import Settings, outcome_infos, pool, usable_studies
from trialpool.package.loader import load_package
from trialpool.report.document import Para
from trialpool.report.writer import FROM_DATA, HTML_NAME, MD_NAME, build_report, resolve_plan
from trialpool.stats.results import PoolResult


def _quiet() -> Console:
    return Console(file=io.StringIO(), width=120)


def _core_only(descriptor: dict[str, Any]) -> None:
    """Edit: declare no extension (the template's msc_arms resource is dropped)."""
    descriptor.pop("extensions", None)
    descriptor["resources"] = [r for r in descriptor["resources"] if r["name"] != "msc_arms"]


def _edit_rows(match: dict[str, str], values: dict[str, str]) -> Callable[[str], str]:
    """Edit: set ``values`` in every row whose cells equal ``match``."""

    def edit(text: str) -> str:
        rows = list(csv.reader(io.StringIO(text)))
        head = rows[0]
        for row in rows[1:]:
            if all(row[head.index(k)] == v for k, v in match.items()):
                for k, v in values.items():
                    row[head.index(k)] = v
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(rows)
        return out.getvalue()

    return edit


DEATH_PLAN: dict[str, Any] = {
    "title": "Death (test plan)",
    "defaults": {"designs": ["rct", "non_randomised_controlled"], "all_designs_variant": False},
    "analyses": [
        {
            "id": "death-24w",
            "title": "Death at 24 weeks",
            "outcome": "death",
            "outcome_label": "Death",
            "timepoint_weeks": 24,
            "measure": "RR",
            "lower_is_better": True,
        }
    ],
}

REVMAN_ANALYSIS: dict[str, Any] = {
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
}


# --- study characteristics -----------------------------------------------------------


def test_characteristics_reads_msc_arms_when_the_extension_is_declared(
    make_package: Callable[..., Path], tmp_path: Path
) -> None:
    descriptor = make_package()
    out = tmp_path / "r"
    build_report(descriptor, parse_plan(DEATH_PLAN), out, console=_quiet())
    table = pd.read_csv(out / "tables" / "study_characteristics.csv", dtype=str)
    assert list(table["comparison_id"]) == ["alpha2020_msc_vs_control", "beta2021_msc_vs_control"]
    alpha = table.set_index("study_id").loc["alpha2020"]
    assert alpha["msc_arm"] == "umbilical cord, allogeneic, 1×10^5 cells/kg × 4, peripheral vein"
    assert alpha["control_arm"] == "standard care"
    assert (alpha["n_msc"], alpha["n_control"]) == ("30", "30")
    beta = table.set_index("study_id").loc["beta2021"]
    assert beta["msc_arm"] == "bone marrow, autologous, 1×10^6–2×10^6 cells × 1, hepatic artery"
    md = (out / MD_NAME).read_text(encoding="utf-8")
    assert "| MSC arm | Control arm | n randomised (MSC / control) |" in md
    assert "| Comparison |" not in md  # one comparison per study, one label


def test_characteristics_without_the_extension_shows_the_core_fields(
    make_package: Callable[..., Path], tmp_path: Path
) -> None:
    descriptor = make_package(edit_descriptor=_core_only)
    assert load_package(descriptor).extensions == []
    out = tmp_path / "r"
    build_report(descriptor, parse_plan(DEATH_PLAN), out, console=_quiet())
    table = pd.read_csv(out / "tables" / "study_characteristics.csv", dtype=str)
    assert "msc_arm" not in table.columns and "n_msc" not in table.columns
    alpha = table.set_index("study_id").loc["alpha2020"]
    assert alpha["experimental_arm"] == "MSC plus standard care"  # the arm's description
    assert (alpha["n_experimental"], alpha["n_control"]) == ("30", "30")
    md = (out / MD_NAME).read_text(encoding="utf-8")
    assert "| Experimental arm | Control arm | n randomised (experimental / control) |" in md
    assert "umbilical cord" not in md


def _multi_arm(text: str) -> str:
    """Edit of comparisons: Alpha 2020's high-dose arm against the same control."""
    return add_row(
        {"comparison_id": "alpha2020_high_vs_control", "experimental_arm_id": "msc_high",
         "label": "High-dose MSC versus control", "primary": "false"}
    )(text)  # fmt: skip


def test_characteristics_of_a_multi_arm_trial(
    make_package: Callable[..., Path], tmp_path: Path
) -> None:
    """A third arm and a second comparison: one row per comparison, primary first, the
    arms named; the study-level cells are not repeated."""
    arm = {"arm_id": "msc_high", "description": "high-dose MSC plus standard care"}
    descriptor = make_package(
        edits={
            "arms": add_row(arm),
            "msc_arms": add_row({"arm_id": "msc_high", "dose_per_infusion": "1000000"}),
            "comparisons": _multi_arm,
        }
    )
    out = tmp_path / "r"
    build_report(descriptor, parse_plan(DEATH_PLAN), out, console=_quiet())
    table = pd.read_csv(out / "tables" / "study_characteristics.csv", dtype=str)
    alpha = table[table["study_id"] == "alpha2020"]
    assert list(alpha["comparison_id"]) == [
        "alpha2020_msc_vs_control",
        "alpha2020_high_vs_control",
    ]
    assert list(alpha["msc_arm"].str.split(":").str[0]) == ["msc", "msc_high"]
    assert alpha["msc_arm"].iloc[1].endswith("1×10^6 cells/kg × 4, peripheral vein")
    assert list(alpha["control_arm"]) == ["control: standard care"] * 2
    assert list(alpha["n_msc"]) == ["30", "30"]
    md = (out / MD_NAME).read_text(encoding="utf-8")
    assert "| Comparison |" in md
    assert "High-dose MSC versus control <sub>(not the primary comparison)</sub>" in md
    assert "| Alpha 2020 <sub>(another comparison)</sub> | <sub>as above</sub> |" in md


# --- outcomes as data ----------------------------------------------------------------


def test_plan_built_from_the_data_reads_the_package_outcomes(
    make_package: Callable[..., Path],
) -> None:
    pkg = load_package(make_package())
    plan, origin = resolve_plan(None, pkg)
    assert origin == FROM_DATA
    by_id = {a.id: a for a in plan.analyses}
    assert set(by_id) == {"alb-12w", "meld-4w", "meld-12w", "tbil-4w", "death-12w", "death-24w"}
    assert (by_id["meld-4w"].outcome_label, by_id["meld-4w"].unit) == ("MELD score", "points")
    assert by_id["meld-4w"].title == "MELD score at 4 weeks"
    assert by_id["meld-4w"].lower_is_better is True
    assert by_id["alb-12w"].lower_is_better is False  # higher_is_better
    assert by_id["alb-12w"].unit == "g/L"
    assert by_id["death-24w"].unit is None and by_id["death-24w"].notes is None
    assert by_id["death-24w"].favours == ("MSC", "control")  # from "MSC versus control"
    assert outcome_infos(pkg)["tbil"].label == "Total bilirubin"


@pytest.mark.slow
def test_unclear_direction_gives_neutral_forest_labels(
    make_package: Callable[..., Path], tmp_path: Path
) -> None:
    descriptor = make_package(edits={"outcomes": set_cell(2, "direction", "unclear")})  # death
    plan, _ = resolve_plan(None, load_package(descriptor))
    death = next(a for a in plan.analyses if a.id == "death-24w")
    assert death.notes and "direction of benefit is unclear" in death.notes
    out = tmp_path / "r"
    build_report(descriptor, None, out, console=_quiet())
    svg = (out / "figures" / "forest_death-24w.svg").read_text(encoding="utf-8")
    assert "Lower in MSC" in svg and "Lower in control" in svg and "Favours" not in svg
    meld = (out / "figures" / "forest_meld-4w.svg").read_text(encoding="utf-8")
    assert "Favours MSC" in meld  # a stated direction keeps the favours labels
    html_text = (out / HTML_NAME).read_text(encoding="utf-8")
    assert "the forest plot says which arm has the lower values" in html_text


# --- time points without weeks -------------------------------------------------------


def _beta_death_as_reported() -> Callable[[str], str]:
    return _edit_rows(
        {"study_id": "beta2021", "outcome": "death"},
        {"timepoint": "as_reported", "timepoint_weeks": ""},
    )


def test_auto_plan_for_rows_without_weeks(make_package: Callable[..., Path]) -> None:
    descriptor = make_package(edits={"dichotomous_outcomes": _beta_death_as_reported()})
    plan, _ = resolve_plan(None, load_package(descriptor))
    by_id = {a.id: a for a in plan.analyses}
    assert "death-24w" in by_id and "death-12w" not in by_id
    code = by_id["death-as-reported"]
    assert code.title == "Death (time point as reported)" and code.timepoint_weeks is None
    assert code.notes and "Rows without weeks (time point as_reported)" in code.notes


def test_report_names_a_time_point_without_weeks(
    make_package: Callable[..., Path], tmp_path: Path
) -> None:
    descriptor = make_package(edits={"dichotomous_outcomes": _beta_death_as_reported()})
    out = tmp_path / "r"
    build_report(descriptor, parse_plan(DEATH_PLAN), out, console=_quiet())
    md = (out / MD_NAME).read_text(encoding="utf-8")
    assert "Derived: Beta 2021, msc, death as reported — events from 10% of 20" in md
    assert "Data at other time points: Beta 2021 (as reported)." in md


# --- the comparison an analysis pools ------------------------------------------------


def _settings(comparison: str | None) -> Settings:
    return Settings(measure="RR", method="REML", hksj=False, designs=None, include_derived=True,
                    convert_medians=True, exclude_high_rob=False, level=95.0,
                    comparison=comparison)  # fmt: skip


def test_usable_studies_follow_the_comparison_label(make_package: Callable[..., Path]) -> None:
    pkg = load_package(make_package())
    assert usable_studies(pkg, "death", 24, _settings(None)) == {"alpha2020"}
    assert usable_studies(pkg, "death", 24, _settings("MSC versus control")) == {"alpha2020"}
    assert usable_studies(pkg, "death", 24, _settings("High versus low dose")) == set()


def test_pool_follows_the_comparison_label(make_package: Callable[..., Path]) -> None:
    pkg = load_package(make_package())
    labelled = pool(pkg, "meld", 4, _settings("MSC versus control").replace(measure="MD"))
    primary = pool(pkg, "meld", 4, _settings(None).replace(measure="MD"))
    assert labelled == primary and labelled.k == 1  # only Alpha 2020 has MELD at 4 weeks
    other = pool(pkg, "meld", 4, _settings("High versus low dose").replace(measure="MD"))
    assert not isinstance(other, PoolResult) and other.k == 0


# --- RevMan analyses and published rows: left to the RevMan hooks --------------------


@pytest.mark.slow
def test_revman_analyses_and_rows_go_to_the_revman_hooks(
    make_package: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import trialpool.report.sections.analyses as analyses
    import trialpool.report.sections.audit as audit

    def rows(text: str) -> str:
        text = add_row({"result_id": "rm_study", "analysis_id": "9.9", "scope": "study",
                        "study_id": "alpha2020"})(text)  # fmt: skip
        text = add_row({"result_id": "rm_total", "analysis_id": "1.1"})(text)
        return add_row({"result_id": "other_total", "analysis_id": "2.1"})(text)

    descriptor = make_package(edits={"published_results": rows})
    plan = parse_plan({**DEATH_PLAN, "analyses": [*DEATH_PLAN["analyses"], REVMAN_ANALYSIS]})
    seen: list[str] = []

    def revman_blocks(ctx: Any, analysis: Any) -> list[Any]:
        seen.append(analysis.id)
        return [Para(f"RevMan part of {analysis.id}")]

    monkeypatch.setattr(analyses, "revman_blocks", revman_blocks)
    out = tmp_path / "r"
    build_report(descriptor, plan, out, console=_quiet())
    assert seen == ["1.1"]
    md = (out / MD_NAME).read_text(encoding="utf-8")
    assert "RevMan part of 1.1" in md and 'id="analysis-1-1"' not in md
    assert "MELD score at 4 weeks <sub>(printed: MELD at 4 weeks)</sub>" in md  # label as data
    table = pd.read_csv(out / "tables" / "reproduction_audit.csv", dtype=str)
    assert list(table["result_id"]) == ["test_review_meld_4", "other_total"]
    # the hook's rows are the RevMan audit's CSV; the native audit keeps its rows
    hook_row = ["1.1", "overall", "total", "estimate", 1.0, 1.0, 0.0, 1e-6, "agrees", None]
    monkeypatch.setattr(audit, "revman_audit_rows", lambda ctx: [hook_row])
    out2 = tmp_path / "r2"
    build_report(descriptor, plan, out2, console=_quiet())
    table = pd.read_csv(out2 / "tables" / "reproduction_audit.csv", dtype=str)
    assert list(table["result_id"]) == ["test_review_meld_4", "other_total"]
    revman = pd.read_csv(out2 / "tables" / "revman_audit.csv", dtype=str)
    assert list(revman.columns) == audit.REVMAN_CSV_HEADER
    assert revman.iloc[0].tolist()[:4] == ["1.1", "overall", "total", "estimate"]
