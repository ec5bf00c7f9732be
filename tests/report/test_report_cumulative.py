"""The plan option ``cumulative`` and the cumulative forest plot in the report.

Real data: the engine-test package built from metadat's dat.bcg (tests/fixtures/metadat_bcg;
its steps are checked against metafor in tests/analysis/test_cumulative.py) and the real
Cochrane review CD000023 (a RevMan 5 file) imported at test time. Synthetic results (marked
as such) for a step that cannot be fitted, a study without a year and very long labels.
"""

from __future__ import annotations

import csv
import io
import json
import struct
from pathlib import Path
from typing import Any

import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text
from rich.console import Console

from conftest import FIXTURES
from trialpool.analysis.cumulative import (
    STEP_KEYS,
    CumulativeResult,
    CumulativeStep,
    cumulative_of_result,
    study_years,
)
from trialpool.analysis.plan import RevManAnalysis, load_plan, parse_plan, plan_json_schema
from trialpool.analysis.pooled import pool_outcome
from trialpool.imports.write import run_import
from trialpool.package.loader import load_package
from trialpool.report.figures.forest_cumulative import MAX_HEAD_W, cumulative_forest
from trialpool.report.figures.style import DEFAULT_DPI, save
from trialpool.report.writer import MD_NAME, build_report

BCG = FIXTURES / "metadat_bcg" / "datapackage.json"


def _texts(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.findobj(Text) if t.get_text()]


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def _bcg_cumulative() -> CumulativeResult:
    pkg = load_package(BCG)
    result = pool_outcome(pkg, "tuberculosis", measure="RR", method="REML", designs=None)
    return cumulative_of_result(result, study_years(pkg), method="REML", hksj=False, level=95.0)


# ------------------------------------------------------------------ the plan option


def _analysis(**extra: Any) -> dict[str, Any]:
    return {
        "id": "a",
        "title": "A",
        "outcome": "death",
        "outcome_label": "Death",
        "measure": "RR",
        "lower_is_better": True,
        **extra,
    }


def test_plan_option_default_and_overrides() -> None:
    plan = parse_plan({"title": "t", "analyses": [_analysis()]})
    assert plan.cumulative_for(plan.analyses[0]) is False
    plan = parse_plan(
        {
            "title": "t",
            "defaults": {"cumulative": True},
            "analyses": [_analysis(), _analysis(id="b", cumulative=False)],
        }
    )
    a, b = plan.analyses
    assert plan.cumulative_for(a) is True and plan.cumulative_for(b) is False


def test_plan_option_for_an_imported_analysis(tmp_path: Path) -> None:
    revman = {
        "engine": "revman",
        "id": "1.1",
        "title": "T",
        "comparison": "C",
        "outcome": "death",
        "outcome_label": "Death",
        "data_type": "dichotomous",
        "method": "MH",
        "measure": "RR",
        "random": False,
        "comparison_ids": ["c1"],
        "cumulative": True,
    }
    plan = parse_plan({"title": "t", "analyses": [revman]})
    assert isinstance(plan.analyses[0], RevManAnalysis)
    assert plan.cumulative_for(plan.analyses[0]) is True


def test_schema_states_the_option() -> None:
    defs = plan_json_schema()["$defs"]
    for model in ("PlanDefaults", "Analysis", "RevManAnalysis"):
        assert "cumulative" in defs[model]["properties"], model
    assert defs["PlanDefaults"]["properties"]["cumulative"]["default"] is False


# ------------------------------------------------------------------ the figure


def test_cumulative_forest_of_bcg(tmp_path: Path) -> None:
    c = _bcg_cumulative()
    fig = cumulative_forest(
        c,
        title="Cumulative meta-analysis: tuberculosis",
        measure_label="Risk ratio",
        favours_text=("Favours vaccine", "Favours control"),
    )
    texts = _texts(fig)
    assert "+ Aronson 1948" in texts and "+ TPT Madras 1980" in texts
    assert "All studies (k = 13)" in texts
    for header in ("Year", "k", "Tau²", "I²"):
        assert header in texts
    assert "0.41 [0.13, 1.26]" in texts  # Aronson alone
    assert "Favours vaccine" in texts
    # the rows in the order of the steps
    ys = {t.get_text(): t.get_position()[1] for t in fig.findobj(Text)}
    order = [ys[f"+ {s.label}"] for s in c.steps]
    assert order == sorted(order)
    save(fig, tmp_path / "cumulative", formats=("png",), tight=False)
    width, height = png_size(tmp_path / "cumulative.png")
    assert width < 8000 and height > 13 * 0.2 * DEFAULT_DPI


def _synthetic(steps: list[CumulativeStep], **extra: Any) -> CumulativeResult:
    return CumulativeResult(
        engine="metafor", measure="MD", method="PM", model="PM", level=95.0, ratio=False,
        steps=steps, notes=["synthetic"], **extra,
    )  # fmt: skip


def _step(i: int, label: str, year: int | None, fitted: bool = True) -> CumulativeStep:
    if not fitted:
        return CumulativeStep(
            step=i, study_id=f"s{i}", label=label, year=year, k=i, fitted=False,
            reason="synthetic: no root below tau2.max",
        )  # fmt: skip
    return CumulativeStep(
        step=i, study_id=f"s{i}", label=label, year=year, k=i, fitted=True,
        estimate=1.0 * i, ci_lower=0.5 * i - 1, ci_upper=1.5 * i + 1, se=0.5, tau2=0.1 * i,
        i2=10.0 * i,
    )  # fmt: skip


def test_unfitted_step_and_study_without_year() -> None:
    c = _synthetic([_step(1, "Synthetic A", 2001), _step(2, "Synthetic B", 2002, False),
                    _step(3, "Synthetic C", None)])  # fmt: skip
    texts = _texts(cumulative_forest(c, title="t", measure_label="Mean difference",
                                     favours_text=("left", "right")))  # fmt: skip
    assert "Not estimable" in texts
    assert any("Synthetic B (step 2): not estimable: synthetic: no root" in t for t in texts)
    assert "–" in texts  # the year of Synthetic C
    assert "All studies (k = 3)" in texts


def test_long_labels_and_title_are_bounded(tmp_path: Path) -> None:
    long = "Synthetic study with a very long label " * 6
    c = _synthetic([_step(i, f"{long}{i}", 2000 + i) for i in range(1, 41)])
    fig = cumulative_forest(
        c, title="Cumulative meta-analysis: " + "a very long title " * 40,
        measure_label="Mean difference", favours_text=("left", "right"),
    )  # fmt: skip
    texts = _texts(fig)
    assert any(t.startswith("+ Synthetic study with") and t.endswith("…") for t in texts)
    assert any(t.startswith("Cumulative meta-analysis: a very") and t.endswith("…") for t in texts)
    assert fig.get_figwidth() < MAX_HEAD_W + 2
    save(fig, tmp_path / "long", formats=("png",), tight=False)
    width, _ = png_size(tmp_path / "long.png")
    assert width <= 8000


def test_no_step_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one step"):
        cumulative_forest(_synthetic([]), title="t", measure_label="x", favours_text=("a", "b"))


# ------------------------------------------------------------------ the report


def _bcg_plan(tmp_path: Path, cumulative: bool) -> Path:
    plan = {
        "title": "BCG",
        "defaults": {"designs": ["rct", "non_randomised_controlled"], "cumulative": cumulative},
        "analyses": [
            {
                "id": "tb",
                "title": "Tuberculosis",
                "outcome": "tuberculosis",
                "outcome_label": "Tuberculosis cases",
                "measure": "RR",
                "lower_is_better": True,
                "favours": ["BCG vaccine", "no vaccine"],
                "all_designs_variant": False,
            }
        ],
    }
    path = tmp_path / f"plan_{cumulative}.json"
    path.write_text(json.dumps(plan), encoding="utf-8")
    return path


def test_report_draws_the_cumulative_forest_plot(tmp_path: Path) -> None:
    out = build_report(BCG, _bcg_plan(tmp_path, True), tmp_path / "report")
    png = out / "figures" / "cumulative_tb.png"
    assert png.is_file() and (out / "figures" / "cumulative_tb.svg").is_file()
    assert png_size(png)[0] <= 8000
    md = (out / MD_NAME).read_text(encoding="utf-8")
    assert "![Cumulative forest plot: Tuberculosis](figures/cumulative_tb.png)" in md
    assert "13 of 13 steps estimable" in md
    assert md.index("figures/forest_tb.png") < md.index("figures/cumulative_tb.png")
    with (out / "exports" / "cumulative_tb.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == list(STEP_KEYS)
    c = _bcg_cumulative()
    assert [r["label"] for r in rows] == [s.label for s in c.steps]
    assert float(rows[-1]["estimate"]) == pytest.approx(c.steps[-1].estimate, rel=1e-9)
    assert "exports/cumulative_tb.csv" in md


def test_report_without_the_option_draws_none(tmp_path: Path) -> None:
    out = build_report(BCG, _bcg_plan(tmp_path, False), tmp_path / "report")
    assert not list((out / "figures").glob("cumulative_*"))
    assert not list((out / "exports").glob("cumulative_*"))


@pytest.fixture(scope="module")
def cd000023(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cd000023") / "pkg"
    source = FIXTURES / "revman" / "CD000023StatsDataOnly.rm5"
    assert run_import(source, out=out, force=False, console=Console(file=io.StringIO())) == 0
    return out / "datapackage.json"


def test_report_of_an_imported_review(cd000023: Path, tmp_path: Path) -> None:
    """Analysis 1.5 with the option: its cumulative plot (RevMan's engine); the same
    analysis with Totals 'none' (no overall total) gets a note instead."""
    data = json.loads((cd000023.parent / "analysis" / "plan.json").read_text(encoding="utf-8"))
    a15 = next(a for a in data["analyses"] if a["id"] == "1.5")
    none = {**a15, "id": "1.5n", "totals": "none"}
    data["analyses"] = [{**a15, "cumulative": True}, {**none, "cumulative": True}]
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(data), encoding="utf-8")
    load_plan(plan)
    out = build_report(cd000023, plan, tmp_path / "report")
    assert (out / "figures" / "cumulative_1.5.png").is_file()
    assert not (out / "figures" / "cumulative_1.5n.png").exists()
    md = (out / MD_NAME).read_text(encoding="utf-8")
    assert "Cumulative meta-analysis: Analysis 1.5:" in md
    assert "Cumulative forest plot not drawn: a cumulative analysis needs the overall total" in md
