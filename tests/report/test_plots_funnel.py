"""Funnel plots. All effect sizes below are SYNTHETIC (invented), not trial data."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import pytest
from matplotlib.colors import to_hex
from matplotlib.text import Text

from trialpool.report.figures import funnel_from_result, funnel_plot, save
from trialpool.stats.results import PoolResult, StudyEffect


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


SYN_YI = [-0.6, -0.2, -0.9, -0.4, 0.1]  # synthetic
SYN_SE = [0.2, 0.35, 0.5, 0.15, 0.6]  # synthetic


def test_funnel_renders_with_extras(tmp_path: Path) -> None:
    fig = funnel_plot(
        SYN_YI,
        SYN_SE,
        estimate=-0.45,
        measure="SMD",
        labels=["S1", "S2", "S3", "S4", "S5"],
        egger={"z": -1.8, "p": 0.07, "intercept": -0.3, "slope": -0.5},
        filled=[(0.2, 0.45)],
    )
    ax = fig.axes[0]
    lo, hi = ax.get_ylim()
    assert lo > hi == 0  # inverted: se = 0 at the top
    by_gid = {c.get_gid(): c for c in ax.collections}
    assert len(by_gid["studies"].get_offsets()) == 5
    filled = by_gid["filled"]
    assert to_hex(filled.get_facecolor()[0]) == "#ffffff"  # open circles
    assert any(line.get_gid() == "egger-line" for line in ax.get_lines())
    content = [t.get_text() for t in fig.findobj(Text)]
    assert "Egger's test: z = −1.80, P = 0.070" in content
    assert "S3" in content
    region = next(p for p in ax.patches if p.get_gid() == "funnel-region")
    xs = sorted(region.get_xy()[:3, 0])
    assert xs[1] == pytest.approx(-0.45)  # apex at the estimate
    assert xs[2] - xs[1] == pytest.approx(xs[1] - xs[0])  # symmetric
    for path in save(fig, tmp_path / "funnel"):
        assert path.stat().st_size > 1000
    w, h = png_size(tmp_path / "funnel.png")
    assert 600 < w < 1200 and 500 < h < 1100


def test_funnel_ratio_axis_and_result(tmp_path: Path) -> None:
    studies = [
        StudyEffect(study_id=f"s{i}", label=f"Synthetic {i}", yi=math.log(r), vi=v, weight=25)
        for i, (r, v) in enumerate([(0.5, 0.2), (0.8, 0.1), (1.2, 0.4), (0.4, 0.6)])
    ]
    res = PoolResult(
        k=4,
        measure="RR",
        method="DL",
        estimate=0.7,
        ci_lower=0.5,
        ci_upper=0.98,
        se=0.17,
        zval=-2.1,
        p_value=0.04,
        tau2=0.0,
        studies=studies,
    )
    fig = funnel_from_result(res, egger="Egger's test: not run (k < 10)")
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert "1" in labels
    assert ax.get_xlabel() == "Risk ratio (log scale)"
    region = next(p for p in ax.patches if p.get_gid() == "funnel-region")
    assert sorted(region.get_xy()[:3, 0])[1] == pytest.approx(math.log(0.7))
    save(fig, tmp_path / "funnel_rr", formats=("svg",))
    assert (tmp_path / "funnel_rr.svg").stat().st_size > 1000


def test_funnel_bad_inputs() -> None:
    with pytest.raises(ValueError, match="same length"):
        funnel_plot([0.1, 0.2], [0.1], estimate=0, measure="MD")
    with pytest.raises(ValueError, match="at least one"):
        funnel_plot([], [], estimate=0, measure="MD")
    with pytest.raises(ValueError, match="non-negative"):
        funnel_plot([0.1], [-0.1], estimate=0, measure="MD")
