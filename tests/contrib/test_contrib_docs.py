"""CONTRIBUTING.md stays in step with the schemas and with the example fixture."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TEXT = (REPO / "CONTRIBUTING.md").read_text(encoding="utf-8")
EXAMPLE = json.loads(
    (REPO / "tests/fixtures/pr_example2027/example2027.json").read_text(encoding="utf-8")
)


def csv_blocks() -> list[list[list[str]]]:
    blocks = re.findall(r"```csv\n(.*?)```", TEXT, flags=re.DOTALL)
    return [list(csv.reader(io.StringIO(block))) for block in blocks]


def schema_headers() -> dict[tuple[str, ...], str]:
    descriptor = json.loads((REPO / "datapackage.json").read_text(encoding="utf-8"))
    out: dict[tuple[str, ...], str] = {}
    for resource in descriptor["resources"]:
        schema = json.loads((REPO / resource["schema"]).read_text(encoding="utf-8"))
        out[tuple(f["name"] for f in schema["fields"])] = resource["name"]
    return out


def test_worked_example_rows_follow_the_schemas() -> None:
    headers = schema_headers()
    seen: set[str] = set()
    for rows in csv_blocks():
        header = tuple(rows[0])
        assert header in headers, f"CONTRIBUTING.md: CSV header is not a schema's: {header}"
        seen.add(headers[header])
        for row in rows[1:]:
            assert len(row) == len(header), f"{headers[header]}: {row}"
            assert "example2027" in row  # only the fictional study is used as an example
    assert seen >= {
        "sources",
        "studies",
        "arms",
        "comparisons",
        "msc_arms",
        "outcomes",
        "continuous_outcomes",
        "dichotomous_outcomes",
        "bias_judgements",
        "claims",
        "screening",
    }


def test_worked_example_matches_the_fixture() -> None:
    headers = schema_headers()
    for rows in csv_blocks():
        name = headers[tuple(rows[0])]
        if name not in EXAMPLE or name in {"bias_judgements", "screening"}:
            continue
        documented = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
        for expected, got in zip(EXAMPLE[name], documented, strict=True):
            assert {k: got[k] for k in expected} == expected, name


def test_worked_example_rows_pair_up() -> None:
    """The documented comparison names the documented arms; msc_arms has one row per arm;
    outcome rows name outcomes that are defined (in the package or in the example)."""
    headers = schema_headers()
    rows: dict[str, list[dict[str, str]]] = {}
    for block in csv_blocks():
        name = headers[tuple(block[0])]
        rows[name] = [dict(zip(block[0], row, strict=True)) for row in block[1:]]
    arms = [r["arm_id"] for r in rows["arms"]]
    assert [r["arm_id"] for r in rows["msc_arms"]] == arms
    (comparison,) = rows["comparisons"]
    assert [comparison["experimental_arm_id"], comparison["control_arm_id"]] == arms
    assert comparison["primary"] == "true"
    with (REPO / "data/outcomes.csv").open(encoding="utf-8", newline="") as handle:
        defined = {r["outcome_id"]: r["data_type"] for r in csv.DictReader(handle)}
    defined |= {r["outcome_id"]: r["data_type"] for r in rows["outcomes"]}
    for name, data_type in (
        ("continuous_outcomes", "continuous"),
        ("dichotomous_outcomes", "dichotomous"),
    ):
        for row in rows[name]:
            assert defined.get(row["outcome"]) == data_type, row
            assert row["arm_id"] in arms and row["timepoint"]


def test_example_is_marked_fictional() -> None:
    assert "**fictional**" in TEXT and "illustrative only" in TEXT.lower()
