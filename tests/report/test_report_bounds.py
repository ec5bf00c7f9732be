"""trialpool report stays bounded whatever a review holds: labels of any length (cut in
figures and tables, kept in the data), no figure wider than 8,000 px, a forest plot of a
large analysis capped (and saying so), non-finite numbers and counts beyond int64 as one
named line, every text from the review escaped, report.html light.

Every input is generated here: RevMan 5 CSV exports imported with ``trialpool import``
(and then edited where the import itself would refuse a value).
"""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text
from PIL import Image
from rich.console import Console

from conftest import FIXTURES
from trialpool.analysis.plan import RevManAnalysis, load_plan
from trialpool.analysis.revman import PackageIndex, pool_review_analysis
from trialpool.errors import PackageError
from trialpool.imports.write import run_import
from trialpool.package.loader import load_package
from trialpool.report.document import MAX_TABLE_ROWS, Table, md_node
from trialpool.report.figures.forest import MAX_STUDY_ROWS
from trialpool.report.figures.forest_layout import MAX_ROWS
from trialpool.report.figures.forest_review import review_forest
from trialpool.report.figures.style import MAX_FIGURE_HEIGHT_PX, MAX_FIGURE_PX, new_figure, save
from trialpool.report.writer import HTML_NAME, MD_NAME, build_report
from trialpool.validate import validate_package

HEADER = [
    "Comparison Number", "Outcome Number", "Subgroup Number", "Name", "Data Type",
    "Statistical Method", "Effect Measure", "Analysis Model", "Events 1", "Mean 1", "SD 1",
    "Total 1", "Events 2", "Mean 2", "SD 2", "Total 2", "Group Label 1", "Group Label 2",
    "Left Graph Label", "Right Graph Label",
]  # fmt: skip


def _row(**cells: object) -> list[str]:
    keys = {
        "c": "Comparison Number", "o": "Outcome Number", "s": "Subgroup Number",
        "name": "Name", "type": "Data Type", "method": "Statistical Method",
        "measure": "Effect Measure", "model": "Analysis Model", "e1": "Events 1",
        "m1": "Mean 1", "sd1": "SD 1", "n1": "Total 1", "e2": "Events 2", "m2": "Mean 2",
        "sd2": "SD 2", "n2": "Total 2", "g1": "Group Label 1", "g2": "Group Label 2",
        "left": "Left Graph Label", "right": "Right Graph Label",
    }  # fmt: skip
    named = {keys[k]: "" if v is None else str(v) for k, v in cells.items()}
    return [named.get(h, "") for h in HEADER]


def _export(
    comparison: str = "A versus B",
    studies: int = 3,
    *,
    name: str = "Study",
    title: str = "Death",
    labels: tuple[str, str, str, str] = ("A", "B", "Favours A", "Favours B"),
    subgroups: int = 0,
    continuous: bool = True,
) -> str:
    """A RevMan 5 CSV export: one dichotomous analysis (1.1) with ``studies`` studies (in
    ``subgroups`` subgroups when > 0) and, with ``continuous``, a continuous one (1.2)."""
    g1, g2, left, right = labels
    rows = [HEADER, _row(c=1, o=0, s=0, name=comparison)]
    rows.append(
        _row(c=1, o=1, s=0, name=title, type="DIC", method="MH", measure="RR", model="Random",
             g1=g1, g2=g2, left=left, right=right)
    )  # fmt: skip
    for i in range(studies):
        s = 1 + i % subgroups if subgroups else 0
        if subgroups and i < subgroups:
            rows.append(_row(c=1, o=1, s=s, name=f"Subgroup {s}", type="DIC"))
        rows.append(_row(c=1, o=1, s=s, name=f"{name} {i + 1:05d}", e1=3 + i % 7, n1=40,
                         e2=6 + i % 5, n2=41))  # fmt: skip
    if continuous:
        rows.append(
            _row(c=1, o=2, s=0, name="Score", type="CON", method="IV", measure="MD",
                 model="Random", g1=g1, g2=g2, left=left, right=right)
        )  # fmt: skip
        for i in range(min(studies, 3)):
            rows.append(_row(c=1, o=2, s=0, name=f"{name} {i + 1:05d}", m1=5 + i, sd1=1.5,
                             n1=40, m2=6, sd2=1.4, n2=41))  # fmt: skip
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def _quiet() -> Console:
    return Console(file=io.StringIO(), width=120)


def _package(tmp_path: Path, text: str, name: str = "review") -> Path:
    source = tmp_path / f"{name}.csv"
    source.write_text(text, encoding="utf-8")
    out = tmp_path / f"{name}_pkg"
    assert run_import(source, out=out, force=False, console=_quiet()) == 0
    return out / "datapackage.json"


def _edit(descriptor: Path, resource: str, row: int, field: str, value: str) -> None:
    """Set ``field`` of data row ``row`` (1 = first data row) of a resource's CSV."""
    path = descriptor.parent / "data" / f"{resource}.csv"
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    rows[row][rows[0].index(field)] = value
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8")


def _png_sizes(report: Path) -> dict[str, tuple[int, int]]:
    sizes = {}
    for png in sorted((report / "figures").glob("*.png")):
        with Image.open(png) as image:
            sizes[png.name] = image.size
    return sizes


def _svg_points(svg: Path) -> tuple[float, float]:
    head = svg.read_bytes()[:2000].decode()
    match = re.search(r'<svg[^>]*? width="([0-9.]+)pt" height="([0-9.]+)pt"', head)
    assert match, head
    return float(match.group(1)), float(match.group(2))


def _assert_bounded(report: Path) -> None:
    sizes = _png_sizes(report)
    assert sizes
    for name, (width, height) in sizes.items():
        assert width <= MAX_FIGURE_PX and height <= MAX_FIGURE_HEIGHT_PX, (name, width, height)
    for svg in (report / "figures").glob("*.svg"):
        width, height = _svg_points(svg)
        assert width <= MAX_FIGURE_PX and height <= MAX_FIGURE_HEIGHT_PX, (svg.name, width)


def _left_behind(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp-" in p.name or ".old-" in p.name)


# --------------------------------------------------------------------------- labels


def test_labels_of_10000_characters_are_cut_in_figures_and_tables(tmp_path: Path) -> None:
    """Every text of the review 10,000 characters long (comparison, analysis, studies,
    arms, labels under the axis): each figure is at most 8,000 px wide (it was 187,713),
    no text in the report is longer than the report's limits, the data keep every name."""
    long = {key: key + "x" * 10_000 for key in ("Cmp", "Title", "Name", "Ga", "Gb", "L", "R")}
    text = _export(
        long["Cmp"],
        name=long["Name"],
        title=long["Title"],
        labels=(long["Ga"], long["Gb"], long["L"], long["R"]),
    )
    descriptor = _package(tmp_path, text)
    report = build_report(descriptor, None, tmp_path / "report")
    _assert_bounded(report)
    for png in (report / "figures").glob("forest_*.png"):
        with Image.open(png) as image:
            assert image.size[0] < 3000, image.size  # cut to the layout's widths
    md = (report / MD_NAME).read_text(encoding="utf-8")
    assert max(len(line) for line in md.splitlines()) < 25_000  # prose: 20,000 a piece
    tables = [line for line in md.splitlines() if line.startswith("|")]
    headings = [line for line in md.splitlines() if line.startswith("#")]
    assert tables and max(len(cell) for line in tables for cell in line.split(" | ")) < 1100
    assert headings and max(len(line) for line in headings) < 320
    for key, value in long.items():
        assert not any(value in line for line in tables + headings)  # cut there ...
        if key in ("Cmp", "Title", "Name"):
            assert value[:200] in md.replace("\\", "")  # ... but shown
    export = (report / "exports" / "revman_1.1.csv").read_text(encoding="utf-8")
    assert f"{long['Name']} 00001" in export  # the data keep the whole name
    assert _left_behind(tmp_path) == []


def _huge_name_report(tmp_path: Path, size: int) -> None:
    """A study name of ``size`` characters in the package (as an .rm5 import can give):
    ``trialpool report`` in a child process exits 0 (no SIGSEGV in matplotlib)."""
    descriptor = _package(tmp_path, _export())
    _edit(descriptor, "studies", 1, "label", "Huge " + "W" * size)
    subprocess.run(  # new bytes and hashes: the package is valid
        [sys.executable, "-m", "trialpool.cli", "refresh", str(descriptor)],
        check=True,
        capture_output=True,
    )
    out = tmp_path / "report"
    done = subprocess.run(
        [sys.executable, "-m", "trialpool.cli", "report", str(descriptor), "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    _assert_bounded(out)
    assert (out / HTML_NAME).stat().st_size < 2_000_000
    assert _left_behind(tmp_path) == []


def test_a_study_name_of_a_megabyte_is_cut_before_matplotlib(tmp_path: Path) -> None:
    _huge_name_report(tmp_path, 1_000_000)


@pytest.mark.slow
def test_a_study_name_of_50_mb_is_cut_before_matplotlib(tmp_path: Path) -> None:
    """The issue's case: a 50 MB study name made ``report`` die with SIGSEGV."""
    _huge_name_report(tmp_path, 50_000_000)


# --------------------------------------------------------------------------- large analyses


def _texts(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.findobj(Text)]


def test_the_forest_plot_of_a_large_analysis_draws_capped_rows_and_says_so(
    tmp_path: Path,
) -> None:
    n = MAX_STUDY_ROWS + 250
    descriptor = _package(tmp_path, _export(studies=n, continuous=False))
    report = build_report(descriptor, None, tmp_path / "report")
    _assert_bounded(report)
    md = (report / MD_NAME).read_text(encoding="utf-8")
    assert f"the plot draws at most {MAX_STUDY_ROWS} of its {n} study rows" in md
    rows = (report / "exports" / "revman_1.1.csv").read_text(encoding="utf-8").splitlines()
    assert len(rows) == n + 1  # every study exported
    pkg = load_package(descriptor)
    analysis = load_plan(descriptor.parent / "analysis" / "plan.json").analyses[0]
    assert isinstance(analysis, RevManAnalysis)
    result = pool_review_analysis(pkg, analysis, PackageIndex.of(pkg))
    texts = _texts(review_forest(analysis, result))
    assert sum(t.startswith("Study ") for t in texts) == MAX_STUDY_ROWS
    assert "… 250 more study rows not drawn" in texts
    assert any("Total (95% CI)" in t for t in texts)  # the total is still drawn
    assert any(t.startswith("Note: the plot draws at most 150 of its 400") for t in texts)


def test_a_forest_plot_with_many_subgroups_is_cut_at_its_row_limit(tmp_path: Path) -> None:
    """600 subgroups of one study: about 3,000 rows, cut to the row limit, total kept."""
    descriptor = _package(tmp_path, _export(studies=600, subgroups=600, continuous=False))
    pkg = load_package(descriptor)
    analysis = load_plan(descriptor.parent / "analysis" / "plan.json").analyses[0]
    assert isinstance(analysis, RevManAnalysis) and len(analysis.subgroups) == 600
    result = pool_review_analysis(pkg, analysis, PackageIndex.of(pkg))
    fig = review_forest(analysis, result)
    texts = _texts(fig)
    assert any(re.fullmatch(rf"… [\d,]+ more rows not drawn \(.*at most {MAX_ROWS}\)", t)
               for t in texts)  # fmt: skip
    assert any("Total (95% CI)" in t for t in texts)
    assert fig.get_figheight() < (MAX_ROWS + 30) * 0.2
    save(fig, tmp_path / "forest", formats=("png",), tight=False)
    with Image.open(tmp_path / "forest.png") as image:
        assert image.size[1] <= MAX_FIGURE_HEIGHT_PX


def test_save_never_writes_a_figure_wider_than_8000_px(tmp_path: Path) -> None:
    for width, height, tight in ((120.0, 2.0, True), (120.0, 2.0, False), (3.0, 400.0, True)):
        fig = new_figure(width, height)
        fig.text(0.01, 0.5, "wide " * 50)
        png, svg = save(fig, tmp_path / f"fig_{width}_{tight}", tight=tight)
        with Image.open(png) as image:
            assert image.size[0] <= MAX_FIGURE_PX and image.size[1] <= MAX_FIGURE_HEIGHT_PX
        w, h = _svg_points(svg)
        assert w <= MAX_FIGURE_PX and h <= MAX_FIGURE_HEIGHT_PX


def test_a_long_table_shows_its_first_rows_and_names_the_file_with_all() -> None:
    rows: list[list[object]] = [[f"s{i}", str(i)] for i in range(MAX_TABLE_ROWS + 100)]
    md = md_node(Table(header=["Study", "n"], rows=rows, full="tables/x.csv"))  # type: ignore[arg-type]
    assert md.count("\n| s") == MAX_TABLE_ROWS
    assert f"*Showing the first {MAX_TABLE_ROWS} of {MAX_TABLE_ROWS + 100} rows; every " in md
    assert "tables/x.csv" in md
    cell = md_node(Table(header=["a"], rows=[["y" * 5000]]))
    assert "y" * 999 + "…" in cell and "y" * 1000 not in cell


# --------------------------------------------------------------------------- numbers


def test_a_count_beyond_int64_is_one_named_line_and_nothing_is_written(tmp_path: Path) -> None:
    descriptor = _package(tmp_path, _export())
    validation = validate_package(descriptor)  # of the package before the edit
    assert validation.valid
    _edit(descriptor, "dichotomous_outcomes", 2, "total", "1" + "0" * 308)
    out = tmp_path / "report"
    with pytest.raises(PackageError) as caught:
        build_report(descriptor, None, out, validation=validation)
    message = str(caught.value)
    assert message == (
        f"{descriptor.parent / 'data' / 'dichotomous_outcomes.csv'}: row 3, field 'total': "
        "integer 10000000000000000000… (309 digits) is beyond int64"
    )
    assert not out.exists() and _left_behind(tmp_path) == []


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        ("sd", "1e160", "its effect or variance is not a finite number (m1 = 5, sd1 = 1e+160"),
        ("mean", "1e308", "the pooled estimate is not a finite number"),
        ("mean", "inf", "its data hold a number that is not finite (m1 = inf)"),
    ],
)
def test_a_number_too_large_or_not_finite_is_a_named_reason(
    tmp_path: Path, field: str, value: str, why: str
) -> None:
    """Such a number reaching the analysis (validation may refuse it first): the analysis
    is not pooled, for a reason that names it; the report is written; figures bounded."""
    descriptor = _package(tmp_path, _export())
    validation = validate_package(descriptor)
    _edit(descriptor, "continuous_outcomes", 1, field, value)
    report = build_report(descriptor, None, tmp_path / "report", validation=validation)
    md = (report / MD_NAME).read_text(encoding="utf-8")
    status = next(line for line in md.splitlines() if line.startswith("| [1.2 Score]"))
    assert "not pooled: analysis 1.2: " in status and why in status.replace("\\_", "_"), status
    assert "| [1.1 Death]" in md and "(report/figures/forest_1.2.png)" not in md
    _assert_bounded(report)


# --------------------------------------------------------------------------- escaping


EVIL = [
    "<script>alert(1)</script>",
    "$\\frac{1}{",  # unbalanced mathtext: would raise if parsed as math
    "**bold** [x](javascript:alert(2)) | pipe",
    "<img src=x onerror=alert(3)>",
]


def test_every_text_of_the_review_is_escaped_in_the_report_and_figures(tmp_path: Path) -> None:
    """Markup in every text a review gives (the importer already strips HTML tags from
    RevMan's names, so the texts are put in the package afterwards, as a hand-made
    package could hold them): escaped in report.md and report.html, drawn as typed in
    the figures (no mathtext)."""
    descriptor = _package(tmp_path, _export())
    validation = validate_package(descriptor)
    _edit(descriptor, "studies", 1, "label", EVIL[0] + " " + EVIL[2])
    plan_path = descriptor.parent / "analysis" / "plan.json"
    plan = json.loads(plan_path.read_text(encoding="utf-8"))
    first = plan["analyses"][0]
    first.update(
        title=EVIL[3] + " $x^2$",
        comparison=EVIL[0] + " versus " + EVIL[1],
        favours=[EVIL[1], EVIL[0]],
        graph_labels=["$\\alpha$ " + EVIL[3], EVIL[2]],
    )
    plan_path.write_text(json.dumps(plan), encoding="utf-8")
    report = build_report(descriptor, None, tmp_path / "report", validation=validation)
    page = (report / HTML_NAME).read_text(encoding="utf-8")
    assert "<script>alert" not in page and "<img src=x" not in page
    assert 'href="javascript' not in page and "<strong>bold</strong>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(3)&gt; $x^2$" in page
    md = (report / MD_NAME).read_text(encoding="utf-8")
    assert "<script>" not in md and "<img" not in md and "\\*\\*bold\\*\\*" in md
    pkg = load_package(descriptor)
    analysis = load_plan(plan_path).analyses[0]
    assert isinstance(analysis, RevManAnalysis)
    fig = review_forest(analysis, pool_review_analysis(pkg, analysis, PackageIndex.of(pkg)))
    texts = [t for t in fig.findobj(Text) if t.get_text()]
    assert all(not t.get_parse_math() for t in texts if "$" in t.get_text())
    drawn = [t.get_text() for t in texts]
    assert any(t.startswith("<script>alert(1)</script> **bold**") for t in drawn), drawn
    assert any(t.startswith("$\\alpha$ <img") for t in drawn), drawn
    fig.savefig(io.BytesIO(), format="png")  # mathtext would fail on "$\\frac{1}{"
    svg = (report / "figures" / "forest_1.1.svg").read_text(encoding="utf-8")
    assert "<script" not in svg and "<img" not in svg  # the texts' comments are escaped


# --------------------------------------------------------------------------- report.html


@pytest.mark.slow
def test_report_html_of_cd008625_is_under_5_mb(tmp_path: Path) -> None:
    """The 74 analyses of CD008625 (19.6 MB with every PNG embedded as drawn)."""
    source = FIXTURES / "revman" / "CD008625StatsDataOnly.rm5"
    out = tmp_path / "pkg"
    assert run_import(source, out=out, force=False, console=_quiet()) == 0
    report = build_report(out / "datapackage.json", None, tmp_path / "report")
    page = (report / HTML_NAME).read_text(encoding="utf-8")
    assert len(page.encode()) < 5_000_000
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == len(list((report / "figures").glob("*.png")))
    for data in images[:5]:
        with Image.open(io.BytesIO(base64.b64decode(data))) as image:
            assert image.mode == "P" and image.size[0] > 300
    _assert_bounded(report)


# --------------------------------------------------------------------------- other figures


def test_risk_of_bias_and_prisma_figures_are_bounded(tmp_path: Path) -> None:
    """160 studies with 32 domains of 2,000-character names; 300 exclusion reasons of
    5,000 characters: each figure cut to its limits, and saying what it leaves out."""
    from trialpool.report.figures import prisma, rob

    judgements = pd.DataFrame(
        [
            {"study_id": f"s{i:03d}", "tool": "rob1", "domain": f"d{d:02d}",
             "domain_label": f"Domain {d} " + "n" * 2_000, "result_scope": "all",
             "judgement": ("low", "high", "unclear")[(i + d) % 3]}
            for i in range(160)
            for d in range(32)
        ]
    )  # fmt: skip
    labels = {f"s{i:03d}": f"Study {i} " + "L" * 10_000 for i in range(160)}
    summary = rob.rob_summary(judgements, labels, title="T" * 10_000)
    texts = [t.get_text() for t in summary.findobj(Text)]
    assert (
        f"Showing the first {rob.MAX_ROB_STUDIES} of 160 studies; every judgement is in the data."
        in texts
    )
    assert (
        f"Showing the first {rob.MAX_ROB_COLUMNS} of 32 domains; every judgement is in the data."
        in texts
    )
    assert max(len(t) for t in texts) < 400
    graph = rob.rob_graph(judgements, title="T" * 10_000)
    screening = pd.DataFrame(
        [
            {"study_id": None, "record_kind": "journal_article",
             "identified_via": "database_search", "stage": "eligibility", "decision": "exclude",
             "reason": f"Reason {i} " + "r " * 2500}
            for i in range(300)
        ]
    )  # fmt: skip
    flow = prisma.prisma_flow(prisma.prisma_counts(screening), reasons="full", title="P" * 10_000)
    assert any(
        t.get_text().strip().startswith(f"{300 - prisma.MAX_REASONS + 1} other reasons")
        for t in flow.findobj(Text)
    )
    for name, fig in (("summary", summary), ("graph", graph), ("flow", flow)):
        (png,) = save(fig, tmp_path / name, formats=("png",))
        with Image.open(png) as image:
            assert image.size[0] <= MAX_FIGURE_PX and image.size[1] <= MAX_FIGURE_HEIGHT_PX, name
            assert image.size[0] < 2500, (name, image.size)  # cut by the layout, not by save
