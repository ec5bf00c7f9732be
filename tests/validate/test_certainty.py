"""The GRADE rules of ``certainty`` (trialpool.validate.certainty) and the bundled ratings.

Broken packages are the valid fixture with certainty rows added: each case names the exact
issue (rule, file, row, field), printed on one line with exit code 1. Both Table Schema
engines (frictionless, the reference, and the fast engine) run before the rules, so both
must report the same issues; frictionless alone finds nothing wrong with a package whose
only fault is a GRADE rule. The arithmetic is the GRADE Handbook's (section 5): start high
for randomised trials and low for non-randomised studies, -1 per serious, -2 per very
serious, +1/+2 per level rated up, floor very low, cap high.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from test_validate import frictionless_valid, run_cli

from conftest import REPO, CsvEdit
from trialpool.validate import validate_package
from trialpool.validate.certainty import (
    CERTAINTY_RULES,
    DOWN_DOMAINS,
    LEVELS,
    UP_STEPS,
    derive,
    missing_reasons,
)

SCHEMA = json.loads((REPO / "schemas" / "certainty.schema.json").read_text(encoding="utf-8"))
COLUMNS = [f["name"] for f in SCHEMA["fields"]]
FILE = "data/certainty.csv"

#: a valid rating: randomised, imprecision serious (with its reason) -> moderate
BASE: dict[str, str] = {
    "analysis_id": "death-24w",
    "timepoint": "week_24",
    "outcome": "death",
    "study_design": "randomised",
    "risk_of_bias": "not_serious",
    "inconsistency": "not_serious",
    "indirectness": "not_serious",
    "imprecision": "serious",
    "imprecision_reason": "Few events (test fixture).",
    "publication_bias": "not_serious",
    "large_effect": "none",
    "dose_response": "none",
    "plausible_confounding": "none",
    "certainty": "moderate",
    "assessor": "test assessor",
    "source_id": "test_a",
}


def rating(**changes: str) -> dict[str, str]:
    return {**BASE, **changes}


def rows_csv(*rows: dict[str, str]) -> CsvEdit:
    """Edit: replace certainty.csv (one synthetic rating in the fixture) by these rows."""

    def edit(text: str) -> str:
        assert text.splitlines()[0].split(",") == COLUMNS
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in COLUMNS})
        return out.getvalue()

    return edit


def where(descriptor: Path, engine: str) -> set[tuple[str, str | None, int | None, str | None]]:
    report = validate_package(descriptor, engine=engine)
    return {(i.rule, i.file, i.row, i.field) for i in report.issues}


# ------------------------------------------------------------------ the arithmetic


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"imprecision": "not_serious"}, "high"),
        ({}, "moderate"),
        ({"risk_of_bias": "serious"}, "low"),
        ({"imprecision": "very_serious"}, "low"),
        ({"risk_of_bias": "serious", "imprecision": "very_serious"}, "very_low"),
        # floor: -6 from high stays very_low
        (
            {
                "risk_of_bias": "very_serious",
                "imprecision": "very_serious",
                "indirectness": "very_serious",
            },
            "very_low",
        ),
        ({"study_design": "non_randomised", "imprecision": "not_serious"}, "low"),
        ({"study_design": "non_randomised"}, "very_low"),
        ({"study_design": "non_randomised", "large_effect": "large"}, "low"),
        ({"study_design": "non_randomised", "large_effect": "very_large"}, "moderate"),
        (
            {
                "study_design": "non_randomised",
                "large_effect": "very_large",
                "dose_response": "gradient",
            },
            "high",
        ),
        # cap: +4 from low stays high
        (
            {
                "study_design": "non_randomised",
                "imprecision": "not_serious",
                "large_effect": "very_large",
                "dose_response": "gradient",
                "plausible_confounding": "would_reduce_demonstrated_effect",
            },
            "high",
        ),
        ({"plausible_confounding": "would_suggest_spurious_effect"}, "high"),
        ({"publication_bias": "serious", "dose_response": "gradient"}, "moderate"),
    ],
)
def test_derive(changes: dict[str, str], expected: str) -> None:
    derived = derive(rating(**changes))
    assert derived is not None
    assert derived.certainty == expected
    # the steps are the non-zero ratings, each with its sign
    start = LEVELS.index(derived.start)
    total = start + sum(levels for _, _, levels in derived.steps)
    assert LEVELS[min(max(total, 0), 3)] == expected
    assert derived.text().endswith(f"= {expected}")


def test_derive_unknown_value_is_skipped() -> None:
    assert derive(rating(imprecision="medium")) is None
    assert derive(rating(study_design="")) is None
    assert derive({k: v for k, v in BASE.items() if k != "large_effect"}) is None


def test_vocabulary_matches_the_schema() -> None:
    """The rule's steps cover exactly the schema's values (the schema is the source)."""
    enums = {
        f["name"]: f.get("constraints", {}).get("enum")
        for f in SCHEMA["fields"]
        if f.get("constraints", {}).get("enum")
    }
    for domain in DOWN_DOMAINS:
        assert enums[domain] == ["not_serious", "serious", "very_serious"]
        assert f"{domain}_reason" in COLUMNS
    for domain, steps in UP_STEPS.items():
        assert enums[domain] == list(steps)
        assert f"{domain}_reason" in COLUMNS
    assert enums["certainty"] == list(reversed(LEVELS))


def test_missing_reasons() -> None:
    assert missing_reasons(BASE) == []
    assert missing_reasons(rating(imprecision_reason="  ")) == ["imprecision"]
    assert missing_reasons(rating(large_effect="large")) == ["large_effect"]
    assert missing_reasons(rating(risk_of_bias="very_serious", dose_response="gradient")) == [
        "risk_of_bias",
        "dose_response",
    ]


# ------------------------------------------------------------------ broken packages


@dataclass(frozen=True)
class Case:
    name: str
    rows: tuple[dict[str, str], ...]
    issues: frozenset[tuple[str, str | None, int | None, str | None]]  # exactly these
    words: tuple[str, ...] = ()  # on the issue's line
    table_schema: bool = False


CASES = [
    Case(
        "stated-too-high",
        (rating(certainty="high"),),
        frozenset({("certainty-mismatch", FILE, 2, "certainty")}),
        (
            "certainty of death-24w (week_24) is high but its ratings give moderate",
            "imprecision serious -1",
        ),
    ),
    Case(
        "floor-not-applied",
        (
            BASE,
            rating(
                analysis_id="meld-4w",
                timepoint="week_4",
                outcome="meld",
                risk_of_bias="very_serious",
                risk_of_bias_reason="Open label (test fixture).",
                imprecision="very_serious",
                certainty="low",
            ),
        ),
        frozenset({("certainty-mismatch", FILE, 3, "certainty")}),
        ("is low but its ratings give very_low", "start high (randomised)"),
    ),
    Case(
        "non-randomised-starts-low",
        (rating(study_design="non_randomised", certainty="moderate"),),
        frozenset({("certainty-mismatch", FILE, 2, "certainty")}),
        ("start low (non_randomised)", "give very_low"),
    ),
    Case(
        "rating-up-ignored",
        (
            rating(
                study_design="non_randomised",
                imprecision="not_serious",
                large_effect="very_large",
                large_effect_reason="RR 0.1 in every study (test fixture).",
                certainty="low",
            ),
        ),
        frozenset({("certainty-mismatch", FILE, 2, "certainty")}),
        ("large_effect very_large +2", "give high"),
    ),
    Case(
        "reason-missing-down",
        (rating(imprecision_reason=""),),
        frozenset({("certainty-reason-missing", FILE, 2, "imprecision_reason")}),
        ("imprecision of death-24w (week_24) is serious: say why in imprecision_reason",),
    ),
    Case(
        "reason-missing-up",
        (rating(dose_response="gradient", certainty="high"),),
        frozenset({("certainty-reason-missing", FILE, 2, "dose_response_reason")}),
        ("dose_response of death-24w (week_24) is gradient",),
    ),
    Case(
        "both-rules-one-row",
        (rating(risk_of_bias="serious", certainty="moderate"),),
        frozenset(
            {
                ("certainty-reason-missing", FILE, 2, "risk_of_bias_reason"),
                ("certainty-mismatch", FILE, 2, "certainty"),
            }
        ),
    ),
    Case(
        "level-not-in-vocabulary",
        (rating(certainty="medium"),),
        frozenset({("constraint-error", FILE, 2, "certainty")}),
        table_schema=True,
    ),
    Case(
        "domain-not-in-vocabulary",
        (rating(imprecision="minor"),),
        frozenset({("constraint-error", FILE, 2, "imprecision")}),
        table_schema=True,
    ),
    Case(
        "unknown-outcome",
        (rating(outcome="stroke"),),
        frozenset({("foreign-key", FILE, 2, "outcome")}),
        table_schema=True,
    ),
    Case(
        "duplicate-result",
        (BASE, BASE),
        frozenset({("primary-key", FILE, 3, None)}),
        table_schema=True,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_broken_certainty(case: Case, make_package: Callable[..., Path]) -> None:
    descriptor = make_package(edits={"certainty": rows_csv(*case.rows)})
    before = {p: p.read_bytes() for p in descriptor.parent.rglob("*") if p.is_file()}
    by_frictionless = where(descriptor, "frictionless")
    by_fast = where(descriptor, "fast")
    assert by_frictionless == by_fast, (by_frictionless, by_fast)
    if case.table_schema:
        found = {(rule, f, row) for rule, f, row, _ in by_frictionless}
        expected = {(rule, f, row) for rule, f, row, _ in case.issues}
        assert expected <= found, by_frictionless
        # a row Table Schema rejects is not judged by the GRADE rules
        assert not any(rule in CERTAINTY_RULES for rule, *_ in by_frictionless)
    else:
        assert by_frictionless == case.issues
    assert frictionless_valid(descriptor) is (not case.table_schema)
    code, out = run_cli("validate", str(descriptor))
    assert code == 1
    assert "Traceback" not in out
    for rule, file, row, field in case.issues:
        lines = [ln for ln in out.splitlines() if ln.endswith(f"[{rule}]")]
        assert lines, out
        if not case.table_schema:
            assert any(ln.startswith(f"{file}: row {row}: field {field}: ") for ln in lines), lines
    for words in case.words:
        assert words in out, out
    # the input is only ever read
    assert {p: p.read_bytes() for p in descriptor.parent.rglob("*") if p.is_file()} == before


def test_valid_ratings(make_package: Callable[..., Path]) -> None:
    rows = (
        BASE,
        rating(
            analysis_id="meld-4w",
            timepoint="week_4",
            outcome="meld",
            imprecision="not_serious",
            certainty="high",
        ),
        rating(
            analysis_id="1.1",
            timepoint="as_reported",
            study_design="non_randomised",
            imprecision="not_serious",
            large_effect="large",
            large_effect_reason="RR below 0.5 in every study (test fixture).",
            certainty="moderate",
        ),
    )
    descriptor = make_package(edits={"certainty": rows_csv(*rows)})
    for engine in ("frictionless", "fast"):
        report = validate_package(descriptor, engine=engine)
        assert report.valid, [i.line() for i in report.issues]
    assert frictionless_valid(descriptor)


def test_package_without_certainty(make_package: Callable[..., Path]) -> None:
    """The resource is optional: a package without it is valid."""

    def drop(descriptor: dict[str, Any]) -> None:
        descriptor["resources"] = [r for r in descriptor["resources"] if r["name"] != "certainty"]

    report = validate_package(make_package(edit_descriptor=drop))
    assert report.valid, [i.line() for i in report.issues]


# ------------------------------------------------------------------ the bundled ratings


def bundled_rows() -> list[dict[str, str]]:
    with open(REPO / FILE, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_bundled_ratings_follow_from_their_domains() -> None:
    rows = bundled_rows()
    assert rows, "the bundled package rates the analyses that have data"
    for row in rows:
        derived = derive(row)
        assert derived is not None and derived.certainty == row["certainty"], row["analysis_id"]
        assert missing_reasons(row) == []
        # every domain has its reason, also when not rated down (the footnotes say why not)
        for domain in DOWN_DOMAINS:
            assert row[f"{domain}_reason"].strip(), (row["analysis_id"], domain)
        assert row["assessor"] == "package maintainers"
        assert "not a published rating" in row["notes"] and "Lu 2025" in row["notes"]


def test_bundled_reasons_cite_what_exists() -> None:
    """Every claim id a reason cites is in claims.csv; every source or study id it names
    is in sources.csv or studies.csv (reasons rest on the package, nothing else)."""

    def ids(name: str, column: str) -> set[str]:
        with open(REPO / "data" / f"{name}.csv", encoding="utf-8", newline="") as handle:
            return {r[column] for r in csv.DictReader(handle)}

    claims, sources, studies = (
        ids("claims", "claim_id"),
        ids("sources", "source_id"),
        ids("studies", "study_id"),
    )
    cited_claims: set[str] = set()
    cited_ids: set[str] = set()
    for row in bundled_rows():
        text = " ".join(
            v for k, v in row.items() if k.endswith("_reason") or k in ("comment", "notes")
        )
        for first, last in re.findall(r"\b([a-z]+\d{4}-\d{3}) to ([a-z]+\d{4}-\d{3})\b", text):
            prefix, a, b = first[:-3], int(first[-3:]), int(last[-3:])
            cited_claims |= {f"{prefix}{n:03d}" for n in range(a, b + 1)}
        cited_claims |= set(re.findall(r"\b[a-z]+\d{4}-\d{3}\b", text))
        cited_ids |= set(re.findall(r"\b[a-z]+\d{4}(?:_[a-z]+)*\b(?!-)", text))
    assert cited_claims and cited_claims <= claims, cited_claims - claims
    assert cited_ids and cited_ids <= sources | studies, cited_ids - sources - studies
