"""The README's worked example ("Use these schemas for your own review") runs as written:
init, the CSV rows it shows, refresh, validate, pool, report."""

from __future__ import annotations

import io
import json
import re
import subprocess
from pathlib import Path

import pytest
from rich.console import Console

from trialpool import cli
from trialpool.analysis.command import run_pool

REPO = Path(__file__).resolve().parents[2]
SECTION = "## Use these schemas for your own review"


def _section() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.index("\n## ", start + len(SECTION))
    return text[start:end]


def _csv_blocks() -> dict[str, str]:
    """``data/NAME.csv`` -> the rows the README shows for it."""
    out: dict[str, str] = {}
    for block in re.findall(r"```csv\n(.*?)```", _section(), flags=re.S):
        first, _, rows = block.partition("\n")
        match = re.fullmatch(r"# (data/[a-z_]+\.csv)", first.strip())
        assert match, first
        out[match.group(1)] = rows
    return out


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("readme") / "bcg-review"
    assert "trialpool init bcg-review" in _section()
    assert cli.main(["init", str(folder), "--title", "BCG vaccine against tuberculosis"]) == 0
    for name, rows in _csv_blocks().items():
        with (folder / name).open("a", encoding="utf-8") as out:
            out.write(rows)
    assert cli.main(["refresh", str(folder / "datapackage.json")]) == 0
    return folder / "datapackage.json"


def test_the_example_names_every_required_table() -> None:
    assert set(_csv_blocks()) == {
        "data/sources.csv",
        "data/studies.csv",
        "data/arms.csv",
        "data/comparisons.csv",
        "data/outcomes.csv",
        "data/dichotomous_outcomes.csv",
    }


def test_the_example_validates(example: Path) -> None:
    assert cli.main(["validate", str(example)]) == 0


@pytest.mark.frictionless
def test_the_example_validates_with_frictionless(example: Path) -> None:
    exe = REPO / ".venv" / "bin" / "frictionless"
    command = [str(exe)] if exe.exists() else ["frictionless"]
    done = subprocess.run([*command, "validate", str(example)], capture_output=True, check=False)
    assert done.returncode == 0


def test_the_pooled_result_is_the_one_the_readme_prints(example: Path) -> None:
    buffer = io.StringIO()
    code = run_pool(
        example,
        outcome="tuberculosis",
        timepoint=None,
        measure="RR",
        method="REML",
        hksj=False,
        as_json=True,
        console=Console(file=buffer, width=200),
    )
    assert code == 0
    r = json.loads(buffer.getvalue())
    printed = (
        f"RR {r['estimate']:.3f} [{r['ci_lower']:.3f}, {r['ci_upper']:.3f}] (REML, k = {r['k']})"
    )
    assert printed in " ".join(_section().split())


def test_the_example_reports(example: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    assert cli.main(["report", str(example), "--out", str(out)]) == 0
    assert "Tuberculosis cases" in (out / "report.md").read_text(encoding="utf-8")
