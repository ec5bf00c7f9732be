"""Forest plots: rendering, the rows behind them, favours sides, not-pooled blocks.

Every number below is SYNTHETIC: invented to exercise the layout, not trial data.
"""

from __future__ import annotations

import math
import struct
import sys
from pathlib import Path
from xml.etree import ElementTree

import matplotlib
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.text import Text

from trialpool.report.figures import forest_plot, forest_rows, save, subgroup_blocks
from trialpool.report.figures.forest import heterogeneity_text, overall_effect_text
from trialpool.stats.results import NotPooled, PoolResult, StudyEffect, SubgroupResult


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


# ---------------------------------------------------------------- synthetic inputs


def synthetic_md_study(sid: str, yi: float, vi: float, weight: float, **kw: object) -> StudyEffect:
    """A synthetic continuous study (arm data invented, consistent with yi)."""
    return StudyEffect(
        study_id=sid,
        label=f"Synthetic {sid.upper()}",
        yi=yi,
        vi=vi,
        weight=weight,
        arm_data={"m1": 20.0 + yi, "sd1": 5.0, "n1": 30, "m2": 20.0, "sd2": 5.5, "n2": 30},
        **kw,  # type: ignore[arg-type]
    )


def synthetic_md_pool(studies: list[StudyEffect], estimate: float = -2.0) -> PoolResult:
    """A synthetic pooled MD result (statistics invented, not computed from data)."""
    return PoolResult(
        k=len(studies),
        measure="MD",
        method="REML",
        estimate=estimate,
        ci_lower=estimate - 1.5,
        ci_upper=estimate + 1.5,
        se=0.77,
        zval=estimate / 0.77,
        p_value=0.01,
        tau2=0.4,
        i2=35.0,
        q=3.1,
        q_df=len(studies) - 1,
        q_p=0.21,
        pi_lower=estimate - 3.0,
        pi_upper=estimate + 3.0,
        studies=studies,
    )


@pytest.fixture
def three_study_md() -> PoolResult:
    """Synthetic three-study MD analysis; one study is flagged derived."""
    studies = [
        synthetic_md_study("a", -3.0, 1.2, 40.0),
        synthetic_md_study("b", -1.0, 2.0, 25.0, derived=True),
        synthetic_md_study("c", -2.2, 1.5, 35.0),
    ]
    return synthetic_md_pool(studies)


@pytest.fixture
def subgrouped_md() -> SubgroupResult:
    """Synthetic 2 x 2 subgroup analysis (two subgroups of two studies)."""
    g1 = synthetic_md_pool(
        [synthetic_md_study("a", -3.0, 1.2, 55.0), synthetic_md_study("b", -1.0, 2.0, 45.0)]
    )
    g2 = synthetic_md_pool(
        [synthetic_md_study("c", -2.2, 1.5, 50.0), synthetic_md_study("d", 0.4, 1.1, 50.0)],
        estimate=-0.8,
    )
    return SubgroupResult(
        variable="timepoint_weeks",
        groups={"4 weeks": g1, "12 weeks": g2},
        q_between=1.2,
        q_between_df=1,
        q_between_p=0.27,
    )


def synthetic_rr_pool() -> PoolResult:
    """Synthetic RR analysis of death (counts invented), one zero cell."""
    studies = [
        StudyEffect(
            study_id="a",
            label="Synthetic A",
            yi=math.log(0.5),
            vi=0.3,
            weight=60.0,
            arm_data={"e1": 4, "t1": 30, "e2": 8, "t2": 30},
        ),
        StudyEffect(
            study_id="b",
            label="Synthetic B",
            yi=math.log(0.2),
            vi=1.8,
            weight=40.0,
            zero_cell_corrected=True,
            arm_data={"e1": 0, "t1": 25, "e2": 2, "t2": 25},
        ),
    ]
    return PoolResult(
        k=2,
        measure="RR",
        method="MH",
        estimate=0.45,
        ci_lower=0.2,
        ci_upper=1.01,
        se=0.41,
        zval=-1.94,
        p_value=0.052,
        tau2=0.0,
        i2=0.0,
        q=0.4,
        q_df=1,
        q_p=0.53,
        studies=studies,
    )


def texts(fig: Figure) -> list[Text]:
    return [t for t in fig.findobj(Text) if t.get_text()]


def text_by_content(fig: Figure, content: str) -> Text:
    found = [t for t in texts(fig) if t.get_text() == content]
    assert found, f"no text {content!r} in figure"
    return found[0]


def null_line_x(fig: Figure) -> float:
    """Display x of the line of no effect."""
    fig.canvas.draw()
    (line,) = [a for a in fig.findobj(Line2D) if a.get_gid() == "null-line"]
    x_data = line.get_xdata()[0]
    return float(line.axes.transData.transform((x_data, 0))[0])


def centre_x(fig: Figure, text: Text) -> float:
    bbox = text.get_window_extent(fig.canvas.get_renderer())
    return (bbox.x0 + bbox.x1) / 2


# ---------------------------------------------------------------- tests


def test_forest_renders_png_and_svg(three_study_md: PoolResult, tmp_path: Path) -> None:
    fig = forest_plot(
        [(None, three_study_md)],
        measure="MD",
        outcome_label="Synthetic MELD",
        unit="points",
        lower_is_better=True,
    )
    assert isinstance(fig.canvas, FigureCanvasAgg)
    paths = save(fig, tmp_path / "forest")
    assert [p.suffix for p in paths] == [".png", ".svg"]
    for p in paths:
        assert p.stat().st_size > 1000
    w, h = png_size(tmp_path / "forest.png")
    assert 900 < w < 2500
    assert 250 < h < 1500
    assert (tmp_path / "forest.svg").read_text(encoding="utf-8").lstrip().startswith("<?xml")


def test_forest_rows_simple(three_study_md: PoolResult) -> None:
    rows = forest_rows([(None, three_study_md)])
    assert len(rows) == 3
    assert [r["study_id"] for r in rows] == ["a", "b", "c"]
    assert rows[0]["weight"] == 40.0
    assert rows[1]["derived"] is True
    assert rows[0]["n1"] == 30
    assert rows[0]["ci_lower"] == pytest.approx(-3.0 - 1.959964 * math.sqrt(1.2), rel=1e-5)


def test_forest_rows_subgroups(subgrouped_md: SubgroupResult) -> None:
    rows = forest_rows(subgroup_blocks(subgrouped_md))
    assert len(rows) == 4
    assert [r["block"] for r in rows] == ["4 weeks", "4 weeks", "12 weeks", "12 weeks"]
    assert len(forest_rows(subgrouped_md)) == 4


def test_forest_rows_ratio_scale() -> None:
    rows = forest_rows([(None, synthetic_rr_pool())])
    assert rows[0]["estimate"] == pytest.approx(0.5)
    assert rows[0]["ci_lower"] < 0.5 < rows[0]["ci_upper"]


def test_subgroup_plot_has_subtotals_and_test(subgrouped_md: SubgroupResult) -> None:
    fig = forest_plot(
        subgrouped_md, measure="MD", outcome_label="Synthetic albumin", lower_is_better=False
    )
    content = [t.get_text() for t in texts(fig)]
    assert content.count("Subtotal (95% CI)") == 2
    assert "4 weeks" in content and "12 weeks" in content
    assert any(c.startswith("Test for subgroup differences: Chi² = 1.20, df = 1") for c in content)
    diamonds = [p for p in fig.axes[0].patches if p.get_gid() == "diamond"]
    assert len(diamonds) == 2


@pytest.mark.parametrize("measure", ["MD", "RR"])
@pytest.mark.parametrize("lower_is_better", [True, False])
def test_favours_sides(three_study_md: PoolResult, measure: str, lower_is_better: bool) -> None:
    result = three_study_md if measure == "MD" else synthetic_rr_pool()
    fig = forest_plot(
        [(None, result)],
        measure=measure,
        outcome_label="Synthetic outcome",
        lower_is_better=lower_is_better,
    )
    null = null_line_x(fig)
    msc = centre_x(fig, text_by_content(fig, "Favours MSC"))
    control = centre_x(fig, text_by_content(fig, "Favours control"))
    if lower_is_better:
        assert msc < null < control
    else:
        assert control < null < msc


@pytest.mark.parametrize("measure", ["MD", "RR"])
def test_unclear_direction_names_the_lower_arm(three_study_md: PoolResult, measure: str) -> None:
    """Without a direction of benefit the labels say which arm is lower on each side."""
    result = three_study_md if measure == "MD" else synthetic_rr_pool()
    fig = forest_plot(
        [(None, result)], measure=measure, outcome_label="Synthetic outcome", lower_is_better=None
    )
    null = null_line_x(fig)
    msc = centre_x(fig, text_by_content(fig, "Lower in MSC"))
    control = centre_x(fig, text_by_content(fig, "Lower in control"))
    assert msc < null < control
    assert not any(t.get_text().startswith("Favours") for t in texts(fig))


def test_ratio_axis_null_at_one() -> None:
    fig = forest_plot(
        [(None, synthetic_rr_pool())],
        measure="RR",
        outcome_label="Synthetic death",
        lower_is_better=True,
    )
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert "1" in labels
    one = ax.get_xticks()[labels.index("1")]
    assert one == pytest.approx(0.0)  # log(1): the line of no effect
    content = [t.get_text() for t in texts(fig)]
    assert "Total events" in content
    assert any("‡" in c for c in content)  # zero-cell marker and footnote


def test_not_pooled_k1_shows_reason(tmp_path: Path) -> None:
    study = synthetic_md_study("z", 1.0, 2.0, 0.0)
    block = NotPooled(k=1, measure="MD", method="REML", reason="k = 1: not pooled", studies=[study])
    fig = forest_plot(
        [("24 weeks", block)], measure="MD", outcome_label="Synthetic", lower_is_better=False
    )
    content = [t.get_text() for t in texts(fig)]
    assert "k = 1: not pooled" in content
    assert "Synthetic Z" in content
    assert not [p for p in fig.axes[0].patches if p.get_gid() == "diamond"]
    assert forest_rows([("24 weeks", block)])[0]["weight"] is None
    save(fig, tmp_path / "np")


def test_no_data_block_renders_without_scale(tmp_path: Path) -> None:
    block = NotPooled(
        k=0,
        measure="MD",
        method="REML",
        reason="no extractable data yet",
        missing=["per-arm means and SDs"],
    )
    fig = forest_plot(
        [(None, block)], measure="MD", outcome_label="Synthetic", lower_is_better=True
    )
    content = [t.get_text() for t in texts(fig)]
    assert "Not pooled: no extractable data yet" in content
    assert "Missing data:" in content
    assert "– per-arm means and SDs" in content
    assert list(fig.axes[0].get_xticks()) == []
    save(fig, tmp_path / "empty", formats=("png",))


def test_derived_marker_and_footnote(three_study_md: PoolResult) -> None:
    fig = forest_plot(
        [(None, three_study_md)], measure="MD", outcome_label="Synthetic", lower_is_better=True
    )
    content = [t.get_text() for t in texts(fig)]
    assert "Synthetic B †" in content
    assert any(c.startswith("† ") for c in content)
    assert "Synthetic A" in content  # not flagged


def test_heterogeneity_and_overall_texts(three_study_md: PoolResult) -> None:
    assert heterogeneity_text(three_study_md) == (
        "Heterogeneity: Tau² = 0.40; Chi² = 3.10, df = 2 (P = 0.210); I² = 35%"
    )
    assert overall_effect_text(three_study_md) == "Test for overall effect: Z = 2.60 (P = 0.010)"
    hk = three_study_md.model_copy(update={"hksj": True})
    assert overall_effect_text(hk).startswith("Test for overall effect: t = 2.60, df = 2")
    fe = synthetic_rr_pool()
    assert heterogeneity_text(fe) == "Heterogeneity: Chi² = 0.40, df = 1 (P = 0.530); I² = 0%"


def test_many_studies_long_labels_and_wide_cis(tmp_path: Path) -> None:
    studies = [
        StudyEffect(
            study_id=f"s{i}",
            label=f"Synthetic study {i}",
            yi=-0.2 + 0.01 * i,
            vi=0.05,
            weight=100 / 40,
        )
        for i in range(40)
    ]
    studies[3] = studies[3].model_copy(
        update={"label": "Synthetic study with a very long label " * 4, "vi": 25.0}
    )
    studies[5] = studies[5].model_copy(update={"weight": 0.0})
    res = PoolResult(
        k=40,
        measure="SMD",
        method="DL",
        estimate=-0.05,
        ci_lower=-0.12,
        ci_upper=0.02,
        se=0.035,
        zval=-1.4,
        p_value=0.16,
        tau2=0.0,
        i2=0.0,
        q=20.0,
        q_df=39,
        q_p=0.99,
        studies=studies,
    )
    small = forest_plot(
        [(None, synthetic_md_pool([synthetic_md_study("a", -1, 1, 100)]))],
        measure="MD",
        outcome_label="Synthetic",
        lower_is_better=True,
    )
    big = forest_plot([(None, res)], measure="SMD", outcome_label="Synthetic", lower_is_better=True)
    assert big.get_figheight() > small.get_figheight() + 40 * 0.15
    assert len(forest_rows([(None, res)])) == 40
    arrows = [ln for ln in big.findobj(Line2D) if ln.get_marker() in ("<", ">")]
    assert len(arrows) == 2  # the wide CI leaves the axis on both sides
    long_label = [
        t.get_text() for t in texts(big) if t.get_text().startswith("Synthetic study with")
    ]
    assert long_label and long_label[0].endswith("…")
    save(big, tmp_path / "big", formats=("png",))
    _, h = png_size(tmp_path / "big.png")
    assert h > 1200


def test_measure_mismatch_is_refused(three_study_md: PoolResult) -> None:
    with pytest.raises(ValueError, match="measure"):
        forest_plot([(None, three_study_md)], measure="RR", outcome_label="x", lower_is_better=True)
    with pytest.raises(ValueError, match="at least one block"):
        forest_plot([], measure="MD", outcome_label="x", lower_is_better=True)


def test_overall_total_after_subgroups(subgrouped_md: SubgroupResult) -> None:
    overall = synthetic_md_pool(
        [s for g in subgrouped_md.groups.values() for s in g.studies], estimate=-1.5
    )
    fig = forest_plot(
        subgrouped_md,
        measure="MD",
        outcome_label="Synthetic",
        lower_is_better=True,
        overall=overall,
    )
    content = [t.get_text() for t in texts(fig)]
    assert "Total (95% CI)" in content
    assert content.count("Subtotal (95% CI)") == 2


def test_save_rejects_unknown_format(three_study_md: PoolResult, tmp_path: Path) -> None:
    fig = forest_plot(
        [(None, three_study_md)], measure="MD", outcome_label="Synthetic", lower_is_better=True
    )
    with pytest.raises(ValueError, match="format"):
        save(fig, tmp_path / "x", formats=("gif",))


def test_no_global_state_leaks(three_study_md: PoolResult, tmp_path: Path) -> None:
    before = dict(matplotlib.rcParams)
    fig = forest_plot(
        [(None, three_study_md)], measure="MD", outcome_label="Synthetic", lower_is_better=True
    )
    save(fig, tmp_path / "x")
    assert dict(matplotlib.rcParams) == before
    if "matplotlib.pyplot" in sys.modules:
        assert sys.modules["matplotlib.pyplot"].get_fignums() == []


def test_svg_is_well_formed_and_deterministic(three_study_md: PoolResult, tmp_path: Path) -> None:
    fig = forest_plot(
        [(None, three_study_md)], measure="MD", outcome_label="Synthetic", lower_is_better=True
    )
    save(fig, tmp_path / "a", formats=("svg",))
    save(fig, tmp_path / "b", formats=("svg",))
    a = (tmp_path / "a.svg").read_bytes()
    ElementTree.fromstring(a)
    assert a == (tmp_path / "b.svg").read_bytes()
