"""Risk-of-bias figures: colours, symbols, percentages, tools.

All judgements below are SYNTHETIC (invented studies "syn_*"), not assessments of
any real trial.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pandas as pd
import pytest
from matplotlib.collections import PathCollection
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.text import Text

from trialpool.report.figures import rob_graph, rob_summary, save
from trialpool.report.figures.rob import JUDGEMENT_COLOURS, judgement_symbol, rob_columns
from trialpool.report.figures.style import (
    ROB_CONCERNS,
    ROB_CRITICAL,
    ROB_HIGH,
    ROB_LOW,
    ROB_NO_INFORMATION,
)


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


ROB1_DOMAINS = [
    "random_sequence_generation",
    "allocation_concealment",
    "blinding_participants_personnel",
    "blinding_outcome_assessment",
    "incomplete_outcome_data",
    "selective_reporting",
    "other_bias",
]


def frame(rows: list[tuple[str, str, str, str, str]]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["study_id", "tool", "domain", "result_scope", "judgement"])
    df["support"] = "synthetic judgement for a test"
    return df.astype("string")


@pytest.fixture
def rob1() -> pd.DataFrame:
    """Synthetic RoB 1: syn_a all low except D3 high; syn_b all unclear; syn_c all low."""
    rows = []
    for dom in ROB1_DOMAINS:
        rows.append(
            (
                "syn_a",
                "rob1",
                dom,
                "all",
                "high" if dom == "blinding_participants_personnel" else "low",
            )
        )
        rows.append(("syn_b", "rob1", dom, "all", "unclear"))
        rows.append(("syn_c", "rob1", dom, "all", "low"))
    rows.append(("syn_a", "rob2", "overall", "all", "some_concerns"))  # other tool: ignored
    return frame(rows)


LABELS = {"syn_a": "Synthetic A", "syn_b": "Synthetic B", "syn_c": "Synthetic C"}


def collections_by_gid(fig: Figure) -> dict[str, PathCollection]:
    return {
        c.get_gid(): c
        for ax in fig.axes
        for c in ax.collections
        if isinstance(c, PathCollection) and c.get_gid()
    }


def test_rob_summary_colours_and_cells(rob1: pd.DataFrame, tmp_path: Path) -> None:
    fig = rob_summary(rob1, LABELS, tool="rob1")
    colls = collections_by_gid(fig)
    assert set(colls) == {"rob-low", "rob-unclear", "rob-high"}
    expected = {"rob-low": ROB_LOW, "rob-unclear": ROB_CONCERNS, "rob-high": ROB_HIGH}
    for gid, colour in expected.items():
        assert to_hex(colls[gid].get_facecolor()[0]).upper() == colour.upper()
    # the single high cell: syn_a (row 0) x D3 (column 2)
    assert [tuple(o) for o in colls["rob-high"].get_offsets()] == [(2.0, 0.0)]
    assert len(colls["rob-unclear"].get_offsets()) == 7  # all of syn_b
    assert len(colls["rob-low"].get_offsets()) == 13
    content = [t.get_text() for t in fig.findobj(Text)]
    for label in LABELS.values():
        assert label in content
    assert "D1: Random sequence generation (selection bias)" in content
    assert content.count("−") >= 1 and content.count("?") >= 7 and content.count("+") >= 13
    for path in save(fig, tmp_path / "rob_summary"):
        assert path.stat().st_size > 1000
    w, h = png_size(tmp_path / "rob_summary.png")
    assert 500 < w < 2000 and 300 < h < 1500


def test_rob_graph_percentages(rob1: pd.DataFrame, tmp_path: Path) -> None:
    fig = rob_graph(rob1, tool="rob1")
    ax = fig.axes[0]
    bars: dict[str, list[Rectangle]] = {}
    for patch in ax.patches:
        if isinstance(patch, Rectangle) and patch.get_gid():
            bars.setdefault(patch.get_gid(), []).append(patch)
    assert set(bars) == {"rob-low", "rob-unclear", "rob-high"}
    for gid, colour in (
        ("rob-low", ROB_LOW),
        ("rob-unclear", ROB_CONCERNS),
        ("rob-high", ROB_HIGH),
    ):
        assert {to_hex(p.get_facecolor()).upper() for p in bars[gid]} == {colour.upper()}
    # domain 3 (index 2): 1 high, 1 unclear, 1 low of 3 studies; other domains 2 low, 1 unclear
    assert bars["rob-low"][2].get_width() == pytest.approx(100 / 3)
    assert bars["rob-high"][2].get_width() == pytest.approx(100 / 3)
    assert bars["rob-low"][0].get_width() == pytest.approx(200 / 3)
    assert bars["rob-high"][0].get_width() == pytest.approx(0)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0] == "Random sequence generation (selection bias)"
    assert labels[-1] == "Other bias"
    assert {t.get_text() for t in fig.findobj(Text) if t.get_gid() == "rob-n"} == {"n = 3"}
    save(fig, tmp_path / "rob_graph")
    assert png_size(tmp_path / "rob_graph.png")[0] > 800


def test_rob2_and_robins_i(tmp_path: Path) -> None:
    rows = [
        ("syn_a", "rob2", "randomisation_process", "all", "low"),
        ("syn_a", "rob2", "missing_outcome_data", "all", "no_information"),
        ("syn_a", "rob2", "overall", "all", "some_concerns"),
        ("syn_b", "rob2", "randomisation_process", "all", "high"),
        ("syn_b", "rob2", "missing_outcome_data", "all", "low"),
        ("syn_b", "rob2", "overall", "all", "high"),
        ("syn_h", "robins_i", "confounding", "all", "critical"),
        ("syn_h", "robins_i", "missing_data", "all", "moderate"),
        ("syn_h", "robins_i", "overall", "all", "critical"),
        ("syn_j", "robins_i", "confounding", "all", "serious"),
        ("syn_j", "robins_i", "overall", "all", "no_information"),
    ]
    df = frame(rows)
    cols2 = rob_columns(df, "rob2")
    assert [c.short for c in cols2] == ["D1", "D2", "Overall"]
    fig = rob_summary(df, None, tool="robins_i")
    colls = collections_by_gid(fig)
    assert to_hex(colls["rob-critical"].get_facecolor()[0]).upper() == ROB_CRITICAL
    assert to_hex(colls["rob-no_information"].get_facecolor()[0]).upper() == ROB_NO_INFORMATION
    assert to_hex(colls["rob-serious"].get_facecolor()[0]).upper() == ROB_HIGH
    assert to_hex(colls["rob-moderate"].get_facecolor()[0]).upper() == ROB_CONCERNS
    assert "rob-none" in colls  # syn_j has no missing_data judgement: grey cell
    save(fig, tmp_path / "robins")
    fig2 = rob_graph(df, tool="rob2")
    gids = {p.get_gid() for p in fig2.axes[0].patches if p.get_gid()}
    assert gids == {"rob-low", "rob-some_concerns", "rob-high", "rob-no_information"}
    overall_label = fig2.axes[0].get_yticklabels()[-1]
    assert overall_label.get_text() == "Overall risk of bias"
    assert overall_label.get_fontweight() == "bold"
    save(fig2, tmp_path / "rob2_graph")


def test_scoped_judgement_gets_own_column() -> None:
    rows = [
        ("syn_a", "rob1", "blinding_outcome_assessment", "all", "high"),
        ("syn_a", "rob1", "blinding_outcome_assessment", "death", "low"),
        ("syn_a", "rob1", "random_sequence_generation", "all", "low"),
    ]
    cols = rob_columns(frame(rows), "rob1")
    assert [(c.domain, c.scope, c.short) for c in cols] == [
        ("random_sequence_generation", "all", "D1"),
        ("blinding_outcome_assessment", "all", "D2"),
        ("blinding_outcome_assessment", "death", "D3"),
    ]
    assert cols[2].name == "Blinding of outcome assessment (detection bias): death"


def test_scoped_columns_inherit_all_outcomes_judgement(tmp_path: Path) -> None:
    rows = [
        ("syn_a", "rob1", "blinding_outcome_assessment", "all", "high"),
        ("syn_a", "rob1", "blinding_outcome_assessment", "death", "low"),
        ("syn_b", "rob1", "blinding_outcome_assessment", "all", "unclear"),
        ("syn_c", "rob1", "random_sequence_generation", "all", "low"),
    ]
    df = frame(rows)
    fig = rob_summary(df, LABELS, tool="rob1")
    colls = collections_by_gid(fig)
    # columns: D1 sequence, D2 blinding (all), D3 blinding (death)
    # syn_b has no death-specific judgement: its "all" one (unclear) fills D3
    assert sorted(tuple(o) for o in colls["rob-unclear"].get_offsets()) == [(1.0, 1.0), (2.0, 1.0)]
    assert sorted(tuple(o) for o in colls["rob-low"].get_offsets()) == [(0.0, 2.0), (2.0, 0.0)]
    content = [t.get_text() for t in fig.findobj(Text)]
    assert any(c.startswith("Outcome-specific columns show") for c in content)
    # the graph counts syn_a (low) and syn_b (unclear) in the death bar: n = 2, 50% low
    graph = rob_graph(df, tool="rob1")
    low = [p for p in graph.axes[0].patches if p.get_gid() == "rob-low"]
    assert low[2].get_width() == pytest.approx(50.0)
    n_texts = [t.get_text() for t in graph.findobj(Text) if t.get_gid() == "rob-n"]
    assert n_texts == ["n = 1", "n = 2", "n = 2"]
    save(graph, tmp_path / "g", formats=("png",))


def test_result_scope_view() -> None:
    rows = [
        ("syn_a", "rob1", "blinding_outcome_assessment", "all", "high"),
        ("syn_a", "rob1", "blinding_outcome_assessment", "death", "low"),
        ("syn_b", "rob1", "blinding_outcome_assessment", "all", "unclear"),
        ("syn_b", "rob1", "blinding_outcome_assessment", "meld", "low"),
    ]
    cols = rob_columns(frame(rows), "rob1", result_scope="death")
    assert [(c.domain, c.scope) for c in cols] == [("blinding_outcome_assessment", "all")]
    fig = rob_summary(frame(rows), LABELS, tool="rob1", result_scope="death")
    colls = collections_by_gid(fig)
    assert [tuple(o) for o in colls["rob-low"].get_offsets()] == [(0.0, 0.0)]  # syn_a: own
    assert [tuple(o) for o in colls["rob-unclear"].get_offsets()] == [(0.0, 1.0)]  # syn_b: all
    assert "Judgements for death." in [t.get_text() for t in fig.findobj(Text)]


def test_symbols() -> None:
    assert judgement_symbol("high", "rob1") == "−"  # RevMan
    assert judgement_symbol("high", "rob2") == "×"  # robvis
    assert judgement_symbol("critical", "robins_i") == "!"
    assert judgement_symbol("unclear", "rob1") == "?"
    assert set(JUDGEMENT_COLOURS) >= {"low", "unclear", "some_concerns", "high", "critical"}


def test_bad_inputs(rob1: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="unknown tool"):
        rob_summary(rob1, LABELS, tool="quadas")
    dup = pd.concat([rob1, rob1.iloc[[0]]], ignore_index=True)
    with pytest.raises(ValueError, match="more than one"):
        rob_graph(dup, tool="rob1")
    with pytest.raises(ValueError, match="no robins_i judgements"):
        rob_summary(rob1, LABELS, tool="robins_i")
    bad = rob1.copy()
    bad.loc[0, "judgement"] = "dubious"
    with pytest.raises(ValueError, match="unknown judgement"):
        rob_graph(bad, tool="rob1")
